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

mod endpoint;
mod support;

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use endpoint::{Bootgate, get, stop};
use support::{find_binary, free_port, run_bounded};

const BIN: &str = env!("CARGO_BIN_EXE_bootgate");

fn monitoring(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring").join(path)
}

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
        assert!(!expr.contains("127.0.0.1"), "{title}: a hard-coded instance in {expr}");
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

/// A Prometheus server on a free loopback port loading the shipped rules, stopped by pid on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Prometheus {
    fn start(targets: &[SocketAddr]) -> Prometheus {
        let bin = find_binary("prometheus", "prometheus");
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}\n\
             rule_files: ['{}']\n\
             scrape_configs:\n  - job_name: bootgate\n    static_configs: [{{targets: [{}]}}]\n",
            monitoring("prometheus/bootgate.rules.yml").display(),
            targets.join(", ")
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
        let text = fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `data` of an API answer; `None` while Prometheus is not up yet.
    fn api(&self, path: &str) -> Option<Value> {
        let reply = get(self.addr, path, &[]).ok().filter(|r| r.status == 200)?;
        let doc = reply.json();
        assert_eq!(doc["status"], "success", "{path}: {doc}");
        Some(doc["data"].clone())
    }

    fn query(&self, promql: &str) -> Vec<Value> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(promql)));
        data.and_then(|d| d["result"].as_array().cloned()).unwrap_or_default()
    }

    /// (alertname, instance) of every alert in `state` (firing or pending).
    fn alerts(&self, state: &str) -> BTreeSet<(String, String)> {
        let alerts = self.api("/api/v1/alerts").and_then(|d| d["alerts"].as_array().cloned()).unwrap_or_default();
        alerts
            .iter()
            .filter(|a| a["state"] == state)
            .map(|a| {
                (a["labels"]["alertname"].as_str().unwrap().into(), a["labels"]["instance"].as_str().unwrap().into())
            })
            .collect()
    }

    fn alert(&self, name: &str) -> Value {
        let alerts = self.api("/api/v1/alerts").unwrap()["alerts"].as_array().cloned().unwrap_or_default();
        alerts.into_iter().find(|a| a["labels"]["alertname"] == name).unwrap_or_else(|| panic!("no {name} alert"))
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

/// A `bootgate run` on a booted A/B slot, stopped by pid on drop.
///
/// The build host's root is not on a GPT slot, so this one stand-in is needed: in a
/// private mount namespace, `/sys/class/block` is replaced by a directory saying that
/// the device holding `/` is partition 3 of a disk named `stdin`, and the daemon's
/// stdin is a real GPT image, which it then reads as `/dev/stdin`. Everything else is
/// real: the image made by sgdisk, the history file, the daemon and its fallback detection.
struct OnSlot {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

/// Flatcar's USR partition type.
const USR_TYPE: &str = "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6";

impl OnSlot {
    /// Booted from USR-A after the previous boot, on USR-B running `from_version`, failed its gate.
    fn fallen_back(policy: &str, addr: SocketAddr, from_version: &str) -> OnSlot {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.img");
        fs::File::create(&disk).unwrap().set_len(8 << 20).unwrap();
        // A: priority 1, successful; B: priority 2, tries used up, never marked.
        let sgdisk = find_binary("sgdisk", "gdisk");
        let out = run_bounded(
            Command::new(sgdisk)
                .arg("-o")
                .args(["-n", "3:2048:+2M", "-t", &format!("3:{USR_TYPE}"), "-c", "3:USR-A"])
                .args([
                    "-n",
                    "4:0:+2M",
                    "-t",
                    &format!("4:{USR_TYPE}"),
                    "-c",
                    "4:USR-B",
                    "-u",
                    "4:e506af65-93a1-4455-a667-f7c29e89a13d",
                    "-A",
                    "3:set:56",
                    "-A",
                    "3:set:48",
                    "-A",
                    "4:set:49",
                ])
                .arg(&disk),
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "sgdisk: {}", String::from_utf8_lossy(&out.stderr));

        let root_dev = root_device();
        let slot = dir.path().join("sys/devices/stdin/slot3");
        fs::create_dir_all(&slot).unwrap();
        fs::write(slot.join("dev"), format!("{root_dev}\n")).unwrap();
        fs::write(slot.join("partition"), "3\n").unwrap();
        let class = dir.path().join("sys/class/block");
        fs::create_dir_all(&class).unwrap();
        std::os::unix::fs::symlink(&slot, class.join("slot3")).unwrap();

        let state = dir.path().join("state");
        fs::create_dir_all(&state).unwrap();
        let previous = serde_json::json!({
            "timestamp": "2026-01-15T10:35:00Z", "boot_id": "00000000000000000000000000000001",
            "partition": {"label": "USR-B", "index": 4, "uuid": "e506af65-93a1-4455-a667-f7c29e89a13d"},
            "version": from_version, "gate": "failed", "status": "unhealthy",
            "failing": [{"name": "api", "message": "127.0.0.1:1: connection refused"}],
            "decision": "reboot", "gate_duration_ms": 5000.0, "bootgate": env!("CARGO_PKG_VERSION"),
        });
        fs::write(state.join("history.jsonl"), format!("{previous}\n")).unwrap();
        fs::write(dir.path().join("policy.yaml"), policy).unwrap();

        let log = fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(find_binary("unshare", "util-linux"))
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount --bind \"$0\" /sys/class/block && exec \"$@\"")
            .arg(&class)
            .arg(BIN)
            .arg("--policy")
            .arg(dir.path().join("policy.yaml"))
            .args(["run", "--run-dir"])
            .arg(dir.path().join("run"))
            .arg("--state-dir")
            .arg(&state)
            .env("BOOTGATE_LOG", "info")
            .env_remove("BOOTGATE_POLICY")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .env_remove("DOCKER_HOST")
            .stdin(fs::File::open(&disk).unwrap())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start bootgate in a mount namespace (unshare needs root)");
        OnSlot { child, addr, dir }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for OnSlot {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(3));
    }
}

/// `maj:min` of the mount bootgate judges (`/usr`, else `/`), as mountinfo lists it.
fn root_device() -> String {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let field = |point: &str| {
        info.lines().rev().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(4) == Some(&point)).then(|| f[2].to_string())
        })
    };
    let dev = field("/usr").or_else(|| field("/")).expect("no / in mountinfo");
    assert!(!dev.starts_with("0:"), "this test needs / on a block device, not {dev}");
    dev
}

