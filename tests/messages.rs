//! A check that cannot reach what it looks for says what it looked for: the bus
//! address, the socket and where its path came from, the filesystem path. Each runs
//! `bootgate check` with the environment set on the child only.

mod support;

use std::time::Duration;

use support::{check_with, message, result};

#[test]
fn systemd_names_the_bus_it_could_not_reach() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-bus").join("system_bus_socket");
    let address = format!("unix:path={}", socket.display());
    let policy = "version: 1\nchecks:\n  - {name: unit, kind: systemd, unit: sshd.service, retries: 0}\n";
    let (code, v, took, _) = check_with(policy, &[("DBUS_SYSTEM_BUS_ADDRESS", &address)]);
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
    let (code, v, took, _) = check_with(policy, &[("DOCKER_HOST", &host)]);
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
    let (code, v, _, _) = check_with(&policy, &[]);
    assert_eq!(code, 2, "{v:#}");
    let msg = message(&v, "data");
    let want = format!("cannot read the free space of {} (statvfs): ", missing.display());
    assert!(msg.starts_with(&want) && msg.contains("No such file or directory"), "{msg}");
}
