//! The `grubenv` backend: the environment block writer against Debian's own
//! `grub-editenv`, and greenboot's handshake written by a real `bootgate run`.

mod support;

use std::path::Path;
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
