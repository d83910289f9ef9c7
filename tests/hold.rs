//! The hold on updates against a real `bootgate run` and `bootgate release`: a history
//! whose fallbacks blamed one version's image `hold_after` times holds updates (the file
//! update agents condition on, `boot.hold` in the health document, `bootgate_update_held`),
//! `release` lifts it (the running daemon shows it lifted) and the next boot does not
//! hold the same failures again. Also: what the image saw is kept in `last-seen.json`
//! and summed up on the boot's history line.

mod support;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use support::{Launch, bootgate};

/// Two fallbacks from 9.0 blamed on its image, `ago` apart from now, as history lines.
fn history(ago: &[u64]) -> String {
    ago.iter()
        .map(|secs| {
            let at = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(*secs));
            format!(
                "{{\"timestamp\":\"{at}\",\"boot_id\":\"old{secs}\",\"gate\":\"passed\",\"failing\":[],\
                 \"fallback\":{{\"from_uuid\":\"u4\",\"reason\":\"gate_failed\",\"from_version\":\"9.0\",\"blame\":\"image\"}}}}\n"
            )
        })
        .collect()
}

fn launch(dir: &Path) -> Launch {
    Launch::listening(
        "gate: {deadline: 20s}\nruntime: {interval: 1s}\nrollback: {hold_after: 2, hold_for: 1h}\n\
         checks:\n  - {name: root, kind: disk, path: /, min_free_percent: 0}\n",
    )
    .in_dir(dir)
}

fn release(dir: &Path, version: Option<&str>) -> (i32, String, String) {
    let (run, state) = (dir.join("run"), dir.join("state"));
    let mut args = vec!["release", "--run-dir", run.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
    args.extend(version);
    let out = bootgate(&args);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < end, "{what} not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn repeated_image_failures_hold_updates_until_released_and_a_release_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/history.jsonl"), history(&[3600 * 3, 1800])).unwrap();
    let mut run = launch(dir.path()).start();
    run.wait_passed(Duration::from_secs(60));
    let file = dir.path().join("run/hold-updates");
    let hold: Value = serde_json::from_slice(&std::fs::read(&file).expect("the hold file")).unwrap();
    assert_eq!((hold["version"].as_str(), hold["failures"].as_u64()), (Some("9.0"), Some(2)), "{hold}");
    assert!(hold["text"].as_str().unwrap().contains("bootgate release"), "{hold}");
    let health = run.health();
    assert_eq!(health["boot"]["hold"]["version"], "9.0", "{health:#}");
    let metrics = run.get("/metrics").body;
    assert!(metrics.contains("bootgate_update_held{version=\"9.0\"} 1\n"), "{metrics}");
    assert!(run.stderr().contains("updates held until"), "{}", run.stderr());

    // A release naming another version lifts nothing.
    let (code, _, err) = release(dir.path(), Some("8.0"));
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("is on version 9.0, not 8.0"), "{err}");
    assert!(file.exists());
    let (code, out, err) = release(dir.path(), None);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("lifted the hold on updates of 9.0"), "{out}");
    assert!(!file.exists());
    until("the daemon to show the hold lifted", Duration::from_secs(30), || {
        run.health()["boot"].get("hold").is_none() && !run.get("/metrics").body.contains("bootgate_update_held{")
    });
    let (code, out, _) = release(dir.path(), None);
    assert_eq!(code, 0);
    assert!(out.starts_with("no hold on updates is in force"), "{out}");

    // What the image saw is kept, and summed up on this boot's history line.
    until("last-seen.json and the history line's summary", Duration::from_secs(30), || {
        let history = std::fs::read_to_string(dir.path().join("state/history.jsonl")).unwrap();
        dir.path().join("state/last-seen.json").exists() && history.lines().last().unwrap().contains("\"seen\":")
    });
    let seen: Value = serde_json::from_slice(&std::fs::read(dir.path().join("state/last-seen.json")).unwrap()).unwrap();
    assert_eq!(seen["images"][0]["checks"]["root"]["status"], "pass", "{seen:#}");
    run.terminate();
    run.wait_exit(Duration::from_secs(20));

    // The next boot (a new run dir) counts only failures after the release: no hold.
    std::fs::remove_dir_all(dir.path().join("run")).unwrap();
    let mut run = launch(dir.path()).start();
    run.wait_passed(Duration::from_secs(60));
    assert!(!file.exists(), "released failures hold nothing again");
    assert!(run.health()["boot"].get("hold").is_none());
    run.terminate();
    run.wait_exit(Duration::from_secs(20));

    // Failures older than hold_for hold nothing either.
    std::fs::write(dir.path().join("state/history.jsonl"), history(&[3 * 3600, 2 * 3600])).unwrap();
    std::fs::remove_file(dir.path().join("state/released.json")).unwrap();
    std::fs::remove_dir_all(dir.path().join("run")).unwrap();
    let mut run = launch(dir.path()).start();
    run.wait_passed(Duration::from_secs(60));
    assert!(!file.exists(), "a hold is over once hold_for has passed since the last failure");
    run.terminate();
    run.wait_exit(Duration::from_secs(20));
}
