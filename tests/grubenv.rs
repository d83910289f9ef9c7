//! The `grubenv` backend: the environment block writer against Debian's own
//! `grub-editenv`, and greenboot's handshake written by a real `bootgate run`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bootgate::boot::backend::grubenv::{pass as grubenv_pass, reboots as grubenv_reboots};
use bootgate::boot::grubenv::Env;
use support::{Launch, NotifySocket};

/// `grub-editenv FILE ARGS…`; a missing tool fails the test (build/deps.sh installs grub-common).
fn editenv(file: &Path, args: &[&str]) -> String {
    let out = Command::new("grub-editenv")
        .arg(file)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run grub-editenv ({e}): install grub-common (build/deps.sh)"));
    assert!(out.status.success(), "grub-editenv {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_block_is_byte_for_byte_what_grub_editenv_writes() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("theirs");
    editenv(&theirs, &["create"]);
    editenv(&theirs, &["set", "saved_entry=0", "boot_counter=3", "boot_success=0", "odd=a\\b"]);
    let mut ours = Env::default();
    for (k, v) in [("saved_entry", "0"), ("boot_counter", "3"), ("boot_success", "0"), ("odd", "a\\b")] {
        ours.set(k, v);
    }
    assert_eq!(ours.render().unwrap(), std::fs::read(&theirs).unwrap(), "the same variables, the same 1024 bytes");
    assert_eq!(Env::read(&theirs).unwrap(), ours, "grub-editenv's block reads back");

    // greenboot's pass, written by us, read by grub-editenv.
    grubenv_pass(&theirs).unwrap();
    assert_eq!(editenv(&theirs, &["list"]), "saved_entry=0\nboot_success=1\nodd=a\\b\n");
    assert_eq!(std::fs::metadata(&theirs).unwrap().len(), 1024);
}

#[test]
fn a_failed_boot_reboots_until_grub_has_fallen_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    editenv(&file, &["create"]);
    assert_eq!(grubenv_reboots(&file).unwrap(), None, "no boot_counter: not greenboot's handshake");
    // At 0 GRUB's script boots the previous deployment: the reboot is the fallback.
    for (counter, reboots) in [("2", Some(2)), ("1", Some(1)), ("0", Some(0)), ("-1", None)] {
        editenv(&file, &["set", &format!("boot_counter={counter}"), "boot_success=0"]);
        assert_eq!(grubenv_reboots(&file).unwrap(), reboots, "boot_counter={counter}");
    }
    std::fs::write(&file, "boot_counter=2\n").unwrap();
    let e = grubenv_reboots(&file).unwrap_err().to_string();
    assert!(e.contains("is not a GRUB environment block") && e.contains("not 1024"), "{e}");
}

#[test]
fn a_passed_gate_writes_greenboots_handshake_before_ready() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    editenv(&file, &["create"]);
    editenv(&file, &["set", "boot_counter=2", "boot_success=0"]);
    let notify = NotifySocket::bind(dir.path());
    let policy = format!(
        "boot: {{backend: grubenv, grubenv: {}}}\nchecks:\n  - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n",
        file.display()
    );
    let t0 = Instant::now();
    let daemon = Launch::listening(policy).in_dir(dir.path()).notify(&notify).start();
    notify.wait_for("READY=1", t0, Duration::from_secs(10), |m| m.contains("READY=1"));
    assert_eq!(editenv(&file, &["list"]), "boot_success=1\n", "marked good before READY=1");
    let doc = daemon.get("/api/v1/system/health").json();
    assert_eq!(doc["boot"]["backend"], "grubenv", "{doc:#}");
    assert_eq!(doc["boot"]["boot_success"], true, "{doc:#}");
}

