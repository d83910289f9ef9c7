//! The boot history of a real `bootgate run` whose gate failed with `on_failure: stay`:
//! `bootgate history` shows the line with every field, and `bootgate serve` lists it at
//! `/api/v1/system/boots` and has `bootgate_boot_info` in `/metrics`.
//!
//! The build host's root is not on a GPT slot, so `partition` is null here and no
//! fallback can be seen; fallback detection is unit-tested in `boot::fallback`.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{ClosedPort, Launch, bootgate};

/// `VERSION=` of the build host's os-release, read the plain way.
/// A field of the host's os-release, unquoted, as systemd finds it.
fn host_os(key: &str) -> Value {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|l| l.strip_prefix('=')))
        .map(|v| Value::from(v.trim_matches('"')))
        .filter(|v| v != "")
        .unwrap_or(Value::Null)
}

/// The version an update changes: `IMAGE_VERSION`, else `VERSION_ID`, else `VERSION`.
fn host_version() -> Value {
    ["IMAGE_VERSION", "VERSION_ID", "VERSION"].into_iter().map(host_os).find(|v| !v.is_null()).unwrap_or(Value::Null)
}

#[test]
fn a_failed_gate_is_in_the_history_the_cli_and_the_boots_route() {
    let closed = ClosedPort::new();
    let checks = format!(
        "  - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n  - {{name: api, kind: tcp, timeout: 500ms, retries: 0, targets: ['127.0.0.1:{closed}']}}\n"
    );
    let mut run = Launch::gate("{deadline: 5s, on_failure: stay}", &checks).start();
    assert_eq!(run.wait_exit(Duration::from_secs(10)).code(), Some(2), "{}", run.stderr());
    let verdict: Value = serde_json::from_slice(&std::fs::read(run.run_dir().join("verdict.json")).unwrap()).unwrap();

    let state = run.state_dir();
    let out = bootgate(&["history", "--format", "json", "--state-dir", state.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let boots: Value = serde_json::from_slice(&out.stdout).unwrap();
    let boots = boots.as_array().unwrap();
    assert_eq!(boots.len(), 1, "{boots:#?}");
    let b = &boots[0];
    let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = [
        "boot_id",
        "bootgate",
        "decision",
        "failing",
        "gate",
        "gate_duration_ms",
        "os_id",
        "os_version",
        "partition",
        "status",
        "timestamp",
        "version",
    ];
    want.sort();
    assert_eq!(keys, want, "{b:#}");
    assert_eq!(b["timestamp"], verdict["timestamp"]);
    assert_eq!(b["boot_id"], verdict["boot_id"]);
    assert!(b["boot_id"].as_str().is_some_and(|id| id.len() >= 32), "{b:#}");
    assert_eq!(b["partition"], Value::Null, "the build host is not booted from a GPT slot: {b:#}");
    assert_eq!(b["version"], host_version());
    assert_eq!((&b["os_id"], &b["os_version"]), (&host_os("ID"), &host_version()));
    assert_eq!((b["gate"].as_str(), b["status"].as_str()), (Some("failed"), Some("unhealthy")));
    assert_eq!(b["decision"], "stay_policy");
    assert_eq!(b["gate_duration_ms"], verdict["gate_duration_ms"]);
    assert!(b["gate_duration_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{b:#}");
    assert_eq!(b["bootgate"], env!("CARGO_PKG_VERSION"));
    assert_eq!(b["failing"].as_array().unwrap().len(), 1, "{b:#}");
    assert_eq!(b["failing"][0]["name"], "api");
    let message = b["failing"][0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("127.0.0.1:{closed}")), "{message}");

    let text = bootgate(&["history", "--state-dir", state.to_str().unwrap(), "--limit", "5"]);
    let text = String::from_utf8(text.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("time") && lines[0].contains("decision"), "{text}");
    assert!(lines[1].contains(b["boot_id"].as_str().unwrap()), "the whole boot id, for journalctl -b: {text}");
    assert!(lines[1].contains("failed") && lines[1].contains("stay_policy") && lines[1].contains("api ("), "{text}");
    let none = bootgate(&["history", "--format", "json", "--limit", "0", "--state-dir", state.to_str().unwrap()]);
    assert_eq!(serde_json::from_slice::<Value>(&none.stdout).unwrap(), serde_json::json!([]));

    let mut serve = run.then("serve").start();
    let reply = serve.wait_status("/api/v1/system/boots?limit=5", 200, Duration::from_secs(10));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json()["boots"], Value::Array(boots.clone()));
    assert_eq!(serve.get("/api/v1/system/boots?limit=x").status, 400);
    let metrics = serve.get("/metrics").body;
    let info = metrics.lines().find(|l| l.starts_with("bootgate_boot_info{")).unwrap_or_else(|| panic!("{metrics}"));
    let (id, version) = (host_os("ID"), host_version());
    let (id, version) = (id.as_str().unwrap_or(""), version.as_str().unwrap_or(""));
    assert_eq!(
        info,
        format!("bootgate_boot_info{{os_id=\"{id}\",os_version=\"{version}\",partition=\"\",uuid=\"\"}} 1")
    );
    assert!(metrics.contains("bootgate_gate_completed_timestamp_seconds "), "{metrics}");
    assert!(metrics.contains("bootgate_check_last_run_timestamp_seconds{check=\"api\"} "), "{metrics}");
    assert!(!metrics.contains("bootgate_boot_fallback{"), "{metrics}");
    // serve runs the checks at the policy's interval, and says so, beside the decided gate.
    assert!(metrics.contains("\nbootgate_check_interval_seconds{check=\"api\"} 1\n"), "{metrics}");
    assert!(metrics.contains("\nbootgate_gate_state{state=\"failed\"} 1\n"), "{metrics}");
    assert!(metrics.contains("\nbootgate_gate_state{state=\"passed\"} 0\n"), "{metrics}");
}

/// An empty answer says where bootgate looked and that it found nothing there.
#[test]
fn an_empty_history_says_where_it_looked_and_that_it_found_no_boot() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.jsonl");
    let state = dir.path().to_str().unwrap();
    let out = bootgate(&["history", "--state-dir", state]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, format!("0 boots found in {} (no such file)\n", file.display()));
    // A file with no line that parses: there, but nothing in it.
    std::fs::write(&file, "not json\n").unwrap();
    let out = bootgate(&["history", "--state-dir", state]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, format!("0 boots found in {} (it holds no readable boot)\n", file.display()));
    // JSON keeps stdout an array and says it on stderr.
    let out = bootgate(&["history", "--format", "json", "--state-dir", state]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), serde_json::json!([]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("0 boots found in {}", file.display())), "{err}");
}

