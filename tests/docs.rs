//! The documentation renders as it is written. Every page the project publishes is read
//! with a CommonMark parser, and the build fails when a code fence never closes, when a
//! fence is "closed" with text after its backticks (which CommonMark does not accept, so
//! the rest of the page turns into code), when a heading or a table's `|---|` line ends
//! up inside a code block, or when a relative link or an anchor points nowhere. Each
//! check is first shown to catch a page written wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pulldown_cmark::{BrokenLink, CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every published page: the top-level ones, the vm-tests README and all of `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> =
        ["README.md", "CONTRIBUTING.md", "CHANGELOG.md", "vm-tests/README.md"].iter().map(|p| repo().join(p)).collect();
    let docs = std::fs::read_dir(repo().join("docs")).expect("no docs/ folder");
    let mut docs: Vec<PathBuf> =
        docs.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "md")).collect();
    docs.sort();
    assert!(docs.len() >= 10, "docs/ holds only {docs:?}");
    pages.extend(docs);
    pages
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Code languages whose comments start with `#`: there `# Word` is a comment, not a heading.
const HASH_COMMENTS: &[&str] = &["sh", "bash", "shell", "console", "ini", "yaml", "yml", "toml", "conf", "python"];

/// The 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// What is wrong with the fenced code blocks of `text`, one message each.
fn fence_problems(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (event, range) in Parser::new_ext(text, Options::ENABLE_TABLES).into_offset_iter() {
        let Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) = event else { continue };
        let first = line_of(text, range.start);
        let lines: Vec<&str> = text[range].lines().collect();
        let open = lines[0].trim_start();
        let mark = open.chars().next().unwrap();
        let width = open.chars().take_while(|c| *c == mark).count();
        let last = lines[lines.len() - 1].trim();
        let closed = lines.len() > 1 && last.chars().all(|c| c == mark) && last.chars().count() >= width;
        if !closed {
            problems.push(format!(
                "line {first}: the fence `{open}` never closes, so everything after it up to the end of the page (or of its list item) is code"
            ));
        }
        let lang = info.split_whitespace().next().unwrap_or_default().to_string();
        let body = &lines[1..if closed { lines.len() - 1 } else { lines.len() }];
        for (i, line) in body.iter().enumerate() {
            let (at, line) = (first + 1 + i, line.trim_start());
            // A run of the fence's own mark, as long as the opening one, followed by text:
            // meant to close the block, but CommonMark reads on.
            let run = line.chars().take_while(|c| *c == mark).count();
            if run >= width && !line.trim_start_matches(mark).trim().is_empty() {
                problems.push(format!(
                    "line {at}: `{line}` is no closing fence (text after the backticks), so the block of line {first} goes on"
                ));
            }
            if looks_like_heading(line, &lang) {
                problems.push(format!("line {at}: the heading `{line}` is inside the code block of line {first}"));
            }
            if is_table_delimiter(line) {
                problems.push(format!("line {at}: a table's `{line}` line is inside the code block of line {first}"));
            }
        }
    }
    problems
}

/// `## Word`, or `# Word` outside a language whose comments start with `#`.
fn looks_like_heading(line: &str, lang: &str) -> bool {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    let Some(rest) = line[hashes..].strip_prefix(' ') else { return false };
    let capitalised = rest.chars().next().is_some_and(char::is_uppercase);
    (1..=6).contains(&hashes) && capitalised && (hashes > 1 || !HASH_COMMENTS.contains(&lang))
}

/// A table's delimiter row: `|---|:--|`.
fn is_table_delimiter(line: &str) -> bool {
    line.starts_with('|') && line.contains("---") && line.chars().all(|c| "|-: ".contains(c))
}

