//! The boot: which A/B slot is booted (read from the GPT of the disk behind `/usr` or
//! `/`), this boot's identity, the boot loaders that mark a boot good or bad
//! ([`backend`]), the pure decisions about a failed gate, a fallback and a revert
//! ([`decide`]), which slot boots next ([`next`]), and the reboot that acts on them
//! ([`reboot`]).

pub mod backend;
pub mod decide;
pub mod gpt;
pub mod grubenv;
pub mod identity;
pub mod next;
pub mod reboot;
pub mod remount;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use decide::RebootDecision;
use gpt::{Gpt, GptError};

use crate::record::boot::{GptSlot, SlotFacts};
use crate::record::history::Slot;

/// Device-mapper stacks deeper than this are not followed (verity over a partition is 1).
const MAX_STACK: usize = 8;

/// One GPT partition as `boot-status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// 1-based partition number, as cgpt and sgdisk count.
    pub index: u32,
    /// GPT partition name, e.g. `USR-A`.
    pub label: String,
    /// Unique partition GUID (PARTUUID), lowercase.
    pub uuid: String,
    /// Partition type GUID, lowercase.
    #[serde(rename = "type")]
    pub type_guid: String,
    /// gptprio priority (0–15).
    pub priority: u8,
    /// gptprio tries left (0–15).
    pub tries: u8,
    /// gptprio successful flag.
    pub successful: bool,
}

impl PartitionInfo {
    /// A slot of Flatcar's USR type with these gptprio attributes, labelled `USR-{index}`
    /// with the unique GUID `u{index}`: with the `with_*` methods, the partition tables
    /// that tests and examples need.
    pub fn usr(index: u32, priority: u8, tries: u8, successful: bool) -> Self {
        PartitionInfo {
            index,
            label: format!("USR-{index}"),
            uuid: format!("u{index}"),
            type_guid: decide::FLATCAR_USR_TYPE.into(),
            priority,
            tries,
            successful,
        }
    }

    /// This partition named `label`.
    pub fn with_label(self, label: &str) -> Self {
        PartitionInfo { label: label.into(), ..self }
    }

    /// This partition with the unique GUID `uuid`.
    pub fn with_uuid(self, uuid: &str) -> Self {
        PartitionInfo { uuid: uuid.into(), ..self }
    }

    /// This partition of type `type_guid`.
    pub fn with_type(self, type_guid: &str) -> Self {
        PartitionInfo { type_guid: type_guid.into(), ..self }
    }
}

impl From<&gpt::Partition> for PartitionInfo {
    fn from(p: &gpt::Partition) -> Self {
        Self {
            index: p.index,
            label: p.name.clone(),
            uuid: p.unique_guid.clone(),
            type_guid: p.type_guid.clone(),
            priority: p.priority,
            tries: p.tries,
            successful: p.successful,
        }
    }
}

impl From<&PartitionInfo> for Slot {
    fn from(p: &PartitionInfo) -> Self {
        Slot { label: p.label.clone(), index: p.index, uuid: p.uuid.clone() }
    }
}

/// The booted slot and its disk's partition table, or a note saying why there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootStatus {
    /// Index of the booted partition; `None` when not booted from a GPT partition.
    pub booted: Option<u32>,
    /// Disk (device node or image path) the table was read from.
    pub disk: Option<String>,
    /// Every non-empty entry of that disk's GPT.
    pub partitions: Vec<PartitionInfo>,
    /// Why `booted` is missing, or that the backup GPT had to be used.
    pub note: Option<String>,
}

impl BootStatus {
    fn without_slot(note: String) -> Self {
        Self { booted: None, disk: None, partitions: Vec::new(), note: Some(note) }
    }

    fn from_table(table: &Gpt, disk: &Path) -> Self {
        let note =
            table.used_backup.then(|| format!("primary GPT of {} is corrupt; read the backup copy", disk.display()));
        Self {
            booted: None,
            disk: Some(disk.display().to_string()),
            partitions: table.partitions.iter().map(PartitionInfo::from).collect(),
            note,
        }
    }

