//! Each check's runtime schedule: its `interval`, else `BOOTGATE_INTERVAL`, else
//! `runtime.interval`; at most `runtime.max_concurrent` at once; a start period during
//! which failures do not count; runs on request joined or spaced out.
//!
//! The schedule keeps the due times in a queue and the dependents' view per check, so a
//! result costs the same with ten checks as with a thousand.
//!
//! A slow check delays only itself: a run that outlasts its interval is followed by the
//! next one at once, never by a burst of the missed ones. A check whose `after:`
//! dependency is running waits for that result; one whose dependency's latest result did
//! not pass is reported skipped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::observe;
use super::window::Window;
use crate::engine::{Board, CheckResult, apply_in_start_period, apply_thresholds, run_alone, skipped};
use crate::policy::{CheckSpec, Policy};
use crate::server::{RunNow, RunReply};

/// The environment variable that sets the runtime interval of checks without their own.
pub const INTERVAL_ENV: &str = "BOOTGATE_INTERVAL";

/// The longest interval scheduled; longer ones would overflow a timer.
pub(super) const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A check started on request starts again no sooner than this.
pub const RUN_NOW_SPACING: Duration = Duration::from_secs(1);

/// The interval a check runs at: its own, else the environment's, else the policy's.
pub fn interval_of(spec: &CheckSpec, env: Option<Duration>, policy: &Policy) -> Duration {
    spec.interval.or(env).unwrap_or(policy.runtime.interval).clamp(crate::policy::MIN_INTERVAL, MAX_INTERVAL)
}

/// Reads [`INTERVAL_ENV`]: `None` when unset; an invalid value is logged and ignored.
pub fn env_interval(value: Option<&str>) -> Option<Duration> {
    let text = value?.trim();
    match humantime::parse_duration(text) {
        Ok(d) if d >= crate::policy::MIN_INTERVAL => Some(d),
        Ok(_) => {
            tracing::error!("{INTERVAL_ENV}={text:?} is shorter than 1s; using the policy's runtime.interval");
            None
        }
        Err(e) => {
            tracing::error!("{INTERVAL_ENV}={text:?} is not a duration ({e}); using the policy's runtime.interval");
            None
        }
    }
}

/// What dependents see of a check.
#[derive(Debug, Clone, Copy)]
struct Dep {
    running: bool,
    /// Whether its latest result passed; `None` before its first.
    passed: Option<bool>,
}

/// One check's schedule and latest results.
pub(super) struct Slot {
    pub(super) spec: CheckSpec,
    every: Duration,
    next: Instant,
    running: bool,
    /// The run in progress was started on request.
    asked: bool,
    last_on_request: Option<Instant>,
    waiters: Vec<oneshot::Sender<RunReply>>,
    dep: watch::Sender<Dep>,
    /// The latest result that counts, for the rollback window.
    raw: Option<CheckResult>,
    /// Until when failures do not count; `None` once over (or never).
    grace_until: Option<Instant>,
}

/// Every check's slot, for one policy.
pub(super) struct Schedule {
    pub(super) slots: Vec<Slot>,
    pub(super) runs: JoinSet<(usize, CheckResult)>,
    /// Which check each run is, for a run that panicked.
    pub(super) ids: HashMap<tokio::task::Id, usize>,
    limit: Arc<Semaphore>,
    /// When each check not running is due next, soonest first. An entry whose check has
    /// started since, or is planned for another time now, is dropped when it comes up.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    /// How many checks are running.
    running: usize,
}