/// A heading's anchor as GitHub makes it: lower case, punctuation other than `-` and
/// `_` dropped, each space a `-`.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of every heading of a page; a repeated one gets `-1`, `-2`, … as on GitHub.
fn anchors(text: &str) -> Vec<String> {
    let (mut anchors, mut seen) = (Vec::new(), BTreeMap::<String, usize>::new());
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let base = slug(&heading.take().unwrap());
                let n = seen.entry(base.clone()).or_default();
                anchors.push(if *n == 0 { base } else { format!("{base}-{n}") });
                *n += 1;
            }
            _ => {}
        }
    }
    anchors
}

/// What is wrong with the links of `text`, the page at `page`: a relative target that
/// does not exist, an anchor no heading has, a reference link without its definition.
fn link_problems(page: &Path, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut unresolved = Vec::new();
    let mut note = |link: BrokenLink| {
        unresolved.push(format!(
            "line {}: `[{}]` has no link definition",
            line_of(text, link.span.start),
            link.reference
        ));
        None
    };
    let parser = Parser::new_with_broken_link_callback(text, Options::ENABLE_TABLES, Some(&mut note));
    for (event, range) in parser.into_offset_iter() {
        let (Event::Start(Tag::Link { dest_url, .. }) | Event::Start(Tag::Image { dest_url, .. })) = event else {
            continue;
        };
        if dest_url.contains("://") || dest_url.starts_with("mailto:") {
            continue;
        }
        let at = line_of(text, range.start);
        let (file, anchor) = dest_url.split_once('#').map_or((&*dest_url, None), |(f, a)| (f, Some(a)));
        let target = if file.is_empty() { page.to_path_buf() } else { page.parent().unwrap().join(file) };
        if !target.exists() {
            problems.push(format!("line {at}: `{dest_url}`: there is no {}", target.display()));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        if target.extension().is_none_or(|e| e != "md") {
            problems.push(format!("line {at}: `{dest_url}`: an anchor into a file that is no Markdown page"));
        } else if !anchors(&read(&target)).iter().any(|a| a == anchor) {
            problems.push(format!("line {at}: `{dest_url}`: {} has no heading `#{anchor}`", target.display()));
        }
    }
    problems.extend(unresolved);
    problems
}

#[test]
fn every_page_renders_as_written() {
    let mut problems = Vec::new();
    for page in pages() {
        let text = read(&page);
        let name = page.strip_prefix(repo()).unwrap().display().to_string();
        problems.extend(fence_problems(&text).into_iter().map(|p| format!("{name}: {p}")));
        problems.extend(link_problems(&page, &text).into_iter().map(|p| format!("{name}: {p}")));
    }
    assert!(problems.is_empty(), "the docs do not render as written:\n{}", problems.join("\n"));
}

#[test]
fn every_alert_has_a_runbook_url_that_leads_to_its_section() {
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&read(&repo().join("monitoring/prometheus/bootgate.rules.yml"))).unwrap();
    let runbooks = anchors(&read(&repo().join("docs/runbooks.md")));
    let alerts: Vec<&serde_yaml::Value> = rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter(|r| r.get("alert").is_some())
        .collect();
    assert!(alerts.len() >= 6, "the rules have only {} alerts", alerts.len());
    for rule in alerts {
        let alert = rule["alert"].as_str().unwrap();
        let url = rule["annotations"]["runbook_url"].as_str();
        let anchor = url.and_then(|u| u.strip_prefix("https://bootgate.dev/docs/runbooks.md#"));
        assert_eq!(anchor, Some(alert.to_lowercase().as_str()), "{alert}: runbook_url {url:?} is not its own section");
        assert!(
            runbooks.iter().any(|r| Some(r.as_str()) == anchor),
            "{alert}: runbook_url {url:?} leads to no heading of docs/runbooks.md"
        );
    }
}

/// The README as it stood before its textfile example's fence was mended: the fence is
/// "closed" with text after the backticks, so CommonMark reads on, and the exit codes'
/// heading and table become part of an `ini` code block.
const BROKEN_README: &str = r#"for the gate and for the report of a failed gate alike:

```ini
# /etc/systemd/system/bootgate.service.d/textfile.conf
[Service]
Environment=BOOTGATE_TEXTFILE=/var/lib/node_exporter/textfile_collector/bootgate.prom
``` Logs go to stderr (`BOOTGATE_LOG=debug` for more), without timestamps under journald.

