//! A real `bootgate run` whose gate the test holds open: its critical `hold` check
//! waits for a file the test creates ([`HeldGate::release`]), so the gate (and a soak
//! after it) is still running for as long as the test needs, and decides when told.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::bootgate::Launch;
use super::daemon::Daemon;
use super::notify::NotifySocket;

/// The daemon, its directory and the notify socket it reports to.
pub struct HeldGate {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub notify: NotifySocket,
    pub daemon: Daemon,
    started: Instant,
}

impl HeldGate {
    /// Starts it in a temp dir of its own with the `gate` settings (a YAML flow mapping)
    /// and `more` checks after `hold`; returns once the gate is running.
    pub fn start(gate: &str, more: &str) -> HeldGate {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        HeldGate::start_in(dir, Some(tmp), gate, more)
    }

    /// [`HeldGate::start`] in `dir` (its run dir is `dir/run`), keeping `tmp` alive.
    pub fn start_in(dir: PathBuf, tmp: Option<tempfile::TempDir>, gate: &str, more: &str) -> HeldGate {
        let notify = NotifySocket::bind(&dir);
        let go = dir.join("go");
        let checks = format!(
            "  - {{name: hold, kind: exec, timeout: 90s, retries: 0, command: [sh, -c, 'while [ ! -e {go} ]; do sleep 0.1; done']}}\n{more}",
            go = go.display()
        );
        let started = Instant::now();
        let daemon = Launch::gate(gate, &checks).in_dir(&dir).notify(&notify).start();
        let gate = HeldGate { dir, _tmp: tmp, notify, daemon, started };
        gate.wait_status("the gate's STATUS", |m| m.contains("STATUS=gate running"));
        gate
    }

    /// Where `run` writes verdict.json.
    pub fn run_dir(&self) -> PathBuf {
        self.daemon.run_dir()
    }

    /// The daemon's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lets the `hold` check pass.
    pub fn release(&self) {
        std::fs::write(self.dir.join("go"), "").unwrap();
    }

    /// When the first message since the start that `pred` accepts came (within a minute).
    pub fn wait_status(&self, what: &str, pred: impl Fn(&str) -> bool) -> Instant {
        self.notify.wait_for(what, self.started, Duration::from_secs(60), pred)
    }
}

/// A check that passes until the file `name` appears in `dir`.
pub fn until_file(check: &str, dir: &Path, name: &str) -> String {
    format!(
        "  - {{name: {check}, kind: exec, retries: 0, command: [sh, -c, 'test ! -e {}']}}\n",
        dir.join(name).display()
    )
}
