//! Prometheus tooling against real `/metrics` bodies: `promtool check metrics` finds
//! no problems, and a real Prometheus server scraping a real `bootgate run` every
//! second sees the gate pass and one `bootgate_check_up` series per check.
//!
//! Both tools come from Debian's `prometheus` package; a missing one fails the test
//! with that name, nothing is skipped.

mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bootgate::checks::Status;
use bootgate::engine::{CheckResult, GateState, Snapshot};
use bootgate::metrics::Metrics;
use bootgate::process::Heartbeat;
use bootgate::server::app;
use serde_json::json;
use tokio::sync::watch;

use support::Launch;
use support::prom::{Prometheus, promtool_check};
use support::router::{get, snapshot, state_with};

/// Checks of a local policy: a disk check and a TCP connect to `tcp`, which the test holds.
fn local_checks(tcp: SocketAddr) -> String {
    let tmp = std::env::temp_dir();
    format!(
        "  - {{name: storage, kind: disk, critical: true, path: '{}', min_free_percent: 0}}\n\
         \x20 - {{name: loopback, kind: tcp, critical: true, targets: ['{tcp}']}}\n",
        tmp.display()
    )
}

#[test]
fn promtool_accepts_a_real_metrics_body() {
    let peer = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut bg = Launch::gate("{deadline: 20s, on_failure: stay}", &local_checks(peer.local_addr().unwrap())).start();
    bg.wait_status("/api/v1/system/health", 200, Duration::from_secs(20));
    let metrics = bg.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(metrics.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    for name in ["bootgate_check_duration_seconds_bucket", "bootgate_check_runs_total", "process_cpu_seconds_total"] {
        assert!(metrics.body.contains(name), "no {name} in:\n{}", metrics.body);
    }
    // Every gate result was observed, including those that finished together with the round.
    for check in ["storage", "loopback"] {
        let count = format!("bootgate_check_duration_seconds_count{{check=\"{check}\"}} ");
        assert!(metrics.body.contains(&count), "{check} was never observed:\n{}", metrics.body);
    }
    promtool_check(&metrics.body);
}

/// The metrics a real daemon cannot show here: boot facts and every kind of result.
#[tokio::test]
async fn promtool_accepts_boot_facts_and_failures() {
    let check = |name: &str, critical: bool, status: Status| {
        CheckResult::finished(name, critical, status)
            .with_kind("disk")
            .with_message("a \"quoted\"\nmessage")
            .with_attempts(3, Duration::from_millis(40))
            .with_last_check(SystemTime::now())
            .with_failures(2)
    };
    let checks = vec![
        check("root", true, Status::Fail),
        check("var", true, Status::Skipped),
        check("opt", false, Status::Warn),
        check("tpm", true, Status::Pending),
    ];
    let s = Snapshot { gate_duration: Some(Duration::from_secs(120)), ..snapshot(GateState::Failed, checks) };
    let metrics = Arc::new(Metrics::new(&s).unwrap());
    for c in &s.checks {
        metrics.observe(c);
    }
    metrics.set_boot_info("USR-A", "7130c94a-213a-4e5a-8e26-6cce9662f132", "flatcar", "4152.2.0 \"beta\"");
    let boot = json!({"partition": "USR-B", "index": 4, "uuid": "7130c94a-213a-4e5a-8e26-6cce9662f132",
        "disk": "/dev/vda", "priority": 1, "tries": 1, "successful": false,
        "fallback": {"from_partition": "USR-B", "from_version": "4230.0.0", "reason": "gate_failed",
            "at": null, "failing": [], "blame": "environment"},
        "hold": {"version": "4230.0.0", "until": "2026-12-08T10:00:00Z", "failures": 2, "text": "held"}});
    let boot = watch::channel(Some(Arc::new(serde_json::from_value(boot).expect("boot facts")))).1;
    let router = app(state_with(s, metrics, Heartbeat::new()).with_boot(boot));
    let body = get(&router, "/metrics").await.body;
    assert!(body.contains("\nbootgate_boot_partition_tries 1\n"), "{body}");
    let fallback = "bootgate_boot_fallback{blame=\"environment\",from_partition=\"USR-B\",from_version=\"4230.0.0\",\
                    reason=\"gate_failed\"} 1\n";
    assert!(body.contains(fallback), "{body}");
    assert!(body.contains("bootgate_update_held{version=\"4230.0.0\"} 1\n"), "{body}");
    for name in [
        "bootgate_boot_info{",
        "bootgate_gate_completed_timestamp_seconds ",
        "bootgate_check_last_run_timestamp_seconds{",
    ] {
        assert!(body.contains(name), "no {name} in:\n{body}");
    }
    promtool_check(&body);
}

/// A Prometheus server scraping `target` every second.
fn scraping(target: SocketAddr) -> Prometheus {
    Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: bootgate\n    scrape_interval: 1s\n    scrape_timeout: 1s\n\
         \x20   static_configs:\n      - targets: ['{target}']\n"
    ))
}

#[test]
fn prometheus_scrapes_a_running_bootgate() {
    let peer = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut bg = Launch::gate("{deadline: 20s, on_failure: stay}", &local_checks(peer.local_addr().unwrap())).start();
    bg.wait_listening(Duration::from_secs(15));
    let mut prom = scraping(bg.addr());

    let bound = Duration::from_secs(45);
    let end = Instant::now() + bound;
    let (passed, up) = loop {
        prom.assert_running();
        let passed = prom.query("bootgate_gate_passed").unwrap_or_default();
        let up = prom.query("bootgate_check_up").unwrap_or_default();
        if passed.iter().any(|s| s["value"][1] == "1") && up.len() == 2 {
            break (passed, up);
        }
        assert!(
            Instant::now() < end,
            "within {bound:?} Prometheus did not see bootgate_gate_passed == 1 and 2 bootgate_check_up series;\n\
             gate_passed: {passed:?}\ncheck_up: {up:?}\nprometheus log:\n{}\nbootgate log:\n{}",
            prom.log(),
            bg.stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let mut checks: Vec<&str> = up.iter().map(|s| s["metric"]["check"].as_str().unwrap()).collect();
    checks.sort();
    assert_eq!(checks, ["loopback", "storage"]);
    for series in &up {
        assert_eq!(series["metric"]["critical"], "true", "{series}");
        assert_eq!(series["metric"]["job"], "bootgate", "{series}");
        assert_eq!(series["value"][1], "1", "{series}");
    }
    assert_eq!(passed.len(), 1, "{passed:?}");
    assert_eq!(passed[0]["metric"]["instance"], bg.addr().to_string());

    // Scrapes succeed: Prometheus' own `up` for the target is 1.
    let target_up = prom.query("up{job=\"bootgate\"}").unwrap();
    assert_eq!(target_up.len(), 1);
    assert_eq!(target_up[0]["value"][1], "1", "{target_up:?}");
}