#[test]
fn a_mark_that_fails_is_said_everywhere_an_operator_looks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    // A block with no room left for `boot_success=1`: the mark cannot be written.
    let mut full = Env::default();
    full.set("pad", &"x".repeat(1024 - bootgate::boot::grubenv::HEADER.len() - "pad=\n".len() - 5));
    std::fs::write(&file, full.render().unwrap()).unwrap();
    let notify = NotifySocket::bind(dir.path());
    let policy = format!(
        "boot: {{backend: grubenv, grubenv: {}}}\nchecks:\n  - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n",
        file.display()
    );
    let t0 = Instant::now();
    let daemon = Launch::listening(policy).in_dir(dir.path()).notify(&notify).start();
    notify.wait_for("READY=1", t0, Duration::from_secs(10), |m| m.contains("READY=1"));
    assert!(notify.ready_status().contains("marking this boot good failed"), "{}", notify.ready_status());
    let doc = daemon.get("/api/v1/system/health").json();
    assert_eq!(doc["boot"]["mark"]["done"], false, "{doc:#}");
    assert!(doc["boot"]["mark"]["note"].as_str().unwrap().contains("do not fit"), "{doc:#}");
    assert!(daemon.get("/metrics").body.contains("\nbootgate_boot_marked 0\n"));
    assert!(daemon.get("/").body.contains("Marking this boot good failed"));
}

#[test]
fn a_restart_after_a_passed_gate_marks_the_boot_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    editenv(&file, &["create"]);
    editenv(&file, &["set", "boot_counter=2", "boot_success=0"]);
    let policy = format!(
        "boot: {{backend: grubenv, grubenv: {}}}\nchecks:\n  - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n",
        file.display()
    );
    let notify = NotifySocket::bind(dir.path());
    let mut daemon = Launch::listening(policy.clone()).in_dir(dir.path()).notify(&notify).start();
    notify.wait_for("READY=1", Instant::now(), Duration::from_secs(10), |m| m.contains("READY=1"));
    daemon.kill();
    // As if the first run had died between its verdict and its mark.
    editenv(&file, &["set", "boot_counter=2", "boot_success=0"]);
    let again = NotifySocket::bind(&dir.path().join("run"));
    let _daemon = Launch::listening(policy).in_dir(dir.path()).notify(&again).start();
    again.wait_for("READY=1", Instant::now(), Duration::from_secs(10), |m| m.contains("READY=1"));
    assert!(again.ready_status().contains("gate passed earlier in this boot"), "{}", again.ready_status());
    assert_eq!(editenv(&file, &["list"]), "boot_success=1\n", "the restart marked the boot again");
}

/// A `bootgate run` marking `M/grubenv`, where M is a tmpfs mounted read-only in a mount
/// namespace of its own (nothing leaks to the host's table): the block is copied from
/// `block`, and with `full` the tmpfs is filled to the last page before the remount to
/// read-only, so that no write can succeed there.
fn start_on_readonly_boot(dir: &Path, block: &Path, full: bool, notify: &NotifySocket) -> (support::Daemon, PathBuf) {
    start_on_readonly(dir, block, full, notify, None)
}

/// [`start_on_readonly_boot`], the policy naming `link` (a symlink to `M/grubenv`,
/// as Fedora's /boot/grub2/grubenv links into the ESP) when given.
fn start_on_readonly(
    dir: &Path,
    block: &Path,
    full: bool,
    notify: &NotifySocket,
    link: Option<&Path>,
) -> (support::Daemon, PathBuf) {
    let unshare = support::find_binary("unshare", "util-linux");
    let mount = dir.join("boot");
    std::fs::create_dir(&mount).unwrap();
    let named = match link {
        Some(link) => {
            std::os::unix::fs::symlink(mount.join("grubenv"), link).unwrap();
            link.to_path_buf()
        }
        None => mount.join("grubenv"),
    };
    let policy = format!(
        "boot: {{backend: grubenv, grubenv: {}}}\nchecks:\n  - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n",
        named.display()
    );
    let fill = if full { "{ dd if=/dev/zero of=\"$BOOT/fill\" bs=4k 2>/dev/null || true; } &&" } else { "" };
    let script = format!(
        "mount -t tmpfs -o size=256k bootgate-test \"$BOOT\" && cp \"$BLOCK\" \"$BOOT/grubenv\" && {fill} \
         mount -o remount,ro \"$BOOT\" && exec \"$@\""
    );
    let daemon = Launch::listening(policy)
        .in_dir(dir)
        .notify(notify)
        .env("BOOT", &mount)
        .env("BLOCK", block)
        .through(move |bootgate| {
            let mut cmd = Command::new(unshare);
            cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c", &script, "sh"]).args(bootgate);
            cmd
        })
        .start();
    (daemon, mount)
}

