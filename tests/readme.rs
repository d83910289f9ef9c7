//! What the README and the reference pages state agrees with the code and the shipped
//! files. The README's first screen has the flow, a platform row for every boot backend
//! the policy accepts, and a short install for each, and its policy is valid. In `docs/`:
//! every registered check kind has a row in the one kinds table (a blank line inside a
//! Markdown table ends it, and the rows after it render as plain text), the route table
//! names every route the endpoint serves and no other, the Butane snippet is the shipped
//! one, and the sandbox's writable paths and read-only drop-in match the unit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// How many lines of the README a newcomer sees first.
const FIRST_SCREEN: usize = 60;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The rows of the table whose head is `head`, up to the first line that is none.
fn rows<'a>(page: &'a str, head: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = page.lines().collect();
    let at = lines.iter().position(|l| *l == head).unwrap_or_else(|| panic!("no table `{head}`"));
    lines[at + 2..].iter().take_while(|l| l.starts_with('|')).copied().collect()
}

/// The fenced code blocks of a page: language, text, and the heading they follow.
fn code_blocks(page: &str) -> Vec<(String, String, String)> {
    let (mut blocks, mut heading, mut current) = (Vec::new(), String::new(), None::<(String, String)>);
    let mut in_heading = false;
    for event in Parser::new_ext(page, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => (in_heading, heading) = (true, String::new()),
            Event::End(TagEnd::Heading(_)) => in_heading = false,
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                current = Some((info.split_whitespace().next().unwrap_or_default().into(), String::new()))
            }
            Event::End(TagEnd::CodeBlock) => {
                let (lang, text) = current.take().unwrap();
                blocks.push((lang, text, heading.clone()));
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, text)) = current.as_mut() {
                    text.push_str(&t);
                } else if in_heading {
                    heading.push_str(&t);
                }
            }
            _ => {}
        }
    }
    blocks
}

/// A heading's anchor as GitHub makes it (tests/docs.rs checks every link against it).
fn slug(heading: &str) -> String {
    let keep = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    heading.to_lowercase().chars().filter_map(|c| if c == ' ' { Some('-') } else { keep(c).then_some(c) }).collect()
}

/// The boot backends a policy may name, from the policy's JSON Schema.
fn backends() -> Vec<String> {
    fn find(v: &serde_json::Value) -> Option<Vec<String>> {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Array(names)) = map.get("enum") {
                    if names.iter().any(|n| n == "flatcar") {
                        return Some(names.iter().map(|n| n.as_str().unwrap().to_string()).collect());
                    }
                }
                map.values().find_map(find)
            }
            serde_json::Value::Array(items) => items.iter().find_map(find),
            _ => None,
        }
    }
    let schema: serde_json::Value = serde_json::from_str(&read("policy/schema.json")).unwrap();
    find(&schema).expect("the schema names no boot backends")
}

#[test]
fn the_first_screen_has_the_flow_the_platforms_and_an_install_for_each() {
    let readme = read("README.md");
    let screen: String = readme.lines().take(FIRST_SCREEN).flat_map(|l| [l, "\n"]).collect();

    // The flow: five steps, from the boot to the mark or the fallback.
    let steps: Vec<&str> =
        screen.lines().filter(|l| l.len() > 3 && l.as_bytes()[0].is_ascii_digit() && &l[1..3] == ". ").collect();
    assert_eq!(steps.len(), 5, "the first screen's flow is not five steps: {steps:#?}");
    for (step, word) in steps.iter().zip(["Boot", "Checks", "READY=1", "Marked good", "fallback"]) {
        assert!(step.contains(word), "the flow's step `{step}` does not say `{word}`");
    }

    // The platforms: a row for every backend the policy takes, and Mender's, which is a script.
    let matrix = rows(&screen, "| platform | `boot.backend` | on pass | on failure | install |");
    let row = |what: &str| matrix.iter().find(|r| r.contains(what)).copied();
    for backend in backends().iter().filter(|b| *b != "auto") {
        assert!(row(&format!("| `{backend}` |")).is_some(), "no platform row for the backend `{backend}`");
    }
    let mender = row("Mender").expect("no platform row for Mender");
    assert!(mender.contains("bootgate wait"), "the Mender row does not say how the commit waits: {mender}");
    assert!(!screen.contains("*planned*"), "the first screen still has a planned platform");

    // An install of at most five commands for every platform that runs today.
    let installs: BTreeMap<String, String> = code_blocks(&screen)
        .into_iter()
        .filter(|(lang, _, _)| lang == "sh")
        .map(|(_, text, heading)| (slug(&heading), text))
        .collect();
    // Mender's row links to its script's page: Mender installs it, not bootgate's packages.
    for r in matrix.iter().filter(|r| !r.starts_with("| Mender")) {
        let cell = r.trim_end_matches('|').rsplit('|').next().unwrap();
        let anchors: Vec<&str> = cell.split("](#").skip(1).map(|a| a.split(')').next().unwrap()).collect();
        assert!(!anchors.is_empty(), "the row `{r}` links to no install");
        for anchor in anchors {
            let block = installs.get(anchor).unwrap_or_else(|| {
                panic!(
                    "the row `{r}` links to #{anchor}, which has no install commands on the first screen: {installs:#?}"
                )
            });
            let commands = block.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).count();
            assert!((1..=5).contains(&commands), "#{anchor} has {commands} commands:\n{block}");
        }
    }
}

