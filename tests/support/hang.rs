//! Loopback peers that hang, to prove timeouts: listeners that accept and
//! never answer, and a port whose TCP connects never complete. Never an
//! unrouted address: everything stays on 127.0.0.1 or a unix socket.

use std::fs;
use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::sys;

enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// Accepts connections and then neither reads nor writes, holding them open
/// until dropped: a peer that connected but hung.
pub struct HangingListener {
    endpoint: Endpoint,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl HangingListener {
    /// A hanging peer on a free 127.0.0.1 port.
    pub fn tcp() -> HangingListener {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
        let addr = listener.local_addr().expect("cannot read the hanging listener's address");
        listener.set_nonblocking(true).expect("cannot make the listener non-blocking");
        Self::serve(Endpoint::Tcp(addr), move || listener.accept().map(|(s, _)| s))
    }

    /// A hanging peer on a new unix socket at `path` (e.g. an imitation of a
    /// hung Docker socket); the socket file is removed on drop.
    pub fn unix(path: impl AsRef<Path>) -> HangingListener {
        let path = path.as_ref().to_path_buf();
        let listener = UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("cannot bind a unix socket at {}: {e}", path.display()));
        listener.set_nonblocking(true).expect("cannot make the listener non-blocking");
        Self::serve(Endpoint::Unix(path), move || listener.accept().map(|(s, _)| s))
    }

    fn serve<S: Send + 'static>(
        endpoint: Endpoint,
        mut accept: impl FnMut() -> io::Result<S> + Send + 'static,
    ) -> HangingListener {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stop_flag, count) = (Arc::clone(&stop), Arc::clone(&accepted));
        let thread = thread::spawn(move || {
            let mut held = Vec::new();
            while !stop_flag.load(Ordering::SeqCst) {
                match accept() {
                    Ok(conn) => {
                        held.push(conn);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(10)),
                    Err(e) => panic!("hanging listener: accept failed: {e}"),
                }
            }
        });
        HangingListener { endpoint, stop, accepted, thread: Some(thread) }
    }

    /// The TCP address; panics for a unix listener.
    pub fn addr(&self) -> SocketAddr {
        match &self.endpoint {
            Endpoint::Tcp(addr) => *addr,
            Endpoint::Unix(path) => panic!("hanging listener at {} is a unix socket: use path()", path.display()),
        }
    }

    /// The TCP port; panics for a unix listener.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// The unix socket path; panics for a TCP listener.
    pub fn path(&self) -> &Path {
        match &self.endpoint {
            Endpoint::Unix(path) => path,
            Endpoint::Tcp(addr) => panic!("hanging listener on {addr} is TCP: use addr()"),
        }
    }

    /// How many connections have been accepted (and left hanging) so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for HangingListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Endpoint::Unix(path) = &self.endpoint {
            let _ = fs::remove_file(path);
        }
    }
}

/// A 127.0.0.1 port whose TCP connects never complete (they time out on the
/// client side): a listener with backlog 0 whose accept queue is kept full.
pub struct BlackholePort {
    addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl BlackholePort {
    /// Sets the port up and proves that a 500 ms connect to it times out.
    pub fn new() -> BlackholePort {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
        let addr = listener.local_addr().expect("cannot read the blackhole address");
        sys::set_backlog(&listener, 0).unwrap_or_else(|e| panic!("cannot set backlog 0 on {addr}: {e}"));
        // Connects complete until the accept queue is full; once one times
        // out, the kernel is dropping SYNs for this port.
        let mut fillers = Vec::new();
        for _ in 0..16 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(stream) => fillers.push(stream),
                Err(_) => break,
            }
        }
        let probe_timeout = Duration::from_millis(500);
        let started = Instant::now();
        match TcpStream::connect_timeout(&addr, probe_timeout) {
            Err(e) if e.kind() == ErrorKind::TimedOut => {}
            Ok(_) => panic!("blackhole port {addr} accepted a connection after {} fillers", fillers.len()),
            Err(e) => {
                panic!("connect to blackhole port {addr} failed at once instead of timing out: {e}")
            }
        }
        assert!(
            started.elapsed() >= probe_timeout,
            "connect to blackhole port {addr} gave up after {:?}, before its timeout",
            started.elapsed()
        );
        BlackholePort { addr, _listener: listener, _fillers: fillers }
    }

    /// The address whose connects hang.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port whose connects hang.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}
