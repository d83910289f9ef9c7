//! The check engine: one round of checks (concurrent, ordered by `after:`, retried
//! within the gate deadline), the verdict, and runtime thresholds.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::checks::{Observed, Outcome, Status};
use crate::policy::CheckSpec;

mod round;
mod threshold;
mod verdict;

pub use round::{Event, Round, run_alone, run_round, skipped};
pub use threshold::{START_PERIOD, apply_in_start_period, apply_thresholds};
pub use verdict::{Blame, ComponentHealth, GateState, GateWord, Health, Verdict, blocks_gate, verdict};

/// The latest known result of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub name: String,
    pub kind: &'static str,
    pub critical: bool,
    pub status: Status,
    pub message: String,
    pub observed: Observed,
    /// Duration of the last attempt.
    pub duration: Duration,
    /// Attempts in the round that produced this result.
    pub attempts: u32,
    pub last_check: Option<SystemTime>,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    /// How the gate round went for this check; zero outside the gate.
    pub timing: Timing,
    /// On a trial boot, why this critical check failed the gate: compared with the image
    /// the update replaces. Kept for the whole boot, through the runtime results.
    pub blame: Option<Blame>,
    /// Its failure was there before the update (`preexisting`) and `gate.judge:
    /// regression` accepted it: it counts as an optional check for this boot.
    pub accepted: bool,
}

/// A check that keeps the gate from passing, and what it said: the one shape in which a
/// failing check travels (the snapshot, the verdict file, the history, a fallback, a revert).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failing {
    pub name: String,
    #[serde(default)]
    pub message: String,
}

impl Failing {
    /// `result` as a failing check.
    pub fn of(result: &CheckResult) -> Self {
        Failing { name: result.name.clone(), message: result.message.clone() }
    }
}

/// A check's round in the boot gate beyond its last attempt, kept by the gate from round events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// From the first attempt's start to the result, waits between attempts included.
    pub spent: Duration,
    /// The part of `spent` waiting to retry.
    pub waited: Duration,
    /// When the next attempt starts, while a failed attempt waits for its retry.
    pub next_attempt: Option<SystemTime>,
}

impl CheckResult {
    /// A check that has not reported yet.
    pub fn pending(spec: &CheckSpec) -> Self {
        CheckResult {
            name: spec.name.clone(),
            kind: spec.kind,
            critical: spec.critical,
            status: Status::Pending,
            // Pending messages carry their own word, as retrying ones do (`retrying: …`).
            message: "pending: not run yet".into(),
            observed: Observed::new(),
            duration: Duration::ZERO,
            attempts: 0,
            last_check: None,
            consecutive_failures: 0,
            consecutive_successes: 0,
            timing: Timing::default(),
            blame: None,
            accepted: false,
        }
    }

    /// A finished result of `status` after one attempt, its status word as the message and
    /// nothing observed. With the `with_*` methods it builds the results that tests and
    /// examples need, without spelling out every field.
    pub fn finished(name: &str, critical: bool, status: Status) -> Self {
        let passed = status.passed();
        CheckResult {
            name: name.into(),
            kind: "tcp",
            critical,
            status,
            message: status.as_str().into(),
            observed: Observed::new(),
            duration: Duration::ZERO,
            attempts: 1,
            last_check: None,
            consecutive_failures: u32::from(!passed),
            consecutive_successes: u32::from(passed),
            timing: Timing::default(),
            blame: None,
            accepted: false,
        }
    }

    /// Whether it counts as critical now: critical, and its failure not accepted as preexisting.
    pub fn counts_critical(&self) -> bool {
        self.critical && !self.accepted
    }

    /// Whether it keeps the gate (and readiness) from passing now ([`blocks_gate`]).
    pub fn blocks(&self) -> bool {
        blocks_gate(self.counts_critical(), self.status)
    }

    /// This result of a check of `kind`.
    pub fn with_kind(self, kind: &'static str) -> Self {
        CheckResult { kind, ..self }
    }

    /// This result saying `message`.
    pub fn with_message(self, message: impl Into<String>) -> Self {
        CheckResult { message: message.into(), ..self }
    }

    /// This result having observed `key`: `value`.
    pub fn with_observed(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.observed.insert(key.into(), value.into());
        self
    }

