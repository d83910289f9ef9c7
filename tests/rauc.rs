//! The `rauc` backend against the real RAUC service (Debian's `rauc`) on a private
//! system bus: marks written by a real `bootgate run`, the fallback decision of a failed
//! gate, a hung RAUC, and `auto` finding RAUC on the bus.

mod support;

use std::time::{Duration, Instant};

use bootgate::boot::backend::rauc::{Bus, Rauc};
use bootgate::boot::backend::{Backend, RevertError};
use bootgate::boot::decide::RebootDecision;
use support::{Daemon, Launch, NotifySocket, RaucBus};

/// `bootgate run` with boot `backend`, `gate` and one `check`, serving on a free port, its
/// system bus being `bus`'s private one, never the machine's; `notify` is the socket the
/// caller bound, where the daemon reports.
fn run_on(bus: &RaucBus, backend: &str, gate: &str, check: &str, notify: &NotifySocket) -> Daemon {
    assert!(bus.address.starts_with("unix:path=") && bus.socket().starts_with(bus.dir()), "{}", bus.address);
    Launch::listening(format!("boot: {{backend: {backend}}}\ngate: {gate}\nchecks:\n  - {check}\n"))
        .in_dir(bus.dir())
        .notify(notify)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .start()
}

const PASSING: &str = "{name: root, kind: disk, path: /, min_free_percent: 0}";
const FAILING: &str = "{name: broken, kind: exec, command: ['/bin/false'], retries: 0}";

#[test]
fn a_passed_gate_marks_the_booted_slot_good_before_ready() {
    // Booted from B after an update, which the loader still holds bad until it is proven.
    let bus = RaucBus::start("B", "good", "bad", "B");
    let notify = NotifySocket::bind(bus.dir());
    let daemon = run_on(&bus, "rauc", "{deadline: 30s}", PASSING, &notify);
    let t0 = Instant::now();
    notify.wait_for("READY=1", t0 - Duration::from_secs(1), Duration::from_secs(20), |m| m.contains("READY=1"));
    assert_eq!(bus.state("B"), "good", "marked good before READY=1; calls: {}", bus.calls());
    assert!(bus.calls().lines().any(|l| l == "set-state B good"), "{}", bus.calls());
    assert_eq!(bus.state("A"), "good");

    let doc = daemon.health();
    let boot = &doc["boot"];
    assert_eq!(boot["backend"], "rauc", "{doc:#}");
    assert_eq!(boot["booted"], "B", "{doc:#}");
    assert_eq!(boot["primary"], "rootfs.1", "{doc:#}");
    let slots = boot["slots"].as_array().unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(slots.len(), 2, "{doc:#}");
    assert_eq!(slots[0]["name"], "rootfs.0");
    assert_eq!(slots[0]["bootname"], "A");
    assert_eq!(slots[1]["name"], "rootfs.1");
    assert_eq!(slots[1]["state"], "booted");
    assert_eq!(slots[1]["boot_status"], "good", "the facts are read again after the mark: {doc:#}");
    assert_eq!(boot["error"], serde_json::Value::Null, "{doc:#}");
    assert!(daemon.stderr().contains("boot backend rauc: boot.backend is rauc"), "{}", daemon.stderr());
    // The status page lists RAUC's slots, booted and primary marked, and names the backend.
    let page = daemon.get("/").body;
    assert!(page.contains("Boot backend: <strong>rauc</strong>"), "{page}");
    assert!(page.contains("<th>rootfs.1<td class=st>booted · boots next (primary)<td><i>boot name </i>B"), "{page}");
    assert!(page.contains("<th>rootfs.0<td class=st>"), "{page}");
    assert!(page.contains("marked good by the rauc backend"), "{page}");
    assert!(!page.contains("No A/B slots"), "{page}");
}

#[test]
fn a_failed_gate_with_on_failure_stay_marks_nothing() {
    let bus = RaucBus::start("B", "good", "good", "B");
    let notify = NotifySocket::bind(bus.dir());
    let mut daemon = run_on(&bus, "rauc", "{deadline: 10s, on_failure: stay}", FAILING, &notify);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).code(), Some(2), "{}", daemon.stderr());
    assert_eq!(bus.state("B"), "good", "calls: {}", bus.calls());
    assert!(!bus.calls().contains("set-state"), "{}", bus.calls());
    assert!(!notify.messages().iter().any(|(_, m)| m.contains("READY=1")));
}

