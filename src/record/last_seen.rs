//! What each image last saw: `last-seen.json` in the state dir. Per image (slot, OS id
//! and version), per check, the latest runtime result, so the next image's trial boot
//! can be judged against the one it replaces. Newest image first, the last [`IMAGES`]
//! kept; bounded when written and when read, written atomically; a file that does not
//! parse reads as empty (said once), never a reason to fail a boot.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::checks::Status;
use crate::engine::CheckResult;
use crate::util::read::read_regular;
use crate::util::time::{parse_timestamp, timestamp};

/// The file in the state dir.
pub const FILE: &str = "last-seen.json";
/// The most of it read.
pub const CAP: u64 = 2 << 20;
/// Images kept: the running one and the few it may be judged against.
pub const IMAGES: usize = 4;
/// Checks kept per image (the most a policy may hold).
const CHECKS: usize = crate::policy::MAX_CHECKS;
/// The longest message kept per check.
const MESSAGE_CAP: usize = 160;

/// An OS image as bootgate tells images apart: the slot it runs from and its version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Image {
    /// The booted slot's label (`USR-A`), when on A/B.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// The booted slot's partition UUID, when on A/B.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

impl Image {
    /// Whether `other` is the same image: the same slot (by UUID where both have one)
    /// and the same version.
    pub fn same(&self, other: &Image) -> bool {
        let slot = match (&self.slot_uuid, &other.slot_uuid) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => self.slot == other.slot,
        };
        slot && self.os_version == other.os_version
    }

    /// How people name it: `4230.0.0 on USR-B`.
    pub fn text(&self) -> String {
        let version = self.os_version.as_deref().unwrap_or("unknown version");
        match &self.slot {
            Some(slot) => format!("{version} on {slot}"),
            None => version.to_string(),
        }
    }
}

/// One check's latest result on an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// `pass`, `warn` or `fail` (a skipped check's dependency failed: `skipped`).
    pub status: String,
    /// Whether it passed (pass or warn).
    pub passed: bool,
    #[serde(default)]
    pub message: String,
    /// When it was checked (RFC 3339).
    pub at: String,
}

impl Seen {
    /// When it was checked; `None` when the record's time does not parse.
    pub fn when(&self) -> Option<SystemTime> {
        parse_timestamp(&self.at)
    }
}

/// What one image last saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageSeen {
    pub image: Image,
    /// The boot that wrote it last.
    pub boot_id: String,
    /// When it was written (RFC 3339).
    pub updated: String,
    pub checks: BTreeMap<String, Seen>,
}

impl ImageSeen {
    /// The results of `checks` that have one (not pending), as seen at `now` on `image`.
    pub fn of(image: Image, boot_id: &str, checks: &[CheckResult], now: SystemTime) -> Self {
        let checks = checks
            .iter()
            .filter(|c| c.status != Status::Pending)
            .take(CHECKS)
            .map(|c| {
                let at = c.last_check.unwrap_or(now);
                let seen = Seen {
                    status: c.status.as_str().to_string(),
                    passed: c.status.passed(),
                    message: crate::util::text::plain(&c.message, MESSAGE_CAP),
                    at: timestamp(at),
                };
                (c.name.clone(), seen)
            })
            .collect();
        ImageSeen { image, boot_id: boot_id.to_string(), updated: timestamp(now), checks }
    }

    /// The checks not passing, by name.
    pub fn failing(&self) -> Vec<&str> {
        self.checks.iter().filter(|(_, s)| !s.passed).map(|(n, _)| n.as_str()).collect()
    }
}

/// The whole file: newest image first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LastSeen {
    pub images: Vec<ImageSeen>,
}

impl LastSeen {
    /// The newest record of an image other than `this`: what a trial boot of `this` is judged against.
    pub fn previous(&self, this: &Image) -> Option<&ImageSeen> {
        self.images.iter().find(|i| !i.image.same(this))
    }

