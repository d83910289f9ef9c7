//! The binary under test: one-shot commands such as `bootgate check`, and a
//! `bootgate run` daemon talking to a private NOTIFY_SOCKET as it would to systemd.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bootgate");

/// Runs `bootgate ARGS` to completion, without the caller's policy or Docker settings.
pub fn bootgate(args: &[&str]) -> Output {
    // An inherited $BOOTGATE_POLICY or $DOCKER_HOST would change which policy or
    // engine a test sees; each test names the one it means instead.
    Command::new(BIN)
        .args(args)
        .env_remove("BOOTGATE_POLICY")
        .env_remove("DOCKER_HOST")
        .output()
        .expect("bootgate runs")
}

/// Runs `bootgate check --format json` on `policy`; returns exit code, verdict, wall time.
pub fn check(policy: &str) -> (i32, Value, Duration) {
    let (code, verdict, took, _) = check_with_output(policy);
    (code, verdict, took)
}

/// [`check`], plus the raw output for tests that inspect everything it printed.
pub fn check_with_output(policy: &str) -> (i32, Value, Duration, Output) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    let started = Instant::now();
    let out = bootgate(&["check", "--format", "json", "--policy", path.to_str().unwrap()]);
    let took = started.elapsed();
    let verdict: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON verdict ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), verdict, took, out)
}

/// The entry for check `name` in a JSON verdict; panics with the verdict if there is none.
pub fn result<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {v:#}"))
}

/// The message of check `name` in a JSON verdict, empty if it has none.
pub fn message(v: &Value, name: &str) -> String {
    result(v, name)["message"].as_str().unwrap_or_default().to_string()
}

/// The health document of a daemon listening on 127.0.0.1:`port`, fetched with curl.
pub fn health_at(port: u16) -> Value {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}/api/v1/system/health"))
        .output()
        .expect("cannot run curl");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no health document ({e}): {out:?}"))
}

/// Messages received on a private notify socket, with their arrival time.
pub struct NotifySocket {
    path: PathBuf,
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl NotifySocket {
    /// Binds `DIR/notify.sock` and records every datagram sent to it from now on.
    pub fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        // Stamped on arrival, so tests can measure when the daemon said something.
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                sink.lock().unwrap().push((Instant::now(), msg));
            }
        });
        NotifySocket { path, seen }
    }

    /// The socket's path, for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<(Instant, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until a message that arrived after `since` satisfies `pred`; returns when it arrived.
    pub fn wait_for(&self, what: &str, since: Instant, timeout: Duration, pred: impl Fn(&str) -> bool) -> Instant {
        let end = Instant::now() + timeout;
        loop {
            if let Some((at, _)) = self.messages().into_iter().find(|(at, m)| *at >= since && pred(m)) {
                return at;
            }
            assert!(Instant::now() < end, "no {what} within {timeout:?}; got {:#?}", self.messages());
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How a daemon under test (`bootgate run` or `serve`) is started: the one launcher
/// every test uses, so each starts it with the same clean environment.
pub struct Launch<'a> {
    /// `run` or `serve`.
    pub command: &'a str,
    /// Holds `policy.yaml`; the run and state dirs are `DIR/run` and `DIR/state`.
    pub dir: &'a Path,
    /// systemd's notify socket, if the test plays systemd.
    pub notify: Option<&'a Path>,
    pub watchdog_usec: Option<u64>,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Launch<'_> {
    /// Spawns the daemon; `configure` may adjust the command last (limits, extra environment).
    pub fn spawn(self, configure: impl FnOnce(&mut Command)) -> Child {
        let mut cmd = self.command();
        configure(&mut cmd);
        cmd.spawn().expect("cannot start bootgate")
    }

    /// The daemon's command, not yet started.
    pub fn command(self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--policy")
            .arg(self.dir.join("policy.yaml"))
            .arg(self.command)
            .arg("--run-dir")
            .arg(self.dir.join("run"))
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .env("BOOTGATE_LOG", "info")
            // An inherited $BOOTGATE_POLICY or $DOCKER_HOST would change which policy or
            // engine the daemon sees; an inherited WATCHDOG_PID names another process and
            // turns the watchdog off; JOURNAL_STREAM would send the log to the journal;
            // BOOTGATE_TEXTFILE would make every daemon write one; BOOTGATE_INTERVAL would
            // change every runtime schedule.
            .env_remove("BOOTGATE_POLICY")
            .env_remove("BOOTGATE_INTERVAL")
            .env_remove("BOOTGATE_TEXTFILE")
            .env_remove("DOCKER_HOST")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(self.stdout)
            .stderr(self.stderr);
        match self.notify {
            Some(path) => cmd.env("NOTIFY_SOCKET", path),
            None => cmd.env_remove("NOTIFY_SOCKET"),
        };
        match self.watchdog_usec {
            Some(usec) => cmd.env("WATCHDOG_USEC", usec.to_string()),
            None => cmd.env_remove("WATCHDOG_USEC"),
        };
        cmd
    }
}

/// A `bootgate run` child talking to a test's notify socket, SIGKILLed by pid if the test ends early.
pub struct Daemon(pub Child);

impl Daemon {
    /// Starts `bootgate run` on `policy` (written to `DIR/policy.yaml`) with run and state dirs in `dir`.
    pub fn start(dir: &Path, policy: &str, notify: &NotifySocket, watchdog_usec: Option<u64>) -> Daemon {
        std::fs::write(dir.join("policy.yaml"), policy).unwrap();
        let launch = Launch {
            command: "run",
            dir,
            notify: Some(&notify.path),
            watchdog_usec,
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        };
        Daemon(launch.spawn(|_| {}))
    }
}

impl Daemon {
    /// Waits up to `timeout` for the daemon to exit; its exit code (-1 for a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < end, "bootgate did not exit within {timeout:?}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
