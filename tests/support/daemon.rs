//! A started `bootgate run` or `serve` ([`super::Launch::start`]): its files, its
//! endpoint through the one HTTP client, and its end. Stopped by pid on drop.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use tempfile::TempDir;

use super::bootgate::Launch;
use super::http::{self, Reply};
use super::procs;

/// How long a daemon has to stop on SIGTERM before it is killed, at drop.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A daemon under test.
pub struct Daemon {
    child: Child,
    dir: PathBuf,
    /// The temp dir, when the daemon has one of its own (shared with those started by [`Daemon::then`]).
    owned: Option<Arc<TempDir>>,
    port: Option<u16>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Daemon {
    pub(super) fn new(
        child: Child,
        (dir, owned): (PathBuf, Option<Arc<TempDir>>),
        port: Option<u16>,
        stdout: PathBuf,
        stderr: PathBuf,
    ) -> Daemon {
        Daemon { child, dir, owned, port, stdout, stderr }
    }

    /// `bootgate COMMAND` (`run`, `serve`) on this one's dir, policy and port, to start next.
    pub fn then(&self, command: &'static str) -> Launch {
        Launch::again(command, (self.dir.clone(), self.owned.clone()), self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its directory (`policy.yaml`, `run/`, `state/`, the logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The policy file, to rewrite before a SIGHUP.
    pub fn policy_path(&self) -> PathBuf {
        self.dir.join("policy.yaml")
    }

    /// The run dir (verdict.json).
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The state dir (history.jsonl).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// What it printed on stdout so far (the verdict table).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port.expect("this daemon was started without a port to listen on")
    }

    /// Where its endpoint listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port()))
    }

    /// `METHOD path` to its endpoint, with `headers`.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<Reply> {
        http::request(self.addr(), method, path, headers)
    }

    /// GET `path`; a failed request fails the test, with the daemon's log.
    pub fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path, headers)
            .unwrap_or_else(|e| panic!("GET {path} from bootgate failed: {e}\n{}", self.stderr()))
    }

    /// POST `path` (without a body); a failed request fails the test, with the daemon's log.
    pub fn post(&self, path: &str) -> Reply {
        self.request("POST", path, &[])
            .unwrap_or_else(|e| panic!("POST {path} to bootgate failed: {e}\n{}", self.stderr()))
    }

    /// The health document; `Null` while there is none.
    pub fn health(&self) -> Value {
        let reply = self.request("GET", "/api/v1/system/health", &[]);
        reply.ok().and_then(|r| serde_json::from_str(&r.body).ok()).unwrap_or(Value::Null)
    }

    /// Waits until the health document says the gate passed; that document.
    pub fn wait_passed(&mut self, timeout: Duration) -> Value {
        let mut doc = Value::Null;
        self.wait_for(timeout, "the gate to pass", |d| {
            doc = d.health();
            doc["startup_health_check"] == "passed"
        });
        doc
    }

    /// `bootgate_check_runs_total` of `check` in `/metrics`, over every result.
    pub fn runs(&self, check: &str) -> u64 {
        let prefix = format!("bootgate_check_runs_total{{check=\"{check}\"");
        self.get("/metrics")
            .body
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, n)| n.parse::<f64>().ok()))
            .sum::<f64>() as u64
    }

    /// The event stream, line by line (see [`http::next_event`]).
    pub fn events(&self) -> mpsc::Receiver<(Instant, String)> {
        http::lines(self.addr(), "/api/v1/system/events", &[("Accept", "text/event-stream")])
    }

    /// Waits until the endpoint accepts connections.
    pub fn wait_listening(&mut self, timeout: Duration) {
        self.wait_for(timeout, "the endpoint to listen", |d| TcpStream::connect(d.addr()).is_ok());
    }

    /// Waits until GET `path` answers `status`.
    pub fn wait_status(&mut self, path: &str, status: u16, timeout: Duration) -> Reply {
        let mut last = None;
        self.wait_for(timeout, &format!("GET {path} to answer {status}"), |d| {
            last = d.request("GET", path, &[]).ok();
            last.as_ref().is_some_and(|r| r.status == status)
        });
        last.expect("set by the successful wait")
    }

    /// Polls `done` until it holds; fails the test, with the log, if the daemon exits first.
    fn wait_for(&mut self, timeout: Duration, what: &str, mut done: impl FnMut(&Daemon) -> bool) {
        let end = Instant::now() + timeout;
        loop {
            if done(self) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("bootgate exited ({status}) while waiting for {what}:\n{}", self.stderr());
            }
            assert!(Instant::now() < end, "timed out after {timeout:?} waiting for {what}:\n{}", self.stderr());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("cannot poll bootgate").is_none()
    }

    /// Waits up to `timeout` for it to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot poll bootgate") {
                return status;
            }
            assert!(Instant::now() < end, "bootgate still running after {timeout:?}:\n{}", self.stderr());
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to its pid.
    pub fn signal(&self, sig: Signal) {
        procs::signal(self.child.id(), sig as i32);
    }

    /// Sends SIGTERM, as systemd stops it.
    pub fn terminate(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// SIGKILLs it, without a word to it, and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("cannot kill bootgate");
        self.child.wait().expect("cannot reap bootgate");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        procs::stop(&mut self.child, STOP_GRACE);
    }
}
