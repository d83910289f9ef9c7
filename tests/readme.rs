//! The README's reference tables stay whole and complete: every registered check kind
//! has a row in the one kinds table (a blank line inside a Markdown table ends it, and
//! the rows after it render as plain text), and the route table names every route the
//! endpoint serves and no other.

use std::collections::BTreeSet;
use std::path::Path;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The rows of the table whose head is `head`, up to the first line that is none.
fn rows<'a>(readme: &'a str, head: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = readme.lines().collect();
    let at = lines.iter().position(|l| *l == head).unwrap_or_else(|| panic!("no table `{head}` in the README"));
    lines[at + 2..].iter().take_while(|l| l.starts_with('|')).copied().collect()
}

#[test]
fn the_kinds_table_is_one_table_with_every_kind() {
    let readme = readme();
    let rows = rows(&readme, "| kind | keys | passes when |");
    for kind in bootgate::checks::KINDS {
        let row = format!("| `{}` |", kind.name);
        assert!(
            rows.iter().any(|r| r.starts_with(&row)),
            "kind `{}` has no row in the kinds table (or the table is split)",
            kind.name
        );
    }
    assert_eq!(rows.len(), bootgate::checks::KINDS.len(), "the kinds table has rows for kinds that do not exist");
}

#[test]
fn the_route_table_names_every_route_and_no_other() {
    let readme = readme();
    // A row's first cell names its routes: `GET /livez/{probe}`, `GET /readyz/{probe}`;
    // a query (`?limit=N`) says how to ask, it is no other route.
    let named: Vec<String> = rows(&readme, "| route | answer |")
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
        "the README's route table lacks {missing:?} and names {unknown:?}, which the endpoint does not serve"
    );
}
