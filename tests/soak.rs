//! The soak before READY=1 and the rollback window after it, as systemd and an
//! operator see them: the test plays systemd on its own notify socket.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Daemon, Launch, NotifySocket, bootgate};

/// A daemon whose critical `api` check connects to a listener the test holds.
struct Soaking {
    dir: tempfile::TempDir,
    notify: NotifySocket,
    service: Option<TcpListener>,
    daemon: Daemon,
    started: Instant,
}

impl Soaking {
    /// Starts `bootgate run` with `settings` (YAML lines before `checks`) and a disk plus `api` check.
    fn start(settings: &str) -> Soaking {
        let dir = tempfile::tempdir().unwrap();
        let notify = NotifySocket::bind(dir.path());
        let service = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = service.local_addr().unwrap();
        let policy = format!(
            "{settings}
checks:
  - {{name: root, kind: disk, path: /, min_free_percent: 0}}
  - {{name: api, kind: tcp, timeout: 1s, targets: ['{addr}']}}
"
        );
        let started = Instant::now();
        let daemon = Launch::listening(policy).in_dir(dir.path()).notify(&notify).start();
        Soaking { dir, notify, service: Some(service), daemon, started }
    }

    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> Instant {
        self.notify.wait_for(what, self.started, Duration::from_secs(15), pred)
    }
}

fn verdict(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run/verdict.json")).expect("verdict written")).unwrap()
}

#[test]
fn a_soak_holds_ready_back_and_shows_itself_while_it_runs() {
    let mut t = Soaking::start("gate: {soak: 3s, soak_interval: 500ms}");
    t.wait("the soak's STATUS", |m| m.contains("STATUS=soaking: "));
    let health = t.daemon.get("/api/v1/system/health");
    let doc = health.json();
    assert_eq!((health.status, doc["startup_health_check"].as_str()), (503, Some("running")), "{doc:#}");
    assert_eq!(doc["soak"]["seconds"], 3.0, "{doc:#}");
    let left = doc["soak"]["remaining_seconds"].as_f64().unwrap();
    assert!(left > 0.0 && left <= 3.0, "{doc:#}");
    let metrics = t.daemon.get("/metrics").body;
    assert!(metrics.contains("bootgate_gate_passed 0\n"), "{metrics}");
    let soak_line = metrics.lines().find(|l| l.starts_with("bootgate_gate_soak_seconds ")).expect("soak gauge");
    let soak: f64 = soak_line.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(soak > 0.0 && soak <= 3.0, "{soak_line}");
    let extended = t.notify.messages().iter().any(|(_, m)| m.contains("EXTEND_TIMEOUT_USEC="));
    assert!(extended, "the soak extends the start timeout: {:#?}", t.notify.messages());

    let ready = t.wait("READY=1", |m| m.contains("READY=1"));
    let took = ready.duration_since(t.started);
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(7), "READY=1 after {took:?}");
    let v = verdict(t.dir.path());
    assert_eq!(v["gate"], "passed");
    assert!(v["gate_duration_ms"].as_f64().unwrap() >= 3000.0, "the soak is part of the gate: {v:#}");
    let metrics = t.daemon.get("/metrics").body;
    assert!(metrics.contains("bootgate_gate_soak_seconds 0\n"), "{metrics}");
    let runs = metrics.lines().find(|l| l.starts_with("bootgate_check_runs_total{check=\"api\",result=\"pass\"}"));
    let passes: f64 = runs.unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(passes >= 5.0, "a 3s soak at 500ms re-runs the check about 6 times: {passes}");
    t.daemon.kill();
}

#[test]
fn a_check_that_stops_answering_during_the_soak_fails_the_gate_without_ready() {
    let mut t =
        Soaking::start("gate: {soak: 6s, soak_interval: 500ms, on_failure: stay}\nruntime: {failure_threshold: 2}");
    t.wait("the soak", |m| m.contains("STATUS=soaking: "));
    drop(t.service.take());
    let gone = Instant::now();
    assert_eq!(t.daemon.wait_exit(Duration::from_secs(15)).code(), Some(2), "a failed soak is a failed gate");
    let took = gone.elapsed();
    // Two failures in a row at 500 ms: about 1 s, far before the 6 s soak would end.
    assert!(took < Duration::from_secs(4), "failed {took:?} after the service went away");
    let msgs = t.notify.messages();
    assert!(!msgs.iter().any(|(_, m)| m.contains("READY=1")), "no READY=1 after a failed soak: {msgs:#?}");
    let wobble = msgs.iter().any(|(_, m)| m.contains("api failed 1 in a row"));
    assert!(wobble, "STATUS shows the first failure before the threshold: {msgs:#?}");
    let last = &msgs.iter().rev().find(|(_, m)| m.contains("STATUS=")).unwrap().1;
    assert!(last.contains("gate failed during soak") && last.contains("api"), "{last}");

    let v = verdict(t.dir.path());
    assert_eq!((v["gate"].as_str(), v["reason"].as_str()), (Some("failed"), Some("failed during soak")), "{v:#}");
    assert_eq!(v["failing"], serde_json::json!(["api"]), "{v:#}");
    let state = t.dir.path().join("state");
    let history = bootgate(&["history", "--format", "json", "--state-dir", &state.to_string_lossy()]);
    let boots: Value = serde_json::from_slice(&history.stdout).unwrap();
    let newest = &boots[0];
    assert_eq!(newest["reason"], "failed during soak", "{boots:#}");
    assert_eq!(newest["decision"], "stay_policy", "{boots:#}");
    assert_eq!(newest["failing"][0]["name"], "api", "{boots:#}");
}

