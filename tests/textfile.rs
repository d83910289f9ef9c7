//! `--textfile PATH` on real daemons: `run` keeps a file that `promtool check metrics`
//! accepts, with the gate's result, rewritten after every round; `serve` writes one for a
//! failed gate; a directory that does not exist is logged once and never stops the daemon.

mod support;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::Duration;

use support::{ClosedPort, Daemon, Launch, wait_until};

fn promtool_check(path: &Path) {
    support::prom::promtool_check(&std::fs::read_to_string(path).unwrap());
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The value of the unlabelled sample `name` in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn run_writes_a_textfile_after_every_round() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("bootgate.prom");
    let peer = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let checks = format!(
        "  - {{name: storage, kind: disk, path: '{}', min_free_percent: 0}}\n  - {{name: api, kind: tcp, targets: ['{}']}}\n",
        std::env::temp_dir().display(),
        peer.local_addr().unwrap()
    );
    let mut bg = Launch::gate("{deadline: 10s, on_failure: stay}", &checks).textfile(&path).start();
    bg.wait_status("/api/v1/system/health", 200, Duration::from_secs(15));
    let passed = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        read(&path).contains("\nbootgate_gate_passed 1\n")
    });
    assert!(passed, "no `bootgate_gate_passed 1` in {}:\n{}\n{}", path.display(), read(&path), bg.stderr());
    promtool_check(&path);
    let text = read(&path);
    assert!(text.contains("bootgate_check_up{check=\"api\",critical=\"true\"} 1\n"), "{text}");
    assert!(text.contains("bootgate_boot_info{"), "{text}");
    assert!(!text.contains("process_"), "process metrics belong to node_exporter: {text}");

    // Rounds run every second: the api check's run count keeps growing in the file.
    let runs = |t: &str| sample(t, "bootgate_check_runs_total{check=\"api\",result=\"pass\"}").unwrap_or(0.0);
    let first = runs(&text);
    let grew = wait_until(Duration::from_secs(10), Duration::from_millis(100), || runs(&read(&path)) >= first + 2.0);
    assert!(grew, "the textfile was not rewritten after rounds: {first} runs, now:\n{}", read(&path));
    let names: Vec<String> =
        std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| n == "bootgate.prom" || n.ends_with(".tmp")), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with(".prom") && n != "bootgate.prom"), "{names:?}");
}

#[test]
fn a_missing_directory_is_logged_once_and_the_daemon_goes_on() {
    let out = tempfile::tempdir().unwrap();
    let missing = out.path().join("missing").join("bootgate.prom");
    let checks = format!("  - {{name: storage, kind: disk, path: '{}', min_free_percent: 0}}\n", out.path().display());
    let mut bg = Launch::gate("{deadline: 10s, on_failure: stay}", &checks).textfile(&missing).start();
    bg.wait_status("/api/v1/system/health", 200, Duration::from_secs(15));
    let warned = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        bg.stderr().contains("cannot write the metrics textfile")
    });
    assert!(warned, "no warning about {}:\n{}", missing.display(), bg.stderr());
    // Rounds run every second; each fails the same way and is not logged again.
    let runs =
        |bg: &Daemon| sample(&bg.get("/metrics").body, "bootgate_check_runs_total{check=\"storage\",result=\"pass\"}");
    let before = runs(&bg).unwrap_or(0.0);
    let more =
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || runs(&bg).unwrap_or(0.0) >= before + 3.0);
    assert!(more, "no further rounds:\n{}", bg.stderr());
    let log = bg.stderr();
    assert_eq!(log.matches("cannot write the metrics textfile").count(), 1, "{log}");
    assert!(log.contains(&missing.display().to_string()), "{log}");
    assert_eq!(bg.get("/readyz").status, 200);
    assert!(!missing.parent().unwrap().exists(), "bootgate must not create node_exporter's directory");
}

#[test]
fn serve_writes_the_failed_gate() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("bootgate.prom");
    let closed = ClosedPort::new();
    let checks = format!("  - {{name: api, kind: tcp, timeout: 300ms, retries: 0, targets: ['127.0.0.1:{closed}']}}\n");
    let mut run = Launch::gate("{deadline: 3s, on_failure: stay}", &checks).start();
    assert_eq!(run.wait_exit(Duration::from_secs(15)).code(), Some(2), "{}", run.stderr());
    // As a unit drop-in sets it for bootgate-report.service: `Environment=BOOTGATE_TEXTFILE=`.
    let _serve = run.then("serve").env("BOOTGATE_TEXTFILE", &path).start();
    let failed = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let text = read(&path);
        text.contains("\nbootgate_gate_passed 0\n") && text.contains("\nbootgate_gate_completed_timestamp_seconds ")
    });
    assert!(failed, "no failed gate in {}:\n{}", path.display(), read(&path));
    promtool_check(&path);
    assert!(read(&path).contains("bootgate_check_up{check=\"api\",critical=\"true\"} 0\n"));
}
