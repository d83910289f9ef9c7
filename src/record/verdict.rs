//! This boot's `verdict.json` in the run dir, the document `check --format json` prints
//! too: one serde type, [`VerdictRecord`], that writes the file and reads it back, so a
//! restart in the same boot (Restart=, Upholds=) finds the verdict instead of judging
//! the boot again. Writes are atomic; reads go through [`read_regular`]: regular files
//! only, opened without blocking (a FIFO in their place must not hold up the gate or its
//! stop), and at most a bounded size.
//!
//! Fields are declared in alphabetical order: that is the order the file has had since
//! its first version (written from a sorted JSON map), pinned by the golden files in
//! `tests/golden/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::Lenient;
use super::boot::{Fallback, Mark, Permanent};
use crate::checks::{Observed, Status};
use crate::engine::{Blame, CheckResult, ComponentHealth, Failing, GateState, Health, Snapshot};
use crate::policy::CheckSpec;
use crate::util::read::read_regular;
use crate::util::time::{millis, parse_timestamp, timestamp};

/// The file in the run dir.
pub const FILE: &str = "verdict.json";
/// The largest verdict file read back.
const VERDICT_CAP: u64 = 4 << 20;
/// The largest verdict file written: well under what is read back, so a restart in the
/// same boot can always read the verdict its gate wrote.
pub const WRITE_CAP: usize = 1 << 20;

/// A time in a record: RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(pub SystemTime);

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&timestamp(self.0))
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_timestamp(&text).map(Stamp).ok_or_else(|| serde::de::Error::custom(format!("not a time: {text}")))
    }
}

/// The verdict document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    #[serde(default)]
    pub boot_id: Option<String>,
    #[serde(default)]
    pub checks: Vec<CheckRecord>,
    /// The checks that keep the gate from passing (critical, not passed).
    #[serde(default)]
    pub failing: Vec<String>,
    pub gate: GateState,
    #[serde(default)]
    pub gate_duration_ms: Option<f64>,
    #[serde(default, with = "lenient_stamp")]
    pub gate_started: Option<Stamp>,
    /// The fallback this boot is, when it is one (written by `run`, which learns it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// How the boot backend's mark of a passed gate went (written by `run` once it has).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    /// The rollback that made a boot loader's fallback permanent, when this boot ran one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permanent: Option<Permanent>,
    /// Where the policy came from.
    #[serde(default)]
    pub policy: String,
    /// Why the gate failed, when the failing checks alone do not say (`failed during soak`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The rollback window a passed gate opened (written by `run` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<WindowRecord>,
    #[serde(default)]
    pub status: Lenient<Health>,
    #[serde(default, with = "lenient_stamp")]
    pub timestamp: Option<Stamp>,
    /// Set when messages or observed values were shortened to keep the file bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
}

/// One check as every document shows it: the verdict file, `check --format json`, the
/// health document's components, one component's route and a run on request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default)]
    pub critical: bool,
    #[serde(default)]
    pub duration_ms: f64,
    #[serde(default)]
    pub kind: String,
    /// When the last attempt ended; absent before the first.
    #[serde(default, with = "lenient_stamp", skip_serializing_if = "Option::is_none")]
    pub last_check: Option<Stamp>,
    #[serde(default)]
    pub message: String,
    pub name: String,
    /// When the next attempt starts, while the check waits to retry.
    #[serde(default, with = "lenient_stamp", skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<Stamp>,
    /// What the check saw (free space, versions, counts), by name; always in this one place.
    #[serde(default)]
    pub observed: Observed,
    /// A result this version does not know (a newer one wrote it) reads as pending.
    #[serde(default)]
    pub result: Lenient<Status>,
    /// What the result means for the boot: `healthy`, `degraded`, `unhealthy` or `pending`
    /// (absent from files written before it was).
    #[serde(default, skip_serializing_if = "Lenient::is_other")]
    pub status: Lenient<ComponentHealth>,
    /// On a trial boot, why this critical check failed the gate.
    #[serde(default, skip_serializing_if = "Lenient::is_other")]
    pub blame: Lenient<Blame>,
    /// Its preexisting failure was accepted (`gate.judge: regression`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accepted: bool,
}

/// The rollback window a passed gate opened, so a restart in the same boot re-opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub armed: bool,
    /// The end as time since this boot began: it holds when the wall clock is stepped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_since_boot_ms: Option<u64>,
    #[serde(with = "stamp")]
    pub window_ends: SystemTime,
}

