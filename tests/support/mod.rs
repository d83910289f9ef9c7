//! The one support room of the integration tests: the bootgate binary (one launcher for
//! every start of it, one-shot or daemon), one HTTP client for real sockets and one for
//! the router without a socket, and the real components tests start: a software TPM, a
//! private Docker engine, a private podman API service, RAUC on a private bus,
//! Prometheus and Alertmanager, the Mender client, headless Chromium, loopback peers that hang, a
//! pseudo-terminal, a clean Debian root for the packages, certificates made by openssl
//! and curl talking TLS to the endpoint. Everything started here is stopped on drop by
//! pid or process group, in its own temp dirs and on free ports, so parallel tests and
//! concurrent test runs never collide.
//!
//! Nothing here skips: a missing binary panics naming the Debian package that
//! `build/deps.sh` installs.
//!
//! Each integration test file compiles this module on its own and uses only
//! part of it, hence the crate-wide allowances below.
#![allow(dead_code, unused_imports)]

mod bootgate;
pub mod browser;
mod daemon;
mod debian_root;
mod docker;
mod dockerd;
pub mod fleet;
mod hang;
mod held;
pub mod http;
mod leftovers;
pub mod mender;
mod notify;
mod podman;
mod procs;
pub mod prom;
mod pty;
mod rauc_bus;
pub mod router;
mod swtpm;
mod sys;
pub mod sysext;
pub mod tls;
pub mod webhook;

use std::net::{Ipv4Addr, TcpListener};

pub use bootgate::{BIN, Launch, bootgate, check, check_with, disk, message, result};
pub use daemon::Daemon;
pub use debian_root::DebianRoot;
pub use docker::{BUSYBOX_IMAGE, Health};
pub use dockerd::Dockerd;
pub use hang::{BlackholePort, HangingListener};
pub use held::{HeldGate, until_file};
pub use notify::NotifySocket;
pub use podman::Podman;
pub use procs::{Proc, find_binary, mentioning, processes, run_bounded, wait, wait_until};
pub use pty::on_a_terminal;
pub use rauc_bus::RaucBus;
pub use swtpm::Swtpm;

/// A 127.0.0.1 port that refuses connections for as long as this value lives: bound
/// but never listening, so no other test can take it meanwhile (a port that was merely
/// free a moment ago can be, and then a check meant to fail passes). Displays as the
/// port number.
pub struct ClosedPort {
    port: u16,
    _socket: std::os::fd::OwnedFd,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let (socket, port) =
            sys::bound_not_listening().unwrap_or_else(|e| panic!("cannot bind a socket to 127.0.0.1:0: {e}"));
        // Proven, as BlackholePort proves itself: a connect is refused at once.
        match std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            other => panic!("127.0.0.1:{port}, bound and not listening, was not refused: {other:?}"),
        }
        ClosedPort { port, _socket: socket }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl std::fmt::Display for ClosedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.port)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
    listener.local_addr().unwrap_or_else(|e| panic!("cannot read the port bound on 127.0.0.1:0: {e}")).port()
}

/// A port P on 127.0.0.1 such that P and P+1 were both free a moment ago
/// (swtpm serves the TPM on P and its control channel on P+1).
pub fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
        let port =
            first.local_addr().unwrap_or_else(|e| panic!("cannot read the port bound on 127.0.0.1:0: {e}")).port();
        if port == u16::MAX {
            continue;
        }
        // Both are held at once, so P+1 is not merely "free after P closed".
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
    panic!("found no two adjacent free ports on 127.0.0.1 in 200 tries");
}

/// A blocking TCP connection to `to` from the loopback address `from` (127.x.y.z), as a
/// client on another address would make: the endpoint counts connections per address.
pub fn connect_from(from: Ipv4Addr, to: std::net::SocketAddr) -> std::io::Result<std::net::TcpStream> {
    thread_local! {
        static REACTOR: tokio::runtime::Runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    }
    REACTOR.with(|rt| {
        rt.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind((from, 0).into())?;
            let tcp = tokio::time::timeout(std::time::Duration::from_secs(10), socket.connect(to))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
            let tcp = tcp.into_std()?;
            tcp.set_nonblocking(false)?;
            Ok(tcp)
        })
    })
}