    /// The booted partition's entry, if known.
    pub fn booted_partition(&self) -> Option<&PartitionInfo> {
        let booted = self.booted?;
        self.partitions.iter().find(|p| p.index == booted)
    }

    /// The booted slot's attributes as the boot facts show them, if known.
    pub fn slot_facts(&self) -> Option<SlotFacts> {
        let p = self.booted_partition()?;
        Some(SlotFacts {
            partition: p.label.clone(),
            index: p.index,
            uuid: p.uuid.clone(),
            disk: self.disk.clone(),
            priority: p.priority,
            tries: p.tries,
            successful: p.successful,
        })
    }

    /// The booted slot and its siblings (entries of its partition type), in table order.
    pub fn gpt_slots(&self) -> Vec<GptSlot> {
        let Some(booted) = self.booted_partition() else { return Vec::new() };
        self.partitions
            .iter()
            .filter(|p| p.type_guid.eq_ignore_ascii_case(&booted.type_guid))
            .map(|p| GptSlot {
                partition: p.label.clone(),
                index: p.index,
                priority: p.priority,
                tries: p.tries,
                successful: p.successful,
            })
            .collect()
    }

    /// What a failed gate should do on this system (see [`decide::reboot_decision`]).
    pub fn reboot_decision(&self) -> RebootDecision {
        decide::reboot_decision(self.booted_partition(), &self.partitions)
    }

    /// A readable table for `boot-status --format text`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let disk = self.disk.as_deref().unwrap_or("-");
        let booted = match self.booted_partition() {
            Some(p) => format!("{} ({})", p.index, p.label),
            None => "none".into(),
        };
        let _ = writeln!(out, "disk: {disk}  booted: {booted}");
        if !self.partitions.is_empty() {
            let _ = writeln!(
                out,
                "   # {:<16} {:>4} {:>5} {:<10} {:<36} uuid",
                "label", "prio", "tries", "successful", "type"
            );
        }
        for p in &self.partitions {
            let mark = if Some(p.index) == self.booted { '*' } else { ' ' };
            let ok = if p.successful { "yes" } else { "no" };
            let _ = writeln!(
                out,
                "{mark}{:>3} {:<16} {:>4} {:>5} {:<10} {:<36} {}",
                p.index, p.label, p.priority, p.tries, ok, p.type_guid, p.uuid
            );
        }
        if let Some(note) = &self.note {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

/// Boot status of the running system.
pub fn detect() -> BootStatus {
    detect_at(Path::new("/proc/self/mountinfo"), Path::new("/sys/class/block"), Path::new("/dev"))
}

/// [`detect`] with injectable `/proc/self/mountinfo`, `/sys/class/block` and `/dev`.
pub fn detect_at(mountinfo: &Path, sys_class_block: &Path, dev_dir: &Path) -> BootStatus {
    let (disk, number) = match locate_partition(mountinfo, sys_class_block) {
        Ok(found) => found,
        Err(note) => return BootStatus::without_slot(note),
    };
    let disk = dev_dir.join(disk);
    let table = match gpt::read_path(&disk) {
        Ok(table) => table,
        Err(GptError::NotGpt) => {
            let why = format!("not an A/B system: {} has no GPT", disk.display());
            return BootStatus::without_slot(why);
        }
        Err(e) => {
            let why = format!("cannot read the partition table: {}", crate::util::text::chain(&e));
            return BootStatus::without_slot(why);
        }
    };
    let mut status = BootStatus::from_table(&table, &disk);
    if status.partitions.iter().any(|p| p.index == number) {
        status.booted = Some(number);
    } else {
        status.note = Some(format!("not an A/B system: partition {number} is not in the GPT of {}", disk.display()));
    }
    status
}

/// Partition table of a disk image, for `boot-status --disk IMAGE`; nothing is booted from it.
pub fn read_image(path: &Path) -> Result<BootStatus, GptError> {
    Ok(BootStatus::from_table(&gpt::read_path(path)?, path))
}

/// Parent disk name and partition number of the device behind `/usr`, else `/`.
fn locate_partition(mountinfo: &Path, sys: &Path) -> Result<(String, u32), String> {
    let text = fs::read_to_string(mountinfo).map_err(|e| format!("cannot read {}: {e}", mountinfo.display()))?;
    let mount = os_mount(&text).ok_or("not an A/B system: no / in mountinfo")?;
    let not_ab = |why: String| format!("not an A/B system: {} {why}", mount.point);
    if mount.dev.starts_with("0:") {
        return Err(not_ab(format!("is {} from {}, not a block device", mount.fstype, mount.source)));
    }
    let mut name = block_name(sys, mount.dev)
        .map_err(|e| format!("cannot list {}: {e}", sys.display()))?
        .ok_or_else(|| not_ab(format!("is on device {} missing from sysfs", mount.dev)))?;
    for _ in 0..MAX_STACK {
        let dir = sys.join(&name);
        if let Ok(number) = fs::read_to_string(dir.join("partition")) {
            let number =
                number.trim().parse().map_err(|e| format!("bad partition number in {}: {e}", dir.display()))?;
            // In sysfs a partition's directory sits inside its disk's directory.
            let real = fs::canonicalize(&dir).map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
            let parent = real
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| format!("no disk holds {}", real.display()))?;
            return Ok((parent, number));
        }
        // dm-verity (Flatcar's /usr) or dm-crypt sits on exactly one partition: follow it.
        let slaves: Vec<String> = fs::read_dir(dir.join("slaves"))
            .map(|d| d.flatten())
            .into_iter()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        match <[String; 1]>::try_from(slaves) {
            Ok([slave]) => name = slave,
            Err(_) => return Err(not_ab(format!("is on {name}, not a partition"))),
        }
    }
    Err(not_ab(format!("is on a device stack deeper than {MAX_STACK}")))
}

/// One line of mountinfo, the fields used here.
#[derive(Debug, PartialEq, Eq)]
struct Mount<'a> {
    point: &'a str,
    dev: &'a str,
    fstype: &'a str,
    source: &'a str,
}

