//! `policy/schema.json` checked by a real JSON Schema validator (Debian's
//! python3-jsonschema, from `build/deps.sh`): it rejects every invalid fixture except
//! the few only `bootgate validate` can see, accepts every valid shipped policy, and
//! agrees with `validate` on the values its patterns describe.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Fixtures the schema accepts: what they break lies beyond JSON Schema (relations
/// between checks or keys, a parser's judgement, a limit on the YAML itself).
const ONLY_VALIDATE_SEES: &[&str] = &[
    // after: names checks and their graph
    "dependency_cycle",
    "self_dependency",
    "unknown_dependency",
    "duplicate_name",
    // one key measured against another
    "timeout_exceeds_deadline",
    "warn_below_min",
    "status_range_reversed",
    // a value only a parser or the 30-day bound can judge
    "dns_expect_not_an_ip",
    "duration_over_max",
    "interval_over_max",
    "timeout_over_max",
    "unit_without_suffix",
    // the 1s floor of a check's interval (the schema's duration pattern has no floor)
    "check_interval_too_short",
    // an argv's program, which must not be empty (the schema's non-empty list of strings
    // is the type every argv shares)
    "fallback_command_empty_program",
];

/// Fixtures that are no JSON document at all: YAML that does not parse, repeats a key
/// or expands its aliases past the parser's own limit.
const NOT_A_DOCUMENT: &[&str] = &["yaml_syntax", "http_header_duplicate", "tpm_pcr_bank_duplicate", "alias_bomb"];

const PYTHON: &str = "/usr/bin/python3";

const SCRIPT: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
data = json.load(sys.stdin)
Draft202012Validator.check_schema(data["schema"])
validator = Draft202012Validator(data["schema"])
json.dump({name: [e.message for e in validator.iter_errors(doc)] for name, doc in data["docs"].items()}, sys.stdout)
"#;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn schema() -> Value {
    let text = std::fs::read_to_string(repo("policy/schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema", "the script's validator class");
    assert_eq!(schema["$id"], "https://bootgate.dev/schema/policy-v1.json");
    schema
}