mod stamp {
    use super::*;

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        Stamp(*t).serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        Stamp::deserialize(d).map(|s| s.0)
    }
}

/// An optional time that reads as `None` when it is not one (`null`, or text of a format
/// this version does not know): a record is never refused for a time it only shows.
mod lenient_stamp {
    use super::*;

    pub fn serialize<S: serde::Serializer>(t: &Option<Stamp>, s: S) -> Result<S::Ok, S::Error> {
        t.serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Stamp>, D::Error> {
        Ok(Lenient::<Stamp>::deserialize(d)?.known())
    }
}

impl CheckRecord {
    /// `c` as the verdict records it.
    pub fn of(c: &CheckResult) -> Self {
        CheckRecord {
            attempts: c.attempts,
            consecutive_failures: c.consecutive_failures,
            critical: c.critical,
            duration_ms: millis(c.duration),
            kind: c.kind.to_string(),
            last_check: c.last_check.map(Stamp),
            message: c.message.clone(),
            name: c.name.clone(),
            next_attempt: c.timing.next_attempt.map(Stamp),
            observed: c.observed.clone(),
            result: Lenient::Known(c.status),
            status: Lenient::Known(c.health()),
            blame: c.blame.map_or(Lenient::Other, Lenient::Known),
            accepted: c.accepted,
        }
    }

    /// Puts the recorded result on `c` (a check of the same name in the policy now).
    fn restore(&self, c: &mut CheckResult) {
        c.status = self.result.known().unwrap_or(Status::Pending);
        c.message = self.message.clone();
        c.observed = self.observed.clone();
        c.duration = duration_of(self.duration_ms);
        c.attempts = self.attempts;
        c.last_check = self.last_check.map(|s| s.0);
        c.consecutive_failures = self.consecutive_failures;
        c.consecutive_successes = u32::from(c.status.passed());
        c.blame = self.blame.known();
        c.accepted = self.accepted;
    }
}

/// Milliseconds from a record as a duration; a negative, huge or not-a-number value is zero.
fn duration_of(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default()
}

impl VerdictRecord {
    /// The verdict over `s`, from the policy at `policy`, at `now`, in boot `boot_id`.
    pub fn of(s: &Snapshot, policy: &str, boot_id: Option<String>, now: SystemTime) -> Self {
        let v = s.verdict();
        VerdictRecord {
            boot_id,
            checks: s.checks.iter().map(CheckRecord::of).collect(),
            failing: s.critical_failures().into_iter().map(|f| f.name).collect(),
            gate: v.gate,
            gate_duration_ms: s.gate_duration.map(millis),
            gate_started: Some(Stamp(s.gate_started)),
            fallback: None,
            mark: None,
            permanent: None,
            policy: policy.to_string(),
            reason: s.gate_reason.clone(),
            rollback: None,
            status: Lenient::Known(v.health),
            timestamp: Some(Stamp(now)),
            truncated: None,
        }
    }

    /// The checks that failed the gate, each with the message it failed with.
    pub fn failing(&self) -> Vec<Failing> {
        self.failing
            .iter()
            .map(|name| {
                let message = self.checks.iter().find(|c| &c.name == name).map(|c| c.message.clone());
                Failing { name: name.clone(), message: message.unwrap_or_default() }
            })
            .collect()
    }

    /// Why a duration of the record cannot be one bootgate wrote, if one cannot: no gate
    /// or check takes longer than the longest duration a policy may name.
    fn out_of_range(&self) -> Option<String> {
        let max = crate::policy::MAX_DURATION.as_secs_f64() * 1000.0;
        let bad = |ms: f64| !(0.0..=max).contains(&ms);
        if let Some(ms) = self.gate_duration_ms.filter(|&ms| bad(ms)) {
            return Some(format!("gate_duration_ms {ms} is out of range"));
        }
        let c = self.checks.iter().find(|c| bad(c.duration_ms))?;
        Some(format!("duration_ms {} of check `{}` is out of range", c.duration_ms, c.name))
    }