/// `ARGS…` run in the mount namespace of process `pid`.
fn inside(pid: u32, args: &[&str]) -> String {
    let out = Command::new(support::find_binary("nsenter", "util-linux"))
        .args(["-t", &pid.to_string(), "-m", "--"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_read_only_boot_is_remounted_for_the_mark_and_read_only_again() {
    let dir = tempfile::tempdir().unwrap();
    let block = dir.path().join("block");
    editenv(&block, &["create"]);
    editenv(&block, &["set", "boot_counter=2", "boot_success=0"]);
    let notify = NotifySocket::bind(dir.path());
    let t0 = Instant::now();
    let (daemon, mount) = start_on_readonly_boot(dir.path(), &block, false, &notify);
    notify.wait_for("READY=1", t0, Duration::from_secs(20), |m| m.contains("READY=1"));
    let (pid, grubenv) = (daemon.pid(), mount.join("grubenv"));
    let shown = |p: &Path| p.display().to_string();
    let listed = inside(pid, &["grub-editenv", &shown(&grubenv), "list"]);
    assert_eq!(listed, "boot_success=1\n", "written through the read-only mount: {}", daemon.stderr());
    let options = inside(pid, &["findmnt", "-n", "-o", "OPTIONS", &shown(&mount)]);
    assert!(options.starts_with("ro,"), "read-only again after the mark: {options}\n{}", daemon.stderr());
    let doc = daemon.get("/api/v1/system/health").json();
    assert_eq!(doc["boot"]["mark"]["done"], true, "{doc:#}");
    let note = doc["boot"]["mark"]["note"].as_str().unwrap();
    assert!(note.contains("remounted read-write for the write, then read-only"), "{note}");
    assert!(daemon.get("/metrics").body.contains("\nbootgate_boot_marked 1\n"));
    let host = Command::new("findmnt").arg(&mount).output().unwrap();
    assert!(!host.status.success(), "the test's mount stays in its own namespace");
}

#[test]
fn a_read_only_boot_that_cannot_take_the_write_is_a_failed_mark() {
    let dir = tempfile::tempdir().unwrap();
    let block = dir.path().join("block");
    editenv(&block, &["create"]);
    editenv(&block, &["set", "boot_counter=2", "boot_success=0"]);
    let notify = NotifySocket::bind(dir.path());
    let t0 = Instant::now();
    let (daemon, mount) = start_on_readonly_boot(dir.path(), &block, true, &notify);
    notify.wait_for("READY=1", t0, Duration::from_secs(20), |m| m.contains("READY=1"));
    assert!(notify.ready_status().contains("marking this boot good failed"), "{}", notify.ready_status());
    let pid = daemon.pid();
    let shown = |p: &Path| p.display().to_string();
    let listed = inside(pid, &["grub-editenv", &shown(&mount.join("grubenv")), "list"]);
    assert_eq!(listed, "boot_counter=2\nboot_success=0\n", "the block is as it was");
    let options = inside(pid, &["findmnt", "-n", "-o", "OPTIONS", &shown(&mount)]);
    assert!(options.starts_with("ro,"), "read-only again after the failed write: {options}");
    let doc = daemon.get("/api/v1/system/health").json();
    assert_eq!(doc["boot"]["mark"]["done"], false, "{doc:#}");
    let note = doc["boot"]["mark"]["note"].as_str().unwrap();
    assert!(note.contains("No space left on device") && note.contains("then read-only"), "{note}");
    assert!(daemon.get("/metrics").body.contains("\nbootgate_boot_marked 0\n"));
    let verdict: serde_json::Value =
        serde_json::from_slice(&std::fs::read(daemon.run_dir().join("verdict.json")).unwrap()).unwrap();
    assert_eq!(verdict["mark"]["done"], false, "{verdict:#}");
    let history = std::fs::read_to_string(daemon.state_dir().join("history.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(line["mark"]["done"], false, "the boot's history line says it was never marked: {line:#}");
    let motd = std::fs::read_to_string(dir.path().join("motd.d/bootgate")).unwrap();
    assert!(motd.contains("NOT marked good") && motd.contains("marking failed: cannot mark this boot good"), "{motd}");
}

/// Where a fallback test's stand-ins record how they were called.
const CALLS: &str = "calls";

/// Neither bootc nor rpm-ostree can run here (no ostree deployments, no bootc host), so
/// the rollback is tested with stand-ins of the same names, first and alone on PATH,
/// that record their command line: what is tested is the choice and the exact argv.
fn stand_in(dir: &Path, name: &str, exit: i32) {
    use std::os::unix::fs::PermissionsExt as _;
    let calls = dir.join(CALLS);
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"${{0##*/}} $*\" >> '{}'\necho 'Moving the rollback deployment to be the default'\n\
         [ {exit} -eq 0 ] || echo 'error: no rollback deployment' >&2\nexit {exit}\n",
        calls.display()
    );
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A passing `bootgate run` on a block with `boot_counter` (greenboot's fallback: -1),
/// PATH only `tools` (the stand-ins' dir), and `extra` in its `boot:` section.
fn start_counted(dir: &Path, counter: &str, tools: &Path, extra: &str) -> (support::Daemon, PathBuf) {
    let file = dir.join("grubenv");
    editenv(&file, &["create"]);
    editenv(&file, &["set", &format!("boot_counter={counter}"), "boot_success=0"]);
    let policy = format!(
        "boot: {{backend: grubenv, grubenv: {}{extra}}}\nchecks:\n  - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n",
        file.display()
    );
    (Launch::listening(policy).in_dir(dir).env("PATH", tools).start(), file)
}

/// The health document's `boot.permanent`, once the rollback after the verdict has run.
fn permanent(daemon: &support::Daemon) -> serde_json::Value {
    support::wait(Duration::from_secs(20), "boot.permanent in the health document", || {
        // Connection refused until the endpoint has bound.
        let doc = daemon.request("GET", "/api/v1/system/health", &[]).ok()?.json();
        Some(doc["boot"]["permanent"].clone()).filter(|p| !p.is_null())
    })
}

fn calls(tools: &Path) -> String {
    std::fs::read_to_string(tools.join(CALLS)).unwrap_or_default()
}

#[test]
fn a_fallback_boot_is_kept_by_bootc_before_rpm_ostree_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    stand_in(&tools, "bootc", 0);
    stand_in(&tools, "rpm-ostree", 0);
    let (daemon, file) = start_counted(dir.path(), "-1", &tools, "");
    let kept = permanent(&daemon);
    assert_eq!(kept["command"], "bootc rollback", "{kept:#}");
    assert_eq!(kept["done"], true, "{kept:#}");
    assert!(kept["note"].as_str().unwrap().contains("Moving the rollback deployment"), "{kept:#}");
    assert_eq!(calls(&tools), "bootc rollback\n", "bootc alone, once");
    assert_eq!(editenv(&file, &["list"]), "boot_success=1\n", "boot_counter unset: the next boot rolls back no more");

    let verdict: serde_json::Value =
        serde_json::from_slice(&std::fs::read(daemon.run_dir().join("verdict.json")).unwrap()).unwrap();
    assert_eq!(verdict["permanent"], kept, "{verdict:#}");
    let history = std::fs::read_to_string(daemon.state_dir().join("history.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(line["permanent"], kept, "{line:#}");
    let motd = std::fs::read_to_string(dir.path().join("motd.d/bootgate")).unwrap();
    assert!(motd.contains("fallback made permanent by `bootc rollback`"), "{motd}");
}

#[test]
fn rpm_ostree_keeps_it_where_bootc_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    stand_in(&tools, "rpm-ostree", 0);
    let (daemon, _) = start_counted(dir.path(), "-1", &tools, "");
    assert_eq!(permanent(&daemon)["command"], "rpm-ostree rollback");
    assert_eq!(calls(&tools), "rpm-ostree rollback\n");
}

#[test]
fn the_configured_command_keeps_it_where_neither_tool_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    stand_in(&tools, "myupdater", 0);
    let extra = format!(", fallback_command: ['{}', rollback, --now]", tools.join("myupdater").display());
    let (daemon, _) = start_counted(dir.path(), "-1", &tools, &extra);
    let kept = permanent(&daemon);
    assert_eq!(kept["command"], format!("{} rollback --now", tools.join("myupdater").display()), "{kept:#}");
    assert_eq!(calls(&tools), "myupdater rollback --now\n");
}

#[test]
fn a_boot_that_is_no_fallback_rolls_nothing_back() {
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    stand_in(&tools, "bootc", 0);
    let notify = NotifySocket::bind(dir.path());
    let t0 = Instant::now();
    let file = dir.path().join("grubenv");
    editenv(&file, &["create"]);
    editenv(&file, &["set", "boot_counter=2", "boot_success=0"]);
    let policy = format!(
        "boot: {{backend: grubenv, grubenv: {}}}\nchecks:\n  - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n",
        file.display()
    );
    let daemon = Launch::listening(policy).in_dir(dir.path()).env("PATH", &tools).notify(&notify).start();
    notify.wait_for("READY=1", t0, Duration::from_secs(10), |m| m.contains("READY=1"));
    // What follows READY=1 in the same task has had ample time (a rollback would run at once).
    std::thread::sleep(Duration::from_millis(500));
    let doc = daemon.get("/api/v1/system/health").json();
    assert!(doc["boot"].get("permanent").is_none(), "{doc:#}");
    assert_eq!(calls(&tools), "", "bootc was not run");
}

#[test]
fn a_rollback_that_fails_is_said_and_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    stand_in(&tools, "bootc", 1);
    let (daemon, file) = start_counted(dir.path(), "-1", &tools, "");
    let kept = permanent(&daemon);
    assert_eq!(kept["done"], false, "{kept:#}");
    assert!(kept["note"].as_str().unwrap().contains("error: no rollback deployment"), "{kept:#}");
    assert!(!editenv(&file, &["list"]).contains("boot_counter"), "cleared: the next boot does not try again");
    let log = daemon.stderr();
    assert!(log.contains("fallback not made permanent: `bootc rollback` failed"), "{log}");
    let motd = std::fs::read_to_string(dir.path().join("motd.d/bootgate")).unwrap();
    assert!(motd.contains("fallback NOT made permanent"), "{motd}");
}

#[test]
fn a_symlinked_block_on_a_read_only_esp_is_written_through_and_the_link_stays() {
    let dir = tempfile::tempdir().unwrap();
    let block = dir.path().join("block");
    editenv(&block, &["create"]);
    editenv(&block, &["set", "boot_counter=2", "boot_success=0"]);
    // The link lives on a writable file system, its target on the read-only mount.
    let link = dir.path().join("grubenv-link");
    let notify = NotifySocket::bind(dir.path());
    let t0 = Instant::now();
    let (daemon, mount) = start_on_readonly(dir.path(), &block, false, &notify, Some(&link));
    notify.wait_for("READY=1", t0, Duration::from_secs(20), |m| m.contains("READY=1"));
    let pid = daemon.pid();
    let shown = |p: &Path| p.display().to_string();
    let listed = inside(pid, &["grub-editenv", &shown(&mount.join("grubenv")), "list"]);
    assert_eq!(listed, "boot_success=1\n", "the target has the mark: {}", daemon.stderr());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
    let options = inside(pid, &["findmnt", "-n", "-o", "OPTIONS", &shown(&mount)]);
    assert!(options.starts_with("ro,"), "the target's mount is read-only again: {options}");
}

/// A `bootgate run` on the grubenv backend with a rollback window, whose one critical
/// check passes until `DIR/broken` exists; its reboot request goes to a bus that is not
/// there, so nothing reboots. The block at `DIR/grubenv` holds `vars` (greenboot's
/// handshake as the updater left it).
fn start_windowed(dir: &Path, vars: &[&str], notify: &NotifySocket) -> (support::Daemon, PathBuf) {
    let file = dir.join("grubenv");
    editenv(&file, &["create"]);
    if !vars.is_empty() {
        editenv(&file, &[&["set"], vars].concat());
    }
    let broken = dir.join("broken");
    let policy = format!(
        "boot: {{backend: grubenv, grubenv: {}}}
gate: {{deadline: 30s, reboot_delay: 0s}}
runtime: {{interval: 1s}}
rollback: {{window: 5m, failing_for: 2s}}
checks:
  - {{name: api, kind: exec, command: [/bin/sh, -c, 'test ! -e {}'], retries: 0}}
",
        file.display(),
        broken.display()
    );
    let bus = format!("unix:path={}", dir.join("no-bus/system_bus_socket").display());
    let daemon = Launch::listening(policy).in_dir(dir).notify(notify).env("DBUS_SYSTEM_BUS_ADDRESS", &bus).start();
    (daemon, file)
}

#[test]
fn a_late_failure_inside_the_window_makes_grub_fall_back() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let t0 = Instant::now();
    let (daemon, file) = start_windowed(dir.path(), &["boot_counter=2", "boot_success=0"], &notify);
    notify.wait_for("READY=1", t0, Duration::from_secs(20), |m| m.contains("READY=1"));
    assert_eq!(editenv(&file, &["list"]), "boot_success=1\n", "marked good at the pass");
    let doc = daemon.health();
    assert_eq!(doc["rollback"]["armed"], true, "GRUB was counting this boot: {doc:#}");

    std::fs::write(dir.path().join("broken"), "").unwrap();
    let broke = Instant::now();
    notify.wait_for("the revert", broke, Duration::from_secs(30), |m| m.contains("reverted the booted deployment"));
    // greenboot's script reads this as a failed boot with its count used up: it boots
    // the previous deployment and sets boot_counter=-1.
    assert_eq!(editenv(&file, &["list"]), "boot_success=0\nboot_counter=0\n", "{}", daemon.stderr());
    let status = notify.texts().into_iter().find(|m| m.contains("reverted the booted deployment")).unwrap();
    assert!(status.contains("api (failing for"), "{status}");
    assert!(status.contains("to fall back to the previous deployment (boot_success=0, boot_counter=0"), "{status}");
    let history = std::fs::read_to_string(daemon.state_dir().join("history.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(line["decision"], "reverted", "{line:#}");
    assert!(daemon.stderr().contains("the reboot request failed"), "{}", daemon.stderr());
}

#[test]
fn a_boot_grub_was_not_counting_arms_no_window() {
    for (vars, why) in [
        (&[][..], "boot_counter is not set"),
        (&["boot_counter=-1", "boot_success=0"][..], "this boot is GRUB's fallback (boot_counter=-1)"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let notify = NotifySocket::bind(dir.path());
        let t0 = Instant::now();
        let (daemon, file) = start_windowed(dir.path(), vars, &notify);
        notify.wait_for("READY=1", t0, Duration::from_secs(20), |m| m.contains("READY=1"));
        let doc = daemon.health();
        assert_eq!(doc["rollback"]["armed"], false, "{vars:?}: {doc:#}");
        let note = doc["rollback"]["note"].as_str().unwrap();
        assert!(note.starts_with("not armed: ") && note.contains(why), "{vars:?}: {note}");
        std::fs::write(dir.path().join("broken"), "").unwrap();
        // failing_for 2s at a 1s interval: a revert would have come within a few rounds.
        std::thread::sleep(Duration::from_secs(5));
        let listed = editenv(&file, &["list"]);
        assert!(!listed.contains("boot_counter=0"), "{vars:?}: nothing reverted: {listed}");
        assert!(!notify.texts().iter().any(|m| m.contains("reverted")), "{vars:?}: {:#?}", notify.texts());
    }
}