#[test]
fn a_failed_gate_marks_the_slot_bad_and_asks_to_fall_back() {
    // The reboot request goes to the private bus too (zbus honours DBUS_SYSTEM_BUS_ADDRESS,
    // and run_on sets it): no logind answers there, so it fails and nothing reboots.
    let bus = RaucBus::start("B", "good", "good", "B");
    let notify = NotifySocket::bind(bus.dir());
    let gate = "{deadline: 10s, on_failure: reboot, reboot_delay: 0s}";
    let mut daemon = run_on(&bus, "rauc", gate, FAILING, &notify);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).code(), Some(2), "{}", daemon.stderr());
    assert_eq!(bus.state("B"), "bad", "calls: {}", bus.calls());
    assert_eq!(bus.state("A"), "good");
    let msgs = notify.texts();
    assert!(msgs.iter().any(|m| m.contains("to fall back to RAUC slot rootfs.0")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.contains("the reboot request failed")), "{msgs:#?}");
    let history = std::fs::read_to_string(bus.dir().join("state/history.jsonl")).unwrap();
    assert!(history.contains(r#""decision":"reboot""#), "{history}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn on_failure_reboots_only_while_the_other_slot_is_good() {
    for (other, expected) in
        [("good", RebootDecision::RebootTo { slot: "rootfs.1".into() }), ("bad", RebootDecision::StayNoFallback)]
    {
        let bus = RaucBus::start("A", "good", other, "A");
        let rauc = Rauc::new(Bus::Address(bus.address.clone()), Duration::from_secs(10));
        let decision = runtime().block_on(rauc.on_failure());
        assert_eq!(decision, expected, "B is {other}; calls: {}", bus.calls());
        assert_eq!(bus.state("A"), "bad", "marked bad either way");
        assert_eq!(bus.state("B"), other, "the other slot is left alone");
    }
}

#[test]
fn a_hung_rauc_is_a_bounded_failure_and_a_failed_gate_stays() {
    let bus = RaucBus::start("B", "good", "good", "B");
    bus.freeze();
    let rauc = Rauc::new(Bus::Address(bus.address.clone()), Duration::from_secs(1));
    let rt = runtime();
    let t0 = Instant::now();
    let decision = rt.block_on(rauc.on_failure());
    let took = t0.elapsed();
    // Not "no fallback": RAUC did not answer, so whether another slot can boot is unknown.
    match &decision {
        RebootDecision::StayBackendError { why } => assert!(why.contains("did not answer within 1s"), "{why}"),
        other => panic!("expected to stay for RAUC's silence, got {other:?}"),
    }
    assert!(took < Duration::from_secs(3), "{took:?}");
    let facts = serde_json::to_value(rt.block_on(rauc.facts())).unwrap();
    assert!(facts["error"].as_str().unwrap_or_default().contains("did not answer within 1s"), "{facts:#}");
    let passed = rt.block_on(rauc.on_pass());
    assert!(passed.as_ref().is_err_and(|e| e.contains("did not answer")), "{passed:?}");
    assert_eq!(bus.state("B"), "good", "nothing was marked");
}

#[test]
fn auto_picks_rauc_when_it_is_on_the_system_bus() {
    let mut bus = RaucBus::bus_only();
    let notify = NotifySocket::bind(bus.dir());
    // First without RAUC on the bus: auto must not pick it.
    let mut daemon = run_on(&bus, "auto", "{deadline: 30s}", PASSING, &notify);
    notify.wait_for("READY=1", Instant::now() - Duration::from_secs(1), Duration::from_secs(20), |m| {
        m.contains("READY=1")
    });
    let doc = daemon.health();
    assert!(doc.is_object(), "no health document");
    assert_ne!(doc["boot"]["backend"], "rauc", "{doc:#}");
    drop(daemon);

    bus.start_rauc("A", "bad", "good", "A");
    std::fs::remove_dir_all(bus.dir().join("run")).unwrap();
    let since = Instant::now();
    daemon = run_on(&bus, "auto", "{deadline: 30s}", PASSING, &notify);
    notify.wait_for("READY=1", since, Duration::from_secs(20), |m| m.contains("READY=1"));
    let doc = daemon.health();
    assert_eq!(doc["boot"]["backend"], "rauc", "{doc:#}");
    assert_eq!(bus.state("A"), "good", "marked by the backend auto chose");
    let log = daemon.stderr();
    assert!(log.contains("auto: de.pengutronix.rauc is on the system bus"), "{log}");
    drop(daemon);
}

#[test]
fn auto_picks_a_rauc_the_bus_starts_on_demand() {
    // Debian's rauc.service has no [Install]: at boot RAUC runs only once someone calls it.
    let bus = RaucBus::activatable("A", "bad", "good", "A");
    assert_eq!(bus.owner(), None, "nothing started RAUC yet");
    let notify = NotifySocket::bind(bus.dir());
    let daemon = run_on(&bus, "auto", "{deadline: 30s}", PASSING, &notify);
    notify.wait_for("READY=1", Instant::now() - Duration::from_secs(1), Duration::from_secs(20), |m| {
        m.contains("READY=1")
    });
    let doc = daemon.health();
    assert_eq!(doc["boot"]["backend"], "rauc", "{doc:#}\n{}", daemon.stderr());
    assert_eq!(doc["boot"]["booted"], "A", "{doc:#}");
    assert_eq!(bus.state("A"), "good", "the bus started RAUC, which marked the slot");
    assert!(bus.owner().is_some());
    let log = daemon.stderr();
    assert!(log.contains("auto: de.pengutronix.rauc is activatable on the system bus"), "{log}");
}

/// A system bus that accepts every connection and never answers: a stand-in, since the
/// real dbus-daemon cannot be made to hang this way on purpose.
fn silent_bus(dir: &std::path::Path) -> (String, std::thread::JoinHandle<()>) {
    let path = dir.join("silent-bus");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for conn in listener.incoming().take(16).flatten() {
            open.push(conn);
        }
    });
    (format!("unix:path={}", path.display()), held)
}

