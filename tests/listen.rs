//! Where the endpoint listens: `--listen` (or `$BOOTGATE_LISTEN`) over the policy's
//! `server.listen`, for `run` and `serve`, and a clear usage error for a bad address.

mod support;

use std::time::Duration;

use support::{ClosedPort, Launch, free_port};

/// A policy that passes at once and listens on `port`.
fn policy(port: u16) -> String {
    format!(
        "version: 1\nserver: {{listen: '127.0.0.1:{port}'}}\nchecks:\n  - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n"
    )
}

#[test]
fn the_flag_and_the_variable_override_the_policys_address() {
    // The policy's own port is taken (bound, never listening): were it used, the
    // endpoint could not listen at all.
    let taken = ClosedPort::new();
    for flag in [true, false] {
        let mut daemon = Launch::run(policy(taken.port())).listen_over_policy(free_port(), flag).start();
        daemon.wait_listening(Duration::from_secs(30));
        let doc = daemon.wait_passed(Duration::from_secs(30));
        assert_eq!(doc["status"], "healthy", "{doc:#}");
        assert_eq!(daemon.get("/livez").status, 200);
        assert!(std::net::TcpStream::connect(("127.0.0.1", taken.port())).is_err());

        // serve on the same boot takes it too.
        daemon.terminate();
        daemon.wait_exit(Duration::from_secs(30));
        let mut serve = daemon.then("serve").listen_over_policy(free_port(), flag).start();
        serve.wait_status("/api/v1/system/health", 200, Duration::from_secs(30));
    }
}

#[test]
fn a_bad_address_is_a_usage_error_naming_the_flag() {
    for command in ["run", "serve"] {
        for bad in ["localhost", "127.0.0.1:http", "127.0.0.1:70000", "[::1]"] {
            let out = Launch::command(&[command, "--listen", bad]).output_within(Duration::from_secs(60));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{command} --listen {bad}: {err}");
            assert!(err.contains("--listen") && err.contains(bad), "{command} --listen {bad}: {err}");
        }
        let out = Launch::command(&[command]).env("BOOTGATE_LISTEN", "nowhere").output_within(Duration::from_secs(60));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "BOOTGATE_LISTEN=nowhere {command}: {err}");
        assert!(err.contains("--listen") && err.contains("nowhere"), "{err}");
    }
}
