//! Judging the update, not the weather: pure decisions, no I/O. Whether a failing
//! critical check of a trial boot is the update's fault ([`blame`]), what `gate.judge`
//! makes of the blames ([`judge`]), what a fallback's own gate says about the image it
//! left ([`second_verdict`]), whether to boot that image again after an outage
//! ([`retry`]), and whether to hold updates of a version that keeps failing ([`hold`]).

use std::time::{Duration, SystemTime};

use crate::boot::{BootStatus, PartitionInfo};
use crate::engine::{Blame, CheckResult};
use crate::policy::{Hold, Judge, Retry};
use crate::record::boot::{Fallback, FallbackBlame, HoldFacts};
use crate::record::history::PastBoot;
use crate::record::last_seen::{ImageSeen, Seen};
use crate::util::time::{parse_timestamp, readable_time, timestamp};

/// A record of the previous image older than this says nothing about it now: a check it
/// passed a week ago may have failed since, for reasons of its own.
pub const RECORD_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The blame of a critical check that failed a trial boot's gate, from what the previous
/// image last saw of it. A record from the future (the clock stepped back, as on devices
/// without a real-time clock) counts as recent: it is the latest there is.
pub fn blame(previous: Option<&Seen>, now: SystemTime) -> Blame {
    let Some(seen) = previous else { return Blame::Unknown };
    let Some(at) = seen.when() else { return Blame::Unknown };
    match now.duration_since(at) {
        Ok(age) if age > RECORD_AGE => Blame::Unknown,
        _ if seen.passed => Blame::Regression,
        _ => Blame::Preexisting,
    }
}

/// One failing critical check's judgement: its blame, and whether its failure is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    pub index: usize,
    pub blame: Blame,
    pub accepted: bool,
}

/// Blames every critical check that keeps the gate from passing, when this boot is a
/// trial of a new image and the previous image left a record; under `regression` a
/// `preexisting` failure is accepted (the update is no worse), `regression` and
/// `unknown` still fail the gate. Nothing is blamed off a trial.
pub fn judge(
    mode: Judge,
    trial: bool,
    checks: &[CheckResult],
    previous: Option<&ImageSeen>,
    now: SystemTime,
) -> Vec<Judged> {
    if !trial {
        return Vec::new();
    }
    checks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.blocks())
        .map(|(index, c)| {
            let blame = blame(previous.and_then(|p| p.checks.get(&c.name)), now);
            Judged { index, blame, accepted: mode == Judge::Regression && blame == Blame::Preexisting }
        })
        .collect()
}

/// The second verdict of a fallback, from this boot's gate: `image` when a check the left
/// image failed passes here, `environment` when every one of them fails here too,
/// `unknown` when none of them runs here.
pub fn second_verdict(left_failing: &[String], here: &[CheckResult]) -> FallbackBlame {
    let here: Vec<bool> = left_failing
        .iter()
        .filter_map(|name| here.iter().find(|c| &c.name == name).map(|c| c.status.passed()))
        .collect();
    if here.is_empty() {
        FallbackBlame::Unknown
    } else if here.iter().any(|&passed| passed) {
        FallbackBlame::Image
    } else {
        FallbackBlame::Environment
    }
}

/// Where a retry of the left update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryStep {
    /// The policy has no `retry_after_environment`.
    Off,
    /// The fallback was not the environment's fault (or not yet judged): nothing to retry.
    NotEnvironment,
    /// This version was retried `tried` times already, the policy's most.
    Exhausted { tried: u32 },
    /// The checks the left image failed do not pass here yet (or not for long enough).
    Waiting { left: Duration },
    /// Re-arm the left update and reboot into it: retry number `attempt`.
    Now { attempt: u32 },
}

