//! The fleet files in `monitoring/` against real tools: `promtool check rules` and
//! `promtool test rules` pass on the shipped files, and a real Prometheus, loading the
//! shipped rules unchanged and scraping four real bootgate daemons (healthy, degraded,
//! failed and served by `bootgate serve`, fallen back), answers every query of the
//! dashboard with data and fires exactly the alerts those devices call for.
//!
//! The rules keep their real `for:` durations. The alerts whose meaning is a fact
//! (a failed gate, a fallback) fire at once and are asserted firing; those that need
//! minutes (degraded for 30m) are asserted pending, which proves their expression
//! matches the device it should and no other, without waiting or rewriting the rules.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::fleet::{self, Alertmanager, Alerts as _, monitoring};
use support::{ClosedPort, Launch, find_binary, run_bounded};

fn promtool(args: &[&str]) -> String {
    let bin = find_binary("promtool", "prometheus");
    let out = run_bounded(Command::new(&bin).args(args), Duration::from_secs(60));
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {} failed:\n{report}", args.join(" "));
    report
}

#[test]
fn promtool_checks_the_shipped_rules() {
    let report = promtool(&["check", "rules", monitoring("prometheus/bootgate.rules.yml").to_str().unwrap()]);
    assert!(report.contains("SUCCESS"), "{report}");
    assert!(!report.contains("WARNING"), "{report}");
}

#[test]
fn promtool_runs_the_shipped_rule_tests() {
    let report = promtool(&["test", "rules", monitoring("prometheus/bootgate.rules.test.yml").to_str().unwrap()]);
    assert!(report.contains("SUCCESS"), "{report}");
}

/// Every query of the dashboard, its template variables replaced by `vars`.
fn dashboard_queries(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    let doc: Value = serde_json::from_slice(&fs::read(monitoring("grafana/bootgate.json")).unwrap()).unwrap();
    let defined: Vec<&str> =
        doc["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert!(defined.contains(&"datasource"), "the dashboard needs a datasource variable: {defined:?}");
    let mut found = Vec::new();
    collect(&doc["panels"], "", &mut found);
    assert!(found.len() >= 8, "{found:?}");
    for (title, expr) in &mut found {
        for (name, value) in vars {
            *expr = expr.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
        }
        assert!(!expr.contains('$'), "{title}: an unknown variable in {expr}");
        assert!(!expr.contains("127.0.0.1") && !expr.contains("instance="), "{title}: a hard-coded instance in {expr}");
    }
    found
}

fn collect(v: &Value, title: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect(i, title, out)),
        Value::Object(map) => {
            let title = map.get("title").and_then(Value::as_str).unwrap_or(title);
            if let Some(expr) = map.get("expr").and_then(Value::as_str) {
                out.push((title.to_string(), expr.to_string()));
            }
            map.values().for_each(|i| collect(i, title, out));
        }
        _ => {}
    }
}

#[test]
fn a_real_prometheus_sees_the_fleet_through_the_shipped_rules_and_dashboard() {
    let started = Instant::now();
    let peer = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let peer = peer.local_addr().unwrap();
    let closed = ClosedPort::new();
    let tmp = std::env::temp_dir();
    let storage = format!("  - {{name: storage, kind: disk, path: '{}', min_free_percent: 0}}\n", tmp.display());
    let api = format!("  - {{name: api, kind: tcp, targets: ['{peer}']}}\n");
    let net = format!(
        "  - {{name: net, kind: tcp, critical: false, timeout: 300ms, retries: 0, targets: ['127.0.0.1:{closed}']}}\n"
    );
    let down = format!("  - {{name: api, kind: tcp, timeout: 300ms, retries: 0, targets: ['127.0.0.1:{closed}']}}\n");
    let gate = "{deadline: 10s, on_failure: stay}";

    let mut healthy = Launch::gate(gate, &format!("{storage}{api}")).start();
    let mut degraded = Launch::gate(gate, &format!("{storage}{api}{net}")).start();
    let mut failed_run = Launch::gate("{deadline: 3s, on_failure: stay}", &format!("{storage}{down}")).start();
    let fallback = fleet::fallen_back(gate, &format!("{storage}{api}"), "9999.0.0");
    assert_eq!(failed_run.wait_exit(Duration::from_secs(15)).code(), Some(2), "{}", failed_run.stderr());
    let mut failed = failed_run.then("serve").start();
    for bg in [&mut healthy, &mut degraded, &mut failed] {
        bg.wait_listening(Duration::from_secs(15));
    }
    let targets = [healthy.addr(), degraded.addr(), failed.addr(), fallback.addr()];
    let alertmanager = Alertmanager::start();
    let mut prom = fleet::prometheus(&targets, alertmanager.addr);

    let name = |addr: SocketAddr| addr.to_string();
    let firing_want: BTreeSet<(String, String)> = [
        ("BootgateGateFailed".to_string(), name(failed.addr())),
        ("BootgateFellBack".to_string(), name(fallback.addr())),
    ]
    .into();
    let pending_want: BTreeSet<(String, String)> = [("BootgateDegraded".to_string(), name(degraded.addr()))].into();
    let queries = dashboard_queries(&[("datasource", "prometheus")]);

    let bound = Duration::from_secs(45);
    let end = Instant::now() + bound;
    loop {
        prom.assert_running();
        let (firing, pending) = (prom.alerts("firing"), prom.alerts("pending"));
        let empty: Vec<&(String, String)> =
            queries.iter().filter(|(_, q)| prom.query(q).unwrap_or_default().is_empty()).collect();
        let received = alertmanager.alerts();
        if firing == firing_want && pending == pending_want && empty.is_empty() && received == firing_want {
            break;
        }
        assert!(
            Instant::now() < end,
            "within {bound:?}: firing {firing:?} (want {firing_want:?}), pending {pending:?} (want {pending_want:?}), \
             in Alertmanager {received:?}, dashboard queries without data: {empty:#?}\n\
             prometheus log:\n{}\nalertmanager log:\n{}\nfallback device log:\n{}",
            prom.log(),
            alertmanager.log(),
            fallback.stderr()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The annotations name the device, its slot and version, and what failed.
    let gate_failed = prom.alert("BootgateGateFailed");
    let summary = gate_failed["annotations"]["summary"].as_str().unwrap();
    assert!(summary.contains(&name(failed.addr())), "{gate_failed:#}");
    let description = gate_failed["annotations"]["description"].as_str().unwrap();
    assert!(description.contains("Critical checks failing now: api."), "{gate_failed:#}");
    let fell_back = prom.alert("BootgateFellBack");
    let labels = &fell_back["labels"];
    assert_eq!(
        (labels["partition"].as_str(), labels["from_partition"].as_str(), labels["from_version"].as_str()),
        (Some("USR-A"), Some("USR-B"), Some("9999.0.0")),
        "{fell_back:#}"
    );
    assert_eq!(labels["reason"], "gate_failed", "{fell_back:#}");
    assert_eq!(labels["severity"], "warning", "{fell_back:#}");

    // The fleet counts add up to the four devices.
    let by_status: BTreeSet<(String, String)> = prom
        .query("bootgate:devices_by_status:count")
        .unwrap_or_default()
        .iter()
        .map(|s| (s["metric"]["status"].as_str().unwrap().into(), s["value"][1].as_str().unwrap().into()))
        .collect();
    let want: BTreeSet<(String, String)> =
        [("degraded", "1"), ("gate_failed", "1"), ("healthy", "2")].map(|(a, b)| (a.into(), b.into())).into();
    assert_eq!(by_status, want);
    eprintln!("fleet test took {:?}", started.elapsed());
}
