//! The rollback window's decisions, pure: whether a critical check has failed without a
//! pass for `failing_for` inside the window ([`Watch`], [`decide`]), and, on gptprio
//! slots, whether this boot can be reverted at all ([`arm`]) and which slot a revert
//! falls back to ([`gptprio_target`]). The act is the backend's
//! ([`crate::boot::backend::Backend::revert`]).

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::gptprio_next;
use crate::boot::{BootStatus, PartitionInfo};
use crate::engine::{CheckResult, Failing, RollbackWindow};
use crate::policy::Rollback;
use crate::record::verdict::WindowRecord;
use crate::util::text::one_line;
use crate::util::time::spelled;

/// Whether a gptprio boot can be reverted at all, judged once when the gate passes: the
/// slot bootgate found at start must have been unconfirmed (update_engine marks it right
/// after READY=1, so it is confirmed by the time anything fails).
pub fn arm(started: Option<&BootStatus>) -> Result<(), &'static str> {
    let Some(booted) = started.and_then(BootStatus::booted_partition) else {
        return Err("not armed: this boot is not on an A/B slot bootgate could read at start");
    };
    if booted.successful {
        return Err("not armed: the booted slot was already good before this boot");
    }
    Ok(())
}

/// A critical check failing without a pass since `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    pub check: Failing,
    pub since: Instant,
}

/// What the window says about the failures seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing critical has failed for `failing_for` yet.
    Wait,
    /// The window has ended: failures are a runtime health matter now.
    Closed,
    /// These critical checks have failed for `failing_for`: revert this update.
    Revert { failing: Vec<Since> },
}

/// The pure decision at `now`, for a window (armed at READY=1) that ends at `ends`, over
/// the critical checks failing without a pass.
pub fn decide(ends: Instant, now: Instant, failing_for: Duration, failing: &[Since]) -> Decision {
    if now > ends {
        return Decision::Closed;
    }
    let sustained: Vec<Since> =
        failing.iter().filter(|f| now.saturating_duration_since(f.since) >= failing_for).cloned().collect();
    if sustained.is_empty() { Decision::Wait } else { Decision::Revert { failing: sustained } }
}

/// On gptprio slots, the booted slot and the slot a revert falls back to: another slot
/// of its type, bootable (priority above 0) and known good; `None` when there is none
/// (reverting would leave nothing to boot) or the booted slot is unknown.
pub fn gptprio_target(table: &BootStatus) -> Option<(PartitionInfo, PartitionInfo)> {
    let booted = table.booted_partition()?;
    let fallback = table
        .partitions
        .iter()
        .filter(|p| p.type_guid.eq_ignore_ascii_case(&booted.type_guid))
        .filter(|p| p.index != booted.index && p.successful && p.priority > 0)
        .max_by_key(|p| (p.priority, std::cmp::Reverse(p.index)))?;
    Some((booted.clone(), fallback.clone()))
}

/// The priority that puts `booted` below `fallback`, as a revert writes it.
pub fn demoted_priority(booted: &PartitionInfo, fallback: &PartitionInfo) -> u8 {
    fallback.priority.saturating_sub(1).min(booted.priority)
}

/// Whether gptprio picks `fallback` from `table` (read after the revert).
pub fn falls_back(table: &BootStatus, fallback: &PartitionInfo) -> bool {
    gptprio_next(&table.partitions, &fallback.type_guid) == Some(fallback.index)
}

/// How long a window recorded earlier in this boot still has, as a restart re-opens it:
/// what the boot clock says is left when the record has it (the wall clock may have been
/// stepped since), never more than the wall clock says, and never more than `window`
/// (the policy's, which a corrupt or stepped record must not stretch). `None` once over.
pub fn reopened_left(
    recorded: &WindowRecord,
    now: SystemTime,
    since_boot: Option<Duration>,
    window: Duration,
) -> Option<Duration> {
    let wall = recorded.window_ends.duration_since(now).ok()?;
    let boot = match (recorded.ends_since_boot_ms, since_boot) {
        (Some(ends), Some(at)) => Duration::from_millis(ends).checked_sub(at)?,
        _ => wall,
    };
    Some(wall.min(boot).min(window)).filter(|left| !left.is_zero())
}

/// Follows the critical checks of the runtime rounds: when each began failing without a pass.
#[derive(Debug, Clone)]
pub struct Watch {
    pub policy: Rollback,
    /// The window's end on the monotonic clock, and as readers are shown it.
    pub ends: Instant,
    pub ends_wall: SystemTime,
    failing: Vec<Since>,
    /// Set once a revert started (or was refused): never twice.
    pub done: bool,
}

impl Watch {
    /// A window opening now (at READY=1).
    pub fn open(policy: Rollback) -> Self {
        let window = policy.window.min(crate::policy::MAX_DURATION);
        Watch {
            policy,
            ends: Instant::now() + window,
            ends_wall: SystemTime::now() + window,
            failing: Vec::new(),
            done: false,
        }
    }

    /// Takes one runtime round's raw results (before thresholds: one pass resets).
    pub fn observe<'a, I>(&mut self, raw: I)
    where
        I: IntoIterator<Item = &'a CheckResult>,
        I::IntoIter: Clone,
    {
        let raw = raw.into_iter();
        let now = Instant::now();
        for r in raw.clone().filter(|r| r.counts_critical()) {
            let known = self.failing.iter().position(|f| f.check.name == r.name);
            match (r.status.passed(), known) {
                (true, Some(i)) => {
                    self.failing.remove(i);
                }
                (false, Some(i)) => self.failing[i].check.message = r.message.clone(),
                (false, None) => self.failing.push(Since { check: Failing::of(r), since: now }),
                (true, None) => {}
            }
        }
        // A check the policy no longer has, or no longer holds critical (after a
        // reload), cannot keep failing: only what is critical now reverts an update.
        if !self.failing.is_empty() {
            self.failing.retain(|f| raw.clone().any(|r| r.name == f.check.name && r.counts_critical()));
        }
    }

    /// The decision now.
    pub fn decide(&self) -> Decision {
        decide(self.ends, Instant::now(), self.policy.failing_for, &self.failing)
    }

    /// The health document's `rollback`, with `note` saying what the window does.
    pub fn shown(&self, armed: bool, note: impl Into<String>) -> RollbackWindow {
        RollbackWindow { ends: self.ends_wall, armed, note: note.into() }
    }
}

/// `name (failing for 20s: message)` for each failing check, for logs, STATUS and the history.
pub fn describe(failing: &[Since], now: Instant) -> String {
    failing
        .iter()
        .map(|f| {
            let secs = Duration::from_secs(now.saturating_duration_since(f.since).as_secs());
            format!("{} (failing for {}: {})", f.check.name, spelled(secs), one_line(&f.check.message))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "revert_tests.rs"]
mod tests;
