//! Fallback detection over histories and partition tables, every reason and every way it is not one.

use super::*;
use crate::engine::Failing;
use crate::record::history::{SeenFallback, Slot};

fn usr(index: u32, priority: u8, tries: u8, successful: bool) -> PartitionInfo {
    PartitionInfo::usr(index, priority, tries, successful)
        .with_label(if index == 3 { "USR-A" } else { "USR-B" })
        .with_uuid(&format!("uuid-{index}"))
}

fn line(boot_id: &str, on: &PartitionInfo, gate: &str, decision: Option<Decision>) -> PastBoot {
    PastBoot {
        timestamp: Some(format!("{boot_id}-time")),
        boot_id: Some(boot_id.into()),
        partition: Some(Slot::from(on)),
        version: Some(format!("v{}", on.index)),
        gate: Some(gate.into()),
        failing: if gate == "failed" {
            vec![Failing { name: "api".into(), message: "connection refused".into() }]
        } else {
            Vec::new()
        },
        decision,
        ..PastBoot::default()
    }
}

/// The table after B (index 4) was tried and GRUB fell back to A (index 3).
fn fell_back() -> [PartitionInfo; 2] {
    [usr(3, 1, 0, true), usr(4, 2, 0, false)]
}

#[test]
fn previous_boot_on_another_slot_that_failed_its_gate() {
    let parts = fell_back();
    let history = [line("b1", &parts[0], "passed", None), line("b2", &parts[1], "failed", Some(Decision::Reboot))];
    let f = detect(&history, &parts, Some(&parts[0]), "b3").unwrap();
    assert_eq!(f.reason, Reason::GateFailed);
    assert_eq!((f.from_partition.as_str(), f.from_version.as_deref()), ("USR-B", Some("v4")));
    assert_eq!(f.at.as_deref(), Some("b2-time"));
    assert_eq!(f.failing, history[1].failing);
    assert_eq!(f.text(), "fell back from USR-B (v4): its gate failed (failing: api)");
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json["reason"], "gate_failed");
    assert!(json.get("from_uuid").is_none());
}

#[test]
fn the_os_version_of_a_newer_line_wins_over_its_version() {
    let parts = fell_back();
    let mut failed = line("b2", &parts[1], "failed", Some(Decision::Reboot));
    failed.os_version = Some("4230.0.0".into());
    let f = detect(&[failed], &parts, Some(&parts[0]), "b3").unwrap();
    assert_eq!(f.from_version.as_deref(), Some("4230.0.0"));
}

#[test]
fn previous_boot_on_another_slot_that_was_reverted() {
    let parts = fell_back();
    let history = [line("b2", &parts[1], "passed", Some(Decision::Reverted))];
    let f = detect(&history, &parts, Some(&parts[0]), "b3").unwrap();
    assert_eq!(f.reason, Reason::Reverted);
    assert_eq!(f.from_partition, "USR-B");
}

#[test]
fn a_tried_slot_without_a_verdict_is_no_verdict() {
    let parts = fell_back();
    for history in [vec![], vec![line("b1", &parts[0], "passed", None)]] {
        let f = detect(&history, &parts, Some(&parts[0]), "b3").unwrap();
        assert_eq!((f.reason, f.from_partition.as_str()), (Reason::NoVerdict, "USR-B"));
        assert_eq!((f.from_version, f.at, f.failing.len()), (None, None, 0));
    }
}

#[test]
fn no_verdict_needs_same_type_no_tries_unmarked_and_a_higher_priority() {
    let other_type = usr(4, 2, 0, false).with_type("0fc63daf-8483-4772-8e79-3d69d8477de4");
    for b in [usr(4, 2, 1, false), usr(4, 2, 0, true), usr(4, 1, 0, false), usr(4, 0, 0, false), other_type] {
        let parts = [usr(3, 1, 0, true), b];
        assert_eq!(detect(&[], &parts, Some(&parts[0]), "b3"), None, "{parts:?}");
    }
}

