//! Pure boot decisions, no I/O: what gptprio boots next and what a failed gate does
//! about it (here), whether this boot is a fallback ([`fallback`]), and whether the
//! rollback window reverts this update ([`revert`]).

use std::cmp::Reverse;

use serde::Serialize;

use super::PartitionInfo;
use crate::record::history::Decision;

pub mod fallback;
pub mod judge;
pub mod permanent;
pub mod revert;

/// Partition type GUID of Flatcar's USR-A/USR-B slots, the type GRUB's `gptprio.next` picks from.
pub const FLATCAR_USR_TYPE: &str = "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6";

/// The partition index GRUB's `gptprio.next` would boot next among partitions of `type_guid`.
pub fn gptprio_next(partitions: &[PartitionInfo], type_guid: &str) -> Option<u32> {
    // Follows coreos/grub grub-core/commands/gptprio.c: its best priority starts at 0 and
    // a candidate must have `priority > best`, so priority 0 is never booted even with
    // tries left or successful set (cgpt/vboot also treat priority 0 as "not bootable").
    // It scans in index order with a strict `>`, so the lower index wins a tie.
    partitions
        .iter()
        .filter(|p| p.type_guid.eq_ignore_ascii_case(type_guid))
        .filter(|p| p.priority > 0 && (p.tries > 0 || p.successful))
        .min_by_key(|p| (Reverse(p.priority), p.index))
        .map(|p| p.index)
}

/// What to do about the boot after the gate has failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RebootDecision {
    /// Reboot: the boot loader will pick partition `fallback` instead of the booted one.
    Reboot { fallback: u32 },
    /// Reboot: GRUB counts this boot down (`boot_counter` ≥ 1) or, at 0, boots the previous deployment.
    CountDown { boot_counter: i64 },
    /// Reboot: the booted slot is marked bad, and RAUC's `slot` is still good to boot.
    RebootTo { slot: String },
    /// Reboot: systemd-boot's entry `bad` is marked bad, and entry `next` can still boot.
    RebootToEntry { bad: String, next: String },
    /// Reboot: the boot loader falls back to `to`; `why` says why it will (what was
    /// marked, what the loader's state is). The backends that came after the first four.
    Fallback { to: String, why: String },
    /// Stay: the booted partition is already marked successful, a reboot would come back here.
    StayConfirmed,
    /// Stay: the boot loader would not pick a different partition, so a reboot cannot help.
    StayNoFallback,
    /// Stay: the booted system is not an A/B partition (or it is unknown).
    NotAbSystem,
    /// Stay: the boot loader's state could not be read or changed (`why`), so bootgate
    /// cannot tell what a reboot would boot; rebooting blind could loop.
    StayBackendError { why: String },
}

impl RebootDecision {
    /// Whether the decision is to reboot.
    pub fn reboots(&self) -> bool {
        matches!(
            self,
            Self::Reboot { .. }
                | Self::CountDown { .. }
                | Self::RebootTo { .. }
                | Self::RebootToEntry { .. }
                | Self::Fallback { .. }
        )
    }

    /// For a reboot, what is said around "rebooting": what was marked before the word and
    /// where the reboot leads after it. `None` for a stay.
    pub fn reboot_clauses(&self) -> Option<(String, String)> {
        match self {
            Self::Reboot { fallback } => Some((String::new(), format!(" to fall back to partition {fallback}"))),
            Self::CountDown { boot_counter } => Some((String::new(), format!(": {}", count_down(*boot_counter)))),
            Self::RebootTo { slot } => {
                Some(("marked the booted slot bad, ".into(), format!(" to fall back to RAUC slot {slot}")))
            }
            Self::RebootToEntry { bad, next } => {
                Some((format!("marked boot entry {bad} bad, "), format!(" to fall back to {next}")))
            }
            Self::Fallback { to, why } => Some((String::new(), format!(" to fall back to {to}: {why}"))),
            Self::StayConfirmed | Self::StayNoFallback | Self::NotAbSystem | Self::StayBackendError { .. } => None,
        }
    }