    /// The file's bytes: pretty JSON, as operators read it, at most [`WRITE_CAP`]. A larger
    /// verdict (a thousand checks with long messages) has its messages cut to a share of
    /// the room, then its observed values dropped, and says so in `truncated`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let whole = self.json();
        if whole.len() <= WRITE_CAP {
            return whole;
        }
        let mut cut = self.clone();
        cut.truncated = Some(true);
        let share = WRITE_CAP / 2 / cut.checks.len().max(1);
        for c in &mut cut.checks {
            if let Some((at, _)) = c.message.char_indices().nth(share / 4) {
                c.message.truncate(at);
                c.message.push('…');
            }
        }
        let bytes = cut.json();
        if bytes.len() <= WRITE_CAP {
            return bytes;
        }
        cut.checks.iter_mut().for_each(|c| c.observed.clear());
        cut.json()
    }

    fn json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a verdict record is JSON")
    }
}

/// A verdict this boot already reached, read back from `verdict.json`.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: PathBuf,
    pub record: VerdictRecord,
}

impl Recorded {
    /// The recorded gate: passed or failed.
    pub fn gate(&self) -> GateState {
        self.record.gate
    }

    /// Names of the checks that failed the recorded gate.
    pub fn failing(&self) -> Vec<String> {
        self.record.failing.clone()
    }

    /// The recorded results as a snapshot over `specs` (the policy's checks, in its order).
    ///
    /// A check the verdict has no entry for is pending; the gate state is the recorded one.
    pub fn snapshot(&self, specs: &[CheckSpec]) -> Snapshot {
        let r = &self.record;
        let mut s = Snapshot::new(specs);
        for c in &mut s.checks {
            match r.checks.iter().find(|e| e.name == c.name) {
                Some(e) => e.restore(c),
                None => c.message = "not in this boot's recorded verdict (added to the policy since?)".into(),
            }
        }
        for name in &r.failing {
            if !specs.iter().any(|spec| &spec.name == name) {
                tracing::warn!(check = %name, "the recorded gate failed on `{name}`, which the policy no longer has");
            }
        }
        s.gate = r.gate;
        s.gate_failing = r.failing();
        s.gate_duration = r.gate_duration_ms.map(duration_of);
        if let Some(t) = r.gate_started {
            s.gate_started = t.0;
        }
        s
    }
}

/// Why this boot's verdict file cannot be used. The caller fails closed on every one: a
/// boot is judged once, and a verdict it cannot read may be a failed one.
#[derive(Debug, thiserror::Error)]
pub enum VerdictError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a verdict: {why}")]
    Malformed { path: String, why: String },
    #[error("{path} records no decided gate (gate: {gate})")]
    Undecided { path: String, gate: &'static str },
}

/// The verdict this boot (`boot`; `None`: unknown, so any verdict counts as this boot's)
/// already reached in `run_dir`, if any. `Ok(None)` when there is none, or only one of
/// another boot.
pub fn this_boot(run_dir: &Path, boot: Option<&str>) -> Result<Option<Recorded>, VerdictError> {
    match seen(run_dir, boot)? {
        Seen::ThisBoot(rec) => Ok(Some(*rec)),
        Seen::Nothing => Ok(None),
        Seen::OtherBoot(theirs) => {
            let shown = run_dir.join(FILE).display().to_string();
            tracing::info!(file = %shown, boot_id = theirs, "ignoring {shown}: it is the verdict of boot {theirs}");
            Ok(None)
        }
    }
}

/// What `run_dir` holds for this boot (`boot`, as in [`this_boot`]), told apart for
/// those who say which: `bootgate wait` names the boot an old verdict belongs to.
#[derive(Debug)]
pub enum Seen {
    /// No verdict file.
    Nothing,
    /// The verdict of another boot, by its id.
    OtherBoot(String),
    /// This boot's decided verdict.
    ThisBoot(Box<Recorded>),
}

/// [`this_boot`], saying whether a verdict that is not this boot's is another boot's.
pub fn seen(run_dir: &Path, boot: Option<&str>) -> Result<Seen, VerdictError> {
    let path = run_dir.join(FILE);
    let shown = path.display().to_string();
    let bytes = match read_regular(&path, VERDICT_CAP) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Seen::Nothing),
        Err(source) => return Err(VerdictError::Read { path: shown, source }),
    };
    let record: VerdictRecord = serde_json::from_slice(&bytes)
        .map_err(|e| VerdictError::Malformed { path: shown.clone(), why: e.to_string() })?;
    if let (Some(theirs), Some(ours)) = (record.boot_id.as_deref(), boot)
        && theirs != ours
    {
        return Ok(Seen::OtherBoot(theirs.to_string()));
    }
    if record.gate == GateState::Running {
        return Err(VerdictError::Undecided { path: shown, gate: GateState::Running.as_str() });
    }
    if let Some(why) = record.out_of_range() {
        return Err(VerdictError::Malformed { path: shown, why });
    }
    Ok(Seen::ThisBoot(Box::new(Recorded { path, record })))
}

