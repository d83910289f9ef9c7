//! The policy contract through the real binary: every invalid fixture is rejected
//! with exit 78 and its file:line:column and key; shipped policies are valid; the
//! checked-in schema is current; a bad policy fails closed in every command.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::bootgate;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn every_invalid_fixture_is_rejected_at_its_location() {
    let dir = repo("tests/fixtures/invalid");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    fixtures.sort();
    assert!(fixtures.len() >= 20, "only {} fixtures", fixtures.len());
    for fixture in fixtures {
        let body = std::fs::read_to_string(&fixture).unwrap();
        let expect = body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks its `# expect: LINE:COLUMN KEY` first line", fixture.display()));
        let (loc, key) = expect.split_once(' ').unwrap_or((expect, ""));
        let path = fixture.to_str().unwrap();
        let out = bootgate(&["validate", path]);
        assert_eq!(out.status.code(), Some(78), "{path}: {}", text(&out));
        let want = if key.trim().is_empty() { format!("{path}:{loc}: ") } else { format!("{path}:{loc}: {key}: ") };
        assert!(text(&out).contains(&want), "{path}: expected `{want}` in:\n{}", text(&out));
    }
}

#[test]
fn shipped_policies_are_valid() {
    for entry in std::fs::read_dir(repo("policy")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = bootgate(&["validate", path.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(0), "{}: {}", path.display(), text(&out));
        }
    }
}

#[test]
fn checked_in_schema_is_current() {
    let out = bootgate(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = std::fs::read_to_string(repo("policy/schema.json")).expect("policy/schema.json exists");
    let stored: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert!(printed == stored, "policy/schema.json is stale: run `bootgate schema > policy/schema.json`");
    // Each kind is a branch that knows its own keys.
    let check = &printed["$defs"]["Check"];
    let kinds: Vec<&str> =
        check["oneOf"].as_array().unwrap().iter().map(|b| b["properties"]["kind"]["const"].as_str().unwrap()).collect();
    for k in ["disk", "tcp", "dns", "http", "systemd", "exec"] {
        assert!(kinds.contains(&k), "schema lacks kind {k}: {kinds:?}");
    }
}

#[test]
fn a_bad_policy_fails_closed_in_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("policy.yaml");
    std::fs::write(&bad, "version: 1\nchecks:\n  - name: root\n    kind: disk\n    min_free_percnt: 5\n").unwrap();
    let bad = bad.to_str().unwrap();
    let run_dir = dir.path().join("run");
    for args in [
        vec!["check", "--policy", bad],
        vec!["check", "--format", "json", "--policy", bad],
        vec!["run", "--policy", bad, "--run-dir", run_dir.to_str().unwrap(), "--state-dir", run_dir.to_str().unwrap()],
    ] {
        let out = bootgate(&args);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(&format!("{bad}:5:22: checks[0].min_free_percnt")), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("healthy"), "{args:?} must not report health: {}", text(&out));
    }
    // A named policy that does not exist is an error, never the built-in default.
    let missing = dir.path().join("nope.yaml");
    let out = bootgate(&["check", "--policy", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("cannot read policy"), "{}", text(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_bootgate"))
        .args(["validate"])
        .env("BOOTGATE_POLICY", &missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
}

#[test]
fn usage_errors_exit_64() {
    assert_eq!(bootgate(&["frobnicate"]).status.code(), Some(64));
    assert_eq!(bootgate(&["check", "--format", "xml"]).status.code(), Some(64));
    assert_eq!(bootgate(&["--help"]).status.code(), Some(0));
}
