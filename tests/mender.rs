//! The shipped Mender state script `integrations/mender/ArtifactCommit_Enter_00_bootgate`
//! against a real `bootgate run`: on its own (21 while the gate or its soak runs, 0 once
//! it passed, 1 once it failed), and inside the real Mender client (Debian's
//! `mender-client` 3.4, standalone) installing an Artifact built by the real
//! `mender-artifact` with the script in it: committed after a pass, rolled back after a
//! failure, and rolled back when the gate outlasts Mender's retries.
//!
//! The state script finds the gate's run dir through `BOOTGATE_RUN_DIR` in the
//! environment Mender gives its state scripts (its own), as on a device with a run dir
//! other than bootgate's default. Mender's fixed paths are bound over in a private
//! mount namespace for each `mender` command (see `support::mender`): the host's
//! `/etc/mender` and `/usr/share/mender/modules/v3` are never touched.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use support::mender::{Mender, write_executable};
use support::{BIN, HeldGate, run_bounded, wait_until};

/// The script as shipped.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("integrations/mender/ArtifactCommit_Enter_00_bootgate")
}

/// Runs the script as Mender would (its own `#!/bin/sh`), waiting at most 1s a run for
/// the gate in `run_dir`; its exit code and stderr.
fn commit_script(run_dir: &Path, bootgate: &str) -> (i32, String) {
    let mut cmd = Command::new(script());
    cmd.env("BOOTGATE", bootgate).env("BOOTGATE_RUN_DIR", run_dir).env("BOOTGATE_WAIT_TIMEOUT", "1s");
    let out = run_bounded(&mut cmd, Duration::from_secs(30));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

const FAILING: &str = "  - {name: api, kind: exec, retries: 0, command: [sh, -c, 'echo refused; exit 1']}\n";

#[test]
fn the_script_returns_21_across_a_running_gate_and_soak_then_0_once_it_passed() {
    let mut gate = HeldGate::start("{deadline: 100s, soak: 6s, soak_interval: 500ms}", "");
    let (code, said) = commit_script(&gate.run_dir(), BIN);
    assert_eq!(code, 21, "{said}");
    assert!(
        said.starts_with("still running after 1s: gate running, 0 of 1 critical checks passed; waiting for hold"),
        "{said}"
    );
    assert!(said.contains("asking Mender to retry the commit later"), "{said}");
    gate.release();
    gate.wait_status("the soak's STATUS", |m| m.contains("STATUS=soaking: "));
    let (code, said) = commit_script(&gate.run_dir(), BIN);
    assert_eq!(code, 21, "the soak is part of the gate: {said}");
    gate.wait_status("READY=1", |m| m.contains("READY=1"));
    let (code, said) = commit_script(&gate.run_dir(), BIN);
    assert_eq!(code, 0, "{said}");
    assert!(said.starts_with("passed: boot healthy, the check passed (gate "), "{said}");
    gate.daemon.kill();
}

#[test]
fn the_script_returns_1_once_the_gate_failed_or_when_bootgate_cannot_answer() {
    let mut gate = HeldGate::start("{deadline: 100s, on_failure: stay}", FAILING);
    gate.release();
    assert_eq!(gate.daemon.wait_exit(Duration::from_secs(60)).code(), Some(2), "{}", gate.daemon.stderr());
    let (code, said) = commit_script(&gate.run_dir(), BIN);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("(failing: api)\n") && said.contains("the boot gate failed; rolling back"), "{said}");
    let (code, said) = commit_script(&gate.run_dir(), "/nonexistent/bootgate");
    assert_eq!(code, 1, "fail closed: {said}");
    assert!(said.contains("bootgate wait exited 127; rolling back"), "{said}");
}

