//! Debian's Prometheus tooling for the tests: `promtool check metrics`, and real servers
//! of the Prometheus project (Prometheus itself here, Alertmanager in `fleet`).

use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::free_port;
use super::http::get;
use super::procs::{find_binary, stop};

/// Runs `promtool check metrics` on `body` and fails with whatever it reports.
pub fn promtool_check(body: &str) {
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

/// A server of the Prometheus project (Prometheus, Alertmanager) on a free loopback port,
/// in a temp dir of its own holding its config, its data and its log; stopped by pid on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    dir: TempDir,
}

impl Server {
    /// Starts `binary` (from the Debian `package`) on `config`, keeping its data where
    /// the flag `--DATA` says, with `args` besides.
    pub fn start(binary: &str, package: &str, config: &str, data: &str, args: &[&str]) -> Server {
        let bin = find_binary(binary, package);
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let log = fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--{data}={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Server { child, addr, dir }
    }

    /// Fails the test, with its log, if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.dir.path().display(), self.log());
        }
    }

    /// The last 30 lines of its log.
    pub fn log(&self) -> String {
        let text = fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(5));
    }
}

/// A Prometheus server running `config` (its `prometheus.yml`).
pub struct Prometheus(Server);

impl Deref for Prometheus {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.0
    }
}

impl DerefMut for Prometheus {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.0
    }
}

impl Prometheus {
    pub fn start(config: &str) -> Prometheus {
        Prometheus(Server::start("prometheus", "prometheus", config, "storage.tsdb.path", &[]))
    }

    /// `data` of an API answer; `None` while Prometheus is not up yet.
    pub fn api(&self, path: &str) -> Option<Value> {
        let reply = get(self.addr, path).ok().filter(|r| r.status == 200)?;
        let doc = reply.json();
        assert_eq!(doc["status"], "success", "{path}: {doc}");
        Some(doc["data"].clone())
    }

    /// An instant query's result; `None` while Prometheus is not up yet.
    pub fn query(&self, promql: &str) -> Option<Vec<Value>> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(promql)))?;
        Some(data["result"].as_array().cloned().unwrap_or_default())
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
