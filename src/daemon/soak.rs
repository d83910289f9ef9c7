//! The soak: once every critical check has passed, the gate keeps re-running them every
//! `soak_interval` for `soak` before READY=1. An API that answers once at boot and dies
//! a minute later fails here, before update_engine marks the slot, instead of shipping.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::{Instant, sleep_until};

use super::observe;
use crate::engine::{Board, CheckResult, Round, Snapshot, Soak, apply_thresholds, run_round};
use crate::policy::Policy;
use crate::process::notify::{Notifier, Pings};
use crate::render::status;

/// Why the gate fails when a soak does.
pub const FAILED_DURING_SOAK: &str = "failed during soak";

/// Soaks the checks on `board` for `policy.gate.soak`; `Err` names the critical checks
/// that failed `runtime.failure_threshold` times in a row (the board then shows them failed).
pub async fn soak(policy: &Policy, board: &Board, notifier: Notifier, pings: &mut Pings) -> Result<(), Vec<String>> {
    let total = policy.gate.soak;
    let ends = Round::deadline_after(Instant::now(), total);
    board.send_modify(|s| Arc::make_mut(s).soak = Some(Soak { total, ends: SystemTime::now() + total }));
    notifier.status(&status::soaking(&board.borrow(), SystemTime::now()));
    let mut next = Instant::now();
    let mut rounds = 0u32;
    let outcome = loop {
        next = Round::deadline_after(next, policy.gate.soak_interval).min(ends);
        // The soak's last round may start just before its end and run to the gate deadline.
        let left = ends.saturating_duration_since(Instant::now());
        notifier.extend_start(left.saturating_add(policy.gate.deadline).saturating_add(Duration::from_secs(30)));
        pings.during(notifier, sleep_until(next)).await;
        let round = run_round(
            &policy.checks,
            Round {
                deadline: Round::deadline_after(next, policy.gate.deadline),
                retries: false,
                max_concurrent: policy.gate.max_concurrent,
            },
            None,
        );
        let raw = pings.during(notifier, round).await;
        board.send_modify(|s| fold(Arc::make_mut(s), raw, policy));
        rounds += 1;
        // The last round judges what the soak saw: a soak shorter than the threshold's
        // rounds must still fail a critical check that failed every round it ran.
        let last = next >= ends;
        let needed = if last { policy.runtime.failure_threshold.min(rounds) } else { policy.runtime.failure_threshold };
        let failed = failed(&board.borrow().checks, needed);
        if !failed.is_empty() {
            board.send_modify(|s| show_failed(Arc::make_mut(s), &failed));
            break Err(failed);
        }
        notifier.status(&status::soaking(&board.borrow(), SystemTime::now()));
        if next >= ends {
            break Ok(());
        }
    };
    board.send_modify(|s| Arc::make_mut(s).soak = None);
    outcome
}

/// Puts one soak round on the snapshot through the runtime thresholds, so a single
/// blip shows as `holding pass` and only a run of failures turns a check failed.
fn fold(s: &mut Snapshot, raw: Vec<CheckResult>, policy: &Policy) {
    for (prev, new) in s.checks.iter_mut().zip(raw) {
        observe::result(&new);
        let (timing, blame, accepted) = (prev.timing, prev.blame, prev.accepted);
        *prev = CheckResult { timing, blame, accepted, ..apply_thresholds(prev, new, &policy.runtime) };
    }
}

/// Shows the checks that failed the soak as failed, where the thresholds still held a
/// pass: the verdict and its `failing` name them.
fn show_failed(s: &mut Snapshot, failed: &[String]) {
    for c in s.checks.iter_mut().filter(|c| failed.contains(&c.name) && c.status.passed()) {
        c.status = crate::checks::Status::Fail;
        c.message = format!("failed {} soak round(s) in a row; {}", c.consecutive_failures, c.message);
    }
}

/// The critical checks that failed `threshold` times in a row.
fn failed(checks: &[CheckResult], threshold: u32) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.counts_critical() && c.consecutive_failures >= threshold)
        .map(|c| c.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;

    fn result(name: &str, critical: bool, failures: u32) -> CheckResult {
        let status = if failures == 0 { Status::Pass } else { Status::Fail };
        CheckResult { consecutive_failures: failures, ..CheckResult::finished(name, critical, status) }
    }

    #[test]
    fn only_critical_checks_at_the_threshold_fail_the_soak() {
        let checks = [result("api", true, 2), result("db", true, 3), result("docker", false, 9)];
        assert_eq!(failed(&checks, 3), ["db"]);
        assert!(failed(&checks, 4).is_empty());
    }
}