/// Whether to retry the update this boot fell back from. `tried`: retries of its version
/// recorded so far; `passing_for`: how long every check it failed has passed here
/// (`None` while one of them does not).
pub fn retry(policy: Option<Retry>, fallback: &Fallback, tried: u32, passing_for: Option<Duration>) -> RetryStep {
    let Some(policy) = policy else { return RetryStep::Off };
    if fallback.blame != Some(FallbackBlame::Environment) || fallback.failing.is_empty() {
        return RetryStep::NotEnvironment;
    }
    if tried >= policy.max {
        return RetryStep::Exhausted { tried };
    }
    match passing_for {
        Some(d) if d >= policy.delay => RetryStep::Now { attempt: tried + 1 },
        Some(d) => RetryStep::Waiting { left: policy.delay - d },
        None => RetryStep::Waiting { left: policy.delay },
    }
}

/// How many times the update to `version` was retried, by the history's lines.
pub fn retries_of(history: &[PastBoot], version: &str) -> u32 {
    let retried = |b: &&PastBoot| {
        b.retry.as_ref().is_some_and(|r| r.done)
            && b.fallback.as_ref().and_then(|f| f.from_version.as_deref()) == Some(version)
    };
    history.iter().filter(retried).count() as u32
}

/// Whether updates are held at `now`: a version whose fallbacks the history blames on the
/// image at least `policy.after` times since it was last released (`released_at`, per
/// version), held for `policy.hold_for` after the latest of them. Of several such
/// versions, the one whose hold ends last.
pub fn hold(
    history: &[PastBoot],
    policy: Hold,
    released_at: &dyn Fn(&str) -> Option<SystemTime>,
    now: SystemTime,
) -> Option<HoldFacts> {
    let mut counts: Vec<(String, u32, SystemTime)> = Vec::new();
    for b in history {
        let Some(f) = &b.fallback else { continue };
        let (Some(version), Some(FallbackBlame::Image)) = (f.from_version.as_deref(), f.blame.known()) else {
            continue;
        };
        let Some(at) = b.timestamp.as_deref().and_then(parse_timestamp) else { continue };
        if released_at(version).is_some_and(|r| at <= r) {
            continue;
        }
        match counts.iter_mut().find(|(v, ..)| v == version) {
            Some((_, n, last)) => {
                *n += 1;
                *last = (*last).max(at);
            }
            None => counts.push((version.to_string(), 1, at)),
        }
    }
    counts
        .into_iter()
        .filter(|(_, n, _)| *n >= policy.after)
        .map(|(version, n, last)| (version, n, last + policy.hold_for))
        .filter(|(.., until)| now < *until)
        .max_by_key(|(.., until)| *until)
        .map(|(version, failures, until)| HoldFacts {
            text: format!(
                "updates held until {}: version {version} failed {} by its own fault; run bootgate release to lift the hold",
                readable_time(until),
                crate::util::text::counted(failures as usize, "time")
            ),
            version,
            until: timestamp(until),
            failures,
        })
}

/// The gptprio attributes that boot the failed slot `failed_uuid` once more, as
/// update_engine's postinst arms a new slot: one try, not successful, a priority above
/// the booted fallback's. `Err` says why it cannot be done: no such slot of the booted
/// slot's type, it is the booted one, or the booted one already has the highest priority.
pub fn rearm_target(table: &BootStatus, failed_uuid: &str) -> Result<(PartitionInfo, u8), String> {
    let booted = table.booted_partition().ok_or("the booted partition is not a gptprio slot")?;
    let failed = table
        .partitions
        .iter()
        .find(|p| p.uuid.eq_ignore_ascii_case(failed_uuid) && p.type_guid.eq_ignore_ascii_case(&booted.type_guid))
        .ok_or_else(|| format!("no slot with PARTUUID {failed_uuid} beside {}", booted.label))?;
    if failed.index == booted.index {
        return Err(format!("{} is the booted slot", failed.label));
    }
    let priority = booted
        .priority
        .checked_add(1)
        .filter(|p| *p <= 15)
        .ok_or_else(|| format!("{} has the highest priority, 15: no slot can rank above it", booted.label))?;
    Ok((failed.clone(), priority))
}

#[cfg(test)]
#[path = "judge_tests.rs"]
mod tests;