/// Mender with the script in Artifact `update-1`, installed, whose state scripts reach
/// `gate` through `BOOTGATE_RUN_DIR` and a `bootgate` that logs each exit code of
/// `bootgate wait` to `waits.log`.
fn installed(gate: &HeldGate, retry_interval: u32, retry_timeout: u32) -> Mender {
    let mut mender = Mender::new(retry_interval, retry_timeout);
    let recorder = mender.dir().join("bootgate");
    let log = mender.dir().join("waits.log");
    write_executable(
        &recorder,
        &format!("#!/bin/sh\n'{BIN}' \"$@\"\nrc=$?\necho $rc >> '{}'\nexit $rc\n", log.display()),
    );
    mender.env("BOOTGATE", &recorder);
    mender.env("BOOTGATE_RUN_DIR", gate.run_dir());
    mender.env("BOOTGATE_WAIT_TIMEOUT", "1s");
    let artifact = mender.artifact("update-1", &[&script()]);
    let out = mender.run(&["install", artifact.to_str().unwrap()], Duration::from_secs(60));
    assert!(out.status.success(), "mender install: {}", text(&out));
    assert_eq!(mender.artifact_name(), "factory", "not committed yet");
    mender
}

/// The exit codes of `bootgate wait` the script got so far.
fn waits(mender: &Mender) -> Vec<String> {
    let text = std::fs::read_to_string(mender.dir().join("waits.log")).unwrap_or_default();
    text.lines().map(str::to_string).collect()
}

/// `mender commit` started now in the background.
fn commit(mender: &Mender) -> thread::JoinHandle<Output> {
    let mender = mender.clone();
    thread::spawn(move || mender.run(&["commit"], Duration::from_secs(120)))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Waits until Mender has run the script at least `n` times.
fn wait_for_waits(mender: &Mender, n: usize) {
    let got = wait_until(Duration::from_secs(60), Duration::from_millis(100), || waits(mender).len() >= n);
    assert!(got, "the script ran {} times: {:?}", waits(mender).len(), waits(mender));
}

#[test]
fn mender_commits_the_artifact_once_the_gate_passed_retrying_while_it_runs() {
    let mut gate = HeldGate::start("{deadline: 100s}", "");
    let mender = installed(&gate, 1, 60);
    let committing = commit(&mender);
    // Two runs of the script: Mender took its 21 and ran it again.
    wait_for_waits(&mender, 2);
    assert!(!committing.is_finished(), "Mender waits on the gate");
    gate.release();
    let out = committing.join().unwrap();
    assert!(out.status.success(), "mender commit: {}", text(&out));
    let waits = waits(&mender);
    let (last, before) = waits.split_last().unwrap();
    assert_eq!(last, "0", "{waits:?}");
    assert!(before.len() >= 2 && before.iter().all(|w| w == "75"), "75 (exit 21) while the gate ran: {waits:?}");
    assert_eq!(mender.artifact_name(), "update-1");
    let states = mender.states();
    assert!(states.contains(&"ArtifactCommit".to_string()), "{states:?}");
    assert!(!states.iter().any(|s| s.starts_with("ArtifactRollback")), "{states:?}");
    gate.daemon.kill();
}

#[test]
fn mender_rolls_back_the_artifact_once_the_gate_failed() {
    let mut gate = HeldGate::start("{deadline: 100s, on_failure: stay}", FAILING);
    let mender = installed(&gate, 1, 60);
    let committing = commit(&mender);
    wait_for_waits(&mender, 1);
    gate.release();
    let out = committing.join().unwrap();
    assert!(!out.status.success(), "mender commit: {}", text(&out));
    assert_eq!(waits(&mender).last().map(String::as_str), Some("2"), "{:?}", waits(&mender));
    assert_eq!(mender.artifact_name(), "factory", "rolled back: {}", text(&out));
    let states = mender.states();
    assert!(states.contains(&"ArtifactRollback".to_string()), "{states:?}");
    assert!(!states.contains(&"ArtifactCommit".to_string()), "{states:?}");
    assert_eq!(gate.daemon.wait_exit(Duration::from_secs(60)).code(), Some(2));
}

#[test]
fn mender_rolls_back_when_the_gate_outlasts_its_retry_timeout() {
    let mut gate = HeldGate::start("{deadline: 100s}", "");
    let mender = installed(&gate, 1, 4);
    let started = Instant::now();
    let out = commit(&mender).join().unwrap();
    assert!(!out.status.success(), "mender commit: {}", text(&out));
    assert!(started.elapsed() >= Duration::from_secs(4), "{:?}", started.elapsed());
    assert!(waits(&mender).iter().all(|w| w == "75"), "{:?}", waits(&mender));
    assert_eq!(mender.artifact_name(), "factory");
    assert!(mender.states().contains(&"ArtifactRollback".to_string()), "{:?}", mender.states());
    gate.daemon.kill();
}