#[test]
fn the_readme_policy_is_valid() {
    let blocks = code_blocks(&read("README.md"));
    let (_, policy, _) =
        blocks.iter().find(|(lang, text, _)| lang == "yaml" && text.starts_with("version: 1")).expect("no policy");
    assert!(policy.lines().count() <= 10, "the README's policy has more than ten lines:\n{policy}");
    let parsed = bootgate::policy::parse(policy, "README.md");
    assert!(parsed.is_ok(), "the README's policy is invalid: {:#}", parsed.err().unwrap());
}

#[test]
fn the_kinds_table_is_one_table_with_every_kind() {
    let page = read("docs/policy.md");
    let rows = rows(&page, "| kind | keys | passes when |");
    for kind in bootgate::checks::KINDS {
        let row = format!("| `{}` |", kind.name);
        assert!(
            rows.iter().any(|r| r.starts_with(&row)),
            "kind `{}` has no row in the kinds table of docs/policy.md (or the table is split)",
            kind.name
        );
    }
    assert_eq!(rows.len(), bootgate::checks::KINDS.len(), "the kinds table has rows for kinds that do not exist");
}

#[test]
fn the_route_table_names_every_route_and_no_other() {
    let page = read("docs/endpoint.md");
    // A row's first cell names its routes: `GET /livez/{probe}`, `GET /readyz/{probe}`;
    // a query (`?limit=N`) says how to ask, it is no other route.
    let named: Vec<String> = rows(&page, "| route | answer |")
        .iter()
        .flat_map(|row| row.split('|').nth(1).unwrap_or_default().split('`').skip(1).step_by(2))
        .filter(|entry| entry.starts_with("GET /") || entry.starts_with("POST /"))
        .map(|entry| entry.split('?').next().unwrap().to_string())
        .collect();
    let listed: BTreeSet<&str> = named.iter().map(String::as_str).collect();
    assert_eq!(listed.len(), named.len(), "a route is named twice: {named:#?}");
    let served: Vec<String> =
        bootgate::server::ROUTES.iter().map(|r| format!("{} {}", r.method.as_str(), r.path)).collect();
    let missing: Vec<&String> = served.iter().filter(|r| !listed.contains(r.as_str())).collect();
    let unknown: Vec<&&str> = listed.iter().filter(|r| !served.contains(&r.to_string())).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "the route table of docs/endpoint.md lacks {missing:?} and names {unknown:?}, which the endpoint does not serve"
    );
}

#[test]
fn the_butane_snippet_is_the_shipped_config() {
    let blocks = code_blocks(&read("docs/boot-integration.md"));
    let (_, snippet, _) = blocks
        .iter()
        .find(|(lang, _, heading)| lang == "yaml" && heading == "Flatcar: Butane")
        .expect("no Butane snippet under `Flatcar: Butane` in docs/boot-integration.md");
    assert_eq!(*snippet, read("build/flatcar/bootgate.bu"), "the Butane snippet and build/flatcar/bootgate.bu differ");
}

/// `Key=value` of `bootgate.service`, in order, each value as written.
fn unit(key: &str) -> Vec<String> {
    let unit = read("systemd/bootgate.service");
    unit.lines().filter_map(|l| l.strip_prefix(key)?.strip_prefix('=')).map(str::to_string).collect()
}

#[test]
fn the_sandbox_lists_exactly_the_units_writable_paths() {
    let mut writable = BTreeSet::new();
    for (key, base) in [
        ("RuntimeDirectory", "/run"),
        ("StateDirectory", "/var/lib"),
        ("CacheDirectory", "/var/cache"),
        ("LogsDirectory", "/var/log"),
    ] {
        writable.extend(
            unit(key).iter().flat_map(|v| v.split_whitespace().map(|d| format!("{base}/{d}")).collect::<Vec<_>>()),
        );
    }
    writable.extend(
        unit("ReadWritePaths").iter().flat_map(|v| {
            v.split_whitespace().map(|p| p.trim_start_matches(['-', '+']).to_string()).collect::<Vec<_>>()
        }),
    );
    if unit("PrivateTmp").iter().any(|v| v == "yes") {
        writable.extend(["/tmp".to_string(), "/var/tmp".to_string()]);
    }
    assert!(writable.contains("/run/bootgate"), "the unit read wrong: {writable:?}");

    let page = read("docs/boot-integration.md");
    let listed: BTreeSet<String> = rows(&page, "| writable path | set by | for |")
        .iter()
        .flat_map(|row| {
            row.split('|').nth(1).unwrap().split('`').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(listed, writable, "docs/boot-integration.md's writable paths are not the unit's");
}

#[test]
fn the_read_only_disk_drop_in_resets_the_list_and_keeps_every_device() {
    let blocks = code_blocks(&read("docs/boot-integration.md"));
    let (_, drop_in, _) = blocks
        .iter()
        .find(|(lang, text, _)| lang == "ini" && text.contains("DeviceAllow="))
        .expect("no DeviceAllow= drop-in in docs/boot-integration.md");
    let allow: Vec<&str> = drop_in.lines().filter_map(|l| l.strip_prefix("DeviceAllow=")).collect();
    assert_eq!(allow.first(), Some(&""), "the drop-in does not reset the list with an empty DeviceAllow= first");
    for entry in unit("DeviceAllow") {
        let (device, access) = entry.split_once(' ').unwrap_or((&entry, "rwm"));
        let want = if device.starts_with("block-") { format!("{device} r") } else { format!("{device} {access}") };
        assert!(allow.contains(&want.as_str()), "the drop-in lacks `DeviceAllow={want}` for the unit's `{entry}`");
    }
    for entry in &allow[1..] {
        assert!(!entry.starts_with("block-") || entry.ends_with(" r"), "the drop-in leaves a disk writable: {entry}");
    }
}
