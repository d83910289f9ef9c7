//! The runtime after the gate, through real daemons and real HTTP: each check on its
//! own interval, `BOOTGATE_INTERVAL`, `max_concurrent`, `start_period`, `after:` and SIGHUP.

mod support;

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Launch, check, disk, wait};

#[test]
fn each_check_keeps_its_own_interval_and_a_slow_one_delays_nobody() {
    let checks = format!(
        "runtime: {{interval: 30s}}\nchecks:\n{}{}  - {{name: sleepy, kind: exec, critical: false, interval: 1s, timeout: 5s, command: [sleep, '3']}}\n",
        disk("fast", ", interval: 1s"),
        disk("slow", ", interval: 5s"),
    );
    let mut d = Launch::listening(checks).start();
    d.wait_passed(Duration::from_secs(15));
    let (fast, slow) = (d.runs("fast"), d.runs("slow"));
    thread::sleep(Duration::from_millis(10_500));
    let (fast, slow) = (d.runs("fast") - fast, d.runs("slow") - slow);
    eprintln!("runs in 10.5 s: fast (1s) {fast}, slow (5s) {slow}");
    assert!((7..=12).contains(&fast), "fast ran {fast} times in 10.5 s");
    assert!((1..=3).contains(&slow), "slow ran {slow} times in 10.5 s");
    assert!(fast >= 3 * slow, "fast {fast} vs slow {slow}");
}

#[test]
fn bootgate_interval_sets_the_checks_without_their_own() {
    let checks =
        format!("runtime: {{interval: 30s}}\nchecks:\n{}{}", disk("shared", ""), disk("own", ", interval: 30s"));
    let mut d = Launch::listening(checks).env("BOOTGATE_INTERVAL", "1s").start();
    d.wait_passed(Duration::from_secs(15));
    let (shared, own) = (d.runs("shared"), d.runs("own"));
    thread::sleep(Duration::from_millis(4_500));
    let (shared, own) = (d.runs("shared") - shared, d.runs("own") - own);
    assert!(shared >= 3, "BOOTGATE_INTERVAL=1s: shared ran only {shared} times in 4.5 s");
    assert_eq!(own, 0, "the check's own 30s interval must win over BOOTGATE_INTERVAL");
    assert_eq!((interval(&d, "shared"), interval(&d, "own")), (Some(1.0), Some(30.0)), "the metric says the same");
}