#[test]
fn auto_asking_a_wedged_bus_holds_no_check_back() {
    let dir = tempfile::tempdir().unwrap();
    let (address, _held) = silent_bus(dir.path());
    let notify = NotifySocket::bind(dir.path());
    let policy = format!(
        "boot: {{backend: auto}}
gate: {{deadline: 30s}}
checks:
  - {PASSING}
"
    );
    let mut daemon =
        Launch::listening(policy).in_dir(dir.path()).notify(&notify).env("DBUS_SYSTEM_BUS_ADDRESS", &address).start();
    notify.wait_for("READY=1", Instant::now() - Duration::from_secs(1), Duration::from_secs(30), |m| {
        m.contains("READY=1")
    });
    let msgs = notify.texts();
    let position =
        |what: &str| msgs.iter().position(|m| m.contains(what)).unwrap_or_else(|| panic!("{what}: {msgs:#?}"));
    // The checks ran, and the gate decided, while the bus was still being asked.
    let waiting = position("STATUS=gate decided; waiting for the boot backend");
    assert!(waiting < position("READY=1"), "{msgs:#?}");
    assert!(daemon.stderr().contains("boot backend none"), "{}", daemon.stderr());
    daemon.kill();
}

#[test]
fn a_revert_marks_the_booted_slot_bad_and_the_good_one_active() {
    // Booted from B, the update RAUC made primary; A is the good slot it replaced.
    let bus = RaucBus::start("B", "good", "good", "B");
    let rauc = Rauc::new(Bus::Address(bus.address.clone()), Duration::from_secs(10));
    let rt = runtime();
    assert_eq!(rauc.revertible(), Ok(()), "nothing read yet (RAUC slow to start): the revert looks itself");
    rt.block_on(rauc.facts());
    assert_eq!(rauc.revertible(), Ok(()));
    let reverted = rt.block_on(rauc.revert()).unwrap_or_else(|e| panic!("{e}; calls: {}", bus.calls()));
    assert_eq!((reverted.booted.as_str(), reverted.fallback.as_str()), ("RAUC slot rootfs.1", "RAUC slot rootfs.0"));
    assert_eq!(bus.state("B"), "bad", "calls: {}", bus.calls());
    assert_eq!(bus.state("A"), "good");
    assert_eq!(std::fs::read_to_string(bus.dir().join("primary")).unwrap().trim(), "A", "calls: {}", bus.calls());
    let calls = bus.calls();
    let (bad, primary) = (calls.find("set-state B bad"), calls.find("set-primary A"));
    assert!(bad.is_some() && primary.is_some() && bad < primary, "bad first, then active: {calls}");
    // RAUC's own view agrees: rootfs.1 is bad, and rootfs.0 boots next.
    let status = rt.block_on(rauc.status()).unwrap();
    assert_eq!(status.primary.as_deref(), Some("rootfs.0"), "{status:?}");
    assert!(status.slots.iter().any(|s| s.name == "rootfs.1" && s.boot_status.as_deref() == Some("bad")), "{status:?}");
}