#[test]
fn a_second_boot_on_the_same_slot_after_a_fallback_reports_nothing() {
    let parts = fell_back();
    // gate_failed: the boot that reported it recorded its line on this slot.
    let mut reported = line("b3", &parts[0], "passed", None);
    reported.fallback = Some(SeenFallback { from_uuid: "uuid-4".into(), reason: Reason::GateFailed.into(), ..seen() });
    let history = [line("b2", &parts[1], "failed", Some(Decision::Reboot)), reported.clone()];
    assert_eq!(detect(&history, &parts, Some(&parts[0]), "b4"), None);
    // ... and any later boot on it, while the table still shows B's failed try.
    let later = [history.to_vec(), vec![line("b4", &parts[0], "passed", None)]].concat();
    assert_eq!(detect(&later, &parts, Some(&parts[0]), "b5"), None);
    // no_verdict: the same.
    reported.fallback = Some(SeenFallback { from_uuid: "uuid-4".into(), reason: Reason::NoVerdict.into(), ..seen() });
    let history = [line("b1", &parts[0], "passed", None), reported, line("b4", &parts[0], "failed", None)];
    assert_eq!(detect(&history, &parts, Some(&parts[0]), "b5"), None);
}

#[test]
fn this_boots_own_line_is_not_the_previous_boot() {
    // serve after run, or run restarted, in the boot that fell back.
    let parts = fell_back();
    let history = [line("b2", &parts[1], "failed", Some(Decision::Reboot)), line("b3", &parts[0], "failed", None)];
    assert_eq!(detect(&history, &parts, Some(&parts[0]), "b3").unwrap().reason, Reason::GateFailed);
}

#[test]
fn normal_first_and_non_ab_boots_report_nothing() {
    // An update: A passed, B is booted for the first time (GRUB took its try).
    let parts = [usr(3, 1, 0, true), usr(4, 2, 0, false)];
    let history = [line("b1", &parts[0], "passed", None)];
    assert_eq!(detect(&history, &parts, Some(&parts[1]), "b2"), None);
    // The same slot again, passed or failed.
    let steady = [usr(3, 2, 0, true), usr(4, 1, 0, true)];
    let history = [line("b1", &steady[0], "failed", Some(Decision::StayConfirmed))];
    assert_eq!(detect(&history, &steady, Some(&steady[0]), "b2"), None);
    // The previous boot on another slot passed: an update, not a fallback.
    let history = [line("b1", &steady[1], "passed", None)];
    assert_eq!(detect(&history, &steady, Some(&steady[0]), "b2"), None);
    // First boot ever.
    assert_eq!(detect(&[], &steady, Some(&steady[0]), "b1"), None);
    // Not A/B: nothing booted from a slot, whatever the history says.
    let history = [line("b1", &parts[1], "failed", Some(Decision::Reboot))];
    assert_eq!(detect(&history, &parts, None, "b2"), None);
    // A line without a slot (written off A/B or by an older bootgate) is no evidence.
    let old = PastBoot { boot_id: Some("b1".into()), gate: Some("failed".into()), ..PastBoot::default() };
    assert_eq!(detect(&[old], &steady, Some(&steady[0]), "b2"), None);
}

/// A fallback line's record with no version and no second verdict, for `..seen()`.
fn seen() -> SeenFallback {
    SeenFallback {
        from_uuid: String::new(),
        reason: crate::record::Lenient::Other,
        from_version: None,
        blame: crate::record::Lenient::Other,
    }
}

#[test]
fn the_boot_after_a_retry_is_the_update_again_not_a_fallback() {
    // A (USR-3) fell back from B, failed its own gate for an outage, re-armed B and rebooted.
    let parts = [usr(3, 1, 0, true), usr(4, 2, 0, false)];
    let mut retried = line("b2", &parts[0], "failed", Some(Decision::StayConfirmed));
    retried.retry = Some(crate::record::boot::RetryFacts {
        attempt: 1,
        max: 1,
        at: "t".into(),
        text: "re-armed".into(),
        done: true,
    });
    let history = [line("b1", &parts[1], "failed", Some(Decision::Reboot)), retried.clone()];
    assert_eq!(detect(&history, &parts, Some(&parts[1]), "b3"), None);
    // A retry that could not be made leaves the next boot judged as before.
    retried.retry.as_mut().unwrap().done = false;
    let history = [line("b1", &parts[1], "failed", Some(Decision::Reboot)), retried];
    assert_eq!(detect(&history, &parts, Some(&parts[1]), "b3").map(|f| f.reason), Some(Reason::GateFailed));
}