    /// This result after `attempts` attempts, the last taking `duration`.
    pub fn with_attempts(self, attempts: u32, duration: Duration) -> Self {
        CheckResult { attempts, duration, ..self }
    }

    /// This result, checked last at `at`.
    pub fn with_last_check(self, at: SystemTime) -> Self {
        CheckResult { last_check: Some(at), ..self }
    }

    /// This result after `n` failures in a row.
    pub fn with_failures(self, n: u32) -> Self {
        CheckResult { consecutive_failures: n, ..self }
    }

    /// What this result means for its renderers.
    pub fn health(&self) -> ComponentHealth {
        ComponentHealth::of(self.counts_critical(), self.status)
    }

    /// The result of a check whose task panicked: a failed check, never a crashed daemon.
    pub fn crashed(spec: &CheckSpec, e: &tokio::task::JoinError) -> Self {
        Self::from_outcome(spec, Outcome::fail(format!("the check crashed: {e}")), Duration::ZERO, 1)
    }

    fn from_outcome(spec: &CheckSpec, o: Outcome, duration: Duration, attempts: u32) -> Self {
        let passed = o.status.passed();
        CheckResult {
            status: o.status.into(),
            message: o.message,
            observed: o.observed,
            duration,
            attempts,
            last_check: Some(SystemTime::now()),
            consecutive_failures: u32::from(!passed),
            consecutive_successes: u32::from(passed),
            ..Self::pending(spec)
        }
    }
}

/// Everything readers (STATUS, the endpoint, metrics) need, swapped whole on change.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub gate: GateState,
    pub checks: Vec<CheckResult>,
    pub gate_started: SystemTime,
    pub gate_duration: Option<Duration>,
    /// When every critical check must have passed, once the gate's round started.
    pub gate_deadline: Option<SystemTime>,
    /// The checks that failed the gate, with the message they failed it with (once it failed).
    pub gate_failing: Vec<Failing>,
    /// Why the gate failed, when the failing checks alone do not say (`failed during soak`).
    pub gate_reason: Option<String>,
    /// While every critical check passed and they soak before READY=1.
    pub soak: Option<Soak>,
    /// The rollback window after READY=1, when the policy has one.
    pub rollback: Option<RollbackWindow>,
}

/// The soak in progress: all critical checks passed once and keep being re-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Soak {
    pub total: Duration,
    pub ends: SystemTime,
}

impl Soak {
    /// Time left until READY=1, as of `now`.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.ends.duration_since(now).unwrap_or_default()
    }
}

/// The rollback window as readers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackWindow {
    pub ends: SystemTime,
    /// A sustained critical failure would revert this boot now (inside the window, on an
    /// update that was unconfirmed when bootgate started, not reverted yet).
    pub armed: bool,
    /// Why it is not armed, or what it is doing (`reverting: api failing for 20s`).
    pub note: String,
}

impl RollbackWindow {
    /// Whether a sustained failure would still revert at `now` (the window closes by itself).
    pub fn armed_at(&self, now: SystemTime) -> bool {
        self.armed && now <= self.ends
    }

    /// Time left in the window while it is armed, as of `now`.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        if self.armed { self.ends.duration_since(now).unwrap_or_default() } else { Duration::ZERO }
    }
}

impl Snapshot {
    pub fn new(specs: &[CheckSpec]) -> Self {
        Snapshot {
            gate: GateState::Running,
            checks: specs.iter().map(CheckResult::pending).collect(),
            gate_started: SystemTime::now(),
            gate_duration: None,
            gate_deadline: None,
            gate_failing: Vec::new(),
            gate_reason: None,
            soak: None,
            rollback: None,
        }
    }

    /// The critical checks that are not passing now, with their messages.
    pub fn critical_failures(&self) -> Vec<Failing> {
        self.checks.iter().filter(|c| c.blocks()).map(Failing::of).collect()
    }

    /// The gate as people are told it (see [`GateWord`]).
    pub fn gate_word(&self) -> GateWord<'_> {
        GateWord::of(self.gate, self.soak.is_some(), self.gate_reason.as_deref())
    }

    /// The verdict over the current results.
    pub fn verdict(&self) -> Verdict {
        verdict(self.checks.iter().map(|c| (c.counts_critical(), c.status)))
    }
}

/// The shared, atomically replaced snapshot: writers publish, readers never wait on a check.
pub type Board = tokio::sync::watch::Sender<Arc<Snapshot>>;
