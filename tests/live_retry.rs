//! A check that failed an attempt and waits to retry shows that failure while the
//! gate runs: in systemd's STATUS=, the health document and `/readyz?verbose`, not
//! `pending: not run yet`. A real `bootgate run`, a tcp check on a closed loopback port.

mod support;

use std::time::{Duration, Instant};

use support::{ClosedPort, Launch, NotifySocket};

/// A retrying message: `retrying: attempt N/7 failed: …; next attempt in Ns`.
fn is_retrying(message: &str) -> bool {
    message.starts_with("retrying: attempt ")
        && message.contains("/7 failed: ")
        && message.contains("; next attempt in ")
        && message.to_lowercase().contains("refused")
}

#[test]
fn a_retrying_check_shows_the_failed_attempt_while_the_gate_runs() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let closed = ClosedPort::new();
    let policy = format!(
        "gate: {{deadline: 60s, on_failure: stay}}
checks:
  - {{name: root, kind: disk, path: /, min_free_percent: 0}}
  - {{name: net, kind: tcp, timeout: 1s, retries: 6, targets: ['127.0.0.1:{closed}']}}
"
    );
    let daemon = Launch::listening(policy).in_dir(dir.path()).notify(&notify).start();
    let t0 = Instant::now();
    notify.wait_for("a STATUS= naming the failed attempt", t0, Duration::from_secs(10), |m| {
        m.lines().any(|l| l.strip_prefix("STATUS=").is_some_and(|s| s.contains("net (retrying: attempt 1/7 failed: ")))
    });

    let end = Instant::now() + Duration::from_secs(10);
    let doc = loop {
        let reply = daemon.request("GET", "/api/v1/system/health", &[]);
        if let Ok(reply) = reply {
            let doc = reply.json();
            let message = doc["components"]["net"]["message"].as_str().unwrap_or_default().to_string();
            if is_retrying(&message) {
                assert_eq!(reply.status, 503, "the gate still runs");
                break doc;
            }
        }
        assert!(Instant::now() < end, "the health document never showed the retry");
        std::thread::sleep(Duration::from_millis(50));
    };
    let net = &doc["components"]["net"];
    assert_eq!(net["status"], "pending");
    assert!(net["attempts"].as_u64().unwrap() >= 1, "{net}");
    let next = humantime::parse_rfc3339(net["next_attempt"].as_str().expect("next_attempt while waiting")).unwrap();
    assert!(next > std::time::SystemTime::now() - Duration::from_secs(60), "{net}");

    // Probes tell the same story, whichever attempt the check is at now.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let body = daemon.request("GET", "/readyz?verbose", &[]).map(|r| r.body).unwrap_or_default();
        let line = body.lines().find(|l| l.starts_with("[-]net pending: ")).unwrap_or_default();
        if is_retrying(line.trim_start_matches("[-]net pending: ")) {
            break;
        }
        assert!(Instant::now() < end, "/readyz?verbose never showed the retry:\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
