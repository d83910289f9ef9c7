use std::time::{Duration, SystemTime};

use super::*;
use crate::checks::Status;
use crate::engine::Failing;
use crate::record::Lenient;
use crate::record::history::SeenFallback;
use crate::record::last_seen::Image;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const MINUTE: Duration = Duration::from_secs(60);

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn seen(status: Status, at: &str) -> Seen {
    Seen { status: status.as_str().into(), passed: status.passed(), message: String::new(), at: at.into() }
}

/// The previous image's states a check can have been recorded in (`None`: no record).
const PREVIOUS: [Option<Status>; 5] =
    [None, Some(Status::Pass), Some(Status::Warn), Some(Status::Fail), Some(Status::Skipped)];

/// Ages of a record: fresh, just inside, just outside the bound, from the future, unreadable.
fn ages() -> Vec<(&'static str, Option<SystemTime>, bool)> {
    vec![
        ("a minute old", Some(now() - Duration::from_secs(60)), true),
        ("6 days old", Some(now() - 6 * DAY), true),
        ("exactly the bound", Some(now() - RECORD_AGE), true),
        ("8 days old", Some(now() - 8 * DAY), false),
        ("from the future", Some(now() + HOUR), true),
        ("unreadable", None, false),
    ]
}

fn at(t: Option<SystemTime>) -> String {
    t.map_or("not a time".into(), timestamp)
}

#[test]
fn blame_over_every_previous_state_and_record_age() {
    for previous in PREVIOUS {
        for (age, when, recent) in ages() {
            let record = previous.map(|s| seen(s, &at(when)));
            let want = match (previous, recent) {
                (None, _) | (_, false) => Blame::Unknown,
                (Some(s), true) if s.passed() => Blame::Regression,
                (Some(_), true) => Blame::Preexisting,
            };
            assert_eq!(blame(record.as_ref(), now()), want, "previous {previous:?}, record {age}");
        }
    }
}

fn previous_image(api: Option<Status>, when: SystemTime) -> ImageSeen {
    let mut image =
        ImageSeen { image: Image::default(), boot_id: "a".into(), updated: timestamp(when), ..Default::default() };
    if let Some(s) = api {
        image.checks.insert("api".into(), seen(s, &timestamp(when)));
    }
    image.checks.insert("disk".into(), seen(Status::Pass, &timestamp(when)));
    image
}

