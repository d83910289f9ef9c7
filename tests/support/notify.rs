//! A private NOTIFY_SOCKET: the test plays systemd and reads what the daemon tells it.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The shortest datagram systemd ignores: a notification this long or longer is
/// dropped whole, READY=1 and all (`NOTIFY_BUFFER_MAX` in systemd's sources).
pub const SYSTEMD_DROPS: usize = 4096;

/// Messages received on a private notify socket, with their arrival time. Like systemd,
/// it drops a datagram of [`SYSTEMD_DROPS`] bytes or more (keeping its length aside).
pub struct NotifySocket {
    path: PathBuf,
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    dropped: Arc<Mutex<Vec<usize>>>,
}

impl NotifySocket {
    /// Binds `DIR/notify.sock` and records every datagram sent to it from now on.
    pub fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let (sink, lost) = (seen.clone(), dropped.clone());
        // Stamped on arrival, so tests can measure when the daemon said something.
        thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = sock.recv(&mut buf) {
                if n >= SYSTEMD_DROPS {
                    lost.lock().unwrap().push(n);
                    continue;
                }
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                sink.lock().unwrap().push((Instant::now(), msg));
            }
        });
        NotifySocket { path, seen, dropped }
    }

    /// The socket's path, for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<(Instant, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// The lengths of the datagrams dropped for their size, as systemd would have.
    pub fn dropped(&self) -> Vec<usize> {
        self.dropped.lock().unwrap().clone()
    }

    /// Every message received so far, without its arrival time.
    pub fn texts(&self) -> Vec<String> {
        self.messages().into_iter().map(|(_, m)| m).collect()
    }

    /// The STATUS systemd holds when READY=1 arrives: the last one sent before it. READY=1
    /// itself must travel alone: systemd drops a whole datagram it cannot take, and
    /// nothing sent beside READY=1 may take it down with it.
    pub fn ready_status(&self) -> String {
        let msgs = self.texts();
        let ready = msgs.iter().position(|m| m.contains("READY=1")).unwrap_or_else(|| panic!("no READY=1: {msgs:#?}"));
        assert_eq!(msgs[ready].trim(), "READY=1", "READY=1 shares its datagram: {msgs:#?}");
        let status = msgs[..ready].iter().rev().find_map(|m| m.lines().find_map(|l| l.strip_prefix("STATUS=")));
        status.unwrap_or_else(|| panic!("no STATUS before READY=1: {msgs:#?}")).to_string()
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
