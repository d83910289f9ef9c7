//! A hold on updates: `hold-updates` in the run dir while one is in force (update agents
//! condition on it: `ConditionPathExists=!/run/bootgate/hold-updates`), and
//! `released.json` in the state dir, what `bootgate release` lifted, so the next boot
//! does not hold the same failures again. Both bounded, written atomically.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::boot::HoldFacts;
use crate::util::read::read_regular;
use crate::util::time::{parse_timestamp, timestamp};

/// The hold file in the run dir.
pub const FILE: &str = "hold-updates";
/// What was released, in the state dir.
pub const RELEASED: &str = "released.json";
/// The most of either file read.
const CAP: u64 = 64 << 10;
/// Releases remembered (the newest).
const KEEP: usize = 32;

/// Writes the hold file in `run_dir`.
pub fn write(run_dir: &Path, hold: &HoldFacts) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(hold).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    crate::util::atomic::write(&run_dir.join(FILE), &bytes, 0o644)
}

/// The hold in force, if the file in `run_dir` says one; an unreadable file is an error.
pub fn read(run_dir: &Path) -> Result<Option<HoldFacts>, String> {
    let path = run_dir.join(FILE);
    match read_regular(&path, CAP) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Removes the hold file in `run_dir`; `false` when there was none.
pub fn remove(run_dir: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(run_dir.join(FILE)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The versions released, each with when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Released {
    pub versions: BTreeMap<String, String>,
}

impl Released {
    /// When `version` was last released.
    pub fn at(&self, version: &str) -> Option<SystemTime> {
        self.versions.get(version).and_then(|t| parse_timestamp(t))
    }
}

/// What was released, from `state_dir`; nothing when the file is missing or unreadable (said).
pub fn released(state_dir: &Path) -> Released {
    let path = state_dir.join(RELEASED);
    match read_regular(&path, CAP) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!("cannot read {}: {e}; no release of a hold is known", path.display());
            Released::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Released::default(),
        Err(e) => {
            tracing::warn!("cannot read {}: {e}; no release of a hold is known", path.display());
            Released::default()
        }
    }
}

/// Records in `state_dir` that `version` was released at `now`, keeping the newest [`KEEP`].
pub fn record_release(state_dir: &Path, version: &str, now: SystemTime) -> std::io::Result<()> {
    let mut all = released(state_dir);
    all.versions.insert(version.to_string(), timestamp(now));
    while all.versions.len() > KEEP {
        let oldest = all.versions.iter().min_by_key(|(_, t)| parse_timestamp(t)).map(|(v, _)| v.clone());
        match oldest {
            Some(v) => all.versions.remove(&v),
            None => break,
        };
    }
    let mut bytes = serde_json::to_vec(&all).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    crate::util::atomic::write(&state_dir.join(RELEASED), &bytes, 0o644)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_hold_is_written_read_and_removed_and_a_release_is_remembered() {
        let (run, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_eq!(read(run.path()).unwrap(), None);
        let hold =
            HoldFacts { version: "2.0".into(), until: "2026-12-08T10:00:00Z".into(), failures: 2, text: "held".into() };
        write(run.path(), &hold).unwrap();
        assert_eq!(read(run.path()).unwrap(), Some(hold));
        assert!(remove(run.path()).unwrap());
        assert!(!remove(run.path()).unwrap());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(released(state.path()).at("2.0"), None);
        for n in 0..40u64 {
            record_release(state.path(), &format!("v{n}"), now + Duration::from_secs(n)).unwrap();
        }
        let all = released(state.path());
        assert_eq!(all.versions.len(), KEEP);
        assert_eq!(all.at("v39"), Some(now + Duration::from_secs(39)));
        assert_eq!(all.at("v0"), None, "the oldest releases are forgotten first");
        std::fs::write(run.path().join(FILE), b"garbage").unwrap();
        assert!(read(run.path()).unwrap_err().contains(FILE));
    }
}
