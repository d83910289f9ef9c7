//! The fleet a monitoring test watches: a real Prometheus loading the shipped rules,
//! a real Alertmanager it sends to, and a bootgate daemon booted on an A/B slot.
//! Each is stopped by pid on drop, in its own temp dir, on a free loopback port.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::bootgate::Launch;
use super::daemon::Daemon;
use super::http::get;
use super::procs::{find_binary, run_bounded};
use super::prom::{Prometheus, Server};

/// A file under `monitoring/`.
pub fn monitoring(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring").join(path)
}

/// A Prometheus server loading the shipped rules, scraping `targets` every second in
/// a job of no particular name, each labelled `bootgate_target="true"` as
/// docs/fleet-monitoring.md asks, and sending alerts to `alertmanager`.
pub fn prometheus(targets: &[SocketAddr], alertmanager: SocketAddr) -> Prometheus {
    let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    Prometheus::start(&format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}\n\
         rule_files: ['{}']\n\
         alerting: {{alertmanagers: [{{static_configs: [{{targets: ['{alertmanager}']}}]}}]}}\n\
         scrape_configs:\n  - job_name: devices\n    static_configs: [{{targets: [{}], labels: {{bootgate_target: 'true'}}}}]\n",
        monitoring("prometheus/bootgate.rules.yml").display(),
        targets.join(", ")
    ))
}

/// What an alert is about: its device (`instance`), or the version it names
/// (`from_version`) for an alert about a version across devices.
pub fn subject(labels: &Value) -> String {
    labels["instance"].as_str().or(labels["from_version"].as_str()).unwrap_or_default().to_string()
}

/// What the shipped rules make of the fleet, through Prometheus's API.
pub trait Alerts {
    /// (alertname, [`subject`]) of every alert in `state` (firing or pending).
    fn alerts(&self, state: &str) -> BTreeSet<(String, String)>;
    fn alert(&self, name: &str) -> Value;
}

impl Alerts for Prometheus {
    fn alerts(&self, state: &str) -> BTreeSet<(String, String)> {
        let alerts = self.api("/api/v1/alerts").and_then(|d| d["alerts"].as_array().cloned()).unwrap_or_default();
        alerts
            .iter()
            .filter(|a| a["state"] == state)
            .map(|a| (a["labels"]["alertname"].as_str().unwrap().into(), subject(&a["labels"])))
            .collect()
    }

    fn alert(&self, name: &str) -> Value {
        let alerts = self.api("/api/v1/alerts").unwrap()["alerts"].as_array().cloned().unwrap_or_default();
        alerts.into_iter().find(|a| a["labels"]["alertname"] == name).unwrap_or_else(|| panic!("no {name} alert"))
    }
}

/// An Alertmanager without a cluster.
pub struct Alertmanager(Server);

impl Deref for Alertmanager {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.0
    }
}

impl Alertmanager {
    /// One with a single receiver that sends nowhere.
    pub fn start() -> Alertmanager {
        Alertmanager::with_config("route: {receiver: keep, group_wait: 0s}\nreceivers: [{name: keep}]\n")
    }

    /// The shipped example (`monitoring/alertmanager/alertmanager.yml`), its routes and
    /// inhibitions unchanged; each receiver's webhook is `webhook`/NAME instead, and
    /// the route's waits are 1s, so a test does not wait 30s for the first notification.
    pub fn example(webhook: SocketAddr) -> Alertmanager {
        let text = fs::read_to_string(monitoring("alertmanager/alertmanager.yml")).unwrap();
        let mut config: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        for receiver in config["receivers"].as_sequence_mut().unwrap() {
            let url = format!("http://{webhook}/{}", receiver["name"].as_str().unwrap());
            for hook in receiver["webhook_configs"].as_sequence_mut().unwrap() {
                hook["url"] = url.clone().into();
            }
        }
        config["route"]["group_wait"] = "1s".into();
        config["route"]["group_interval"] = "1s".into();
        Alertmanager::with_config(&serde_yaml::to_string(&config).unwrap())
    }

    fn with_config(config: &str) -> Alertmanager {
        let args = ["--cluster.listen-address="];
        Alertmanager(Server::start("prometheus-alertmanager", "prometheus-alertmanager", config, "storage.path", &args))
    }

