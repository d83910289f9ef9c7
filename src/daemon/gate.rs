//! The boot gate as the daemon runs it: one round with retries inside the deadline,
//! keeping the live snapshot and systemd's STATUS current while it runs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};

use super::judge::Judging;
use super::observe;
use super::soak::{FAILED_DURING_SOAK, soak};
use crate::engine::Board;
use crate::engine::{Event, GateState, Round, Snapshot, Timing, run_round, verdict};
use crate::policy::Policy;
use crate::process::Notifier;
use crate::render::status;
use crate::util::text::one_line;
use crate::util::time::spelled;

/// How long past the gate's own deadline systemd's start timeout is extended.
const START_MARGIN: Duration = Duration::from_secs(30);
/// How often the extension is sent again while the gate runs.
const EXTEND_EVERY: Duration = Duration::from_secs(10);

/// Runs the gate and publishes every step on `board`; returns the final snapshot. `boot`
/// is the boot's own gate, with the policy's settle before and soak after the round
/// (`bootgate check` runs the round alone); `judging`, on a trial boot, blames what
/// failed against the previous image once the round ends, before the gate decides.
pub async fn run_gate(
    policy: &Policy,
    board: &Board,
    notifier: Notifier,
    boot: bool,
    judging: Option<Judging>,
) -> Arc<Snapshot> {
    let started_wall = SystemTime::now();
    let mut pings = notifier.pings();
    if boot && !policy.gate.settle.is_zero() {
        // systemd's start timeout must not end the settle or the gate after it.
        notifier.extend_start(policy.gate.settle.saturating_add(policy.gate.deadline).saturating_add(START_MARGIN));
        notifier.status(&format!("settling for {}", spelled(policy.gate.settle)));
        pings.during(notifier, sleep(policy.gate.settle)).await;
    }
    let started = Instant::now();
    let deadline = Round::deadline_after(started, policy.gate.deadline);
    board.send_modify(|s| Arc::make_mut(s).gate_deadline = SystemTime::now().checked_add(policy.gate.deadline));
    let extend =
        || notifier.extend_start(deadline.saturating_duration_since(Instant::now()).saturating_add(START_MARGIN));
    if boot {
        extend();
    }
    let mut refresh = tokio::time::interval_at(started + EXTEND_EVERY, EXTEND_EVERY);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let round = run_round(
        &policy.checks,
        Round { deadline, retries: true, max_concurrent: policy.gate.max_concurrent },
        Some(tx),
    );
    tokio::pin!(round);
    let mut rounds: Vec<Progress> = vec![Progress::default(); policy.checks.len()];
    let mut results = loop {
        tokio::select! {
            results = &mut round => break results,
            Some(event) = rx.recv() => {
                if let Event::Retry { index, attempt, backoff, message } = &event {
                    let name = &policy.checks[*index].name;
                    let retry_in = spelled(*backoff);
                    tracing::info!(check = %name, attempt, retry_in_ms = backoff.as_millis() as u64, "{name}: attempt {attempt} failed, retrying in {retry_in}: {message}");
                    // The gate ends by its own deadline; keep systemd from ending it sooner.
                    extend();
                }
                if let Event::Done { result, .. } = &event {
                    observe::result(result);
                }
                board.send_modify(|s| apply(&mut rounds, Arc::make_mut(s), event));
                notifier.status(&status::running(&board.borrow(), &attempts(&rounds)));
            }
            () = pings.due() => notifier.watchdog(),
            _ = refresh.tick(), if boot => extend(),
        }
    };
    // The round can finish while its last results still wait in the channel: they
    // get their log line, metrics and timing too (the board takes them from `results`).
    while let Ok(event) = rx.try_recv() {
        if let Event::Done { result, .. } = &event {
            observe::result(result);
        }
        board.send_modify(|s| apply(&mut rounds, Arc::make_mut(s), event));
    }
    for (r, p) in results.iter_mut().zip(&rounds) {
        r.timing = p.timing;
    }
    if let Some(judging) = judging {
        judging.apply(&mut results).await;
    }
    let accepted: Vec<&str> = results.iter().filter(|c| c.accepted).map(|c| c.name.as_str()).collect();
    let accepted = (!accepted.is_empty()).then(|| format!("accepted: preexisting failure of {}", accepted.join(", ")));
    let passed = verdict(results.iter().map(|c| (c.counts_critical(), c.status))).gate == GateState::Passed;
    board.send_modify(|s| {
        let s = Arc::make_mut(s);
        s.checks = results;
        s.gate_started = started_wall;
    });
    let mut reason = None;
    if passed && boot && !policy.gate.soak.is_zero() {
        if let Err(failed) = soak(policy, board, notifier, &mut pings).await {
            tracing::warn!(failing = %failed.join(", "), "{FAILED_DURING_SOAK}: {}", failed.join(", "));
            reason = Some(FAILED_DURING_SOAK.to_string());
        }
    }
    board.send_modify(|s| {
        let s = Arc::make_mut(s);
        s.gate_duration = Some(started.elapsed());
        s.gate = match (&reason, s.verdict().gate) {
            (None, GateState::Passed) => GateState::Passed,
            _ => GateState::Failed,
        };
        // A pass that accepted preexisting failures says so, where a failure says why.
        s.gate_reason = if s.gate == GateState::Passed { accepted } else { reason };
    });
    board.borrow().clone()
}