#[test]
fn history_of_a_missing_dir_is_empty_and_of_a_fifo_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = bootgate(&["history", "--format", "json", "--state-dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), serde_json::json!([]));
    let fifo = dir.path().join("history.jsonl");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let out = bootgate(&["history", "--state-dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(66));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FIFO") && err.contains(&fifo.display().to_string()), "{err}");
}

#[test]
fn a_garbled_history_of_millions_of_lines_delays_no_gate_and_is_warned_of_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    // Two million lines that are no boot record, and a real one at the end.
    let mut garbage = "garbage\n".repeat(2_000_000);
    garbage.push_str(r#"{"boot_id": "before", "gate": "passed", "status": "healthy"}"#);
    garbage.push('\n');
    std::fs::write(dir.path().join("state/history.jsonl"), garbage).unwrap();
    let notify = support::NotifySocket::bind(dir.path());
    let started = std::time::Instant::now();
    let checks = "  - {name: root, kind: disk, path: /, min_free_percent: 0}\n";
    let mut run = Launch::gate("{deadline: 5s}", checks).in_dir(dir.path()).notify(&notify).start();
    notify.wait_for("READY=1", started, Duration::from_secs(30), |m| m.contains("READY=1"));
    run.terminate();
    run.wait_exit(Duration::from_secs(10));
    let log = run.stderr();
    let warnings = log.lines().filter(|l| l.contains("no boot record")).count();
    assert!((1..=3).contains(&warnings), "{warnings} warnings of bad lines:\n{}", &log[..log.len().min(4000)]);
    let kept = bootgate(&["history", "--format", "json", "--state-dir", &dir.path().join("state").to_string_lossy()]);
    let boots: Value = serde_json::from_slice(&kept.stdout).unwrap();
    let ids: Vec<&str> = boots.as_array().unwrap().iter().filter_map(|b| b["boot_id"].as_str()).collect();
    assert_eq!(ids.last(), Some(&"before"), "the good line stays: {ids:?}");
    assert_eq!(ids.len(), 2, "{ids:?}");
}
