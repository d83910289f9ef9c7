//! The policy contract through the real binary: every invalid fixture is rejected
//! with exit 78 and its file:line:column and key; shipped policies are valid; the
//! checked-in schema is current; a bad policy fails closed in every command.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bootgate::engine::{GateState, Snapshot};
use bootgate::policy::PolicyError;
use bootgate::process::notify::Notifier;
use support::{Launch, bootgate};

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

/// The policies shipped under `policy/` that this test knows of; any other there is checked too.
const SHIPPED: [&str; 2] = ["default.yaml", "piccolo.yaml"];

#[test]
fn shipped_policies_are_valid() {
    let mut policies: Vec<PathBuf> = std::fs::read_dir(repo("policy"))
        .expect("policy/ holds the shipped policies")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    policies.sort();
    let names: Vec<&str> = policies.iter().map(|p| p.file_name().unwrap().to_str().unwrap()).collect();
    assert!(!names.is_empty(), "no policy (*.yaml) in {}", repo("policy").display());
    for known in SHIPPED {
        assert!(names.contains(&known), "policy/{known} is not among the shipped policies {names:?}");
    }
    for path in &policies {
        let out = bootgate(&["validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}: {}", path.display(), text(&out));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.starts_with(&format!("{}: ok (", path.display())), "{}: {}", path.display(), text(&out));
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
        assert!(text(&out).contains(&format!("{bad}:5:5: checks[0].min_free_percnt")), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("healthy"), "{args:?} must not report health: {}", text(&out));
    }
    // A named policy that does not exist is an error, never the built-in default.
    let missing = dir.path().join("nope.yaml");
    let out = bootgate(&["check", "--policy", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("cannot read policy"), "{}", text(&out));
    let out = Launch::command(&["validate"]).env("BOOTGATE_POLICY", &missing).output();
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
}

#[test]
fn usage_errors_exit_64() {
    assert_eq!(bootgate(&["frobnicate"]).status.code(), Some(64));
    assert_eq!(bootgate(&["check", "--format", "xml"]).status.code(), Some(64));
    assert_eq!(bootgate(&["--help"]).status.code(), Some(0));
}

/// Writes `body` to a fresh policy file; the guard keeps its directory alive.
fn policy_file(body: &[u8]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, body).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

/// `bootgate validate FILE`, its exit code, its output, and how long it took.
fn validate_timed(path: &str) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = bootgate(&["validate", path]);
    (out.status.code(), text(&out), started.elapsed())
}

const ONE_CHECK: &str = "checks: [{name: a, kind: tcp, targets: ['127.0.0.1:1']}]\n";

#[test]
fn durations_past_the_maximum_are_rejected_before_they_reach_a_clock() {
    // Each of these once validated, then panicked `check` and `run` adding it to an Instant.
    for (setting, key, col) in [
        ("gate: {deadline: 18446744073709551615s}", "gate.deadline", 18),
        ("gate: {deadline: 292277026596y}", "gate.deadline", 18),
        ("runtime: {interval: 5124095576030431h}", "runtime.interval", 21),
        ("gate: {settle: 31days}", "gate.settle", 16),
    ] {
        let (_dir, path) = policy_file(format!("version: 1\n{setting}\n{ONE_CHECK}").as_bytes());
        let run_dir = format!("{path}.run");
        for args in [
            vec!["validate", &path],
            vec!["check", "--policy", &path],
            vec!["run", "--policy", &path, "--run-dir", &run_dir, "--state-dir", &run_dir],
        ] {
            let out = bootgate(&args);
            assert_eq!(out.status.code(), Some(78), "{args:?}: {}", text(&out));
            assert!(text(&out).contains(&format!("{path}:2:{col}: {key}: duration `")), "{args:?}: {}", text(&out));
            assert!(text(&out).contains("longer than the maximum of 30days"), "{}", text(&out));
            assert!(!text(&out).contains("panicked"), "{}", text(&out));
        }
    }
    // The maximum itself is allowed.
    let (_dir, path) = policy_file(format!("version: 1\nruntime: {{interval: 30days}}\n{ONE_CHECK}").as_bytes());
    let (code, out, _) = validate_timed(&path);
    assert_eq!(code, Some(0), "{out}");
}

