//! The rollback window: after READY=1, a critical check that keeps failing without one
//! pass for `failing_for` reverts the update that was booted — but only inside the
//! window, only when this boot started on an unconfirmed slot, and only when another
//! slot is bootable and known good. The decision is [`decide`], a pure function; the
//! act is [`revert`], through the platform's own tool.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::boot::decide::gptprio_next;
use crate::boot::{BootStatus, PartitionInfo};
use crate::engine::{CheckResult, RollbackWindow};
use crate::policy::Rollback;

/// How long `cgpt` may take on a local disk before the revert is given up.
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether this boot can be reverted at all, judged once when the gate passes: the slot
/// bootgate found at start must have been unconfirmed (update_engine marks it right
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

/// A critical check that has failed since `since` without a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    pub name: String,
    pub message: String,
    pub since: Instant,
}

/// What the window says about the failures seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing critical has failed for `failing_for` yet.
    Wait,
    /// The window has ended: failures are a runtime health matter now.
    Closed,
    /// A sustained failure, but no other slot is bootable and good: reverting would
    /// leave nothing to boot.
    NoFallback { failing: Vec<Failing> },
    /// Revert: mark `booted` bad so the boot loader picks `fallback`.
    Revert { booted: PartitionInfo, fallback: PartitionInfo, failing: Vec<Failing> },
}

/// The pure revert decision at `now`, for a window (armed at READY=1) that ends at
/// `ends`, over the critical checks failing without a pass and the partition table as
/// it is now.
pub fn decide(ends: Instant, now: Instant, failing_for: Duration, failing: &[Failing], table: &BootStatus) -> Decision {
    if now > ends {
        return Decision::Closed;
    }
    let sustained: Vec<Failing> =
        failing.iter().filter(|f| now.saturating_duration_since(f.since) >= failing_for).cloned().collect();
    if sustained.is_empty() {
        return Decision::Wait;
    }
    let Some(booted) = table.booted_partition() else {
        return Decision::NoFallback { failing: sustained };
    };
    let same_type = |p: &&PartitionInfo| p.type_guid.eq_ignore_ascii_case(&booted.type_guid);
    let fallback = table
        .partitions
        .iter()
        .filter(same_type)
        .filter(|p| p.index != booted.index && p.successful && p.priority > 0)
        .max_by_key(|p| (p.priority, std::cmp::Reverse(p.index)));
    match fallback {
        Some(f) => Decision::Revert { booted: booted.clone(), fallback: f.clone(), failing: sustained },
        None => Decision::NoFallback { failing: sustained },
    }
}

/// Follows the critical checks of the runtime rounds: when each began failing without a pass.
#[derive(Debug, Clone)]
pub struct Watch {
    pub policy: Rollback,
    /// The window's end on the monotonic clock, and as readers are shown it.
    pub ends: Instant,
    pub ends_wall: SystemTime,
    failing: Vec<Failing>,
    /// Set once a revert started (or was refused for want of a fallback): never twice.
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
    pub fn observe(&mut self, raw: &[CheckResult]) {
        let now = Instant::now();
        for r in raw.iter().filter(|r| r.critical) {
            let known = self.failing.iter().position(|f| f.name == r.name);
            match (r.status.passed(), known) {
                (true, Some(i)) => {
                    self.failing.remove(i);
                }
                (false, Some(i)) => self.failing[i].message = r.message.clone(),
                (false, None) => {
                    self.failing.push(Failing { name: r.name.clone(), message: r.message.clone(), since: now })
                }
                (true, None) => {}
            }
        }
        // A check the policy no longer has (after a reload) cannot keep failing.
        self.failing.retain(|f| raw.iter().any(|r| r.name == f.name));
    }

    /// The decision now, over `table` (read anew by the caller).
    pub fn decide(&self, table: &BootStatus) -> Decision {
        decide(self.ends, Instant::now(), self.policy.failing_for, &self.failing, table)
    }

    /// Whether any critical check has failed for `failing_for` already (so the caller reads the table).
    pub fn sustained(&self) -> bool {
        let now = Instant::now();
        now <= self.ends
            && self.failing.iter().any(|f| now.saturating_duration_since(f.since) >= self.policy.failing_for)
    }

    /// The health document's `rollback`, with `note` saying what the window does.
    pub fn shown(&self, armed: bool, note: impl Into<String>) -> RollbackWindow {
        RollbackWindow { ends: self.ends_wall, armed, note: note.into() }
    }
}

/// `name (for 20s: message)` for each failing check, for logs, STATUS and the history.
pub fn describe(failing: &[Failing], now: Instant) -> String {
    failing
        .iter()
        .map(|f| {
            let secs = Duration::from_secs(now.saturating_duration_since(f.since).as_secs());
            format!(
                "{} (failing for {}: {})",
                f.name,
                humantime::format_duration(secs),
                crate::text::one_line(&f.message)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Marks `booted` bad on `disk` the way Flatcar's own tools write gptprio attributes:
/// `cgpt add` with successful 0, tries 0 and a priority below `fallback`'s.
pub async fn revert(disk: &Path, booted: &PartitionInfo, fallback: &PartitionInfo) -> Result<(), String> {
    let priority = fallback.priority.saturating_sub(1).min(booted.priority);
    let args = [
        "add".to_string(),
        "-i".into(),
        booted.index.to_string(),
        "-S".into(),
        "0".into(),
        "-T".into(),
        "0".into(),
        "-P".into(),
        priority.to_string(),
    ];
    let mut cmd = tokio::process::Command::new("cgpt");
    cmd.args(&args).arg(disk).stdin(Stdio::null()).kill_on_drop(true);
    let shown = format!("cgpt {} {}", args.join(" "), disk.display());
    let out = match tokio::time::timeout(TOOL_TIMEOUT, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("cannot run `{shown}`: {e}")),
        Err(_) => return Err(format!("`{shown}` did not finish within {}", humantime::format_duration(TOOL_TIMEOUT))),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("`{shown}` failed ({}): {}", out.status, crate::text::one_line(&stderr)));
    }
    tracing::info!(command = %shown, "marked partition {} {} bad: {shown}", booted.index, booted.label);
    Ok(())
}

/// Whether the boot loader picks `fallback` from `table` (read after the revert).
pub fn falls_back(table: &BootStatus, fallback: &PartitionInfo) -> bool {
    gptprio_next(&table.partitions, &fallback.type_guid) == Some(fallback.index)
}

#[cfg(test)]
#[path = "rollback_tests.rs"]
mod tests;