/// `bootgate_check_interval_seconds` of `check` as the daemon's /metrics says it.
fn interval(d: &support::Daemon, check: &str) -> Option<f64> {
    let metrics = d.get("/metrics").body;
    let series = format!("bootgate_check_interval_seconds{{check=\"{check}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(series.as_str())).map(|v| v.parse().unwrap())
}

/// Six checks of one second each, two at a time, with a timeout shorter than the wait for a slot.
fn six_sleeps(gate: &str) -> String {
    let mut policy = format!("version: 1\ngate: {{deadline: 30s{gate}}}\nchecks:\n");
    for i in 0..6 {
        policy
            .push_str(&format!("  - {{name: s{i}, kind: exec, retries: 0, timeout: 1500ms, command: [sleep, '1']}}\n"));
    }
    policy
}

#[test]
fn gate_max_concurrent_runs_n_at_a_time_and_the_timeout_starts_with_the_slot() {
    let (code, verdict, took) = check(&six_sleeps(", max_concurrent: 2"));
    eprintln!("6 × 1 s, max_concurrent 2: {took:?}");
    assert_eq!(code, 0, "waiting for a slot must not count against the 1.5s timeout: {verdict:#}");
    assert!(took >= Duration::from_millis(2_800), "three waves of two take about 3 s, took {took:?}");
    assert!(took < Duration::from_secs(9), "took {took:?}");
    let (code, _, took) = check(&six_sleeps(""));
    eprintln!("6 × 1 s, no limit: {took:?}");
    assert_eq!(code, 0);
    assert!(took < Duration::from_millis(2_700), "without a limit all six run at once, took {took:?}");
}

#[test]
fn runtime_max_concurrent_spreads_the_checks_over_its_slots() {
    let mut checks = String::from("runtime: {interval: 4s, max_concurrent: 2}\nchecks:\n");
    for i in 0..6 {
        checks
            .push_str(&format!("  - {{name: s{i}, kind: exec, retries: 0, timeout: 1500ms, command: [sleep, '1']}}\n"));
    }
    let mut d = Launch::listening(checks).start();
    let gate = d.wait_passed(Duration::from_secs(15));
    let stamp = |h: &Value, i: usize| h["components"][format!("s{i}")]["last_check"].as_str().unwrap_or("").to_string();
    let before: Vec<String> = (0..6).map(|i| stamp(&gate, i)).collect();
    let after = wait(Duration::from_secs(15), "one runtime run of all six", || {
        let h = d.health();
        (0..6).all(|i| stamp(&h, i) != before[i]).then_some(h)
    });
    let times: Vec<std::time::SystemTime> =
        (0..6).map(|i| humantime::parse_rfc3339(&stamp(&after, i)).unwrap()).collect();
    let spread = times.iter().max().unwrap().duration_since(*times.iter().min().unwrap()).unwrap();
    eprintln!("runtime, 6 × 1 s, max_concurrent 2: results spread over {spread:?}");
    assert!(spread >= Duration::from_millis(1_500), "two at a time finish in three waves; spread {spread:?}");
    assert!(spread < Duration::from_secs(5), "spread {spread:?}");
    for i in 0..6 {
        assert_eq!(after["components"][format!("s{i}")]["result"], "pass", "{after:#}");
    }
}

#[test]
fn failures_in_the_start_period_do_not_count() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = service.local_addr().unwrap();
    let checks = format!(
        "runtime: {{interval: 2s, failure_threshold: 1}}\nchecks:\n  - {{name: api, kind: tcp, timeout: 500ms, start_period: 5s, targets: ['{addr}']}}\n"
    );
    let mut d = Launch::listening(checks).start();
    d.wait_passed(Duration::from_secs(15));
    let passed = Instant::now();
    drop(service);
    let held = wait(Duration::from_secs(6), "a failure inside the start period", || {
        let c = d.health()["components"]["api"].clone();
        (c["observed"]["start_period"] == true).then_some(c)
    });
    assert_eq!(held["result"], "pass", "{held:#}");
    assert_eq!(held["consecutive_failures"], 0, "{held:#}");
    assert!(held["message"].as_str().unwrap().starts_with("start period ("), "{held:#}");
    wait(Duration::from_secs(10), "the failure to count after the start period", || {
        (d.health()["components"]["api"]["result"] == "fail").then_some(())
    });
    let after = passed.elapsed();
    assert!(after >= Duration::from_millis(4_500), "failed {after:?} after the gate, inside the 5s start period");
}

#[test]
fn a_check_whose_dependency_failed_last_is_skipped_at_runtime() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = service.local_addr().unwrap();
    let checks = format!(
        "runtime: {{interval: 1s, failure_threshold: 1}}\nchecks:\n  - {{name: dep, kind: tcp, critical: false, timeout: 500ms, targets: ['{addr}']}}\n{}",
        disk("child", ", critical: false, after: [dep]")
    );
    let mut d = Launch::listening(checks).start();
    d.wait_passed(Duration::from_secs(15));
    assert_eq!(d.health()["components"]["child"]["result"], "pass");
    drop(service);
    let child = wait(Duration::from_secs(10), "child to be skipped", || {
        let c = d.health()["components"]["child"].clone();
        (c["result"] == "skipped").then_some(c)
    });
    assert!(child["message"].as_str().unwrap().contains("`dep` did not pass"), "{child:#}");
    let _back = TcpListener::bind(addr).unwrap();
    wait(Duration::from_secs(10), "child to run again", || {
        (d.health()["components"]["child"]["result"] == "pass").then_some(())
    });
}

#[test]
fn sighup_reschedules_the_checks() {
    let mut d = Launch::listening(format!("runtime: {{interval: 1h}}\nchecks:\n{}", disk("root", ""))).start();
    d.wait_passed(Duration::from_secs(15));
    thread::sleep(Duration::from_millis(1_500));
    assert_eq!(d.runs("root"), 1, "only the gate ran it in 1.5 s at a 1h interval");
    assert_eq!(interval(&d, "root"), Some(3600.0));
    let port = d.port();
    let text = format!(
        "version: 1\nserver: {{listen: '127.0.0.1:{port}'}}\nruntime: {{interval: 1h}}\nchecks:\n{}",
        disk("root", ", interval: 1s")
    );
    std::fs::write(d.policy_path(), text).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    thread::sleep(Duration::from_millis(3_500));
    let runs = d.runs("root");
    assert!(runs >= 4, "after the reload to a 1s interval: {runs} runs (gate included) in 3.5 s");
    assert_eq!(interval(&d, "root"), Some(1.0), "the metric follows the reload");
}