#[test]
fn soak_and_rollback_settings_are_validated_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("gate: {soak: 10s, soak_interval: 0s}", "gate.soak_interval", "at least 100ms"),
        ("rollback: {failing_for: 20s}", "rollback", "missing field `window`"),
        ("rollback: {window: 1m, failing_for: 0s}", "rollback.failing_for", "at least 1s"),
        ("rollback: {window: 1m, failing_for: 5m}", "rollback.failing_for", "longer than the window"),
        ("rollback: {window: 1m}", "rollback.window", "shorter than failing_for (default 5m)"),
        ("rollback: {window: 0s, failing_for: 20s}", "rollback.failing_for", "has no effect"),
        ("rollback: {window: 5m, after: 1m}", "rollback.after", "unknown field `after`"),
    ];
    for (section, key, message) in cases {
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, format!("version: 1\n{section}\nchecks:\n  - {{name: root, kind: disk, path: /}}\n"))
            .unwrap();
        let out = bootgate(&["validate", &path.to_string_lossy()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{section}: {stderr}");
        assert!(stderr.contains(":2:") && stderr.contains(key) && stderr.contains(message), "{section}: {stderr}");
    }
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, "version: 1\nrollback: {window: 5m, failing_for: 20s}\ngate: {soak: 3s, soak_interval: 500ms}\nchecks:\n  - {name: root, kind: disk, path: /}\n").unwrap();
    let out = bootgate(&["validate", &path.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // `run` refuses the same policy with the same exit code, before any check runs.
    std::fs::write(
        &path,
        "version: 1\ngate: {soak: 3s, soak_interval: 0s}\nchecks:\n  - {name: root, kind: disk, path: /}\n",
    )
    .unwrap();
    let out =
        bootgate(&["--policy", &path.to_string_lossy(), "run", "--run-dir", &dir.path().join("run").to_string_lossy()]);
    assert_eq!(out.status.code(), Some(78), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn off_a_b_the_rollback_window_says_why_it_is_not_armed() {
    let mut t = Soaking::start("rollback: {window: 5m, failing_for: 20s}");
    t.wait("READY=1", |m| m.contains("READY=1"));
    let health = t.daemon.get("/api/v1/system/health");
    let doc = health.json();
    assert_eq!(health.status, 200, "{doc:#}");
    let w = &doc["rollback"];
    assert_eq!(w["armed"], false, "{doc:#}");
    assert!(w["note"].as_str().unwrap().starts_with("not armed: "), "{doc:#}");
    let ends = humantime::parse_rfc3339(w["window_ends"].as_str().unwrap()).unwrap();
    let ahead = ends.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(ahead > Duration::from_secs(200) && ahead <= Duration::from_secs(300), "{w}");
    let metrics = t.daemon.get("/metrics").body;
    assert!(metrics.contains("bootgate_rollback_window_remaining_seconds 0\n"), "{metrics}");
    assert_eq!(verdict(t.dir.path())["rollback"]["armed"], false);
    t.daemon.kill();
}

#[test]
fn a_soak_shorter_than_the_threshold_still_fails_a_check_that_failed_every_round() {
    let dir = tempfile::tempdir().unwrap();
    let passed_once = dir.path().join("passed-once");
    // Passes the gate's round, then fails every soak round.
    let script = format!("test -e {0} && exit 1; touch {0}", passed_once.display());
    let checks = format!("  - {{name: api, kind: exec, timeout: 2s, retries: 0, command: [sh, -c, {script:?}]}}\n");
    // Default threshold 3, but two rounds of 1 s fit in the soak.
    let notify = NotifySocket::bind(dir.path());
    let mut daemon = Launch::gate("{soak: 2s, soak_interval: 1s, on_failure: stay}", &checks)
        .in_dir(dir.path())
        .notify(&notify)
        .start();
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).code(), Some(2), "{}", daemon.stderr());
    let msgs = notify.texts();
    assert!(!msgs.iter().any(|m| m.contains("READY=1")), "a check that failed every soak round passed: {msgs:#?}");
    let v = verdict(dir.path());
    assert_eq!((v["gate"].as_str(), v["reason"].as_str()), (Some("failed"), Some("failed during soak")), "{v:#}");
    assert_eq!(v["failing"], serde_json::json!(["api"]), "{v:#}");
}