    /// One line for `STATUS=`, logs and operators.
    pub fn status_text(&self) -> String {
        match self {
            Self::StayConfirmed => "gate failed; booted partition is marked successful — not rebooting".into(),
            Self::StayNoFallback => "gate failed; no fallback partition — manual intervention needed".into(),
            Self::NotAbSystem => "gate failed; not an A/B system — not rebooting".into(),
            Self::StayBackendError { why } => {
                format!("gate failed; {why}, so a reboot may not fall back — manual intervention needed")
            }
            reboot => {
                let (before, after) = reboot.reboot_clauses().unwrap_or_default();
                format!("gate failed; {before}rebooting{after}")
            }
        }
    }
}

impl From<RebootDecision> for Decision {
    fn from(d: RebootDecision) -> Self {
        match d {
            RebootDecision::Reboot { .. }
            | RebootDecision::CountDown { .. }
            | RebootDecision::RebootTo { .. }
            | RebootDecision::RebootToEntry { .. }
            | RebootDecision::Fallback { .. } => Decision::Reboot,
            RebootDecision::StayConfirmed => Decision::StayConfirmed,
            RebootDecision::StayNoFallback => Decision::StayNoFallback,
            RebootDecision::NotAbSystem => Decision::NotAb,
            RebootDecision::StayBackendError { .. } => Decision::StayBackendError,
        }
    }
}

/// What GRUB does with greenboot's `boot_counter` on the next boot.
pub fn count_down(boot_counter: i64) -> String {
    match boot_counter {
        0 => "GRUB's boot_counter is 0, so GRUB boots the previous deployment".into(),
        n => format!("GRUB's boot_counter is {n}: GRUB tries this deployment again, and falls back once it is used up"),
    }
}

