//! This boot's gate while it runs, in `gate.json` beside `verdict.json`: whether `run`
//! settles, runs the round or soaks, how many critical checks passed and which it waits
//! for, so that `bootgate wait` can say what it still waits for when its timeout comes.
//! Only shown, never decided on: the verdict is `verdict.json` alone, and a progress file
//! that is missing, unreadable or another boot's is simply not shown.

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::Lenient;
use super::verdict::Stamp;
use crate::engine::Snapshot;
use crate::util::read::read_regular;

/// The file in the run dir.
pub const FILE: &str = "gate.json";
/// The largest progress file read back.
const CAP: u64 = 64 << 10;
/// How many checks it names; the rest are counted.
const NAMED: usize = 10;
/// The longest check name written (names are the policy's, short in practice).
const NAME_CUT: usize = 100;

/// What the gate is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting out `gate.settle` before the round.
    Settling,
    /// The round, with its retries, within the deadline.
    Running,
    /// Every critical check passed; they are re-run until the soak ends.
    Soaking,
}

/// The progress document. Fields in alphabetical order, as the other records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateProgress {
    #[serde(default)]
    pub boot_id: Option<String>,
    #[serde(default)]
    pub critical: usize,
    #[serde(default)]
    pub critical_passed: usize,
    #[serde(default)]
    pub phase: Lenient<Phase>,
    /// When the soak ends, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_ends: Option<Stamp>,
    #[serde(default)]
    pub updated: Option<Stamp>,
    /// The critical checks not passed yet (the first [`NAMED`]).
    #[serde(default)]
    pub waiting_for: Vec<String>,
    /// How many more are not passed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waiting_more: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl GateProgress {
    /// The gate on `s`, in boot `boot_id`, at `now`.
    pub fn of(s: &Snapshot, boot_id: Option<String>, now: SystemTime) -> GateProgress {
        let critical: Vec<_> = s.checks.iter().filter(|c| c.critical).collect();
        let waiting: Vec<String> =
            critical.iter().filter(|c| !c.status.passed()).map(|c| c.name.chars().take(NAME_CUT).collect()).collect();
        let phase = match (s.soak, s.gate_deadline) {
            (Some(_), _) => Phase::Soaking,
            (None, Some(_)) => Phase::Running,
            (None, None) => Phase::Settling,
        };
        GateProgress {
            boot_id,
            critical: critical.len(),
            critical_passed: critical.len() - waiting.len(),
            phase: Lenient::Known(phase),
            soak_ends: s.soak.map(|soak| Stamp(soak.ends)),
            updated: Some(Stamp(now)),
            waiting_more: waiting.len().saturating_sub(NAMED),
            waiting_for: waiting.into_iter().take(NAMED).collect(),
        }
    }

    /// Whether `other` says the same, whenever it was written.
    pub fn same_as(&self, other: &GateProgress) -> bool {
        GateProgress { updated: None, ..self.clone() } == GateProgress { updated: None, ..other.clone() }
    }

    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a progress record is JSON")
    }
}

/// Writes `p` to `dir/gate.json` atomically, readable by all, as the verdict is.
pub fn write(dir: &Path, p: &GateProgress) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::util::atomic::write(&dir.join(FILE), &p.to_bytes(), 0o644)
}

/// This boot's progress in `run_dir` (`boot` as in `verdict::this_boot`), when there is
/// one that can be read.
pub fn this_boot(run_dir: &Path, boot: Option<&str>) -> Option<GateProgress> {
    let bytes = read_regular(&run_dir.join(FILE), CAP).ok()?;
    let p: GateProgress = serde_json::from_slice(&bytes).ok()?;
    match (p.boot_id.as_deref(), boot) {
        (Some(theirs), Some(ours)) if theirs != ours => None,
        _ => Some(p),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::checks::Status;
    use crate::engine::{CheckResult, Soak};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_gate_is_written_as_the_golden_file_and_read_back_for_this_boot_only() {
        let mut s = Snapshot::new(&[]);
        s.checks = vec![
            CheckResult::finished("root", true, Status::Pass),
            CheckResult::finished("api", true, Status::Pending),
            CheckResult::finished("docker", false, Status::Fail),
        ];
        s.gate_deadline = Some(at(1_796_000_120));
        let p = GateProgress::of(&s, Some("b1".into()), at(1_796_000_000));
        let golden = std::fs::read(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/gate.json"));
        assert_eq!(String::from_utf8(p.to_bytes()).unwrap(), String::from_utf8(golden.unwrap()).unwrap());

        let dir = tempfile::tempdir().unwrap();
        assert_eq!(this_boot(dir.path(), Some("b1")), None);
        write(dir.path(), &p).unwrap();
        assert_eq!(this_boot(dir.path(), Some("b1")), Some(p.clone()));
        assert_eq!(this_boot(dir.path(), Some("b2")), None, "another boot's");
        std::fs::write(dir.path().join(FILE), "{\"phase\": ").unwrap();
        assert_eq!(this_boot(dir.path(), Some("b1")), None, "unreadable: not shown");
    }

    #[test]
    fn the_phase_follows_the_settle_the_round_and_the_soak() {
        let mut s = Snapshot::new(&[]);
        s.checks = (0..15).map(|i| CheckResult::finished(&format!("c{i}"), true, Status::Pending)).collect();
        let p = GateProgress::of(&s, None, at(0));
        assert_eq!((p.phase, p.critical, p.critical_passed), (Lenient::Known(Phase::Settling), 15, 0));
        assert_eq!((p.waiting_for.len(), p.waiting_more), (10, 5));
        s.gate_deadline = Some(at(100));
        assert_eq!(GateProgress::of(&s, None, at(0)).phase, Lenient::Known(Phase::Running));
        s.soak = Some(Soak { total: Duration::from_secs(60), ends: at(160) });
        let p = GateProgress::of(&s, None, at(100));
        assert_eq!((p.phase, p.soak_ends), (Lenient::Known(Phase::Soaking), Some(Stamp(at(160)))));
        assert!(p.same_as(&GateProgress { updated: Some(Stamp(at(120))), ..p.clone() }));
    }
}
