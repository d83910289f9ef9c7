//! A real `bootgate run` (or `serve`) on a free port with its policy in a temp dir,
//! spoken to with curl, and a line reader for its event stream. Shared by
//! `tests/runtime.rs` and `tests/run_now.rs`, each of which uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Daemon, Launch, free_port};

/// A `bootgate run` (or `serve`) on a free port, logging to its temp dir.
pub struct Running {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub daemon: Daemon,
}

impl Running {
    /// Starts `command` on `policy`, whose `server:` line is added here (`server` is extra keys).
    pub fn start(command: &str, policy: &str, server: &str, env: &[(&str, &str)]) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let text = format!("version: 1\nserver: {{listen: '127.0.0.1:{port}'{server}}}\n{policy}");
        std::fs::write(dir.path().join("policy.yaml"), text).unwrap();
        Self::spawn(dir, port, command, env)
    }

    pub fn spawn(dir: tempfile::TempDir, port: u16, command: &str, env: &[(&str, &str)]) -> Running {
        let log = std::fs::File::create(dir.path().join(format!("{command}.log"))).unwrap();
        let launch = Launch {
            command,
            dir: dir.path(),
            notify: None,
            watchdog_usec: None,
            stdout: Stdio::null(),
            stderr: log.into(),
        };
        let child = launch.spawn(|cmd| {
            for (k, v) in env {
                cmd.env(k, v);
            }
        });
        Running { dir, port, daemon: Daemon(child) }
    }

    pub fn log(&self, command: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{command}.log"))).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `curl -X METHOD`: status, body and headers.
    pub fn curl(&self, method: &str, path: &str) -> (u16, String, String) {
        let head = self.dir.path().join("headers.txt");
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "-X", method, "-D"])
            .arg(&head)
            .args(["-w", "\n%{http_code}", &self.url(path)])
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string(), std::fs::read_to_string(head).unwrap_or_default())
    }

    pub fn health(&self) -> Value {
        let (_, body, _) = self.curl("GET", "/api/v1/system/health");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// Waits until the gate has passed (the endpoint says so).
    pub fn wait_passed(&self, timeout: Duration) -> Value {
        wait(timeout, "the gate to pass", || Some(self.health()).filter(|h| h["startup_health_check"] == "passed"))
    }

    /// `bootgate_check_runs_total` of `check`, over every result.
    pub fn runs(&self, check: &str) -> u64 {
        let (_, body, _) = self.curl("GET", "/metrics");
        let prefix = format!("bootgate_check_runs_total{{check=\"{check}\"");
        body.lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, n)| n.parse::<f64>().ok()))
            .sum::<f64>() as u64
    }
}

/// Polls `probe` every 50 ms until it gives a value; panics after `timeout` naming `what`.
pub fn wait<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {timeout:?} waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

pub fn disk(name: &str, extra: &str) -> String {
    format!("  - {{name: {name}, kind: disk, path: /, min_free_percent: 0{extra}}}\n")
}

/// Reads an SSE stream line by line on a thread; each line with its arrival time.
pub fn sse(port: u16) -> mpsc::Receiver<(Instant, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET /api/v1/system/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next `data:` line of an event named `name` whose data satisfies `pred`.
pub fn next_event(
    rx: &mpsc::Receiver<(Instant, String)>,
    name: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> (Instant, Value) {
    let end = Instant::now() + timeout;
    let mut current = String::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let (at, line) = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no `{name}` event within {timeout:?}"));
        if let Some(e) = line.strip_prefix("event: ") {
            current = e.to_string();
        } else if let Some(data) = line.strip_prefix("data: ")
            && current == name
        {
            let v: Value = serde_json::from_str(data).unwrap();
            if pred(&v) {
                return (at, v);
            }
        }
    }
}
