//! The history file: kept bounded, old and newer lines read, corrupt ones skipped, a revert amended.

use serde_json::json;

use super::*;
use crate::record::verdict::VerdictRecord;

fn boot(n: usize) -> PastBoot {
    PastBoot { boot_id: Some(format!("b{n}")), gate: Some("passed".into()), ..PastBoot::default() }
}

#[test]
fn history_keeps_the_last_boots_newest_last() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..(KEEP + 5) {
        append(dir.path(), &boot(i)).unwrap();
    }
    let boots = read(dir.path()).unwrap();
    assert_eq!(boots.len(), KEEP);
    assert_eq!(boots.first().unwrap().boot_id.as_deref(), Some("b5"));
    assert_eq!(boots.last().unwrap().boot_id.as_deref(), Some(format!("b{}", KEEP + 4).as_str()));
    let shown: Vec<_> = newest(&boots, 2).into_iter().map(|b| b.boot_id.clone().unwrap()).collect();
    assert_eq!(shown, [format!("b{}", KEEP + 4), format!("b{}", KEEP + 3)]);
}

#[test]
fn a_corrupt_line_is_skipped_and_dropped_on_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let good = serde_json::to_string(&boot(1)).unwrap();
    std::fs::write(path(dir.path()), format!("{good}\n{{\"boot_id\": \"b2\", \n\n[1,2]\n\u{0}garbage\n")).unwrap();
    assert_eq!(read(dir.path()).unwrap(), vec![boot(1)]);
    append(dir.path(), &boot(3)).unwrap();
    let text = std::fs::read_to_string(path(dir.path())).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert_eq!(read(dir.path()).unwrap(), vec![boot(1), boot(3)]);
}

#[test]
fn old_lines_with_failing_as_names_stay_readable() {
    let old = json!({"timestamp": "2026-01-01T00:00:00Z", "boot_id": "b0", "status": "unhealthy",
        "gate": "failed", "failing": ["api", "disk"], "gate_duration_ms": 12.5});
    let boots = parse(&format!("{old}\n{}\n", json!({"failing": null})), Path::new("h"));
    assert_eq!(boots.len(), 2);
    let b = &boots[0];
    assert_eq!(
        b.failing,
        vec![
            Failing { name: "api".into(), message: String::new() },
            Failing { name: "disk".into(), message: String::new() }
        ]
    );
    assert_eq!((b.gate.as_deref(), b.partition.as_ref(), b.decision), (Some("failed"), None, None));
    assert_eq!(b.gate_duration_ms, Some(12.5));
    assert!(boots[1].failing.is_empty());
}

#[test]
fn a_line_of_a_newer_bootgate_with_unknown_keys_is_read() {
    let line = r#"{"boot_id": "b9", "decision": "stay_policy", "some_future_key": {"x": 1}}"#;
    let boots = parse(line, Path::new("h"));
    assert_eq!(boots[0].decision, Some(Decision::StayPolicy));
}

#[test]
fn a_line_is_built_from_the_verdict_with_each_failing_message() {
    let doc = json!({"timestamp": "2026-12-01T10:00:00.000Z", "boot_id": "b1", "gate": "failed", "status": "unhealthy",
        "gate_duration_ms": 3.0, "failing": ["api"],
        "checks": [{"name": "disk", "message": "ok"}, {"name": "api", "message": "connection refused"}]});
    let verdict: VerdictRecord = serde_json::from_value(doc).unwrap();
    let slot = Slot { label: "USR-B".into(), index: 4, uuid: "u4".into() };
    let b = PastBoot::from_verdict(
        &verdict,
        Some(slot.clone()),
        Some("flatcar".into()),
        Some("4152.2.0".into()),
        Some(Decision::Reboot),
    );
    let v = serde_json::to_value(&b).unwrap();
    assert_eq!(v["failing"], json!([{"name": "api", "message": "connection refused"}]));
    assert_eq!(v["partition"], json!({"label": "USR-B", "index": 4, "uuid": "u4"}));
    assert_eq!((v["decision"].clone(), v["version"].clone()), (json!("reboot"), json!("4152.2.0")));
    assert_eq!((v["os_id"].clone(), v["os_version"].clone()), (json!("flatcar"), json!("4152.2.0")));
    assert_eq!((v["timestamp"].clone(), v["status"].clone()), (json!("2026-12-01T10:00:00.000Z"), json!("unhealthy")));
    assert_eq!(v["bootgate"], env!("CARGO_PKG_VERSION"));
    assert!(v.get("fallback").is_none());
}