#[tokio::test]
async fn the_gate_saturates_a_deadline_past_the_clock() {
    // Validation bounds every duration, so only a policy built in code can hold this one.
    let yaml = "version: 1\ngate: {settle: 0s}\nchecks: [{name: t, kind: exec, command: ['true'], retries: 0}]\n";
    let mut policy = bootgate::policy::parse(yaml, "inline").unwrap();
    policy.gate.deadline = Duration::MAX;
    let (board, _) = tokio::sync::watch::channel(Arc::new(Snapshot::new(&policy.checks)));
    let snapshot = bootgate::daemon::gate::run_gate(&policy, &board, Notifier::from_env(), false, None).await;
    assert_eq!(snapshot.gate, GateState::Passed, "{:?}", snapshot.checks);
}

fn checks(n: usize, each: impl Fn(usize) -> String) -> String {
    let mut body = String::from("version: 1\nchecks:\n");
    for i in 0..n {
        body.push_str(&format!("  - {}\n", each(i)));
    }
    body
}

#[test]
fn too_many_checks_are_refused_at_the_first_one_over() {
    for n in [1001, 3000, 10_000] {
        let (_dir, path) =
            policy_file(checks(n, |_| "{name: a, kind: tcp, targets: ['127.0.0.1:1']}".into()).as_bytes());
        let (code, out, took) = validate_timed(&path);
        assert_eq!(code, Some(78), "{out}");
        assert!(out.contains(&format!("{path}:1003:5: checks[1000]: check number 1001 is one too many")), "{out}");
        assert!(out.contains("at most 1000 checks"), "{out}");
        assert!(took < Duration::from_secs(10), "{n} checks took {took:?}");
    }
}