    /// Puts `seen` first, in place of its image's older record; keeps [`IMAGES`].
    pub fn put(&mut self, seen: ImageSeen) {
        self.images.retain(|i| !i.image.same(&seen.image));
        self.images.insert(0, seen);
        self.images.truncate(IMAGES);
    }
}

/// Reads the file in `dir`: empty when there is none; an error names what is wrong with it.
pub fn read(dir: &Path) -> Result<LastSeen, String> {
    let path = dir.join(FILE);
    match read_regular(&path, CAP) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LastSeen::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Reads the file in `dir`, or nothing (said in the log) when it cannot be read.
pub fn read_or_warn(dir: &Path) -> LastSeen {
    read(dir).unwrap_or_else(|e| {
        tracing::warn!("cannot read what the images last saw ({e}); judging without it");
        LastSeen::default()
    })
}

/// Writes `seen` for its image into the file in `dir`, atomically.
pub fn write(dir: &Path, seen: ImageSeen) -> std::io::Result<()> {
    let mut all = read(dir).unwrap_or_default();
    all.put(seen);
    let mut bytes = serde_json::to_vec(&all).map_err(std::io::Error::other)?;
    // Bounded by construction (images × checks × message); say so if a policy ever outgrows the read cap.
    while bytes.len() as u64 > CAP && all.images.len() > 1 {
        all.images.pop();
        bytes = serde_json::to_vec(&all).map_err(std::io::Error::other)?;
    }
    bytes.push(b'\n');
    crate::util::atomic::write(&dir.join(FILE), &bytes, 0o644)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn image(slot: &str, version: &str) -> Image {
        Image {
            slot: Some(slot.into()),
            slot_uuid: Some(format!("uuid-{slot}")),
            os_id: Some("flatcar".into()),
            os_version: Some(version.into()),
        }
    }

    #[test]
    fn the_previous_image_is_the_newest_other_one_and_each_image_is_kept_once() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let checks =
            [CheckResult::finished("api", true, Status::Pass), CheckResult::finished("disk", true, Status::Fail)];
        let (a, b) = (image("USR-A", "1.0"), image("USR-B", "2.0"));
        let mut all = LastSeen::default();
        all.put(ImageSeen::of(a.clone(), "boot1", &checks, now));
        all.put(ImageSeen::of(b.clone(), "boot2", &checks[..1], now));
        all.put(ImageSeen::of(a.clone(), "boot3", &checks, now));
        assert_eq!(all.images.len(), 2);
        assert_eq!(all.previous(&b).unwrap().boot_id, "boot3");
        assert_eq!(all.previous(&a).unwrap().boot_id, "boot2");
        assert_eq!(all.previous(&a).unwrap().failing(), Vec::<&str>::new());
        assert_eq!(all.images[0].failing(), vec!["disk"]);
        // The same slot with another version is another image.
        assert_eq!(all.previous(&image("USR-A", "3.0")).unwrap().boot_id, "boot3");
        for n in 0..10 {
            all.put(ImageSeen::of(image("USR-A", &format!("9.{n}")), "b", &checks, now));
        }
        assert_eq!(all.images.len(), IMAGES);
    }

    #[test]
    fn the_file_round_trips_and_a_broken_one_reads_as_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), LastSeen::default());
        let long = CheckResult::finished("api", true, Status::Fail).with_message("x\n".repeat(1000));
        let seen = ImageSeen::of(image("USR-A", "1.0"), "boot1", &[long], SystemTime::now());
        write(dir.path(), seen.clone()).unwrap();
        let back = read(dir.path()).unwrap();
        assert_eq!(back.images, vec![seen]);
        let message = &back.images[0].checks["api"].message;
        assert!(message.chars().count() <= MESSAGE_CAP + 1 && !message.contains('\n'), "{message}");
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        assert!(read(dir.path()).unwrap_err().contains(FILE));
        // A broken file is replaced by the next write, not kept in the way.
        write(dir.path(), ImageSeen::of(image("USR-B", "2.0"), "b", &[], SystemTime::now())).unwrap();
        assert_eq!(read(dir.path()).unwrap().images.len(), 1);
    }
}