#[test]
fn judge_over_every_mode_trial_current_and_previous_state_and_age() {
    let statuses = [Status::Pass, Status::Warn, Status::Fail, Status::Pending, Status::Skipped];
    for mode in [Judge::Absolute, Judge::Regression] {
        for trial in [true, false] {
            for critical in [true, false] {
                for now_status in statuses {
                    for previous in PREVIOUS {
                        for (age, when, recent) in ages().into_iter().filter(|(_, w, _)| w.is_some()) {
                            let checks = [
                                CheckResult::finished("disk", true, Status::Pass),
                                CheckResult::finished("api", critical, now_status),
                            ];
                            let prev = previous_image(previous, when.unwrap());
                            let got = judge(mode, trial, &checks, Some(&prev), now());
                            let case = format!(
                                "{mode:?} trial={trial} critical={critical} now={now_status:?} previous={previous:?} {age}"
                            );
                            if !trial || !critical || now_status.passed() {
                                assert_eq!(got, vec![], "{case}");
                                continue;
                            }
                            let blame = match previous {
                                Some(s) if recent && s.passed() => Blame::Regression,
                                Some(_) if recent => Blame::Preexisting,
                                _ => Blame::Unknown,
                            };
                            let accepted = mode == Judge::Regression && blame == Blame::Preexisting;
                            assert_eq!(got, vec![Judged { index: 1, blame, accepted }], "{case}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn judge_without_any_record_of_the_previous_image_blames_unknown_and_accepts_nothing() {
    let checks = [CheckResult::finished("api", true, Status::Fail), CheckResult::finished("new", true, Status::Fail)];
    for mode in [Judge::Absolute, Judge::Regression] {
        let got = judge(mode, true, &checks, None, now());
        assert!(got.iter().all(|j| j.blame == Blame::Unknown && !j.accepted), "{got:?}");
        assert_eq!(got.len(), 2);
    }
    // A check the previous image never ran is new: unknown, so it fails the gate.
    let prev = previous_image(Some(Status::Fail), now());
    let got = judge(Judge::Regression, true, &checks, Some(&prev), now());
    assert_eq!(
        got,
        vec![
            Judged { index: 0, blame: Blame::Preexisting, accepted: true },
            Judged { index: 1, blame: Blame::Unknown, accepted: false }
        ]
    );
}

#[test]
fn an_accepted_failure_counts_as_optional_and_the_gate_passes_degraded() {
    use crate::engine::{GateState, Health, verdict};
    let mut api = CheckResult::finished("api", true, Status::Fail);
    assert!(api.blocks());
    api.accepted = true;
    assert!(!api.blocks());
    let v = verdict([(true, Status::Pass), (api.counts_critical(), api.status)]);
    assert_eq!((v.gate, v.health), (GateState::Passed, Health::Degraded));
}

fn result(name: &str, status: Status) -> CheckResult {
    CheckResult::finished(name, true, status)
}

#[test]
fn the_second_verdict_over_every_combination_of_what_failed_there_and_what_runs_here() {
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: Vec<(Vec<String>, Vec<CheckResult>, FallbackBlame)> = vec![
        (names(&["api"]), vec![result("api", Status::Pass)], FallbackBlame::Image),
        (names(&["api"]), vec![result("api", Status::Warn)], FallbackBlame::Image),
        (names(&["api"]), vec![result("api", Status::Fail)], FallbackBlame::Environment),
        (names(&["api"]), vec![result("api", Status::Pending)], FallbackBlame::Environment),
        (names(&["api"]), vec![result("api", Status::Skipped)], FallbackBlame::Environment),
        (names(&["api", "dns"]), vec![result("api", Status::Fail), result("dns", Status::Pass)], FallbackBlame::Image),
        (
            names(&["api", "dns"]),
            vec![result("api", Status::Fail), result("dns", Status::Fail)],
            FallbackBlame::Environment,
        ),
        (names(&["api", "gone"]), vec![result("api", Status::Fail)], FallbackBlame::Environment),
        (names(&["gone"]), vec![result("api", Status::Fail)], FallbackBlame::Unknown),
        (names(&[]), vec![result("api", Status::Fail)], FallbackBlame::Unknown),
    ];
    for (failed, here, want) in cases {
        assert_eq!(second_verdict(&failed, &here), want, "failed there {failed:?}, here {here:?}");
    }
}

fn fallback(blame: Option<FallbackBlame>, reason: crate::record::boot::Reason) -> Fallback {
    Fallback { blame, reason, ..Fallback::sample() }
}

#[test]
fn retry_over_every_policy_reason_blame_count_and_passing_time() {
    use crate::record::boot::Reason;
    let delay = 10 * 60;
    let policies = [
        None,
        Some(Retry { max: 1, delay: Duration::from_secs(delay) }),
        Some(Retry { max: 2, delay: Duration::from_secs(delay) }),
    ];
    let blames = [None, Some(FallbackBlame::Image), Some(FallbackBlame::Environment), Some(FallbackBlame::Unknown)];
    let passing = [
        None,
        Some(Duration::ZERO),
        Some(Duration::from_secs(delay - 1)),
        Some(Duration::from_secs(delay)),
        Some(Duration::from_secs(delay * 3)),
    ];
    for policy in policies {
        for reason in [Reason::GateFailed, Reason::Reverted, Reason::NoVerdict] {
            for blame in blames {
                for tried in 0..3 {
                    for passing_for in passing {
                        let f = fallback(blame, reason);
                        let got = retry(policy, &f, tried, passing_for);
                        let case = format!("{policy:?} {reason:?} {blame:?} tried={tried} passing={passing_for:?}");
                        let want = match policy {
                            None => RetryStep::Off,
                            Some(_) if blame != Some(FallbackBlame::Environment) => RetryStep::NotEnvironment,
                            Some(p) if tried >= p.max => RetryStep::Exhausted { tried },
                            Some(p) => match passing_for {
                                Some(d) if d >= p.delay => RetryStep::Now { attempt: tried + 1 },
                                Some(d) => RetryStep::Waiting { left: p.delay - d },
                                None => RetryStep::Waiting { left: p.delay },
                            },
                        };
                        assert_eq!(got, want, "{case}");
                    }
                }
            }
        }
    }
    // A fallback that names no failing check has nothing to wait for: never retried.
    let empty = Fallback { failing: Vec::new(), ..fallback(Some(FallbackBlame::Environment), Reason::GateFailed) };
    assert_eq!(retry(policies[1], &empty, 0, Some(Duration::from_secs(delay))), RetryStep::NotEnvironment);
}

fn line(at: SystemTime, version: &str, blame: Option<FallbackBlame>, retried: bool) -> PastBoot {
    PastBoot {
        timestamp: Some(timestamp(at)),
        fallback: Some(SeenFallback {
            from_uuid: "u4".into(),
            reason: Lenient::Known(crate::record::boot::Reason::GateFailed),
            from_version: Some(version.into()),
            blame: blame.map_or(Lenient::Other, Lenient::Known),
        }),
        retry: retried.then(|| crate::record::boot::RetryFacts {
            attempt: 1,
            max: 1,
            at: timestamp(at),
            text: "re-armed".into(),
            done: true,
        }),
        failing: vec![Failing { name: "api".into(), message: String::new() }],
        ..Default::default()
    }
}

#[test]
fn retries_are_counted_per_version() {
    let t = now();
    let history = [
        line(t, "2.0", Some(FallbackBlame::Environment), true),
        line(t, "2.0", Some(FallbackBlame::Environment), false),
        line(t, "3.0", Some(FallbackBlame::Environment), true),
        PastBoot::default(),
    ];
    assert_eq!(retries_of(&history, "2.0"), 1);
    assert_eq!(retries_of(&history, "3.0"), 1);
    assert_eq!(retries_of(&history, "4.0"), 0);
}

#[test]
fn hold_over_failure_counts_blames_ages_and_releases() {
    let policy = Hold { after: 2, hold_for: DAY };
    let never = |_: &str| None;
    let t = now();
    let image = Some(FallbackBlame::Image);
    // Counts: below, at and above the threshold; blames other than image never count.
    for n in 0..4u32 {
        for blame in [None, image, Some(FallbackBlame::Environment), Some(FallbackBlame::Unknown)] {
            let history: Vec<PastBoot> = (0..n).map(|i| line(t - HOUR * (n - i), "2.0", blame, false)).collect();
            let got = hold(&history, policy, &never, t);
            let held = blame == image && n >= 2;
            assert_eq!(got.is_some(), held, "{n} failures blamed {blame:?}");
            if let Some(h) = got {
                assert_eq!((h.version.as_str(), h.failures), ("2.0", n));
                assert_eq!(h.until, timestamp(t - HOUR + DAY), "held from the latest failure");
                assert!(h.text.contains("bootgate release"), "{}", h.text);
            }
        }
    }
    let two = [line(t - 2 * HOUR, "2.0", image, false), line(t - HOUR, "2.0", image, false)];
    // Past its end, a hold is over.
    assert_eq!(hold(&two, policy, &never, t + DAY), None);
    assert!(hold(&two, policy, &never, t + DAY - 2 * HOUR).is_some());
    // A release counts only the failures after it.
    let released_between = |v: &str| (v == "2.0").then_some(t - 90 * MINUTE);
    assert_eq!(hold(&two, policy, &released_between, t), None);
    let released_after = |v: &str| (v == "2.0").then_some(t);
    assert_eq!(hold(&two, policy, &released_after, t), None);
    let released_other = |v: &str| (v == "9.9").then_some(t);
    assert!(hold(&two, policy, &released_other, t).is_some());
    let three = [two[0].clone(), two[1].clone(), line(t - 10 * MINUTE, "2.0", image, false)];
    assert_eq!(hold(&three, policy, &released_between, t).map(|h| h.failures), Some(2));
    // Versions are counted apart; of two holds, the one that ends last is reported.
    let mixed = [
        line(t - 3 * HOUR, "2.0", image, false),
        line(t - 2 * HOUR, "3.0", image, false),
        line(t - HOUR, "3.0", image, false),
    ];
    assert_eq!(hold(&mixed, policy, &never, t).map(|h| h.version), Some("3.0".into()));
    let both = [mixed.to_vec(), vec![line(t - 30 * MINUTE, "2.0", image, false)]].concat();
    assert_eq!(hold(&both, policy, &never, t).map(|h| h.version), Some("2.0".into()));
    // A line without a time or a version says nothing about a hold.
    let mut timeless = two.clone();
    timeless.iter_mut().for_each(|b| b.timestamp = None);
    assert_eq!(hold(&timeless, policy, &never, t), None);
    // hold_after 1 holds at the first failure.
    assert!(hold(&two[..1], Hold { after: 1, hold_for: DAY }, &never, t).is_some());
}

#[test]
fn a_rearm_puts_the_failed_slot_one_try_above_the_booted_fallback() {
    use crate::boot::BootStatus;
    let table = |a_priority: u8, booted: u32| BootStatus {
        booted: Some(booted),
        disk: Some("/dev/vda".into()),
        partitions: vec![
            PartitionInfo::usr(3, a_priority, 0, true).with_label("USR-A"),
            PartitionInfo::usr(4, 0, 0, false).with_label("USR-B"),
        ],
        note: None,
    };
    let (failed, priority) = rearm_target(&table(1, 3), "u4").unwrap();
    assert_eq!((failed.index, priority), (4, 2));
    assert_eq!(rearm_target(&table(14, 3), "U4").map(|(_, p)| p), Ok(15), "PARTUUIDs compare without case");
    assert!(rearm_target(&table(15, 3), "u4").unwrap_err().contains("highest priority"));
    assert!(rearm_target(&table(1, 3), "u3").unwrap_err().contains("is the booted slot"));
    assert!(rearm_target(&table(1, 3), "u9").unwrap_err().contains("no slot with PARTUUID u9"));
    let off_ab = BootStatus { booted: None, ..table(1, 3) };
    assert!(rearm_target(&off_ab, "u4").is_err());
}
