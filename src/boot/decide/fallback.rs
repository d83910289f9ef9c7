//! Whether this boot is a fallback from another slot: a pure function of the boot
//! history and the partition table, no I/O. The fallback itself is a record
//! ([`crate::record::boot::Fallback`]): the health document shows it and the history keeps it.

use crate::boot::PartitionInfo;
pub use crate::record::boot::{Fallback, FallbackBlame, Reason};
use crate::record::history::{Decision, PastBoot};

fn same_slot(a: &crate::record::history::Slot, b: &PartitionInfo) -> bool {
    if a.uuid.is_empty() || b.uuid.is_empty() { a.index == b.index } else { a.uuid.eq_ignore_ascii_case(&b.uuid) }
}

/// The fallback this boot (`this_boot_id`, on `booted`) is in, if any. `history` is oldest first.
pub fn detect(
    history: &[PastBoot],
    partitions: &[PartitionInfo],
    booted: Option<&PartitionInfo>,
    this_boot_id: &str,
) -> Option<Fallback> {
    let booted = booted?;
    // A restart of run, or serve after run, finds this boot's own line: it is not "previous".
    let past: Vec<&PastBoot> = history.iter().filter(|b| b.boot_id.as_deref() != Some(this_boot_id)).collect();
    // A boot the previous one re-armed after an outage (a retry) is the update tried
    // again, not a fallback from that boot's slot.
    if past.last().and_then(|p| p.retry.as_ref()).is_some_and(|r| r.done) {
        return None;
    }
    if let Some(prev) = past.last()
        && let Some(slot) = prev.partition.as_ref().filter(|s| !same_slot(s, booted))
    {
        let reason = match (prev.decision, prev.gate.as_deref()) {
            (Some(Decision::Reverted), _) => Some(Reason::Reverted),
            (_, Some("failed")) => Some(Reason::GateFailed),
            _ => None,
        };
        if let Some(reason) = reason {
            return Some(Fallback {
                from_partition: slot.label.clone(),
                from_uuid: slot.uuid.clone(),
                from_version: prev.os_version.clone().or_else(|| prev.version.clone()),
                reason,
                at: prev.timestamp.clone(),
                failing: prev.failing.clone(),
                blame: None,
                retry: None,
            });
        }
    }
    no_verdict(&past, partitions, booted)
}

/// A same-type slot GRUB tried (tries used up, never marked) that outranks the booted
/// one, unless the history shows it was already reported or recorded since.
fn no_verdict(past: &[&PastBoot], partitions: &[PartitionInfo], booted: &PartitionInfo) -> Option<Fallback> {
    let tried = partitions.iter().find(|p| {
        p.index != booted.index
            && p.type_guid.eq_ignore_ascii_case(&booted.type_guid)
            && p.tries == 0
            && !p.successful
            && p.priority > booted.priority
    })?;
    // The gptprio attributes stay as they are until the next update: newest first, a
    // line that already reported this slot means this boot is not a new fallback.
    for b in past.iter().rev() {
        if b.fallback.as_ref().is_some_and(|f| f.from_uuid.eq_ignore_ascii_case(&tried.uuid)) {
            return None;
        }
        if b.partition.as_ref().is_some_and(|s| same_slot(s, tried)) {
            break;
        }
    }
    Some(Fallback {
        from_partition: tried.label.clone(),
        from_uuid: tried.uuid.clone(),
        from_version: None,
        reason: Reason::NoVerdict,
        at: None,
        failing: Vec::new(),
        blame: Some(FallbackBlame::Unknown),
        retry: None,
    })
}

#[cfg(test)]
#[path = "fallback_tests.rs"]
mod tests;