    /// Adds one firing alert with `labels` (`name=value`) and a summary through `amtool`.
    pub fn add(&self, labels: &[&str]) {
        let amtool = find_binary("amtool", "prometheus-alertmanager");
        let out = run_bounded(
            Command::new(amtool)
                .arg(format!("--alertmanager.url=http://{}", self.addr))
                .args(["alert", "add", "--annotation=summary=added by the test"])
                .args(labels),
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "amtool alert add: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// (alertname, [`subject`]) of every active alert held back by an inhibition.
    pub fn inhibited(&self) -> BTreeSet<(String, String)> {
        let Some(reply) = get(self.addr, "/api/v2/alerts?active=false&inhibited=true&silenced=false").ok() else {
            return BTreeSet::new();
        };
        let alerts = reply.json().as_array().cloned().unwrap_or_default();
        alerts
            .iter()
            .filter(|a| a["status"]["inhibitedBy"].as_array().is_some_and(|by| !by.is_empty()))
            .map(|a| (a["labels"]["alertname"].as_str().unwrap().into(), subject(&a["labels"])))
            .collect()
    }

    /// (alertname, [`subject`]) of every active alert it received, each with a severity and a summary.
    pub fn alerts(&self) -> BTreeSet<(String, String)> {
        let Some(reply) = get(self.addr, "/api/v2/alerts?active=true").ok().filter(|r| r.status == 200) else {
            return BTreeSet::new();
        };
        let alerts = reply.json().as_array().cloned().unwrap_or_default();
        for a in &alerts {
            assert!(a["labels"]["severity"].is_string() && a["annotations"]["summary"].is_string(), "{a:#}");
        }
        alerts.iter().map(|a| (a["labels"]["alertname"].as_str().unwrap().into(), subject(&a["labels"]))).collect()
    }
}

/// Flatcar's USR partition type.
const USR_TYPE: &str = "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6";

/// A `bootgate run` with `gate` and `checks` ([`Launch::gate`]) on a booted A/B slot:
/// booted from USR-A after the previous boot, on USR-B running `from_version`, failed its gate.
///
/// The build host's root is not on a GPT slot, so this one stand-in is needed: in a
/// private mount namespace, `/sys/class/block` is replaced by a directory saying that
/// the device holding `/` is partition 3 of a disk named `stdin`, and the daemon's
/// stdin is a real GPT image, which it then reads as `/dev/stdin`. Everything else is
/// real: the image made by sgdisk, the history file, the daemon and its fallback detection.
pub fn fallen_back(gate: &str, checks: &str, from_version: &str) -> Daemon {
    let mut launch = Launch::gate(gate, checks);
    let dir = launch.dir().to_path_buf();
    let disk = dir.join("disk.img");
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
    let slot = dir.join("sys/devices/stdin/slot3");
    fs::create_dir_all(&slot).unwrap();
    fs::write(slot.join("dev"), format!("{root_dev}\n")).unwrap();
    fs::write(slot.join("partition"), "3\n").unwrap();
    let class = dir.join("sys/class/block");
    fs::create_dir_all(&class).unwrap();
    std::os::unix::fs::symlink(&slot, class.join("slot3")).unwrap();

    let state = dir.join("state");
    fs::create_dir_all(&state).unwrap();
    let previous = serde_json::json!({
        "timestamp": "2026-01-15T10:35:00Z", "boot_id": "00000000000000000000000000000001",
        "partition": {"label": "USR-B", "index": 4, "uuid": "e506af65-93a1-4455-a667-f7c29e89a13d"},
        "version": from_version, "gate": "failed", "status": "unhealthy",
        "failing": [{"name": "api", "message": "127.0.0.1:1: connection refused"}],
        "decision": "reboot", "gate_duration_ms": 5000.0, "bootgate": env!("CARGO_PKG_VERSION"),
    });
    fs::write(state.join("history.jsonl"), format!("{previous}\n")).unwrap();

    let unshare = find_binary("unshare", "util-linux");
    launch
        .stdin(fs::File::open(&disk).unwrap())
        .through(move |bootgate| {
            let mut cmd = Command::new(unshare);
            cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg("mount --bind \"$0\" /sys/class/block && exec \"$@\"")
                .arg(&class)
                .args(bootgate);
            cmd
        })
        .start()
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
