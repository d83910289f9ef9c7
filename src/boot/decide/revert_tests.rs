//! The rollback window's decisions over where `now` is, how the slots stand and how long a check failed.

use super::*;
use crate::checks::Status;

const MIN: Duration = Duration::from_secs(60);

fn usr(index: u32, priority: u8, tries: u8, successful: bool) -> PartitionInfo {
    PartitionInfo::usr(index, priority, tries, successful).with_label(if index == 3 { "USR-A" } else { "USR-B" })
}

/// Booted on USR-B (4) as update_engine leaves it after marking: B good at priority 2.
fn table(a: PartitionInfo, b: PartitionInfo) -> BootStatus {
    BootStatus { booted: Some(4), disk: Some("/dev/vda".into()), partitions: vec![a, b], note: None }
}

fn failing(name: &str, since: Instant) -> Since {
    Since { check: Failing { name: name.into(), message: "connection refused".into() }, since }
}

#[test]
fn arming_needs_an_unconfirmed_slot_at_start() {
    let fresh = table(usr(3, 1, 0, true), usr(4, 2, 0, false));
    assert_eq!(arm(Some(&fresh)), Ok(()));
    let good = table(usr(3, 1, 0, true), usr(4, 2, 0, true));
    assert!(arm(Some(&good)).unwrap_err().contains("already good before this boot"));
    assert!(arm(None).unwrap_err().contains("not on an A/B slot"));
    let off_ab = BootStatus { booted: None, ..fresh };
    assert!(arm(Some(&off_ab)).is_err());
}

/// Every combination of where `now` is in the window, how the other slot stands and
/// how long the check has failed: the window's decision, then the gptprio target.
#[test]
fn decision_over_window_slot_state_and_failure_duration() {
    let start = Instant::now();
    let ends = start + 5 * MIN;
    let failing_for = Duration::from_secs(20);
    let good_a = usr(3, 1, 0, true);
    let slots = [
        ("A good", table(good_a.clone(), usr(4, 2, 0, true)), true),
        ("A not successful", table(usr(3, 1, 0, false), usr(4, 2, 0, true)), false),
        ("A priority 0", table(usr(3, 0, 0, true), usr(4, 2, 0, true)), false),
        (
            "A missing",
            BootStatus { partitions: vec![usr(4, 2, 0, true)], ..table(good_a.clone(), usr(4, 2, 0, true)) },
            false,
        ),
        ("booted unknown", BootStatus { booted: None, ..table(good_a.clone(), usr(4, 2, 0, true)) }, false),
    ];
    let nows = [
        ("inside", start + 2 * MIN, true),
        ("at the end", ends, true),
        ("after", ends + Duration::from_secs(1), false),
    ];
    let durations = [
        ("never failed", None, false),
        ("10s", Some(Duration::from_secs(10)), false),
        ("20s", Some(failing_for), true),
        ("4m", Some(4 * MIN), true),
    ];
    for (slot_name, t, good_fallback) in &slots {
        let target = gptprio_target(t);
        match (good_fallback, &target) {
            (true, Some((booted, fallback))) => assert_eq!((booted.index, fallback.index), (4, 3), "{slot_name}"),
            (false, None) => {}
            (_, other) => panic!("{slot_name}: target {other:?}"),
        }
        for (when, now, inside) in nows {
            for (how_long, failed, sustained) in durations {
                let list: Vec<Since> = failed.map(|d| failing("api", now - d)).into_iter().collect();
                let got = decide(ends, now, failing_for, &list);
                let case = format!("{slot_name}, {when}, failing {how_long}: {got:?}");
                match (inside, sustained) {
                    (false, _) => assert_eq!(got, Decision::Closed, "{case}"),
                    (true, false) => assert_eq!(got, Decision::Wait, "{case}"),
                    (true, true) => match got {
                        Decision::Revert { failing } => assert_eq!(failing.len(), 1, "{case}"),
                        other => panic!("{case}: expected a revert, got {other:?}"),
                    },
                }
            }
        }
    }
}

