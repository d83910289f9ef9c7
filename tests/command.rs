//! The `command` backend in a real `bootgate run`: the update stack's own programs
//! (small shell scripts written by the test, which record how they were called) mark
//! a passed boot before READY=1, mark a failed one bad before the reboot request, and
//! show their facts in the health document. The reboot request goes to a bus address
//! where nothing listens, never the machine's: it fails, and nothing reboots.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Daemon, Launch, NotifySocket};

const PASSING: &str = "{name: root, kind: disk, path: /, min_free_percent: 0}";
const FAILING: &str = "{name: broken, kind: exec, command: ['/bin/false'], retries: 0}";

/// `dir/updater`: appends its arguments to `dir/calls`, prints `said`, exits `exit`;
/// `status` prints a JSON object.
fn updater(dir: &Path, exit: i32, said: &str) -> PathBuf {
    let path = dir.join("updater");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{calls}'\n\
         if [ \"$1\" = status ]; then echo '{{\"pending\": \"B\", \"attempts\": 1}}'; exit 0; fi\n\
         echo '{said}'\nexit {exit}\n",
        calls = dir.join("calls").display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn calls(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("calls")).unwrap_or_default()
}

fn policy(updater: &Path, gate: &str, check: &str) -> String {
    let u = updater.display();
    format!(
        "boot:\n  backend: command\n  command:\n    mark_good: [{u}, commit]\n    mark_bad: [{u}, reject]\n    \
         revert: [{u}, rollback]\n    facts: [{u}, status]\n    timeout: 10s\ngate: {gate}\nchecks:\n  - {check}\n"
    )
}

/// A `bootgate run` whose gate fails (FAILING) and whose backend is `updater`, asking to
/// reboot `reboot_delay` after the failure; its notify socket is `notify`, and systemd's
/// watchdog expects a ping within `watchdog` when given.
fn failing_gate(
    dir: &Path,
    updater: &Path,
    notify: &NotifySocket,
    reboot_delay: &str,
    watchdog: Option<Duration>,
) -> Daemon {
    let gate = format!("{{deadline: 10s, on_failure: reboot, reboot_delay: {reboot_delay}}}");
    let launch = Launch::listening(policy(updater, &gate, FAILING)).in_dir(dir).notify(notify).without_system_bus();
    match watchdog {
        Some(every) => launch.watchdog(every).start(),
        None => launch.start(),
    }
}

#[test]
fn a_passed_gate_runs_mark_good_before_ready_and_shows_the_facts() {
    let dir = tempfile::tempdir().unwrap();
    let updater = updater(dir.path(), 0, "committed B");
    let notify = NotifySocket::bind(dir.path());
    let daemon = Launch::listening(policy(&updater, "{deadline: 30s}", PASSING))
        .in_dir(dir.path())
        .notify(&notify)
        .without_system_bus()
        .start();
    let t0 = Instant::now();
    notify.wait_for("READY=1", t0 - Duration::from_secs(1), Duration::from_secs(20), |m| m.contains("READY=1"));
    assert!(calls(dir.path()).lines().any(|l| l == "commit"), "mark_good ran before READY=1: {}", calls(dir.path()));
    assert!(!calls(dir.path()).contains("reject"), "{}", calls(dir.path()));
    let doc = daemon.get("/api/v1/system/health").json();
    assert_eq!(doc["boot"]["backend"], "command", "{doc:#}");
    assert_eq!(doc["boot"]["facts"]["pending"], "B", "{doc:#}");
    assert_eq!(doc["boot"]["mark"]["done"], true, "{doc:#}");
    assert!(doc["boot"]["mark"]["note"].as_str().unwrap().contains("committed B"), "{doc:#}");
}

#[test]
fn a_failed_gate_runs_mark_bad_then_asks_to_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let updater = updater(dir.path(), 0, "B rejected, A is next");
    let notify = NotifySocket::bind(dir.path());
    let mut daemon = failing_gate(dir.path(), &updater, &notify, "0s", None);
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)).code(), Some(2), "{}", daemon.stderr());
    assert_eq!(calls(dir.path()).lines().filter(|l| *l == "reject").count(), 1, "{}", calls(dir.path()));
    assert!(!calls(dir.path()).contains("commit"), "{}", calls(dir.path()));
    let msgs = notify.texts();
    assert!(msgs.iter().any(|m| m.contains("marked this boot bad (B rejected, A is next)")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.contains("the reboot request failed")), "{msgs:#?}");
    assert!(!msgs.iter().any(|m| m.contains("READY=1")), "{msgs:#?}");
    let history = std::fs::read_to_string(dir.path().join("state/history.jsonl")).unwrap();
    assert!(history.contains(r#""decision":"reboot""#), "{history}");
}

#[test]
fn the_watchdog_is_pinged_through_the_reboot_delay() {
    let dir = tempfile::tempdir().unwrap();
    let updater = updater(dir.path(), 0, "B rejected, A is next");
    let notify = NotifySocket::bind(dir.path());
    // A delay several times the watchdog's limit: without pings systemd would abort the
    // daemon mid-delay, and the restarted one would find the failed verdict and never reboot.
    let mut daemon = failing_gate(dir.path(), &updater, &notify, "3s", Some(Duration::from_millis(400)));
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)).code(), Some(2), "{}", daemon.stderr());
    let msgs = notify.messages();
    let first = |said: &str| {
        let found = msgs.iter().find(|(_, m)| m.contains(said)).map(|(at, _)| *at);
        found.unwrap_or_else(|| panic!("no message said {said:?}: {msgs:#?}"))
    };
    let (waiting, asked) = (first("rebooting in 3s"), first("the reboot request failed"));
    assert!(asked.duration_since(waiting) >= Duration::from_millis(2500), "the delay was not waited");
    let pinged = msgs.iter().filter(|(at, m)| *at > waiting && *at < asked && m.contains("WATCHDOG=1")).count();
    // 400 ms → a ping every 200 ms: about 15 in 3 s; a busy machine may delay some.
    assert!(pinged >= 5, "only {pinged} watchdog pings during a 3s reboot delay: {msgs:#?}");
}

#[test]
fn a_mark_bad_that_fails_keeps_the_boot_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let updater = updater(dir.path(), 3, "no other slot");
    let notify = NotifySocket::bind(dir.path());
    let mut daemon = failing_gate(dir.path(), &updater, &notify, "0s", None);
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)).code(), Some(2), "{}", daemon.stderr());
    let msgs = notify.texts();
    assert!(
        msgs.iter().any(|m| m.contains("exit status: 3): no other slot") && m.contains("manual intervention needed")),
        "{msgs:#?}"
    );
    assert!(!msgs.iter().any(|m| m.contains("the reboot request")), "no reboot was asked for: {msgs:#?}");
    let history = std::fs::read_to_string(dir.path().join("state/history.jsonl")).unwrap();
    assert!(history.contains(r#""decision":"stay_backend_error""#), "{history}");
}
