//! Real components for integration tests: the bootgate binary, a software TPM,
//! a private Docker engine and loopback peers that hang. Everything started here is stopped on
//! drop by pid or process group, in its own temp dirs and on free ports, so
//! parallel tests and concurrent test runs never collide.
//!
//! Nothing here skips: a missing binary panics naming the Debian package that
//! `build/deps.sh` installs.
//!
//! Each integration test file compiles this module on its own and uses only
//! part of it, hence the crate-wide allowances below.
#![allow(dead_code, unused_imports)]

mod bootgate;
mod docker;
mod dockerd;
mod hang;
mod leftovers;
mod procs;
mod swtpm;
mod sys;

use std::net::{Ipv4Addr, TcpListener};

pub use bootgate::{Daemon, Launch, NotifySocket, bootgate, check, check_with_output, health_at, message, result};
pub use docker::{BUSYBOX_IMAGE, Health};
pub use dockerd::Dockerd;
pub use hang::{BlackholePort, HangingListener};
pub use procs::{Proc, find_binary, mentioning, processes, run_bounded, wait_until};
pub use swtpm::Swtpm;

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