#[test]
fn a_revert_puts_the_booted_slot_below_its_fallback_and_gptprio_then_picks_the_fallback() {
    let (booted, fallback) = gptprio_target(&table(usr(3, 1, 0, true), usr(4, 2, 0, true))).unwrap();
    let priority = demoted_priority(&booted, &fallback);
    assert_eq!(priority, 0);
    let after = table(usr(3, 1, 0, true), usr(4, priority, 0, false));
    assert!(falls_back(&after, &fallback));
    assert!(!falls_back(&table(usr(3, 1, 0, true), usr(4, 2, 1, false)), &fallback));
}

#[test]
fn only_the_sustained_checks_are_named() {
    let now = Instant::now() + 10 * MIN;
    let list = [failing("api", now - 2 * MIN), failing("db", now - Duration::from_secs(5))];
    let Decision::Revert { failing } = decide(now + MIN, now, Duration::from_secs(60), &list) else {
        panic!("expected a revert")
    };
    assert_eq!(failing.iter().map(|f| f.check.name.as_str()).collect::<Vec<_>>(), ["api"]);
    assert_eq!(describe(&failing, now), "api (failing for 2m: connection refused)");
}

fn raw(name: &str, critical: bool, status: Status) -> CheckResult {
    CheckResult::finished(name, critical, status)
}

#[test]
fn one_pass_resets_the_clock_and_optional_checks_never_count() {
    let mut w = Watch::open(Rollback::window(5 * MIN, Duration::from_secs(20)));
    w.observe(&[raw("api", true, Status::Fail), raw("docker", false, Status::Fail)]);
    assert_eq!(w.failing.iter().map(|f| f.check.name.as_str()).collect::<Vec<_>>(), ["api"]);
    let first = w.failing[0].since;
    w.observe(&[raw("api", true, Status::Skipped), raw("docker", false, Status::Fail)]);
    assert_eq!(w.failing[0].since, first, "a second failure keeps the first one's time");
    assert_eq!(w.failing[0].check.message, "skipped");
    w.observe(&[raw("api", true, Status::Warn), raw("docker", false, Status::Fail)]);
    assert!(w.failing.is_empty(), "a warn is a pass");
    w.observe(&[raw("api", true, Status::Fail)]);
    w.observe(&[raw("db", true, Status::Pass)]);
    assert!(w.failing.is_empty(), "a check no longer in the policy stops counting");
}

#[test]
fn a_reopened_window_is_clamped_to_the_policy_and_kept_by_the_boot_clock() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let at = |secs: u64, boot_ms: Option<u64>| WindowRecord {
        armed: true,
        ends_since_boot_ms: boot_ms,
        window_ends: now + Duration::from_secs(secs),
    };
    let boot = Some(Duration::from_secs(100));
    // The clock was stepped back a year after the window opened: the boot clock says 30 s.
    assert_eq!(reopened_left(&at(365 * 24 * 3600, Some(130_000)), now, boot, MIN), Some(Duration::from_secs(30)));
    // No boot-clock end (an older record): the wall clock, clamped to the policy's window.
    assert_eq!(reopened_left(&at(365 * 24 * 3600, None), now, boot, MIN), Some(MIN));
    assert_eq!(reopened_left(&at(20, None), now, boot, MIN), Some(Duration::from_secs(20)));
    // Over by either clock: not re-opened.
    assert_eq!(reopened_left(&at(20, Some(90_000)), now, boot, MIN), None);
    let past = WindowRecord { window_ends: now - Duration::from_secs(1), ..at(0, None) };
    assert_eq!(reopened_left(&past, now, boot, MIN), None);
}

#[test]
fn a_check_made_optional_while_failing_stops_counting() {
    let mut w = Watch::open(Rollback::window(5 * MIN, Duration::ZERO));
    w.observe(&[raw("api", true, Status::Fail)]);
    assert!(matches!(w.decide(), Decision::Revert { .. }), "critical and failing: it would revert");
    // SIGHUP made it optional; it still fails.
    w.observe(&[raw("api", false, Status::Fail)]);
    assert_eq!(w.decide(), Decision::Wait, "only checks critical now revert an update");
}
