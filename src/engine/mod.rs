//! The check engine: one round of checks (concurrent, ordered by `after:`, retried
//! within the gate deadline), the verdict, and runtime thresholds.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::checks::{Observed, Outcome, Status};
use crate::policy::CheckSpec;

mod round;
mod threshold;
mod verdict;

pub use round::{Event, Round, run_round};
pub use threshold::apply_thresholds;
pub use verdict::{ComponentHealth, GateState, Health, Verdict, blocks_gate, verdict};

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
        }
    }

    /// What this result means for its renderers.
    pub fn health(&self) -> ComponentHealth {
        ComponentHealth::of(self.critical, self.status)
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
    /// The checks that failed the gate, with the message they failed it with (once it failed).
    pub gate_failing: Vec<(String, String)>,
}

impl Snapshot {
    pub fn new(specs: &[CheckSpec]) -> Self {
        Snapshot {
            gate: GateState::Running,
            checks: specs.iter().map(CheckResult::pending).collect(),
            gate_started: SystemTime::now(),
            gate_duration: None,
            gate_failing: Vec::new(),
        }
    }

    /// The critical checks that are not passing now, with their messages.
    pub fn critical_failures(&self) -> Vec<(String, String)> {
        self.checks
            .iter()
            .filter(|c| blocks_gate(c.critical, c.status))
            .map(|c| (c.name.clone(), c.message.clone()))
            .collect()
    }

    /// The verdict over the current results.
    pub fn verdict(&self) -> Verdict {
        verdict(self.checks.iter().map(|c| (c.critical, c.status)))
    }
}

/// The shared, atomically replaced snapshot: writers publish, readers never wait on a check.
pub type Board = tokio::sync::watch::Sender<Arc<Snapshot>>;
