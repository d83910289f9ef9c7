//! `bootgate run` as systemd sees it: the test binds its own NOTIFY_SOCKET and reads
//! what the daemon tells the service manager.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::{ClosedPort, Launch, NotifySocket, free_port};

#[test]
fn a_passing_gate_signals_ready_pings_the_watchdog_and_holds_blips() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let listen = free_port();
    let policy = format!(
        "version: 1
runtime: {{interval: 1s, failure_threshold: 2, success_threshold: 1}}
server: {{listen: '127.0.0.1:{listen}'}}
checks:
  - {{name: root, kind: disk, path: /, min_free_percent: 0}}
  - {{name: service, kind: tcp, timeout: 500ms, targets: ['{addr}']}}
"
    );
    let mut daemon =
        Launch::run(policy).in_dir(dir.path()).notify(&notify).watchdog(Duration::from_millis(400)).start();
    let t0 = Instant::now();
    let ready = notify.wait_for("READY=1", t0, Duration::from_secs(10), |m| m.contains("READY=1"));
    let ready_status = notify.ready_status();
    assert!(ready_status.starts_with("gate passed, now healthy: 2/2 critical"), "{ready_status}");
    let verdict: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/verdict.json")).unwrap()).unwrap();
    assert_eq!(verdict["gate"], "passed");
    assert_eq!(verdict["status"], "healthy");
    // 400 ms watchdog → pings every 200 ms from the runtime loop.
    std::thread::sleep(Duration::from_millis(900));
    let pings = notify.messages().iter().filter(|(at, m)| *at > ready && m.contains("WATCHDOG=1")).count();
    assert!(pings >= 2, "only {pings} watchdog pings in 900 ms");

    // The service goes away: with failure_threshold 2 the first failing round is held.
    drop(listener);
    let gone = Instant::now();
    let flipped = notify.wait_for("runtime failure", gone, Duration::from_secs(10), |m| {
        m.contains("now unhealthy") && m.contains("service failed")
    });
    let held_for = flipped.duration_since(gone);
    assert!(held_for >= Duration::from_millis(900), "flipped after {held_for:?}: a single round must not flip it");

    // It comes back: success_threshold 1 turns it healthy on the next round.
    let _back = TcpListener::bind(addr).unwrap();
    notify.wait_for("recovery", Instant::now(), Duration::from_secs(10), |m| m.contains("now healthy"));

    daemon.terminate();
    assert_eq!(daemon.wait_exit(Duration::from_secs(5)).code(), Some(0), "{}", daemon.stderr());
}

#[test]
fn a_failing_gate_never_signals_ready_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let closed = ClosedPort::new();
    let listen = free_port();
    let policy = format!(
        "version: 1
gate: {{deadline: 5s}}
server: {{listen: '127.0.0.1:{listen}'}}
checks:
  - {{name: root, kind: disk, path: /, min_free_percent: 0}}
  - {{name: api, kind: tcp, timeout: 1s, retries: 1, targets: ['127.0.0.1:{closed}']}}
  - {{name: extra, kind: tcp, critical: false, retries: 0, targets: ['127.0.0.1:{closed}']}}
"
    );
    let mut daemon = Launch::run(&policy).in_dir(dir.path()).notify(&notify).start();
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).code(), Some(2), "{}", daemon.stderr());
    let msgs = notify.texts();
    assert!(!msgs.iter().any(|m| m.contains("READY=1")), "{msgs:#?}");
    assert!(
        msgs.iter().any(|m| m.contains("EXTEND_TIMEOUT_USEC=")),
        "retries must extend the start timeout: {msgs:#?}"
    );
    let last = msgs.iter().rev().find(|m| m.contains("STATUS=")).unwrap();
    assert!(last.contains("gate failed") && last.contains("failing: api"), "{last}");
    let verdict: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/verdict.json")).unwrap()).unwrap();
    assert_eq!(verdict["gate"], "failed");
    assert_eq!(verdict["status"], "unhealthy");
    assert_eq!(verdict["failing"], serde_json::json!(["api"]));
    let history = std::fs::read_to_string(dir.path().join("state/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 1);

    // Restarted in the same boot (Upholds=, Restart=), it does not get a second try.
    let again = NotifySocket::bind(&dir.path().join("run"));
    let started = Instant::now();
    let mut daemon = Launch::run(policy).in_dir(dir.path()).notify(&again).start();
    assert_eq!(daemon.wait_exit(Duration::from_secs(5)).code(), Some(2), "{}", daemon.stderr());
    assert!(started.elapsed() < Duration::from_secs(2));
    let msgs = again.texts();
    assert!(msgs.iter().any(|m| m.contains("not run again") && m.contains("api")), "{msgs:#?}");
}

#[test]
fn ready_arrives_however_many_checks_are_degraded_and_no_status_is_too_long_for_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let closed = ClosedPort::new();
    let degraded: String = (0..150)
        .map(|i| {
            format!(
                "  - {{name: optional-check-with-a-long-name-{i:03}, kind: tcp, critical: false, retries: 0, timeout: 1s, \
                 targets: ['127.0.0.1:{closed}']}}\n"
            )
        })
        .collect();
    let checks = format!("  - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n{degraded}");
    let t0 = Instant::now();
    let _daemon = Launch::gate("{deadline: 20s}", &checks).in_dir(dir.path()).notify(&notify).start();
    notify.wait_for("READY=1", t0, Duration::from_secs(20), |m| m.contains("READY=1"));
    let status = notify.ready_status();
    assert!(status.starts_with("gate passed, now degraded: 1/1 critical"), "{status}");
    assert!(status.contains(" and 140 more"), "{status}");
    assert_eq!(notify.dropped(), Vec::<usize>::new(), "datagrams systemd would have ignored");
}

#[test]
fn a_long_settle_and_deadline_extend_the_start_timeout_before_the_first_check() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let checks = "  - {name: root, kind: disk, path: /, min_free_percent: 0}\n";
    let t0 = Instant::now();
    // Longer than systemd's default start timeout (90 s), and than 32 bits of microseconds.
    let _daemon = Launch::gate("{settle: 1s, deadline: 2h}", checks).in_dir(dir.path()).notify(&notify).start();
    notify.wait_for("READY=1", t0, Duration::from_secs(20), |m| m.contains("READY=1"));
    let msgs = notify.texts();
    let extend =
        |m: &String| -> Option<u64> { m.lines().find_map(|l| l.strip_prefix("EXTEND_TIMEOUT_USEC="))?.parse().ok() };
    let settling = msgs.iter().position(|m| m.contains("STATUS=settling for 1s")).expect("a settle STATUS");
    let first = msgs.iter().position(|m| extend(m).is_some());
    let first = first.unwrap_or_else(|| panic!("no EXTEND_TIMEOUT_USEC: {msgs:#?}"));
    assert!(first < settling, "the settle began before the start timeout was extended: {msgs:#?}");
    let usec = extend(&msgs[first]).unwrap();
    assert!(usec >= 2 * 3600 * 1_000_000, "extended by {usec} µs, less than the deadline");
    assert!(usec > u64::from(u32::MAX), "capped at 32 bits: {usec}");
}
