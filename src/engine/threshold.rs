//! Runtime thresholds: a check's reported status changes only after enough
//! consecutive results agree, so a single blip does not flip it.

use std::time::Duration;

use super::CheckResult;
use crate::policy::Runtime;

/// The result to report after `raw`, given the previously reported `prev`.
pub fn apply_thresholds(prev: &CheckResult, raw: CheckResult, t: &Runtime) -> CheckResult {
    let ok = raw.status.passed();
    let failures = if ok { 0 } else { prev.consecutive_failures.saturating_add(1) };
    let successes = if ok { prev.consecutive_successes.saturating_add(1) } else { 0 };
    let flips = if ok {
        !prev.status.passed() && successes < t.success_threshold
    } else {
        prev.status.passed() && failures < t.failure_threshold
    };
    let counted = CheckResult { consecutive_failures: failures, consecutive_successes: successes, ..raw };
    if !flips {
        return counted;
    }
    // Hold the previous status, but say what the latest round saw.
    let (count, need, what) =
        if ok { (successes, t.success_threshold, "successes") } else { (failures, t.failure_threshold, "failures") };
    let mut observed = prev.observed.clone();
    observed.remove(START_PERIOD);
    CheckResult {
        status: prev.status,
        observed,
        message: format!("holding {}: {count}/{need} {what} so far; latest: {}", prev.status.as_str(), counted.message),
        ..counted
    }
}

/// The observed key (and the component field) that marks a result inside its start period.
pub const START_PERIOD: &str = "start_period";

/// The result to report after `raw` while the check is in its start period (`left` of it
/// remains): a failure does not count toward `failure_threshold` and holds the previous
/// status; a pass counts as usual (and ends the period, which the caller keeps).
pub fn apply_in_start_period(prev: &CheckResult, raw: CheckResult, t: &Runtime, left: Duration) -> CheckResult {
    if raw.status.passed() {
        return apply_thresholds(prev, raw, t);
    }
    let mut observed = prev.observed.clone();
    observed.insert(START_PERIOD.into(), true.into());
    let left = crate::util::time::spelled(Duration::from_secs(left.as_secs()));
    CheckResult {
        status: prev.status,
        observed,
        message: format!("start period ({left} left), failure not counted; latest: {}", raw.message),
        consecutive_failures: prev.consecutive_failures,
        consecutive_successes: 0,
        ..raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;

    fn result(status: Status) -> CheckResult {
        CheckResult::finished("c", true, status)
    }

    fn run(start: Status, seq: &[Status], failure: u32, success: u32) -> Vec<Status> {
        let t = Runtime {
            interval: Duration::from_secs(1),
            failure_threshold: failure,
            success_threshold: success,
            max_concurrent: 8,
        };
        let mut cur = result(start);
        seq.iter()
            .map(|&s| {
                cur = apply_thresholds(&cur, result(s), &t);
                cur.status
            })
            .collect()
    }

    use Status::*;

    #[test]
    fn a_single_blip_does_not_flip() {
        assert_eq!(run(Pass, &[Fail, Pass, Fail, Fail, Pass], 3, 1), [Pass, Pass, Pass, Pass, Pass]);
    }

    #[test]
    fn flips_after_threshold_and_back() {
        assert_eq!(run(Pass, &[Fail, Fail, Fail, Fail, Pass], 3, 1), [Pass, Pass, Fail, Fail, Pass]);
        assert_eq!(run(Fail, &[Pass, Fail, Pass, Pass, Pass], 3, 2), [Fail, Fail, Fail, Pass, Pass]);
    }

    #[test]
    fn warn_counts_as_passing_and_skipped_as_failing() {
        assert_eq!(run(Pass, &[Warn, Pass], 3, 1), [Warn, Pass]);
        assert_eq!(run(Pass, &[Skipped, Skipped], 2, 1), [Pass, Skipped]);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_and_say_so() {
        let t =
            Runtime { interval: Duration::from_secs(1), failure_threshold: 1, success_threshold: 1, max_concurrent: 8 };
        let left = Duration::from_secs(4);
        let held = apply_in_start_period(&result(Pass), result(Fail), &t, left);
        assert_eq!((held.status, held.consecutive_failures), (Pass, 0));
        assert_eq!(held.observed.get(START_PERIOD), Some(&true.into()));
        assert!(held.message.starts_with("start period (4s left), failure not counted; latest: "), "{}", held.message);
        // Past the period the next failure counts, and the mark is gone even while held.
        let after = apply_thresholds(&held, result(Fail), &t);
        assert_eq!((after.status, after.consecutive_failures), (Fail, 1));
        let t3 = Runtime { failure_threshold: 3, ..t.clone() };
        let still_held = apply_thresholds(&held, result(Fail), &t3);
        assert_eq!(still_held.status, Pass);
        assert_eq!(still_held.observed.get(START_PERIOD), None);
        // A pass inside the period counts as always.
        let passed = apply_in_start_period(&result(Fail), result(Pass), &t, left);
        assert_eq!((passed.status, passed.consecutive_successes), (Pass, 1));
    }

    #[test]
    fn held_status_explains_itself() {
        let t =
            Runtime { interval: Duration::from_secs(1), failure_threshold: 3, success_threshold: 1, max_concurrent: 8 };
        let held = apply_thresholds(&result(Pass), result(Fail), &t);
        assert_eq!(held.status, Pass);
        assert_eq!(held.consecutive_failures, 1);
        assert!(held.message.contains("1/3 failures"), "{}", held.message);
    }
}
