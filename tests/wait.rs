//! `bootgate wait` against a real `bootgate run`: 75 while the gate or its soak runs and
//! the timeout ends the wait, 0 once it passed, 2 once it failed (a failed soak
//! included), a waiter started early returns when the verdict is decided, and a verdict
//! left from an earlier boot is never taken for this boot's.

mod support;

use std::path::Path;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use support::{HeldGate, Launch, until_file};

/// What one `bootgate wait` did: its exit code, its stdout, and when it ended.
struct Waited {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
    ended: Instant,
}

/// `bootgate wait --run-dir RUN --timeout TIMEOUT`, run to completion.
fn wait(run_dir: &Path, timeout: &str) -> Waited {
    let started = Instant::now();
    let out = Launch::command(&["wait", "--run-dir", run_dir.to_str().unwrap(), "--timeout", timeout])
        .output_within(Duration::from_secs(120));
    let ended = Instant::now();
    Waited {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: ended - started,
        ended,
    }
}

/// [`wait`] started now in the background.
fn waiter(run_dir: &Path, timeout: &'static str) -> JoinHandle<Waited> {
    let run_dir = run_dir.to_path_buf();
    thread::spawn(move || wait(&run_dir, timeout))
}

#[test]
fn a_gate_still_running_exits_75_at_the_timeout_and_a_passed_gate_0() {
    let mut gate = HeldGate::start("{deadline: 100s}", "  - {name: root, kind: disk, path: /, min_free_percent: 0}\n");
    let w = wait(&gate.run_dir(), "1s");
    assert_eq!(w.code, 75, "{} {}", w.stdout, w.stderr);
    assert!(w.took >= Duration::from_secs(1) && w.took < Duration::from_secs(10), "{:?}", w.took);
    assert_eq!(w.stdout.lines().count(), 1, "one line: {}", w.stdout);
    let want = format!(
        "still running after 1s: gate running, 1 of 2 critical checks passed; waiting for hold (no verdict yet in {}/verdict.json)\n",
        gate.run_dir().display()
    );
    assert_eq!(w.stdout, want, "what the gate is doing, from gate.json");
    let w = wait(&gate.run_dir(), "0");
    assert_eq!(w.code, 75, "--timeout 0 looks once: {}", w.stdout);
    assert!(w.took < Duration::from_secs(5), "{:?}", w.took);

    gate.release();
    gate.wait_status("READY=1", |m| m.contains("READY=1"));
    let w = wait(&gate.run_dir(), "1s");
    assert_eq!(w.code, 0, "{} {}", w.stdout, w.stderr);
    assert!(w.stdout.starts_with("passed: boot healthy, all 2 checks passed (gate "), "{}", w.stdout);
    assert!(w.stdout.ends_with(", nothing to mark (backend none))\n"), "the mark in the backend's words: {}", w.stdout);
    assert_eq!(w.stdout.lines().count(), 1, "{}", w.stdout);
    assert!(w.took < Duration::from_secs(5), "a decided gate is answered at once: {:?}", w.took);
    assert!(gate.daemon.is_running(), "wait only reads");
    gate.daemon.kill();
}

#[test]
fn a_failed_gate_exits_2_naming_the_failing_checks() {
    let dir = tempfile::tempdir().unwrap();
    let checks = "  - {name: root, kind: disk, path: /, min_free_percent: 0}\n  - {name: api, kind: exec, retries: 0, command: [sh, -c, 'echo refused; exit 1']}\n";
    let mut daemon = Launch::gate("{deadline: 5s, on_failure: stay}", checks).in_dir(dir.path()).start();
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)).code(), Some(2), "{}", daemon.stderr());
    let w = wait(&daemon.run_dir(), "1s");
    assert_eq!(w.code, 2, "{} {}", w.stdout, w.stderr);
    assert!(w.stdout.starts_with("failed: 1 of 2 critical checks failing (gate "), "{}", w.stdout);
    assert!(w.stdout.ends_with(") (failing: api)\n"), "{}", w.stdout);
}

