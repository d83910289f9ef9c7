//! Which slot boots next, for `boot-status`: read from the GPT where gptprio's rules
//! decide, from greenboot's counter where GRUB decides, and otherwise said honestly to be
//! the boot loader's choice.

use serde::Serialize;

use super::backend::{GRUBENV_PATHS, bless_boot, grubenv};
use super::decide::{self, FLATCAR_USR_TYPE, gptprio_next};
use super::{BootStatus, PartitionInfo};

/// ChromeOS kernel partitions: cgpt picks among them by the same attributes.
const CHROMEOS_KERNEL_TYPE: &str = "fe3a2a5d-4f32-41a7-b725-accc3285a309";

/// The next boot as far as bootgate can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextBoot {
    /// The partition gptprio's rules boot next; `None` where they do not decide or find none.
    #[serde(rename = "next")]
    pub index: Option<u32>,
    /// Who decides, and how, in words.
    #[serde(rename = "next_by")]
    pub by: String,
}

impl NextBoot {
    /// One line for `boot-status --format text`.
    pub fn text(&self, partitions: &[PartitionInfo]) -> String {
        match self.index.and_then(|i| partitions.iter().find(|p| p.index == i)) {
            Some(p) => format!("next boot: {} ({}), by {}", p.index, p.label, self.by),
            None => format!("next boot: {}", self.by),
        }
    }
}

/// The next boot by gptprio's rules over the slots of `status` (the booted slot's type,
/// else Flatcar's USR type, else ChromeOS kernels); `None` when the table has no slots.
pub fn of_table(status: &BootStatus) -> Option<NextBoot> {
    let kind = status.booted_partition().map(|p| p.type_guid.as_str()).or_else(|| {
        [FLATCAR_USR_TYPE, CHROMEOS_KERNEL_TYPE]
            .into_iter()
            .find(|t| status.partitions.iter().any(|p| p.type_guid.eq_ignore_ascii_case(t)))
    })?;
    let rule = "gptprio (the highest priority with tries left or successful; a tie goes to the lower index)";
    Some(match gptprio_next(&status.partitions, kind) {
        Some(index) => NextBoot { index: Some(index), by: rule.into() },
        None => NextBoot {
            index: None,
            by: "none: no slot has a priority above 0 with tries left or successful, so gptprio boots none".into(),
        },
    })
}

/// The next boot of the running system: gptprio's choice on its slots, else what the
/// boot loader it can read cheaply says, else that the boot loader decides.
pub fn of_system(status: &BootStatus) -> NextBoot {
    if let Some(next) = of_table(status) {
        return next;
    }
    let decided = |by: String| NextBoot { index: None, by };
    if bless_boot::BlessBoot::system().is_ok_and(|b| b.counting()) {
        return decided("decided by systemd-boot, which counts this boot (`bootctl status` shows its entries)".into());
    }
    let counting = GRUBENV_PATHS.iter().map(std::path::Path::new).find(|p| grubenv::counting(p));
    if let Some(block) = counting.and_then(|p| grubenv::reboots(p).ok().flatten().map(|n| (p, n))) {
        let (path, n) = block;
        return decided(format!("decided by GRUB ({}): {}", path.display(), decide::count_down(n)));
    }
    decided("decided by the boot loader: no gptprio slots here, and bootgate cannot ask it".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(partitions: Vec<PartitionInfo>) -> BootStatus {
        BootStatus { partitions, ..BootStatus::default() }
    }

    #[test]
    fn gptprio_picks_the_highest_bootable_priority_and_the_lower_index_on_a_tie() {
        let next = |parts| of_table(&table(parts)).and_then(|n| n.index);
        let usr = PartitionInfo::usr;
        assert_eq!(next(vec![usr(3, 1, 0, true), usr(4, 2, 1, false)]), Some(4));
        assert_eq!(next(vec![usr(3, 1, 0, true), usr(4, 2, 0, false)]), Some(3), "no try left, not good");
        assert_eq!(next(vec![usr(3, 2, 0, true), usr(4, 2, 0, true)]), Some(3), "a tie");
        assert_eq!(next(vec![usr(3, 0, 0, true), usr(4, 0, 1, false)]), None, "priority 0 never boots");
        let kernels = |p: PartitionInfo| p.with_type(CHROMEOS_KERNEL_TYPE);
        assert_eq!(next(vec![kernels(usr(2, 1, 0, true)), kernels(usr(4, 3, 5, false))]), Some(4));
        assert_eq!(of_table(&table(vec![usr(1, 1, 0, true).with_type("0fc63daf-8483-4772-8e79-3d69d8477de4")])), None);
    }

    #[test]
    fn the_line_names_the_slot_or_says_who_decides() {
        let parts = vec![PartitionInfo::usr(2, 1, 0, true).with_label("USR-B")];
        let next = of_table(&table(parts.clone())).unwrap();
        assert!(next.text(&parts).starts_with("next boot: 2 (USR-B), by gptprio"), "{}", next.text(&parts));
        let decided = NextBoot { index: None, by: "decided by systemd-boot".into() };
        assert_eq!(decided.text(&parts), "next boot: decided by systemd-boot");
    }
}
