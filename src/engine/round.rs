//! One round of checks: all start at once, each waits only for its `after:`
//! dependencies and then for a slot (`max_concurrent`); attempts are cut at their timeout,
//! counted from the slot, and, in the boot gate, retried with exponential backoff until
//! they pass, retries run out or the deadline comes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

use super::CheckResult;
use crate::checks::{Outcome, RunCtx, Status};
use crate::policy::CheckSpec;
use crate::util::time::spelled;

const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a round runs.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// No attempt runs past this instant.
    pub deadline: Instant,
    /// Whether failed attempts are retried (the boot gate) or not (runtime rounds).
    pub retries: bool,
    /// At most this many checks run at once; `None`: no limit.
    pub max_concurrent: Option<usize>,
}

/// How far ahead an instant goes when the sum would overflow the clock: as tokio does.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

impl Round {
    /// `start + span`, or far in the future when that overflows: no duration panics.
    pub fn deadline_after(start: Instant, span: Duration) -> Instant {
        // `start` itself is the last resort: a deadline already reached fails closed.
        start.checked_add(span).or_else(|| start.checked_add(FAR_FUTURE)).unwrap_or(start)
    }
}

/// Progress of a round, for STATUS and the live snapshot.
#[derive(Debug, Clone)]
pub enum Event {
    /// Attempt `attempt` of `of` of check `index` starts.
    Attempt { index: usize, attempt: u32, of: u32 },
    /// The attempt failed and the next one starts after `backoff`.
    Retry { index: usize, attempt: u32, backoff: Duration, message: String },
    /// The check has its result for this round.
    Done { index: usize, result: CheckResult },
}

/// Runs every check once (with retries if asked) and returns results in policy order.
pub async fn run_round(
    specs: &[CheckSpec],
    round: Round,
    events: Option<mpsc::UnboundedSender<Event>>,
) -> Vec<CheckResult> {
    let (senders, receivers): (Vec<_>, Vec<_>) = specs.iter().map(|_| watch::channel(None::<bool>)).unzip();
    let slots = round.max_concurrent.map(|n| Arc::new(Semaphore::new(n.clamp(1, Semaphore::MAX_PERMITS))));
    let mut set = JoinSet::new();
    let mut task_index = HashMap::new();
    for ((i, spec), done) in specs.iter().enumerate().zip(senders) {
        let deps: Vec<(String, watch::Receiver<Option<bool>>)> =
            spec.after.iter().map(|&d| (specs[d].name.clone(), receivers[d].clone())).collect();
        let spec = spec.clone();
        let events = events.clone();
        let slots = slots.clone();
        let handle = set.spawn(async move {
            let result = run_check(i, &spec, deps, round, events.as_ref(), slots.as_deref()).await;
            let _ = done.send(Some(result.status.passed()));
            if let Some(tx) = &events {
                let _ = tx.send(Event::Done { index: i, result: result.clone() });
            }
            (i, result)
        });
        task_index.insert(handle.id(), i);
    }
    let mut results: Vec<CheckResult> = specs.iter().map(CheckResult::pending).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, result)) => results[i] = result,
            // A panicking check is a failed check, never a crashed gate.
            Err(e) => {
                if let Some(&i) = task_index.get(&e.id()) {
                    results[i] = CheckResult::crashed(&specs[i], &e);
                    if let Some(tx) = &events {
                        let _ = tx.send(Event::Done { index: i, result: results[i].clone() });
                    }
                }
            }
        }
    }
    results
}

/// Runs one check once, without retries, after taking a slot of `slots` (if any): the
/// runtime's per-check schedule and a run on request. Its timeout starts with the slot.
pub async fn run_alone(spec: &CheckSpec, slots: Option<&Semaphore>) -> CheckResult {
    let round =
        Round { deadline: Round::deadline_after(Instant::now(), FAR_FUTURE), retries: false, max_concurrent: None };
    run_check(0, spec, Vec::new(), round, None, slots).await
}

/// The result of a check not run because `dependency` did not pass: only the engine says so.
pub fn skipped(spec: &CheckSpec, dependency: &str) -> CheckResult {
    let outcome = Outcome::fail(format!("skipped: `{dependency}` did not pass"));
    CheckResult { status: Status::Skipped, ..CheckResult::from_outcome(spec, outcome, Duration::ZERO, 0) }
}

/// Backoff before attempt `attempt + 1`: 1 s, 2 s, 4 s … capped at 30 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(5)).min(MAX_BACKOFF)
}

async fn run_check(
    index: usize,
    spec: &CheckSpec,
    deps: Vec<(String, watch::Receiver<Option<bool>>)>,
    round: Round,
    events: Option<&mpsc::UnboundedSender<Event>>,
    slots: Option<&Semaphore>,
) -> CheckResult {
    for (name, mut rx) in deps {
        // A dependency whose task vanished (sender dropped) did not pass either.
        let passed = rx.wait_for(Option::is_some).await.map(|v| *v == Some(true)).unwrap_or(false);
        if !passed {
            return skipped(spec, &name);
        }
    }
    // Held until the result is in, retries included; the semaphore is never closed.
    let _slot = match slots {
        Some(s) => s.acquire().await.ok(),
        None => None,
    };
    let of = if round.retries { spec.retries.saturating_add(1) } else { 1 };
    let send = |e: Event| {
        if let Some(tx) = events {
            let _ = tx.send(e);
        }
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = Instant::now();
        let remaining = round.deadline.saturating_duration_since(started);
        if remaining.is_zero() {
            let outcome = Outcome::fail(format!("the deadline passed before attempt {attempt}"));
            return CheckResult::from_outcome(spec, outcome, Duration::ZERO, attempt - 1);
        }
        send(Event::Attempt { index, attempt, of });
        let limit = spec.timeout.min(remaining);
        let ctx = RunCtx { deadline: Round::deadline_after(started, limit), limit };
        let mut outcome = match timeout(limit, spec.check.run(&ctx)).await {
            Ok(outcome) => outcome,
            Err(_) if limit < spec.timeout => {
                Outcome::fail(format!("cut off by the gate deadline after {}", spelled(limit)))
            }
            Err(_) => Outcome::fail(format!("timed out after {}", spelled(limit))),
        };
        let took = started.elapsed();
        if outcome.status.passed() || attempt >= of {
            return CheckResult::from_outcome(spec, outcome, took, attempt);
        }
        let pause = backoff(attempt);
        if Round::deadline_after(Instant::now(), pause) >= round.deadline {
            outcome.message = format!(
                "{} (gave up after {attempt} attempts: the gate deadline comes before the next retry)",
                outcome.message
            );
            return CheckResult::from_outcome(spec, outcome, took, attempt);
        }
        send(Event::Retry { index, attempt, backoff: pause, message: outcome.message.clone() });
        sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_past_the_clock_saturates() {
        let now = Instant::now();
        assert_eq!(Round::deadline_after(now, Duration::from_secs(5)), now + Duration::from_secs(5));
        let far = Round::deadline_after(now, Duration::MAX);
        assert!(far >= now + Duration::from_secs(86_400 * 365), "{:?}", far - now);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let got: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
