//! `GET /api/v1/system/services/{name}` against a real D-Bus system bus: names that are
//! not unit names get 400, a bus without systemd on it (this machine's tests run without
//! systemd as PID 1) a 500 that says why, a frozen bus a 500 within the route's bound.
//! The answers of a real systemd (200 with `healthy`, 404 for an unknown unit) are
//! asserted in the VM (`vm-tests/scenarios/healthy-update.sh`).

mod support;

use std::time::{Duration, Instant};

use support::{Launch, RaucBus};

/// A policy whose gate passes at once.
const CHECKS: &str = "checks:\n  - {name: root, kind: disk, path: /, min_free_percent: 0}\n";

#[test]
fn names_are_checked_and_a_bus_without_systemd_or_a_frozen_one_is_a_500_that_says_why() {
    let bus = RaucBus::bus_only();
    let mut daemon = Launch::listening(CHECKS).env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address).start();
    daemon.wait_passed(Duration::from_secs(30));

    for bad in ["a%20b", "..%2Fetc", "x%3Breboot", "a.notatype"] {
        let reply = daemon.get(&format!("/api/v1/system/services/{bad}"));
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{bad}");
        assert!(reply.json()["detail"].as_str().unwrap().contains("unit"), "{bad}: {}", reply.body);
    }

    let reply = daemon.get("/api/v1/system/services/bootgate");
    assert_eq!(reply.status, 500, "{}", reply.body);
    let problem = reply.json();
    assert_eq!(problem["name"], "bootgate.service", "a bare name is a service, as systemctl reads it");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with("cannot ask systemd about `bootgate.service` over the system D-Bus at "), "{detail}");
    assert!(detail.contains(&bus.address) && detail.contains("systemd1"), "{detail}");

    bus.freeze_bus();
    let asked = Instant::now();
    let reply = daemon.get("/api/v1/system/services/sshd.service");
    let took = asked.elapsed();
    bus.thaw_bus();
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert!(
        reply.json()["detail"].as_str().unwrap().contains("did not answer about `sshd.service` within 3s"),
        "{}",
        reply.body
    );
    // The bound is 3 s; the margin is for a busy machine.
    assert!(took >= Duration::from_millis(2900) && took < Duration::from_secs(20), "answered after {took:?}");
}
