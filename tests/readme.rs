//! The README's reference tables stay whole and complete: every registered check kind
//! has a row in the one kinds table (a blank line inside a Markdown table ends it, and
//! the rows after it render as plain text).

use std::path::Path;

#[test]
fn the_kinds_table_is_one_table_with_every_kind() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let head = lines.iter().position(|l| *l == "| kind | keys | passes when |").expect("no kinds table in the README");
    let rows: Vec<&str> = lines[head + 2..].iter().take_while(|l| l.starts_with('|')).copied().collect();
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
