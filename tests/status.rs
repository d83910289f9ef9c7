//! `bootgate status` and the motd file: the verdict of a real `bootgate run`, in the same
//! two lines in both places, with `check`'s exit codes; 75 while there is no verdict.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{Daemon, Launch, NotifySocket};

/// `bootgate status --run-dir DIR`: its exit code and what it printed.
fn status(run_dir: &Path) -> (i32, String) {
    let out =
        Launch::command(&["status", "--run-dir", run_dir.to_str().unwrap()]).output_within(Duration::from_secs(10));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The motd file of `daemon` (motd.d/bootgate beside its run dir).
fn motd(daemon: &Daemon) -> String {
    std::fs::read_to_string(daemon.dir().join("motd.d/bootgate")).unwrap()
}

/// A command that fails with `message`, as an exec check.
fn failing(name: &str, critical: bool, message: &str) -> String {
    format!(
        "  - {{name: {name}, kind: exec, critical: {critical}, retries: 0, command: [sh, -c, 'echo {message}; exit 1']}}\n"
    )
}

/// `bootgate run` on `checks`, once it has sent READY=1: the verdict, the mark and the
/// motd file are all written by then.
fn passed(checks: &str) -> (Daemon, tempfile::TempDir) {
    let sock = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(sock.path());
    let daemon = Launch::gate("{deadline: 20s}", checks).notify(&notify).start();
    notify.wait_for("READY=1", Instant::now(), Duration::from_secs(20), |m| m.contains("READY=1"));
    (daemon, sock)
}

const ROOT: &str = "  - {name: root, kind: disk, path: /, min_free_percent: 0}\n";

#[test]
fn a_healthy_boot_says_so_in_two_lines_at_the_terminal_and_at_login() {
    let (daemon, _sock) = passed(&format!("{ROOT}  - {{name: ok, kind: exec, command: ['true']}}\n"));
    let (code, text) = status(&daemon.run_dir());
    assert_eq!(code, 0, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("bootgate: boot healthy — all 2 checks passed (gate "), "{text}");
    assert!(lines[0].ends_with(", marked good)"), "the none backend's READY=1 is its mark: {text}");
    assert!(lines[1].starts_with("decided ") && lines[1].ends_with("; details: bootgate history"), "{text}");
    assert_eq!(motd(&daemon), text, "the motd file has the same two lines");
}

#[test]
fn a_degraded_boot_names_what_does_not_pass_and_exits_1() {
    let checks = format!("{ROOT}{}", failing("docker", false, "engine down"));
    let (daemon, _sock) = passed(&checks);
    let (code, text) = status(&daemon.run_dir());
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with("bootgate: boot degraded — gate passed, 1 of 2 checks not passing (gate "), "{text}");
    assert!(text.contains("\n1 failing: docker (exit 1: engine down)\n"), "{text}");
    assert_eq!(motd(&daemon), text);
}

#[test]
fn a_failed_gate_names_the_failing_checks_and_exits_2() {
    let checks = format!("{ROOT}{}{}", failing("api", true, "connection refused"), failing("disk", true, "3% free"));
    let mut daemon = Launch::gate("{deadline: 5s, on_failure: stay}", &checks).start();
    let exited = daemon.wait_exit(Duration::from_secs(30));
    assert_eq!(exited.code(), Some(2), "{}", daemon.stderr());
    let (code, text) = status(&daemon.run_dir());
    assert_eq!(code, 2, "{text}");
    assert!(text.starts_with("bootgate: gate failed — 2 of 3 critical checks failing (gate "), "{text}");
    assert!(text.contains("\n2 failing: api (exit 1: connection refused), "), "{text}");
    assert!(text.contains("disk (exit 1: 3% free)\n"), "{text}");
    assert_eq!(motd(&daemon), text);
}

#[test]
fn no_verdict_yet_is_said_and_exits_75() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = status(dir.path());
    assert_eq!(code, 75, "{text}");
    assert!(text.starts_with("bootgate: no verdict for this boot yet"), "{text}");
    std::fs::write(dir.path().join("verdict.json"), "{\"gate\": \"pass").unwrap();
    let out =
        Launch::command(&["status", "--run-dir", dir.path().to_str().unwrap()]).output_within(Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(66), "an unreadable verdict is no missing one");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a verdict"));
}