/// The mount holding the OS image: `/usr` when it is its own mount, else `/`.
fn os_mount(mountinfo: &str) -> Option<Mount<'_>> {
    let mounts: Vec<Mount> = mountinfo.lines().filter_map(parse_mount).collect();
    // The last entry for a point is the one on top, the one processes see.
    let last = |point: &str| mounts.iter().rposition(|m| m.point == point);
    let at = last("/usr").or_else(|| last("/"))?;
    mounts.into_iter().nth(at)
}

fn parse_mount(line: &str) -> Option<Mount<'_>> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let sep = 6 + fields.iter().skip(6).position(|f| *f == "-")?;
    Some(Mount {
        point: fields.get(4)?,
        dev: fields.get(2)?,
        fstype: fields.get(sep + 1)?,
        source: fields.get(sep + 2)?,
    })
}

/// Name under `sys` of the block device whose `dev` file holds `maj:min`.
fn block_name(sys: &Path, dev: &str) -> std::io::Result<Option<String>> {
    for entry in fs::read_dir(sys)? {
        let path = entry?.path();
        let matches = fs::read_to_string(path.join("dev")).is_ok_and(|d| d.trim() == dev);
        if let (true, Some(name)) = (matches, path.file_name()) {
            return Ok(Some(name.to_string_lossy().into_owned()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:9 / / rw,relatime shared:1 - ext4 /dev/sda9 rw
23 22 254:0 / /usr ro,relatime shared:2 - ext4 /dev/mapper/usr ro
24 22 0:21 / /tmp rw shared:3 - tmpfs tmpfs rw
";

    #[test]
    fn usr_mount_wins_over_root() {
        let m = os_mount(MOUNTINFO).unwrap();
        assert_eq!((m.point, m.dev, m.fstype), ("/usr", "254:0", "ext4"));
    }

    #[test]
    fn root_used_without_usr_and_top_mount_wins() {
        let info = "1 0 8:3 / / rw - ext4 /dev/sda3 rw\n2 0 0:30 / / rw - overlay overlay rw\n";
        let m = os_mount(info).unwrap();
        assert_eq!((m.dev, m.fstype, m.source), ("0:30", "overlay", "overlay"));
        assert_eq!(os_mount("garbage\n\n1 2 3\n"), None);
    }
}