/// What the gate knows of a check's round beyond the board: its attempts, the last
/// failure, and when the first attempt started.
#[derive(Debug, Clone, Default)]
struct Progress {
    attempt: u32,
    of: u32,
    first_start: Option<Instant>,
    last_failure: String,
    timing: Timing,
}

/// Each check's attempt and how many it may have, for STATUS.
fn attempts(rounds: &[Progress]) -> Vec<(u32, u32)> {
    rounds.iter().map(|p| (p.attempt, p.of)).collect()
}

/// Puts one round event on the live snapshot: the attempt that runs, the failure a
/// retry waits on (instead of `pending: not run yet`), and the final result with its timing.
fn apply(rounds: &mut [Progress], s: &mut Snapshot, event: Event) {
    match event {
        Event::Attempt { index, attempt, of } => {
            let p = &mut rounds[index];
            (p.attempt, p.of) = (attempt, of);
            p.first_start.get_or_insert_with(Instant::now);
            p.timing.next_attempt = None;
            let c = &mut s.checks[index];
            c.attempts = attempt;
            c.timing = p.timing;
            c.message = if attempt > 1 {
                format!("retrying: attempt {attempt}/{of} running; attempt {} failed: {}", attempt - 1, p.last_failure)
            } else {
                format!("pending: attempt 1/{of} running")
            };
        }
        Event::Retry { index, attempt, backoff, message } => {
            let p = &mut rounds[index];
            let now = SystemTime::now();
            p.timing.waited += backoff;
            p.timing.next_attempt = Some(now + backoff);
            p.last_failure = one_line(&message);
            let c = &mut s.checks[index];
            c.attempts = attempt;
            c.last_check = Some(now);
            c.timing = p.timing;
            c.message = format!(
                "retrying: attempt {attempt}/{} failed: {}; next attempt in {}",
                p.of.max(attempt),
                p.last_failure,
                spelled(backoff)
            );
        }
        Event::Done { index, mut result } => {
            let p = &mut rounds[index];
            p.timing.next_attempt = None;
            p.timing.spent = p.first_start.map(|t| t.elapsed()).unwrap_or(result.duration);
            result.timing = p.timing;
            s.checks[index] = result;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::checks::Status;
    use crate::engine::CheckResult;

    fn result(name: &str, critical: bool, status: Status) -> CheckResult {
        CheckResult { attempts: 0, ..CheckResult::finished(name, critical, status) }
    }

    fn snapshot(gate: GateState, checks: Vec<CheckResult>) -> Snapshot {
        Snapshot { gate, checks, gate_started: SystemTime::now(), gate_duration: None, ..Snapshot::new(&[]) }
    }

    #[test]
    fn a_retry_puts_the_failed_attempt_on_the_board_and_in_status() {
        let mut s = snapshot(
            GateState::Running,
            vec![result("root", true, Status::Pass), result("net", true, Status::Pending)],
        );
        let mut rounds = vec![Progress::default(); 2];
        apply(&mut rounds, &mut s, Event::Attempt { index: 1, attempt: 1, of: 7 });
        assert_eq!(s.checks[1].message, "pending: attempt 1/7 running");
        let refused = "127.0.0.1:9: Connection refused\n(os error 111)".to_string();
        apply(
            &mut rounds,
            &mut s,
            Event::Retry { index: 1, attempt: 1, backoff: Duration::from_secs(2), message: refused },
        );
        let net = &s.checks[1];
        let want = "retrying: attempt 1/7 failed: 127.0.0.1:9: Connection refused (os error 111); next attempt in 2s";
        assert_eq!(net.message, want);
        assert_eq!((net.status, net.attempts), (Status::Pending, 1));
        assert!(net.timing.next_attempt.is_some() && net.last_check.is_some());
        assert_eq!(net.timing.waited, Duration::from_secs(2));
        assert_eq!(
            status::running(&s, &attempts(&rounds)),
            format!("gate running: 1/2 checks done; waiting for net ({want})")
        );

        apply(&mut rounds, &mut s, Event::Attempt { index: 1, attempt: 2, of: 7 });
        let net = &s.checks[1];
        assert_eq!(
            net.message,
            "retrying: attempt 2/7 running; attempt 1 failed: 127.0.0.1:9: Connection refused (os error 111)"
        );
        assert_eq!(net.timing.next_attempt, None);
        assert_eq!(
            status::running(&s, &attempts(&rounds)),
            "gate running: 1/2 checks done; waiting for net (attempt 2/7)"
        );

        let done = CheckResult { status: Status::Pass, attempts: 2, ..result("net", true, Status::Pass) };
        apply(&mut rounds, &mut s, Event::Done { index: 1, result: done });
        assert_eq!(s.checks[1].status, Status::Pass);
        assert_eq!(s.checks[1].timing.waited, Duration::from_secs(2), "the result keeps its round's waits");
        assert_eq!(s.checks[1].timing.next_attempt, None);
    }
}