fn policy(port: u16, gate: &str, checks: &str) -> String {
    format!(
        "version: 1\ngate: {gate}\nruntime: {{interval: 1s}}\nserver: {{listen: '127.0.0.1:{port}'}}\nchecks:\n{checks}"
    )
}

#[test]
fn a_real_prometheus_sees_the_fleet_through_the_shipped_rules_and_dashboard() {
    let started = Instant::now();
    let peer = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let peer = peer.local_addr().unwrap();
    let closed = free_port();
    let tmp = std::env::temp_dir();
    let storage = format!("  - {{name: storage, kind: disk, path: '{}', min_free_percent: 0}}\n", tmp.display());
    let api = format!("  - {{name: api, kind: tcp, targets: ['{peer}']}}\n");
    let net = format!(
        "  - {{name: net, kind: tcp, critical: false, timeout: 300ms, retries: 0, targets: ['127.0.0.1:{closed}']}}\n"
    );
    let down = format!("  - {{name: api, kind: tcp, timeout: 300ms, retries: 0, targets: ['127.0.0.1:{closed}']}}\n");
    let gate = "{deadline: 10s, on_failure: stay}";

    let mut healthy = Bootgate::start(gate, &format!("{storage}{api}"));
    let mut degraded = Bootgate::start(gate, &format!("{storage}{api}{net}"));
    let mut failed_run = Bootgate::start("{deadline: 3s, on_failure: stay}", &format!("{storage}{down}"));
    let slot_port = free_port();
    let fallback = OnSlot::fallen_back(
        &policy(slot_port, gate, &format!("{storage}{api}")),
        SocketAddr::from((Ipv4Addr::LOCALHOST, slot_port)),
        "9999.0.0",
    );
    assert_eq!(failed_run.wait_exit(Duration::from_secs(15)).code(), Some(2), "{}", failed_run.stderr());
    let mut failed = failed_run.then("serve");
    for bg in [&mut healthy, &mut degraded, &mut failed] {
        bg.wait_listening(Duration::from_secs(15));
    }
    let targets = [healthy.addr, degraded.addr, failed.addr, fallback.addr];
    let mut prom = Prometheus::start(&targets);

    let name = |addr: SocketAddr| addr.to_string();
    let firing_want: BTreeSet<(String, String)> =
        [("BootgateGateFailed".to_string(), name(failed.addr)), ("BootgateFellBack".to_string(), name(fallback.addr))]
            .into();
    let pending_want: BTreeSet<(String, String)> = [("BootgateDegraded".to_string(), name(degraded.addr))].into();
    let queries = dashboard_queries(&[("datasource", "prometheus")]);

    let bound = Duration::from_secs(45);
    let end = Instant::now() + bound;
    loop {
        if let Ok(Some(status)) = prom.child.try_wait() {
            panic!("prometheus exited ({status}):\n{}", prom.log());
        }
        let (firing, pending) = (prom.alerts("firing"), prom.alerts("pending"));
        let empty: Vec<&(String, String)> = queries.iter().filter(|(_, q)| prom.query(q).is_empty()).collect();
        if firing == firing_want && pending == pending_want && empty.is_empty() {
            break;
        }
        assert!(
            Instant::now() < end,
            "within {bound:?}: firing {firing:?} (want {firing_want:?}), pending {pending:?} (want {pending_want:?}), \
             dashboard queries without data: {empty:#?}\nprometheus log:\n{}\nfallback device log:\n{}",
            prom.log(),
            fallback.stderr()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The annotations name the device, its slot and version, and what failed.
    let gate_failed = prom.alert("BootgateGateFailed");
    let summary = gate_failed["annotations"]["summary"].as_str().unwrap();
    assert!(summary.contains(&name(failed.addr)), "{gate_failed:#}");
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
        .iter()
        .map(|s| (s["metric"]["status"].as_str().unwrap().into(), s["value"][1].as_str().unwrap().into()))
        .collect();
    let want: BTreeSet<(String, String)> =
        [("degraded", "1"), ("gate_failed", "1"), ("healthy", "2")].map(|(a, b)| (a.into(), b.into())).into();
    assert_eq!(by_status, want);
    stop(&mut prom.child, Duration::from_secs(5));
    eprintln!("fleet test took {:?}", started.elapsed());
}