/// Writes `record` to `dir/verdict.json` atomically, readable by all: it holds no secrets
/// and operators read it without root.
pub fn write(dir: &Path, record: &VerdictRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::util::atomic::write(&dir.join(FILE), &record.to_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_text(dir: &Path, text: &str) {
        std::fs::write(dir.join(FILE), text).unwrap();
    }

    #[test]
    fn a_verdict_is_this_boots_unless_it_names_another() {
        let dir = tempfile::tempdir().unwrap();
        assert!(this_boot(dir.path(), Some("b1")).unwrap().is_none());
        write_text(dir.path(), r#"{"boot_id": "b0", "gate": "failed", "failing": ["a"]}"#);
        assert!(this_boot(dir.path(), Some("b1")).unwrap().is_none(), "another boot's verdict");
        let rec = this_boot(dir.path(), Some("b0")).unwrap().unwrap();
        assert_eq!((rec.gate(), rec.failing()), (GateState::Failed, vec!["a".to_string()]));
        // Without a boot id to compare, the verdict counts: fail closed.
        assert!(this_boot(dir.path(), None).unwrap().is_some());
    }

    #[test]
    fn an_unreadable_verdict_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        for bad in [
            "{\"gate\": \"pass",
            "[1]",
            "{\"boot_id\": \"b0\", \"gate\": \"running\"}",
            "{\"boot_id\": \"b0\", \"gate\": \"postponed\"}",
            "{\"boot_id\": \"b0\"}",
            "{\"boot_id\": \"b0\", \"gate\": \"passed\", \"gate_duration_ms\": 1e300}",
            "{\"boot_id\": \"b0\", \"gate\": \"failed\", \"checks\": [{\"name\": \"a\", \"duration_ms\": -1}]}",
        ] {
            write_text(dir.path(), bad);
            let err = this_boot(dir.path(), Some("b0")).unwrap_err().to_string();
            assert!(err.contains(&path.display().to_string()), "{bad}: {err}");
        }
        std::fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = this_boot(dir.path(), Some("b0")).unwrap_err().to_string();
        assert!(err.contains("FIFO"), "{err}");
    }

    #[test]
    fn a_verdict_of_a_thousand_long_messages_is_written_small_enough_to_read_back() {
        let mut s = Snapshot::new(&[]);
        s.gate = GateState::Passed;
        s.checks = (0..1000)
            .map(|i| {
                CheckResult::finished(&format!("check-{i:04}"), true, Status::Pass)
                    .with_message("m".repeat(5000))
                    .with_observed("output", "o".repeat(5000))
            })
            .collect();
        let record = VerdictRecord::of(&s, "p.yaml", Some("b0".into()), SystemTime::now());
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &record).unwrap();
        let len = std::fs::metadata(dir.path().join(FILE)).unwrap().len();
        assert!(len <= WRITE_CAP as u64, "{len} bytes");
        let read = this_boot(dir.path(), Some("b0")).unwrap().expect("the verdict reads back").record;
        assert_eq!((read.checks.len(), read.truncated, read.gate), (1000, Some(true), GateState::Passed));
        assert!(read.checks[999].message.starts_with("mmm"));
    }

    #[test]
    fn what_a_newer_version_adds_or_names_differently_is_read_as_far_as_known() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"gate": "passed", "status": "splendid", "timestamp": "last tuesday", "new_key": {"x": 1},
            "checks": [{"name": "a", "result": "postponed", "duration_ms": 2.5, "last_check": null, "extra": true}]}"#;
        write_text(dir.path(), text);
        let rec = this_boot(dir.path(), None).unwrap().unwrap().record;
        assert_eq!((rec.status.known(), rec.timestamp), (None, None));
        assert_eq!(rec.checks[0].result.known(), None);
        let spec = crate::policy::parse("version: 1\nchecks:\n  - {name: a, kind: disk}\n", "p.yaml").unwrap();
        let recorded = Recorded { path: PathBuf::new(), record: rec };
        let s = recorded.snapshot(&spec.checks);
        assert_eq!((s.checks[0].status, s.checks[0].duration), (Status::Pending, Duration::from_micros(2500)));
    }
}
