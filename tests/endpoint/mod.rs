//! A real `bootgate run` serving its endpoint, and a small HTTP/1.1 client for it.
//!
//! Each daemon gets its own temp dir (policy, run and state dirs, logs) and a free
//! loopback port; it is stopped by pid on drop. Shared by `tests/server.rs` and
//! `tests/prometheus.rs`, each of which uses part of it.
#![allow(dead_code)]

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::support::{Launch, free_port};

/// A `bootgate run` (or `serve`) child on a free 127.0.0.1 port.
pub struct Bootgate {
    child: Child,
    pub addr: SocketAddr,
    dir: Arc<TempDir>,
    log: PathBuf,
}

impl Bootgate {
    /// Starts `bootgate run` with a policy of `gate` settings (YAML flow mapping) and
    /// `checks` (a YAML block list); the server listens on a free port.
    pub fn start(gate: &str, checks: &str) -> Bootgate {
        Self::start_on(free_port(), gate, checks)
    }

    /// [`Bootgate::start`] listening on `port`.
    pub fn start_on(port: u16, gate: &str, checks: &str) -> Bootgate {
        Self::start_with(port, gate, checks, |_| {})
    }

    /// [`Bootgate::start_on`] with `configure` applied to the command just before it is spawned.
    pub fn start_with(port: u16, gate: &str, checks: &str, configure: impl FnOnce(&mut Command)) -> Bootgate {
        let dir = Arc::new(tempfile::tempdir().expect("cannot create a temp dir"));
        let policy = format!(
            "version: 1\ngate: {gate}\nruntime: {{interval: 1s}}\nserver: {{listen: '127.0.0.1:{port}'}}\nchecks:\n{checks}"
        );
        fs::write(dir.path().join("policy.yaml"), policy).expect("cannot write the policy");
        Self::spawn(dir, port, "run", configure)
    }

    /// Starts `bootgate COMMAND` (`run`, `serve`) on this one's policy, run and state dirs and port.
    pub fn then(&self, command: &str) -> Bootgate {
        Self::spawn(Arc::clone(&self.dir), self.addr.port(), command, |_| {})
    }

    fn spawn(dir: Arc<TempDir>, port: u16, command: &str, configure: impl FnOnce(&mut Command)) -> Bootgate {
        let n = fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0);
        let log = |name: &str| dir.path().join(format!("{command}-{n}.{name}.log"));
        let file = |path: PathBuf| fs::File::create(path).expect("cannot create a log file");
        let launch = Launch {
            command,
            dir: dir.path(),
            notify: None,
            watchdog_usec: None,
            stdout: file(log("stdout")).into(),
            stderr: file(log("stderr")).into(),
        };
        let child = launch.spawn(configure);
        Bootgate { child, addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), log: log("stderr"), dir }
    }

    /// The policy file, to rewrite before a SIGHUP.
    pub fn policy_path(&self) -> PathBuf {
        self.dir.path().join("policy.yaml")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// What the daemon printed on stdout so far (the verdict table).
    pub fn stdout(&self) -> String {
        fs::read_to_string(
            self.log.with_file_name(self.log.file_name().unwrap().to_string_lossy().replace(".stderr.", ".stdout.")),
        )
        .unwrap_or_default()
    }

    /// What the daemon logged so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` from the daemon's endpoint.
    pub fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        get(self.addr, path, headers)
            .unwrap_or_else(|e| panic!("GET {path} from bootgate failed: {e}\n{}", self.stderr()))
    }

    /// Waits until the endpoint accepts connections.
    pub fn wait_listening(&mut self, timeout: Duration) {
        self.wait_for(timeout, "the endpoint to listen", |b| TcpStream::connect(b.addr).is_ok());
    }

    /// Waits until GET `path` answers `status`.
    pub fn wait_status(&mut self, path: &str, status: u16, timeout: Duration) -> Reply {
        let mut last = None;
        self.wait_for(timeout, &format!("GET {path} to answer {status}"), |b| {
            last = get(b.addr, path, &[]).ok();
            last.as_ref().is_some_and(|r| r.status == status)
        });
        last.expect("set by the successful wait")
    }

    fn wait_for(&mut self, timeout: Duration, what: &str, mut done: impl FnMut(&Bootgate) -> bool) {
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

    /// Waits up to `timeout` for the daemon to exit on its own.
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

    /// Sends SIGTERM to the daemon's pid.
    pub fn terminate(&self) {
        signal(self.child.id(), Signal::SIGTERM);
    }

    /// Sends `sig` to the daemon's pid.
    pub fn signal(&self, sig: Signal) {
        signal(self.child.id(), sig);
    }

    /// The state dir (history.jsonl).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

impl Drop for Bootgate {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(3));
    }
}

/// Sends `sig` to the single process `pid`.
pub fn signal(pid: u32, sig: Signal) {
    let pid = i32::try_from(pid).expect("pid fits in i32");
    assert!(pid > 1, "refusing to signal pid {pid}");
    let _ = kill(Pid::from_raw(pid), sig);
}

/// SIGTERM by pid, up to `grace` to exit, then SIGKILL; always reaps.
pub fn stop(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    signal(child.id(), Signal::SIGTERM);
    let end = Instant::now() + grace;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// GET `path` over a new connection (`Connection: close`), within 10 s.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad HTTP answer: {raw:?}")))
}

fn parse(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    }
    Some(Reply { status, headers, body: String::from_utf8(body).ok()? })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
