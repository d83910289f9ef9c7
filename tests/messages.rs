//! A check that cannot reach what it looks for says what it looked for: the bus
//! address, the socket and where its path came from, the filesystem path. Each runs
//! `bootgate check` with the environment set on the child only.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{message, result};

/// `bootgate check --format json` on `policy` with `env` added to the child's environment.
fn check_env(policy: &str, env: &[(&str, &str)]) -> (i32, Value, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bootgate"));
    cmd.args(["check", "--format", "json", "--policy", path.to_str().unwrap()])
        .env_remove("BOOTGATE_POLICY")
        .env_remove("DOCKER_HOST")
        .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
        .envs(env.iter().copied());
    let started = Instant::now();
    let out = cmd.output().expect("bootgate runs");
    let took = started.elapsed();
    let verdict: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON verdict ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), verdict, took)
}

#[test]
fn systemd_names_the_bus_it_could_not_reach() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-bus").join("system_bus_socket");
    let address = format!("unix:path={}", socket.display());
    let policy = "version: 1\nchecks:\n  - {name: unit, kind: systemd, unit: sshd.service, retries: 0}\n";
    let (code, v, took) = check_env(policy, &[("DBUS_SYSTEM_BUS_ADDRESS", &address)]);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(result(&v, "unit")["result"], "fail", "{v:#}");
    let msg = message(&v, "unit");
    let want =
        format!("sshd.service: cannot connect to the system D-Bus at {address} (from DBUS_SYSTEM_BUS_ADDRESS): ");
    assert!(msg.starts_with(&want), "{msg}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn docker_names_the_socket_and_the_docker_host_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let host = format!("unix://{}", socket.display());
    let policy = "version: 1\nchecks:\n  - {name: engine, kind: docker, retries: 0}\n  - {name: apps, kind: containers, retries: 0}\n";
    let (code, v, took) = check_env(policy, &[("DOCKER_HOST", &host)]);
    assert_eq!(code, 2, "{v:#}");
    let want = format!("docker socket not found: {} (from DOCKER_HOST={host})", socket.display());
    for name in ["engine", "apps"] {
        assert_eq!(message(&v, name), want, "{name}");
    }
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn disk_names_the_path_it_could_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-mounted");
    let policy =
        format!("version: 1\nchecks:\n  - {{name: data, kind: disk, retries: 0, path: '{}'}}\n", missing.display());
    let (code, v, _) = check_env(&policy, &[]);
    assert_eq!(code, 2, "{v:#}");
    let msg = message(&v, "data");
    let want = format!("cannot read the free space of {} (statvfs): ", missing.display());
    assert!(msg.starts_with(&want) && msg.contains("No such file or directory"), "{msg}");
}
