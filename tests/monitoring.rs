//! The fleet files in `monitoring/` against real tools: `promtool check rules` and
//! `promtool test rules` pass on the shipped files, `amtool` accepts the Alertmanager
//! example and routes each alert, and a real Prometheus, loading the shipped rules
//! unchanged and scraping four real bootgate daemons (healthy, degraded, failed and
//! served by `bootgate serve`, fallen back) and a device that is down, answers every
//! query of the dashboard with data and fires exactly the alerts those devices call
//! for, which a real Alertmanager running the shipped example delivers to the
//! receivers it names, holding back a per-check alert of the device whose gate failed.
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
use support::webhook::Webhook;
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

fn amtool(args: &[&str]) -> String {
    let bin = find_binary("amtool", "prometheus-alertmanager");
    let out = run_bounded(Command::new(&bin).args(args), Duration::from_secs(60));
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "amtool {} failed:\n{report}", args.join(" "));
    report
}

#[test]
fn amtool_checks_the_alertmanager_example_and_routes_each_alert_to_its_receiver() {
    let config = monitoring("alertmanager/alertmanager.yml");
    let config = config.to_str().unwrap();
    let report = amtool(&["check-config", config]);
    assert!(report.contains("SUCCESS") && report.contains("1 inhibit rules"), "{report}");
    let file = format!("--config.file={config}");
    for (receiver, labels) in [
        ("oncall", &["alertname=BootgateGateFailed", "severity=critical"][..]),
        ("oncall", &["alertname=BootgateCriticalCheckFailing", "severity=critical", "check=api"]),
        ("rollout", &["alertname=BootgateFellBack", "severity=warning", "from_version=4230.0.0"]),
        ("rollout", &["alertname=BootgateImageRegression", "severity=critical", "from_version=4230.0.0"]),
        ("rollout", &["alertname=BootgateUpdateHeld", "severity=info", "version=4230.0.0"]),
        ("fleet", &["alertname=BootgateEnvironmentFallback", "severity=warning", "from_version=4230.0.0"]),
        ("fleet", &["alertname=BootgateDegraded", "severity=warning"]),
        ("fleet", &["alertname=BootgateAbsent", "severity=warning"]),
        ("fleet", &["alertname=BootgateChecksStale", "severity=warning"]),
    ] {
        let verify = format!("--verify.receivers={receiver}");
        let mut args = vec!["config", "routes", "test", file.as_str(), verify.as_str()];
        args.extend(labels);
        let report = amtool(&args);
        assert_eq!(report.lines().find(|l| !l.starts_with("Warning")), Some(receiver), "{labels:?}: {report}");
    }
    // Fallbacks and image regressions are grouped by the version that fell back, held
    // updates by the version held, not by device.
    let doc: serde_yaml::Value = serde_yaml::from_str(&fs::read_to_string(config).unwrap()).unwrap();
    let rollout: Vec<String> = doc["route"]["routes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|r| r["receiver"] == "rollout")
        .map(|r| serde_yaml::to_string(&r["group_by"]).unwrap())
        .collect();
    assert_eq!(rollout, ["- alertname\n- from_version\n", "- alertname\n- version\n"]);
}

/// Every query of the dashboard, its panels' and its annotations', the template
/// variables replaced by `vars`.
fn dashboard_queries(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    let doc = dashboard();
    let defined: Vec<&str> =
        doc["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    for name in ["datasource", "job", "instance", "os_version"] {
        assert!(defined.contains(&name), "the dashboard needs a {name} variable: {defined:?}");
    }
    let mut found = Vec::new();
    collect(&doc["panels"], "", &mut found);
    assert!(found.len() >= 8, "{found:?}");
    let annotations = found.len();
    collect(&doc["annotations"], "", &mut found);
    assert!(found.len() > annotations, "no annotation queries");
    for (title, expr) in &mut found {
        for (name, value) in vars {
            *expr = expr.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
        }
        assert!(!expr.contains('$'), "{title}: an unknown variable in {expr}");
        assert!(
            !expr.contains("127.0.0.1") && !expr.contains("instance=\""),
            "{title}: a hard-coded instance in {expr}"
        );
    }
    found
}

fn dashboard() -> Value {
    serde_json::from_slice(&fs::read(monitoring("grafana/bootgate.json")).unwrap()).unwrap()
}

#[test]
fn the_dashboard_links_a_device_to_its_status_page_and_marks_fallbacks_and_reverts() {
    let doc = dashboard();
    let text = doc.to_string();
    assert!(text.contains("${scheme}://${__data.fields.instance}/"), "no link to a device's page");
    let names: Vec<&str> =
        doc["annotations"]["list"].as_array().unwrap().iter().filter_map(|a| a["name"].as_str()).collect();
    assert!(names.contains(&"Fallbacks and reverts"), "{names:?}");
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
    let down = ClosedPort::new();
    let down: SocketAddr = format!("127.0.0.1:{down}").parse().unwrap();
    let targets = [healthy.addr(), degraded.addr(), failed.addr(), fallback.addr(), down];
    let webhook = Webhook::start();
    let alertmanager = Alertmanager::example(webhook.addr);
    let mut prom = fleet::prometheus(&targets, alertmanager.addr);

    let name = |addr: SocketAddr| addr.to_string();
    // The fallback device's api passes here, so its second verdict blames 9999.0.0: the
    // version's alert names the version, not the device.
    let firing_want: BTreeSet<(String, String)> = [
        ("BootgateGateFailed".to_string(), name(failed.addr())),
        ("BootgateFellBack".to_string(), name(fallback.addr())),
        ("BootgateImageRegression".to_string(), "9999.0.0".to_string()),
    ]
    .into();
    let pending_want: BTreeSet<(String, String)> =
        [("BootgateDegraded".to_string(), name(degraded.addr())), ("BootgateAbsent".to_string(), name(down))].into();
    let all = [("datasource", "prometheus"), ("job", ".*"), ("instance", ".*"), ("os_version", ".*")];
    let queries = dashboard_queries(&all);

    let bound = Duration::from_secs(90);
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

    // Each receiver of the example gets what its route says. A per-check alert of the
    // device whose gate failed is held back while BootgateGateFailed fires for it; the
    // same alert of another device is delivered. Prometheus would fire these only after
    // `for: 5m`, so they are added to the real Alertmanager directly, as it would send them.
    for device in [failed.addr(), healthy.addr()] {
        let instance = format!("instance={device}");
        alertmanager.add(&["alertname=BootgateChecksStale", "severity=warning", "check=api", &instance]);
    }
    let firing = |path: &str, alert: &str, device: SocketAddr| {
        (path.to_string(), alert.to_string(), name(device), "firing".to_string())
    };
    let delivered_want: BTreeSet<_> = [
        firing("/oncall", "BootgateGateFailed", failed.addr()),
        firing("/rollout", "BootgateFellBack", fallback.addr()),
        ("/rollout".to_string(), "BootgateImageRegression".to_string(), "9999.0.0".to_string(), "firing".to_string()),
        firing("/fleet", "BootgateChecksStale", healthy.addr()),
    ]
    .into();
    let inhibited_want: BTreeSet<(String, String)> = [("BootgateChecksStale".to_string(), name(failed.addr()))].into();
    let end = Instant::now() + bound;
    while webhook.seen() != delivered_want || alertmanager.inhibited() != inhibited_want {
        assert!(
            Instant::now() < end,
            "within {bound:?}: delivered {:#?} (want {delivered_want:#?}), inhibited {:?} (want {inhibited_want:?})\n\
             alertmanager log:\n{}",
            webhook.seen(),
            alertmanager.inhibited(),
            alertmanager.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The held-back alert stays held back over several of the route's 1s group intervals.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(webhook.seen(), delivered_want, "only what the routes and the inhibition let through");

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
    assert_eq!(labels["blame"], "image", "{fell_back:#}");
    assert_eq!(labels["severity"], "warning", "{fell_back:#}");
    let regression = prom.alert("BootgateImageRegression");
    assert_eq!(regression["labels"]["severity"], "critical", "{regression:#}");
    let description = regression["annotations"]["description"].as_str().unwrap();
    assert!(description.starts_with("1 device(s) fell back from version 9999.0.0"), "{regression:#}");
    assert!(description.contains(&format!(" {} (gate_failed).", name(fallback.addr()))), "{regression:#}");

    // The fleet counts add up to the four devices.
    let by_status: BTreeSet<(String, String)> = prom
        .query("status:bootgate_devices:count")
        .unwrap_or_default()
        .iter()
        .map(|s| (s["metric"]["status"].as_str().unwrap().into(), s["value"][1].as_str().unwrap().into()))
        .collect();
    let want: BTreeSet<(String, String)> =
        [("degraded", "1"), ("gate_failed", "1"), ("healthy", "2")].map(|(a, b)| (a.into(), b.into())).into();
    assert_eq!(by_status, want);
    eprintln!("fleet test took {:?}", started.elapsed());
}