Signals (`run` and `serve`): SIGTERM and SIGINT stop the daemon.

### Exit codes

| code | meaning |
|---|---|
| 0 | healthy |

## How the gate decides

```sh
make run
```
"#;

#[test]
fn a_fence_closed_with_text_is_caught_with_what_it_swallowed() {
    let problems = fence_problems(BROKEN_README);
    let expect = [
        (7, "is no closing fence"),
        (11, "the heading `### Exit codes` is inside the code block of line 3"),
        (14, "a table's `|---|---|` line is inside the code block of line 3"),
        (17, "the heading `## How the gate decides` is inside"),
        (19, "is no closing fence"),
    ];
    for (line, what) in expect {
        let found = problems.iter().any(|p| p.starts_with(&format!("line {line}: ")) && p.contains(what));
        assert!(found, "no problem on line {line} saying `{what}` in {problems:#?}");
    }
    // The block the broken fence opened is closed only by the fence meant for `make run`.
    assert!(!problems.iter().any(|p| p.contains("never closes")), "{problems:#?}");

    let mended = BROKEN_README.replace("``` Logs go", "```\n\nLogs go");
    assert_eq!(fence_problems(&mended), Vec::<String>::new());
}

#[test]
fn a_fence_that_never_closes_is_caught() {
    let page = "# Title\n\nText.\n\n```yaml\nversion: 1\n\n## Next section\n\nMore text.\n";
    let problems = fence_problems(page);
    assert!(problems.iter().any(|p| p.starts_with("line 5: the fence ````yaml` never closes")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.starts_with("line 8: the heading `## Next section`")), "{problems:#?}");
    // Inside a list item the block ends with the item, and still never closed.
    let listed = "1. Write it:\n\n   ```sh\n   make build\n\nAfter the list.\n";
    assert!(fence_problems(listed).iter().any(|p| p.contains("never closes")), "{:#?}", fence_problems(listed));
}

#[test]
fn comments_in_shell_ini_and_yaml_blocks_are_no_headings() {
    let page = "```sh\n# Build it\nmake build\n```\n\n```ini\n# Drop-in\n[Service]\n```\n\n~~~yaml\n# The policy\nversion: 1\n~~~\n\n````markdown\n```sh\nmake\n```\n````\n";
    assert_eq!(fence_problems(page), Vec::<String>::new());
    // Where `#` starts no comment, it is a swallowed heading.
    let text = "```text\n# Exit codes\n```\n";
    assert_eq!(fence_problems(text).len(), 1, "{:#?}", fence_problems(text));
}

#[test]
fn anchors_are_github_slugs_and_repeated_ones_are_numbered() {
    let page = "# Boot loaders (`boot.backend`)\n\n## When update_engine marks\n\n## Flatcar: Butane\n\n## Notes\n\n## Notes\n\nSetext\n------\n";
    assert_eq!(
        anchors(page),
        ["boot-loaders-bootbackend", "when-update_engine-marks", "flatcar-butane", "notes", "notes-1", "setext"]
    );
}

#[test]
fn links_to_missing_files_and_headings_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.md"), "# Other\n\n## Known part\n").unwrap();
    let page = dir.path().join("page.md");
    let text = "# Page\n\n[ok](other.md#known-part), [here](#page), [site](https://example.com/x#y).\n\n\
                [gone](missing.md), [no part](other.md#unknown), [no heading](#nowhere), [undefined][ref].\n";
    std::fs::write(&page, text).unwrap();
    let problems = link_problems(&page, text);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].starts_with("line 5: `missing.md`: there is no "), "{problems:#?}");
    assert!(problems[1].contains("has no heading `#unknown`"), "{problems:#?}");
    assert!(problems[2].contains("has no heading `#nowhere`"), "{problems:#?}");
    assert_eq!(problems[3], "line 5: `[ref]` has no link definition");
}