impl Schedule {
    /// Slots for `policy`, first due at `first`, seeded from the board; the start periods
    /// count from `since` (the gate's end) unless a check's ended in `old` already.
    pub(super) fn new(
        policy: &Policy,
        board: &Board,
        env: Option<Duration>,
        first: Option<Instant>,
        since: Instant,
        old: Option<&Schedule>,
    ) -> Schedule {
        let now = Instant::now();
        let shown = board.borrow().clone();
        let slots: Vec<Slot> = policy
            .checks
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let every = interval_of(spec, env, policy);
                let latest = shown.checks.get(i).filter(|c| c.name == spec.name && c.last_check.is_some());
                let passed = latest.map(|c| c.status.passed());
                let kept = old.and_then(|o| o.slots.iter().find(|s| s.spec.name == spec.name));
                let grace_until = match kept {
                    Some(k) => k.grace_until,
                    None => (!spec.start_period.is_zero()).then(|| since + spec.start_period),
                };
                Slot {
                    spec: spec.clone(),
                    every,
                    next: first.unwrap_or_else(|| now + every),
                    running: false,
                    asked: false,
                    last_on_request: None,
                    waiters: Vec::new(),
                    dep: watch::channel(Dep { running: false, passed }).0,
                    raw: latest.cloned(),
                    grace_until,
                }
            })
            .collect();
        crate::metrics::intervals(slots.iter().map(|s| (s.spec.name.as_str(), s.every)));
        let limit = Arc::new(Semaphore::new(policy.runtime.max_concurrent.clamp(1, Semaphore::MAX_PERMITS)));
        let due = slots.iter().enumerate().map(|(i, s)| Reverse((s.next, i))).collect();
        Schedule { slots, runs: JoinSet::new(), ids: HashMap::new(), limit, due, running: 0 }
    }

    /// Whether the queue's entry (`at`, `i`) still stands: check `i` waits and is due then.
    fn stands(&self, at: Instant, i: usize) -> bool {
        !self.slots[i].running && self.slots[i].next == at
    }

    /// The next moment a check not running is due.
    pub(super) fn next_due(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, i))) = self.due.peek() {
            if self.stands(at, i) {
                return Some(at);
            }
            self.due.pop();
        }
        None
    }

    /// Starts every check due by now. All are marked running first, so a dependent due at
    /// the same moment waits for its dependency's new result instead of reading the old one.
    pub(super) fn start_due(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(&Reverse((at, i))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            if self.stands(at, i) && !due.contains(&i) {
                due.push(i);
            }
        }
        for &i in &due {
            self.mark_running(i);
            // The next run is planned from this one's plan, so the rhythm holds.
            let s = &mut self.slots[i];
            s.next += s.every;
        }
        for i in due {
            self.spawn(i);
        }
    }

    fn mark_running(&mut self, i: usize) {
        self.running += 1;
        self.slots[i].running = true;
        self.slots[i].dep.send_modify(|d| d.running = true);
    }

    fn spawn(&mut self, i: usize) {
        let spec = self.slots[i].spec.clone();
        let deps: Vec<(String, watch::Receiver<Dep>)> =
            spec.after.iter().map(|&d| (self.slots[d].spec.name.clone(), self.slots[d].dep.subscribe())).collect();
        let limit = Arc::clone(&self.limit);
        let handle = self.runs.spawn(async move {
            for (name, mut rx) in deps {
                // A dependency gone (a reload dropped it) did not pass either.
                let passed = rx
                    .wait_for(|d| !d.running && d.passed.is_some())
                    .await
                    .map(|d| d.passed == Some(true))
                    .unwrap_or(false);
                if !passed {
                    return (i, skipped(&spec, &name));
                }
            }
            (i, run_alone(&spec, Some(&limit)).await)
        });
        self.ids.insert(handle.id(), i);
    }

    /// A request to run `name` now: joins a run in progress, else starts one unless the
    /// last one on request started less than [`RUN_NOW_SPACING`] ago.
    pub(super) fn request(&mut self, req: RunNow) {
        let Some(i) = self.slots.iter().position(|s| s.spec.name == req.check) else {
            let _ = req.reply.send(RunReply::Unknown);
            return;
        };
        let now = Instant::now();
        let s = &mut self.slots[i];
        if !s.running {
            if let Some(left) = s.last_on_request.map(|at| (at + RUN_NOW_SPACING).saturating_duration_since(now))
                && !left.is_zero()
            {
                let _ = req.reply.send(RunReply::TooSoon(left));
                return;
            }
            s.last_on_request = Some(now);
            s.asked = true;
            self.mark_running(i);
            self.spawn(i);
        }
        self.slots[i].waiters.push(req.reply);
    }

    /// Takes a finished result: thresholds (or the start period), metrics, the board, the
    /// dependents, the window and whoever asked for it; plans the next run. Returns whether
    /// the check's reported status (or its blame) changed.
    pub(super) fn finish(
        &mut self,
        i: usize,
        raw: CheckResult,
        policy: &Policy,
        board: &Board,
        window: Option<&mut Window>,
    ) -> bool {
        let now = Instant::now();
        self.ids.retain(|_, &mut j| j != i);
        observe::result(&raw);
        let s = &mut self.slots[i];
        let passed = raw.status.passed();
        if passed {
            // As in Docker: the first pass ends the start period.
            s.grace_until = None;
        }
        let grace = s.grace_until.filter(|t| now < *t);
        if grace.is_none() {
            s.grace_until = None;
        }
        let mut reported = None;
        let asked_by = !s.waiters.is_empty();
        let mut changed = false;
        let mut raw = raw;
        board.send_modify(|snap| {
            let snap = std::sync::Arc::make_mut(snap);
            if let Some(prev) = snap.checks.get_mut(i).filter(|c| c.name == s.spec.name) {
                let before = (prev.status, prev.blame);
                // The gate's blame, and an accepted preexisting failure, hold for the whole boot.
                (raw.blame, raw.accepted) = (prev.blame, prev.accepted);
                *prev = match grace {
                    Some(until) => {
                        apply_in_start_period(prev, raw.clone(), &policy.runtime, until.saturating_duration_since(now))
                    }
                    None => apply_thresholds(prev, raw.clone(), &policy.runtime),
                };
                changed = before != (prev.status, prev.blame);
                if asked_by {
                    reported = Some(prev.clone());
                }
            }
        });
        s.dep.send_modify(|d| *d = Dep { running: false, passed: Some(passed) });
        s.running = false;
        // A run that outlasted its interval is followed by the next at once: delayed, not
        // bunched. A run on request stands for a scheduled one that fell due meanwhile.
        if s.next < now {
            s.next = if s.asked { now + s.every } else { now };
        }
        s.asked = false;
        if grace.is_none() {
            s.raw = Some(raw);
        }
        if asked_by {
            let reported = reported.unwrap_or_else(|| s.raw.clone().unwrap_or_else(|| CheckResult::pending(&s.spec)));
            for w in s.waiters.drain(..) {
                let _ = w.send(RunReply::Done(Box::new(reported.clone())));
            }
        }
        let next = s.next;
        self.running -= 1;
        self.due.push(Reverse((next, i)));
        if let Some(w) = window {
            // The window sees the latest counted result of every check, so each call shows it all.
            w.observe(self.slots.iter().filter_map(|s| s.raw.as_ref()), board);
        }
        changed
    }

    pub(super) fn idle(&self) -> bool {
        self.running == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(runtime: &str) -> Policy {
        let text = format!(
            "version: 1\n{runtime}checks:\n  - {{name: own, kind: disk, interval: 7s}}\n  - {{name: shared, kind: disk}}\n"
        );
        crate::policy::parse(&text, "test.yaml").unwrap()
    }

    #[test]
    fn a_check_interval_beats_the_environment_which_beats_the_policy_which_beats_the_default() {
        let secs = |d: Duration| d.as_secs();
        let p = policy("runtime: {interval: 20s}\n");
        let env = Some(Duration::from_secs(3));
        assert_eq!(secs(interval_of(&p.checks[0], env, &p)), 7);
        assert_eq!(secs(interval_of(&p.checks[1], env, &p)), 3);
        assert_eq!(secs(interval_of(&p.checks[1], None, &p)), 20);
        let d = policy("");
        assert_eq!(secs(interval_of(&d.checks[1], None, &d)), 60);
    }

    #[test]
    fn the_environment_interval_must_be_a_duration_of_at_least_1s() {
        assert_eq!(env_interval(Some(" 5s ")), Some(Duration::from_secs(5)));
        assert_eq!(env_interval(Some("2m")), Some(Duration::from_secs(120)));
        assert_eq!(env_interval(Some("500ms")), None);
        assert_eq!(env_interval(Some("soon")), None);
        assert_eq!(env_interval(Some("5")), None);
        assert_eq!(env_interval(None), None);
    }
}