#[test]
fn a_waiter_started_before_the_verdict_returns_once_the_soak_passed() {
    let mut gate = HeldGate::start("{deadline: 100s, soak: 3s, soak_interval: 500ms}", "");
    let early = waiter(&gate.run_dir(), "120s");
    thread::sleep(Duration::from_millis(1500));
    assert!(!early.is_finished(), "the gate still runs");
    gate.release();
    let soaking = gate.wait_status("the soak's STATUS", |m| m.contains("STATUS=soaking: "));
    let w = wait(&gate.run_dir(), "1s");
    assert_eq!(w.code, 75, "{}", w.stdout);
    assert!(w.stdout.starts_with("still running after 1s: soaking, "), "{}", w.stdout);
    assert!(w.stdout.contains(" left; 1 of 1 critical checks passed (no verdict yet in "), "{}", w.stdout);
    assert!(!early.is_finished(), "a soak is part of the gate: the waiter waits through it");
    let ready = gate.wait_status("READY=1", |m| m.contains("READY=1"));
    let w = early.join().unwrap();
    assert_eq!(w.code, 0, "{} {}", w.stdout, w.stderr);
    assert!(w.stdout.starts_with("passed: boot healthy, the check passed (gate "), "{}", w.stdout);
    assert!(w.ended >= soaking + Duration::from_millis(2500), "returned before the 3s soak ended");
    assert!(w.ended <= ready + Duration::from_secs(5), "returned {:?} after READY=1", w.ended.duration_since(ready));
    gate.daemon.kill();
}

#[test]
fn a_waiter_started_before_the_verdict_returns_2_when_the_soak_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let more = until_file("api", &dir, "broken");
    let mut gate = HeldGate::start_in(
        dir.clone(),
        Some(tmp),
        "{deadline: 100s, soak: 30s, soak_interval: 500ms, on_failure: stay}",
        &more,
    );
    let early = waiter(&gate.run_dir(), "120s");
    gate.release();
    gate.wait_status("the soak's STATUS", |m| m.contains("STATUS=soaking: "));
    assert!(!early.is_finished(), "the soak runs");
    std::fs::write(dir.join("broken"), "").unwrap();
    let w = early.join().unwrap();
    assert_eq!(w.code, 2, "{} {}", w.stdout, w.stderr);
    assert!(w.stdout.starts_with("failed: 1 of 2 critical checks failing (gate "), "{}", w.stdout);
    assert!(w.stdout.ends_with(", failed during soak) (failing: api)\n"), "{}", w.stdout);
    assert_eq!(gate.daemon.wait_exit(Duration::from_secs(60)).code(), Some(2), "{}", gate.daemon.stderr());
}

#[test]
fn a_verdict_of_an_earlier_boot_is_not_this_boots() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let run = dir.join("run");
    std::fs::create_dir(&run).unwrap();
    // What a run dir kept across boots would hold: an old boot's pass, the verdict an
    // update client must never commit on.
    let earlier = r#"{"boot_id": "00000000-0000-4000-8000-000000000000", "gate": "passed", "status": "healthy",
        "checks": [{"name": "hold", "critical": true, "result": "pass"}], "failing": []}"#;
    std::fs::write(run.join("verdict.json"), earlier).unwrap();
    let w = wait(&run, "1s");
    assert_eq!(w.code, 75, "{} {}", w.stdout, w.stderr);
    assert!(
        w.stdout.starts_with(&format!(
            "still running after 1s: {}/verdict.json is the verdict of an earlier boot (00000000-0000-4000-8000-000000000000), not this one's",
            run.display()
        )),
        "{}",
        w.stdout
    );

    // This boot's gate, started over the old file, fails: the waiter answers 2, never the old pass.
    let more = "  - {name: api, kind: exec, retries: 0, command: [sh, -c, 'echo refused; exit 1']}\n";
    let mut gate = HeldGate::start_in(dir.clone(), Some(tmp), "{deadline: 100s, on_failure: stay}", more);
    let early = waiter(&run, "120s");
    thread::sleep(Duration::from_millis(1500));
    assert!(!early.is_finished(), "the earlier boot's verdict is not taken");
    gate.release();
    let w = early.join().unwrap();
    assert_eq!(w.code, 2, "{} {}", w.stdout, w.stderr);
    assert!(w.stdout.ends_with(" (failing: api)\n"), "{}", w.stdout);
    assert_eq!(gate.daemon.wait_exit(Duration::from_secs(60)).code(), Some(2), "{}", gate.daemon.stderr());
}

#[test]
fn a_verdict_that_cannot_be_used_fails_closed_and_the_environment_names_the_run_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("verdict.json"), "{\"gate\": \"pass").unwrap();
    let out = Launch::command(&["wait", "--timeout", "30s"])
        .env("BOOTGATE_RUN_DIR", dir.path())
        .output_within(Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.starts_with(&format!("failed: {}/verdict.json is not a verdict: ", dir.path().display())),
        "{stdout}"
    );
    assert!(stdout.ends_with("remove the file to judge this boot again)\n"), "{stdout}");

    let out = Launch::command(&["wait", "--timeout", "soon"]).output_within(Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(64), "a bad --timeout is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a duration"));
}
