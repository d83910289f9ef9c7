//! The command backend against real programs (`sh`), each way a command can end.

use std::time::{Duration, Instant};

use super::*;

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

fn backend(mark_good: &str, mark_bad: Option<&str>, revert: Option<&str>, facts: Option<&str>) -> Command {
    Command::new(Settings {
        mark_good: sh(mark_good),
        mark_bad: mark_bad.map(sh),
        revert: revert.map(sh),
        facts: facts.map(sh),
        timeout: Duration::from_secs(20),
    })
}

#[tokio::test]
async fn each_step_runs_its_argv_and_says_what_it_printed() {
    let b = backend("echo committed slot B", Some("echo rejected"), Some("echo rolled back to A"), None);
    let done = b.on_pass().await.unwrap();
    assert!(done.contains("exited 0 (committed slot B)"), "{done}");
    match b.on_failure().await {
        RebootDecision::Fallback { why, .. } => assert!(why.contains("marked this boot bad (rejected)"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(b.revertible().is_ok());
    let reverted = b.revert().await.unwrap();
    assert!(reverted.fallback.contains("rolled back to A"), "{reverted:?}");
}

#[tokio::test]
async fn a_failing_command_is_said_with_its_exit_and_its_error_output() {
    let b = backend("echo no space >&2; exit 3", Some("exit 1"), Some("echo cannot >&2; exit 4"), None);
    let err = b.on_pass().await.unwrap_err();
    assert!(err.contains("exit status: 3") && err.ends_with(": no space"), "{err}");
    match b.on_failure().await {
        RebootDecision::StayBackendError { why } => assert!(why.contains("exit status: 1"), "{why}"),
        other => panic!("{other:?}"),
    }
    match b.revert().await {
        Err(RevertError::Failed { why, .. }) => assert!(why.ends_with(": cannot"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn without_mark_bad_a_failed_gate_stays_and_without_revert_nothing_is_armed() {
    let b = backend("true", None, None, None);
    match b.on_failure().await {
        RebootDecision::StayBackendError { why } => assert!(why.contains("no mark_bad"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(b.revertible().unwrap_err().contains("no revert"));
    assert!(matches!(b.revert().await, Err(RevertError::NotSupported("command"))));
}

#[tokio::test]
async fn a_command_that_hangs_is_cut_at_its_timeout_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild");
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let started = Instant::now();
    let err = run(&sh(&script), Duration::from_millis(500)).await.unwrap_err();
    assert!(err.contains("did not finish within 500ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    // The sleep it left behind is killed with its group.
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let gone = (0..200).any(|_| {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let done = state.is_empty() || state.contains(") Z ");
        if !done {
            std::thread::sleep(Duration::from_millis(50));
        }
        done
    });
    assert!(gone, "the command's child {pid} outlived it");
}

#[tokio::test]
async fn facts_are_the_object_the_command_prints_and_anything_else_is_an_error() {
    let b = backend("true", None, None, Some(r#"echo '{"slot": "B", "pending": true}'"#));
    match b.facts().await {
        BackendFacts::Command { facts: Some(map), error: None } => {
            assert_eq!(map["slot"], "B");
            assert_eq!(map["pending"], true);
        }
        other => panic!("{other:?}"),
    }
    for (script, said) in [
        ("echo '[1, 2]'", "no object"),
        ("echo slot B", "no JSON object"),
        ("exit 2", "exit status: 2"),
        ("head -c 200000 /dev/zero | tr '\\0' ' '", "more than 65536 bytes"),
    ] {
        match backend("true", None, None, Some(script)).facts().await {
            BackendFacts::Command { facts: None, error: Some(e) } => assert!(e.contains(said), "{script}: {e}"),
            other => panic!("{script}: {other:?}"),
        }
    }
    // No facts command: nothing to show, and no error.
    assert_eq!(backend("true", None, None, None).facts().await, BackendFacts::Command { facts: None, error: None });
}

#[tokio::test]
async fn a_program_that_does_not_exist_is_named() {
    let err = run(&["/nonexistent/updater".into(), "commit".into()], Duration::from_secs(5)).await.unwrap_err();
    assert!(err.starts_with("cannot run `/nonexistent/updater commit`: "), "{err}");
}

#[tokio::test]
async fn long_output_is_shortened_in_the_message_and_control_characters_do_not_pass() {
    let b = backend("head -c 5000 /dev/zero | tr '\\0' x; printf '\\033[31m'", None, None, None);
    let done = b.on_pass().await.unwrap();
    assert!(done.len() < 600, "{} bytes: {done}", done.len());
    assert!(!done.contains('\u{1b}'), "{done:?}");
}