/// The schema's errors for each document (none: accepted), from one validator run.
fn errors(docs: &BTreeMap<String, Value>) -> BTreeMap<String, Vec<String>> {
    let mut child = Command::new(PYTHON)
        .args(["-I", "-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{PYTHON}: {e}; build/deps.sh installs python3-jsonschema"));
    let input = serde_json::to_vec(&json!({ "schema": schema(), "docs": docs })).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the validator failed (build/deps.sh installs python3-jsonschema):\n{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The YAML as JSON, read by the same YAML 1.2 parser bootgate uses; `None` if it is no document.
fn as_json(yaml: &str) -> Option<Value> {
    let tree: serde_yaml::Value = serde_yaml::from_str(yaml).ok()?;
    serde_json::to_value(tree).ok()
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_schema_rejects_every_invalid_fixture_but_those_only_validate_sees() {
    let (mut docs, mut not_documents) = (BTreeMap::new(), Vec::new());
    for file in yaml_files("tests/fixtures/invalid") {
        let name = file.file_stem().unwrap().to_str().unwrap().to_string();
        match as_json(&std::fs::read_to_string(&file).unwrap()) {
            Some(doc) => {
                docs.insert(name, doc);
            }
            None => not_documents.push(name),
        }
    }
    assert!(docs.len() >= 40, "only {} fixtures", docs.len());
    let mut unparsed: Vec<&str> = NOT_A_DOCUMENT.to_vec();
    unparsed.sort();
    assert_eq!(not_documents, unparsed, "the fixtures that are no JSON document");
    let accepted: Vec<String> = errors(&docs).into_iter().filter(|(_, e)| e.is_empty()).map(|(n, _)| n).collect();
    let mut listed: Vec<String> = ONLY_VALIDATE_SEES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(accepted, listed, "the schema accepts exactly the fixtures only `validate` can catch");
}

#[test]
fn every_valid_shipped_policy_passes_the_schema() {
    let mut docs = BTreeMap::new();
    for file in yaml_files("policy").into_iter().chain(yaml_files("vm-tests/policies")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let label = file.display().to_string();
        if bootgate::policy::parse(&text, &label).is_ok() {
            docs.insert(label, as_json(&text).unwrap());
        }
    }
    assert!(docs.len() >= 5, "only {} valid shipped policies: {:?}", docs.len(), docs.keys());
    for (file, errors) in errors(&docs) {
        assert!(errors.is_empty(), "{file}: {errors:?}");
    }
}

/// One small policy per sample value; the schema's verdict must equal `validate`'s.
#[test]
fn the_patterns_agree_with_validate() {
    // `top` goes before the checks; the one check has `keys`.
    let policy = |top: String, keys: &str| format!("version: 1\n{top}checks:\n  - {{name: a, {keys}}}\n");
    let check = |keys: String| policy(String::new(), &keys);
    let disk = "kind: disk";
    let mut cases: Vec<(String, String)> = Vec::new();
    for d in ["250ms", "1m 30s", "1h30m", "1.5s", "2 min", "3days", "1µs", "10", "-1s", "1 parsec", "s", "1.s"] {
        cases.push((format!("settle {d}"), policy(format!("gate: {{settle: '{d}'}}\n"), disk)));
    }
    for t in [
        "127.0.0.1:80",
        "localhost:8080",
        "[::1]:80",
        "[fe80::1]:65535",
        "h:0080",
        "::1:80",
        "[::1:80",
        "[nope]:80",
        ":80",
        "host",
        "host:0",
        "host:65536",
        "a b:80",
        "host:http",
        "u@h:80",
    ] {
        cases.push((format!("target {t}"), check(format!("kind: tcp, targets: ['{t}']"))));
    }
    for u in [
        "http://127.0.0.1:8080/healthz",
        "HTTPS://[::1]/x",
        "http://u:p@localhost/?a=1",
        "http://h:0/",
        "http://h:/",
        "http:///x",
        "http://u:p@/x",
        "http://:80/x",
        "ftp://h/",
        "http:h",
        "http://h:65536/",
        "http://a b/",
    ] {
        cases.push((format!("url {u}"), check(format!("kind: http, url: '{u}'"))));
    }
    for l in
        ["127.0.0.1:8080", "0.0.0.0:0", "[::1]:9", "[::]:80", "localhost:80", "256.0.0.1:80", "1.2.3.4", "01.2.3.4:80"]
    {
        cases.push((format!("listen {l}"), policy(format!("server: {{listen: '{l}'}}\n"), disk)));
    }
    for unit in ["a.service", "\"a\\tb.service\"", "\" a.service\"", "\"a.service\\u0085\"", "\"\""] {
        cases.push((format!("unit {unit}"), check(format!("kind: systemd, unit: {unit}"))));
    }
    for arg in ["\"\"", "\"a b\"", "\"a\\0b\"", "\"\\u0085\""] {
        cases.push((format!("argument {arg}"), check(format!("kind: exec, command: [echo, {arg}]"))));
    }
    for w in ["1", "255", "0", "256", "-1"] {
        cases.push((format!("warn {w}"), check(format!("kind: exec, command: ['true'], warn_exit_codes: [{w}]"))));
    }
    for r in ["1", "0"] {
        cases.push((format!("threshold {r}"), policy(format!("runtime: {{success_threshold: {r}}}\n"), disk)));
    }
    for n in [1000, 1001] {
        let checks: String = (0..n).map(|i| format!("  - {{name: c{i}, kind: disk}}\n")).collect();
        cases.push((format!("{n} checks"), format!("version: 1\nchecks:\n{checks}")));
    }
    let docs: BTreeMap<String, Value> = cases.iter().map(|(n, y)| (n.clone(), as_json(y).expect(n))).collect();
    let verdicts = errors(&docs);
    let mut disagree = Vec::new();
    for (name, yaml) in &cases {
        let validate = bootgate::policy::parse(yaml, "sample.yaml").is_ok();
        let schema = verdicts[name].is_empty();
        if validate != schema {
            disagree.push(format!("{name}: validate {validate}, schema {schema} {:?}", verdicts[name]));
        }
    }
    assert!(disagree.is_empty(), "{disagree:#?}");
}

#[test]
fn shipped_policies_point_editors_at_the_installed_schema() {
    // The path, not the `$id` URL: on the device it is there offline and always
    // matches the installed bootgate; the URL names the schema but serves nothing.
    // tests/units.rs checks that `make install` puts policy/schema.json there.
    const MODELINE: &str = "# yaml-language-server: $schema=/usr/share/bootgate/schema.json";
    let files = yaml_files("policy");
    assert!(files.len() >= 2, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().next(), Some(MODELINE), "{}", file.display());
    }
}

/// `checks_from` alone is a complete policy for the schema too; a policy with neither
/// list, or with only empty ones, is not.
#[test]
fn a_policy_of_checks_from_alone_passes_the_schema_and_one_without_checks_does_not() {
    let docs = BTreeMap::from([
        (
            "from".to_string(),
            json!({
                "version": 1,
                "checks_from": [{"dir": "/usr/lib/greenboot/check/required.d", "prefix": "vendor."}],
                "greenboot": {
                    "config": "/etc/greenboot/greenboot.conf",
                    "green": ["/etc/greenboot/green.d"],
                    "red": ["/etc/greenboot/red.d"],
                    "hook_timeout": "30s"
                }
            }),
        ),
        ("neither".to_string(), json!({"version": 1})),
        ("both_empty".to_string(), json!({"version": 1, "checks": [], "checks_from": []})),
        ("bad_prefix".to_string(), json!({"version": 1, "checks_from": [{"dir": "/x", "prefix": "a b"}]})),
        ("bad_hook_key".to_string(), json!({"version": 1, "checks_from": [{"dir": "/x"}], "greenboot": {"hooks": []}})),
    ]);
    let errors = errors(&docs);
    assert!(errors["from"].is_empty(), "{:?}", errors["from"]);
    for name in ["neither", "both_empty", "bad_prefix", "bad_hook_key"] {
        assert!(!errors[name].is_empty(), "the schema accepts {name}");
    }
}