#[test]
fn a_revert_with_no_good_slot_left_is_refused_and_marks_nothing() {
    // A was good at start (armed), and went bad before the failure came.
    let bus = RaucBus::start("B", "good", "good", "B");
    let rauc = Rauc::new(Bus::Address(bus.address.clone()), Duration::from_secs(10));
    let rt = runtime();
    rt.block_on(rauc.facts());
    assert_eq!(rauc.revertible(), Ok(()));
    std::fs::write(bus.dir().join("state.A"), "bad\n").unwrap();
    let before = bus.calls().lines().filter(|l| l.starts_with("set-")).count();
    match rt.block_on(rauc.revert()) {
        Err(RevertError::NoFallback) => {}
        other => panic!("expected no fallback, got {other:?}; calls: {}", bus.calls()),
    }
    assert_eq!(bus.calls().lines().filter(|l| l.starts_with("set-")).count(), before, "{}", bus.calls());
    assert_eq!(bus.state("B"), "good", "the only good slot stays good");

    // Bad already at start: the window is not armed, and says why.
    let bus = RaucBus::start("B", "bad", "good", "B");
    let rauc = Rauc::new(Bus::Address(bus.address.clone()), Duration::from_secs(10));
    rt.block_on(rauc.facts());
    let why = rauc.revertible().unwrap_err();
    assert!(why.starts_with("not armed: no other slot"), "{why}");
}

#[test]
fn a_hung_rauc_fails_the_revert_within_its_bound() {
    let bus = RaucBus::start("B", "good", "good", "B");
    let rauc = Rauc::new(Bus::Address(bus.address.clone()), Duration::from_secs(1));
    let rt = runtime();
    rt.block_on(rauc.facts());
    bus.freeze();
    let t0 = Instant::now();
    match rt.block_on(rauc.revert()) {
        Err(RevertError::Failed { why, .. }) => assert!(why.contains("did not answer within 1s"), "{why}"),
        other => panic!("expected a failed revert, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(bus.state("B"), "good", "nothing was marked");
}

#[test]
fn a_late_failure_inside_the_window_reverts_through_rauc() {
    let bus = RaucBus::start("B", "good", "good", "B");
    let notify = NotifySocket::bind(bus.dir());
    let broken = bus.dir().join("broken");
    let check =
        format!("{{name: api, kind: exec, command: [/bin/sh, -c, 'test ! -e {}'], retries: 0}}", broken.display());
    let policy = format!(
        "boot: {{backend: rauc}}\ngate: {{deadline: 30s, reboot_delay: 0s}}\nruntime: {{interval: 1s}}\n\
         rollback: {{window: 5m, failing_for: 2s}}\nchecks:\n  - {check}\n"
    );
    let daemon = Launch::listening(policy)
        .in_dir(bus.dir())
        .notify(&notify)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .start();
    let t0 = Instant::now();
    notify.wait_for("READY=1", t0 - Duration::from_secs(1), Duration::from_secs(20), |m| m.contains("READY=1"));
    assert_eq!(bus.state("B"), "good", "marked good at the pass: {}", bus.calls());
    let doc = daemon.health();
    assert_eq!(doc["rollback"]["armed"], true, "{doc:#}");

    std::fs::write(&broken, "").unwrap();
    let broke = Instant::now();
    notify.wait_for("the revert", broke, Duration::from_secs(30), |m| m.contains("reverted RAUC slot rootfs.1"));
    assert_eq!(bus.state("B"), "bad", "calls: {}", bus.calls());
    assert_eq!(std::fs::read_to_string(bus.dir().join("primary")).unwrap().trim(), "A", "calls: {}", bus.calls());
    let status = notify.texts().into_iter().find(|m| m.contains("reverted RAUC slot rootfs.1")).unwrap();
    assert!(
        status.contains("after its gate: api (failing for") && status.contains("to fall back to RAUC slot rootfs.0")
    );
    let history = std::fs::read_to_string(bus.dir().join("state/history.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(line["decision"], "reverted", "{line:#}");
}