/// Whether a failed gate should reboot into another slot, judged from the table as it is now.
pub fn reboot_decision(booted: Option<&PartitionInfo>, all: &[PartitionInfo]) -> RebootDecision {
    let Some(booted) = booted else {
        return RebootDecision::NotAbSystem;
    };
    let same_type = |p: &&PartitionInfo| p.type_guid.eq_ignore_ascii_case(&booted.type_guid);
    // A root partition with no sibling of its type (a plain GPT install) has no slots at all.
    if !all.iter().filter(same_type).any(|p| p.index != booted.index) {
        return RebootDecision::NotAbSystem;
    }
    if booted.successful {
        return RebootDecision::StayConfirmed;
    }
    // When gptprio would pick the booted slot again (it still has tries and the highest
    // priority) we stay: Flatcar's GRUB already took this boot's try, so tries left now
    // mean either several tries were granted on purpose or this boot bypassed gptprio
    // (direct kernel boot, another loader) and nothing will ever count them down. From
    // here the two look alike, and the second is a reboot loop, which the gate must never
    // cause. An operator who wants retries can reboot by hand.
    match gptprio_next(all, &booted.type_guid) {
        Some(next) if next != booted.index => RebootDecision::Reboot { fallback: next },
        _ => RebootDecision::StayNoFallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usr(index: u32, priority: u8, tries: u8, successful: bool) -> PartitionInfo {
        PartitionInfo::usr(index, priority, tries, successful)
    }

    fn other(index: u32, priority: u8, tries: u8) -> PartitionInfo {
        usr(index, priority, tries, true).with_type("0fc63daf-8483-4772-8e79-3d69d8477de4")
    }

    fn next(parts: &[PartitionInfo]) -> Option<u32> {
        gptprio_next(parts, FLATCAR_USR_TYPE)
    }

    #[test]
    fn gptprio_highest_priority_wins_and_tie_goes_to_lower_index() {
        assert_eq!(next(&[usr(3, 1, 0, true), usr(4, 2, 1, false)]), Some(4));
        assert_eq!(next(&[usr(3, 2, 0, true), usr(4, 1, 1, false)]), Some(3));
        assert_eq!(next(&[usr(4, 2, 1, false), usr(3, 2, 0, true)]), Some(3));
        assert_eq!(next(&[usr(3, 15, 15, true), usr(4, 15, 15, true)]), Some(3));
    }

    #[test]
    fn gptprio_needs_tries_or_successful() {
        assert_eq!(next(&[usr(3, 1, 0, true), usr(4, 2, 0, false)]), Some(3));
        assert_eq!(next(&[usr(3, 1, 0, false), usr(4, 2, 0, false)]), None);
        assert_eq!(next(&[usr(3, 0, 0, false), usr(4, 1, 1, false)]), Some(4));
    }

    #[test]
    fn gptprio_never_boots_priority_zero() {
        assert_eq!(next(&[usr(3, 0, 15, true)]), None);
        assert_eq!(next(&[usr(3, 0, 1, false), usr(4, 0, 0, true)]), None);
    }

    #[test]
    fn gptprio_ignores_other_types_and_accepts_uppercase_type() {
        assert_eq!(next(&[other(1, 15, 15), usr(3, 1, 0, true)]), Some(3));
        let upper = FLATCAR_USR_TYPE.to_uppercase();
        assert_eq!(gptprio_next(&[usr(3, 1, 0, true)], &upper), Some(3));
    }

    #[test]
    fn unconfirmed_with_fallback_reboots() {
        // The Flatcar update path: B got -T1 -P2, GRUB used the try, A is the good old slot.
        let all = [usr(3, 1, 0, true), usr(4, 2, 0, false)];
        let d = reboot_decision(Some(&all[1]), &all);
        assert_eq!(d, RebootDecision::Reboot { fallback: 3 });
        assert!(d.status_text().contains("partition 3"));
    }

    #[test]
    fn fallback_may_be_unconfirmed_with_tries_left() {
        let all = [usr(3, 1, 0, false), usr(4, 2, 1, false)];
        assert_eq!(reboot_decision(Some(&all[0]), &all), RebootDecision::Reboot { fallback: 4 });
    }

    #[test]
    fn confirmed_stays() {
        let all = [usr(3, 2, 0, true), usr(4, 1, 0, true)];
        assert_eq!(reboot_decision(Some(&all[0]), &all), RebootDecision::StayConfirmed);
        // Even when another slot would be chosen next, a confirmed slot is not abandoned.
        assert_eq!(reboot_decision(Some(&all[1]), &all), RebootDecision::StayConfirmed);
    }

    #[test]
    fn unconfirmed_without_fallback_stays_and_asks_for_help() {
        for b in [usr(4, 0, 0, true), usr(4, 1, 0, false), usr(4, 0, 3, false)] {
            let all = [usr(3, 2, 0, false), b];
            let d = reboot_decision(Some(&all[0]), &all);
            assert_eq!(d, RebootDecision::StayNoFallback, "{all:?}");
            assert_eq!(d.status_text(), "gate failed; no fallback partition — manual intervention needed");
        }
    }

    #[test]
    fn booted_still_preferred_with_tries_left_stays() {
        // gptprio would pick the booted slot again: no proof a reboot changes anything.
        let all = [usr(3, 1, 0, true), usr(4, 2, 1, false)];
        assert_eq!(next(&all), Some(4));
        assert_eq!(reboot_decision(Some(&all[1]), &all), RebootDecision::StayNoFallback);
    }

    #[test]
    fn booted_with_tries_left_but_outranked_reboots() {
        let all = [usr(3, 2, 0, true), usr(4, 1, 2, false)];
        assert_eq!(reboot_decision(Some(&all[1]), &all), RebootDecision::Reboot { fallback: 3 });
    }

    #[test]
    fn no_booted_partition_or_no_sibling_is_not_ab() {
        let all = [usr(3, 1, 0, true), usr(4, 2, 0, false)];
        assert_eq!(reboot_decision(None, &all), RebootDecision::NotAbSystem);
        let plain = [other(1, 0, 0), other(2, 0, 0), usr(3, 0, 0, false)];
        assert_eq!(reboot_decision(Some(&plain[2]), &plain), RebootDecision::NotAbSystem);
        assert_eq!(reboot_decision(Some(&plain[2]), &[]), RebootDecision::NotAbSystem);
    }

    #[test]
    fn other_type_slots_are_not_fallbacks() {
        let all = [other(1, 15, 15), usr(3, 0, 0, false), usr(4, 2, 0, false)];
        assert_eq!(reboot_decision(Some(&all[2]), &all), RebootDecision::StayNoFallback);
    }

    #[test]
    fn decision_serializes_with_action_tag() {
        let json = serde_json::to_value(RebootDecision::Reboot { fallback: 3 }).unwrap();
        assert_eq!(json, serde_json::json!({"action": "reboot", "fallback": 3}));
    }
}