#[test]
fn a_decision_this_version_does_not_know_keeps_the_line() {
    let line = r#"{"boot_id": "b9", "gate": "failed", "decision": "held", "fallback": {"from_uuid": "u", "reason": "blamed"}}"#;
    let boots = parse(line, Path::new("h"));
    assert_eq!(boots.len(), 1, "the line is read");
    assert_eq!(boots[0].decision, Some(Decision::Other));
    assert_eq!(boots[0].fallback.as_ref().map(|f| f.reason), Some(crate::record::Lenient::Other));
    // Appending keeps the line as the newer version wrote it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(path(dir.path()), format!("{line}\n")).unwrap();
    append(dir.path(), &boot(2)).unwrap();
    let text = std::fs::read_to_string(path(dir.path())).unwrap();
    assert_eq!(text.lines().next(), Some(line), "{text}");
}

#[test]
fn a_fifo_as_history_is_an_error_to_read_and_replaced_on_write() {
    let dir = tempfile::tempdir().unwrap();
    nix::unistd::mkfifo(&path(dir.path()), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert!(read(dir.path()).is_err());
    assert!(read_or_warn(dir.path()).is_empty());
    append(dir.path(), &boot(1)).unwrap();
    assert_eq!(read(dir.path()).unwrap(), vec![boot(1)]);
}

#[test]
fn a_revert_amends_the_newest_line_of_its_boot_only() {
    let dir = tempfile::tempdir().unwrap();
    for b in [boot(1), boot(2), boot(3)] {
        append(dir.path(), &b).unwrap();
    }
    let amended = amend(dir.path(), "b2", |b| {
        b.decision = Some(Decision::Reverted);
        b.failing = vec![Failing { name: "api".into(), message: "refused".into() }];
    });
    assert!(amended.unwrap());
    let boots = read(dir.path()).unwrap();
    assert_eq!(boots.iter().map(|b| b.decision).collect::<Vec<_>>(), [None, Some(Decision::Reverted), None]);
    assert_eq!(boots[1].failing_names(), "api");
    assert_eq!((&boots[0], &boots[2]), (&boot(1), &boot(3)), "other lines are kept as they were");
    assert!(!amend(dir.path(), "b9", |_| unreachable!("no line of b9")).unwrap());
}

fn failed_everywhere(checks: usize, message_len: usize) -> PastBoot {
    let failing =
        (0..checks).map(|i| Failing { name: format!("check-{i:04}"), message: "x".repeat(message_len) }).collect();
    PastBoot { failing, reason: Some("r".repeat(100_000)), ..boot(1) }
}

#[test]
fn a_line_is_bounded_and_says_how_many_failing_checks_it_leaves_out() {
    let b = failed_everywhere(1000, 2000);
    let line = b.to_line();
    assert!(line.len() <= LINE_CAP, "{} bytes", line.len());
    let back: PastBoot = serde_json::from_str(&line).unwrap();
    assert!(!back.failing.is_empty(), "the first failing checks are still named");
    assert_eq!(back.failing.len() + back.failing_more.unwrap(), 1000, "every failing check is named or counted");
    assert!(back.reason.unwrap().chars().count() <= MESSAGE_CAP + 1);
    // A line that fits is written whole.
    let small = PastBoot { reason: None, ..failed_everywhere(3, 50) };
    assert!(small.to_line() == serde_json::to_string(&small).unwrap(), "a small line is written whole");
}

#[test]
fn a_large_history_keeps_its_newest_lines_instead_of_starting_anew() {
    let dir = tempfile::tempdir().unwrap();
    // Lines of about 1 MiB each, as an older version could write: five are past the cap.
    let huge: Vec<String> = (0..5)
        .map(|i| {
            let mut b = failed_everywhere(1, 0);
            b.boot_id = Some(format!("old{i}"));
            b.failing[0].message = "y".repeat(1 << 20);
            serde_json::to_string(&b).unwrap()
        })
        .collect();
    std::fs::write(path(dir.path()), huge.join("\n") + "\n").unwrap();
    assert!(std::fs::metadata(path(dir.path())).unwrap().len() > CAP);
    let read = read(dir.path()).unwrap();
    assert_eq!(read.last().unwrap().boot_id.as_deref(), Some("old4"), "the newest line is read");
    append(dir.path(), &boot(9)).unwrap();
    let ids: Vec<String> = super::read(dir.path()).unwrap().into_iter().filter_map(|b| b.boot_id).collect();
    assert!(ids.len() >= 3 && ids.ends_with(&["old4".to_string(), "b9".to_string()]), "{ids:?}");
}

#[test]
fn concurrent_writers_lose_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                for j in 0..5 {
                    append(&dir, &boot(i * 10 + j)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(read(dir.path()).unwrap().len(), 40);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(names.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")), "{names:?}");
}