#[test]
fn long_dependency_cycles_are_found_without_deep_recursion() {
    // 1,000 checks in one `after:` ring; once a recursive walk, it overflowed the stack
    // when long enough. A small thread stack shows the walk keeps its own.
    let body =
        checks(1000, |i| format!("{{name: c{i}, kind: tcp, targets: ['127.0.0.1:1'], after: [c{}]}}", (i + 1) % 1000));
    let problems = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || match bootgate::policy::parse(&body, "ring.yaml") {
            Err(PolicyError::Invalid { problems, .. }) => problems,
            other => panic!("not rejected: {:?}", other.err()),
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!((problems[0].line, problems[0].column, problems[0].key.as_str()), (3, 60, "checks[0].after"));
    assert!(problems[0].message.starts_with("dependency cycle: c0 → c1 → c2"), "{}", problems[0].message);
    assert!(problems[0].message.ends_with("c999 → c0"), "{}", problems[0].message);
}

#[test]
fn many_problems_are_found_in_linear_time_and_listed_up_to_fifty() {
    // Each of these took 9–60 s when every problem re-read the whole text to locate it.
    let flow = "{name: a, kind: tcp, targets: ['127.0.0.1:1']}";
    let cases: Vec<(&str, String, &str, usize)> = vec![
        (
            "1000 duplicate names",
            checks(1000, |_| flow.into()),
            ":4:12: checks[1].name: duplicate check name `a` (first used on line 3)",
            999,
        ),
        (
            "1000 aliased duplicates",
            format!("version: 1\nchecks:\n  - &x {flow}\n{}", "  - *x\n".repeat(999)),
            ":4:5: checks[1].name: duplicate check name `a` (first used on line 3)",
            999,
        ),
        (
            "2000 located errors",
            checks(1000, |i| format!("{{name: c{i}, kind: tcp, targets: ['127.0.0.1:1'], timeout: 0s, bogus: 1}}")),
            ":3:62: checks[0].timeout: the timeout must be longer than 0s",
            2000,
        ),
        (
            "1000 unknown keys",
            checks(1000, |i| format!("{{name: c{i}, kind: tcp, targets: ['127.0.0.1:1'], bogus: 1}}")),
            ":3:53: checks[0].bogus: unknown field `bogus`, expected `targets`",
            1000,
        ),
        (
            "40000-deep lists",
            format!("version: 1\nchecks: {}{}\n", "[".repeat(40_000), "]".repeat(40_000)),
            ":2:72: checks[0]",
            1,
        ),
        (
            "40000-deep maps",
            format!("version: 1\nchecks: {}1{}\n", "{a: ".repeat(40_000), "}".repeat(40_000)),
            ":2:261: checks.a.a",
            1,
        ),
    ];
    for (what, body, first, count) in cases {
        let (_dir, path) = policy_file(body.as_bytes());
        let (code, out, took) = validate_timed(&path);
        assert_eq!(code, Some(78), "{what}: {out}");
        assert!(out.contains(&format!("{path}{first}")), "{what}: expected `{first}` in:\n{out}");
        assert!(took < Duration::from_secs(10), "{what} took {took:?}");
        let listed = out.lines().filter(|l| l.starts_with(&format!("  {path}:"))).count();
        assert_eq!(listed, count.min(50), "{what}: {out}");
        if count > 50 {
            assert!(out.ends_with(&format!("  … and {} more problems\n", count - 50)), "{what}: {out}");
        }
    }
}

#[test]
fn only_a_regular_file_of_at_most_a_mebibyte_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // A FIFO with no writer once blocked `validate` forever; /dev/zero grew it to gigabytes.
    let fifo = dir.path().join("fifo.yaml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let big = dir.path().join("big.yaml");
    let mut body = format!("version: 1\n{ONE_CHECK}").into_bytes();
    body.resize((1 << 20) + 1, b'\n');
    std::fs::write(&big, &body).unwrap();
    let fifo = fifo.to_str().unwrap();
    let big = big.to_str().unwrap();
    for (path, why) in [
        (fifo, "is a FIFO, not a regular file"),
        ("/dev/zero", "is a character device, not a regular file"),
        (dir.path().to_str().unwrap(), "is a directory, not a regular file"),
        (big, "is larger than the limit of 1048576 bytes"),
    ] {
        for args in [vec!["validate", path], vec!["check", "--policy", path]] {
            let started = Instant::now();
            let out = bootgate(&args);
            assert_eq!(out.status.code(), Some(78), "{args:?}: {}", text(&out));
            assert!(text(&out).contains(&format!("cannot read policy {path}: {why}")), "{args:?}: {}", text(&out));
            assert!(started.elapsed() < Duration::from_secs(5), "{args:?} took {:?}", started.elapsed());
        }
    }
    // Exactly the limit is read (and here is valid).
    body.truncate(1 << 20);
    std::fs::write(big, &body).unwrap();
    assert_eq!(validate_timed(big).0, Some(0));
}

#[test]
fn invalid_utf8_is_located_at_its_first_bad_byte() {
    let (_dir, path) = policy_file(b"version: 1\nchecks:\n  - name: caf\xc3\xa9\xff\n    kind: disk\n");
    let (code, out, _) = validate_timed(&path);
    assert_eq!(code, Some(78), "{out}");
    assert!(out.contains(&format!("{path}:3:15: byte 34 (0xff) is not UTF-8")), "{out}");
}

#[test]
fn a_check_cannot_take_the_name_of_the_gates_own_probe() {
    let text = "version: 1\nchecks:\n  - {name: root, kind: disk, path: /}\n  - {name: gate, kind: disk, path: /}\n";
    let Err(PolicyError::Invalid { problems, .. }) = bootgate::policy::parse(text, "p.yaml") else {
        panic!("a check named gate was accepted")
    };
    assert_eq!((problems[0].line, problems[0].column, problems[0].key.as_str()), (4, 12, "checks[1].name"));
    assert!(problems[0].message.contains("/readyz/gate"), "{}", problems[0].message);
}
