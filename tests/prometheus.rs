//! Prometheus tooling against real `/metrics` bodies: `promtool check metrics` finds
//! no problems, and a real Prometheus server scraping a real `bootgate run` every
//! second sees the gate pass and one `bootgate_check_up` series per check.
//!
//! Both tools come from Debian's `prometheus` package; a missing one fails the test
//! with that name, nothing is skipped.

mod endpoint;
mod support;

use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::Request;
use bootgate::checks::{Observed, Status};
use bootgate::engine::{CheckResult, GateState, Snapshot};
use bootgate::lifecycle::Heartbeat;
use bootgate::metrics::Metrics;
use bootgate::server::{AppState, app};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::watch;
use tower::ServiceExt as _;

use endpoint::{Bootgate, get, stop};
use support::{find_binary, free_port};

/// Runs `promtool check metrics` on `body` and fails with whatever it reports.
fn promtool_check(body: &str) {
    let promtool = find_binary("promtool", "prometheus");
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics reports:\n{report}\nbody:\n{body}"
    );
}

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
    let mut bg = Bootgate::start("{deadline: 20s, on_failure: stay}", &local_checks(peer.local_addr().unwrap()));
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
    let check = |name: &str, critical: bool, status: Status| CheckResult {
        name: name.into(),
        kind: "disk",
        critical,
        status,
        message: "a \"quoted\"\nmessage".into(),
        observed: Observed::new(),
        duration: Duration::from_millis(40),
        attempts: 3,
        last_check: Some(SystemTime::now()),
        consecutive_failures: 2,
        consecutive_successes: 0,
        timing: Default::default(),
    };
    let s = Snapshot {
        gate: GateState::Failed,
        checks: vec![
            check("root", true, Status::Fail),
            check("var", true, Status::Skipped),
            check("opt", false, Status::Warn),
            check("tpm", true, Status::Pending),
        ],
        gate_started: SystemTime::now(),
        gate_duration: Some(Duration::from_secs(120)),
        gate_failing: Vec::new(),
        ..Snapshot::new(&[])
    };
    let metrics = Arc::new(Metrics::new(&s).unwrap());
    for c in &s.checks {
        metrics.observe(c);
    }
    metrics.set_boot_info("USR-A", "7130c94a-213a-4e5a-8e26-6cce9662f132", "4152.2.0 \"beta\"");
    metrics.set_fallback("USR-B", "4230.0.0", "gate_failed");
    let boot = json!({"partition": "USR-B", "priority": 1, "tries": 1, "successful": false});
    let (_boot_tx, boot_rx) = watch::channel(Some(Arc::new(boot)));
    let (_tx, rx) = watch::channel(Arc::new(s));
    let router = app(AppState::new(rx, metrics, Heartbeat::new()).with_boot(boot_rx));
    let res = router.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(body.contains("\nbootgate_boot_partition_tries 1\n"), "{body}");
    let fallback =
        "bootgate_boot_fallback{from_partition=\"USR-B\",from_version=\"4230.0.0\",reason=\"gate_failed\"} 1\n";
    assert!(body.contains(fallback), "{body}");
    for name in [
        "bootgate_boot_info{",
        "bootgate_gate_completed_timestamp_seconds ",
        "bootgate_check_last_run_timestamp_seconds{",
    ] {
        assert!(body.contains(name), "no {name} in:\n{body}");
    }
    promtool_check(&body);
}

/// A Prometheus server on a free loopback port with its own config and TSDB dir,
/// stopped by pid on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Prometheus {
    /// Scrapes `target` every second.
    fn start(target: SocketAddr) -> Prometheus {
        let bin = find_binary("prometheus", "prometheus");
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: bootgate\n    scrape_interval: 1s\n    scrape_timeout: 1s\n\
             \x20   static_configs:\n      - targets: ['{target}']\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        fs::write(&config_path, config).unwrap();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let log = fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Prometheus { child, addr, dir }
    }

    fn log(&self) -> String {
        let path: PathBuf = self.dir.path().join("prometheus.log");
        let text = fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// An instant query through the HTTP API; `None` while Prometheus is not up yet.
    fn query(&self, promql: &str) -> Option<Vec<Value>> {
        let reply = get(self.addr, &format!("/api/v1/query?query={}", encode(promql)), &[]).ok()?;
        if reply.status != 200 {
            return None;
        }
        let doc = reply.json();
        assert_eq!(doc["status"], "success", "{doc}");
        Some(doc["data"]["result"].as_array().cloned().unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(5));
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn prometheus_scrapes_a_running_bootgate() {
    let peer = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut bg = Bootgate::start("{deadline: 20s, on_failure: stay}", &local_checks(peer.local_addr().unwrap()));
    bg.wait_listening(Duration::from_secs(15));
    let mut prom = Prometheus::start(bg.addr);

    let bound = Duration::from_secs(45);
    let end = Instant::now() + bound;
    let (passed, up) = loop {
        if let Ok(Some(status)) = prom.child.try_wait() {
            panic!("prometheus exited ({status}):\n{}", prom.log());
        }
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
    assert_eq!(passed[0]["metric"]["instance"], bg.addr.to_string());

    // Scrapes succeed: Prometheus' own `up` for the target is 1.
    let target_up = prom.query("up{job=\"bootgate\"}").unwrap();
    assert_eq!(target_up.len(), 1);
    assert_eq!(target_up[0]["value"][1], "1", "{target_up:?}");
    stop(&mut prom.child, Duration::from_secs(5));
}
