//! This boot's `verdict.json` in the run dir (the history is [`crate::history`]). Writes are atomic (temp file + rename). Reads go through
//! [`read_regular`]: regular files only, opened without blocking (a FIFO in their place
//! must not hold up the gate or its stop), and at most a bounded size.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::engine::{CheckResult, GateState, Snapshot};
use crate::fsread::read_regular;
use crate::policy::CheckSpec;

/// The largest verdict file read back (a verdict of 1,000 checks is well under this).
const VERDICT_CAP: u64 = 4 << 20;

/// This boot's id from the kernel, if readable.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string())
}

/// A verdict this boot already reached, read back from `verdict.json`.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: PathBuf,
    pub gate: GateState,
    pub doc: Value,
}

impl Recorded {
    /// Names of the checks that failed the recorded gate.
    pub fn failing(&self) -> Vec<String> {
        self.doc["failing"].as_array().into_iter().flatten().filter_map(|n| n.as_str().map(String::from)).collect()
    }

    /// The recorded results as a snapshot over `specs` (the policy's checks, in its order).
    ///
    /// A check the verdict has no entry for is pending; the gate state is the recorded one.
    pub fn snapshot(&self, specs: &[CheckSpec]) -> Snapshot {
        let mut s = Snapshot::new(specs);
        let entries: Vec<&Value> = self.doc["checks"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
        for c in &mut s.checks {
            if let Some(e) = entries.iter().find(|e| e["name"] == c.name.as_str()) {
                restore(c, e);
            } else {
                c.message = "not in this boot's recorded verdict (added to the policy since?)".into();
            }
        }
        for name in self.failing() {
            if !specs.iter().any(|spec| spec.name == name) {
                tracing::warn!(check = %name, "the recorded gate failed on `{name}`, which the policy no longer has");
            }
        }
        s.gate = self.gate;
        s.gate_failing = self
            .failing()
            .into_iter()
            .map(|name| {
                let entry = entries.iter().find(|e| e["name"] == name.as_str());
                let message = entry.and_then(|e| e["message"].as_str()).unwrap_or_default().to_string();
                (name, message)
            })
            .collect();
        s.gate_duration = self.doc["gate_duration_ms"].as_f64().map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0));
        if let Some(t) = self.doc["gate_started"].as_str().and_then(|t| humantime::parse_rfc3339(t).ok()) {
            s.gate_started = t;
        }
        s
    }
}

fn restore(c: &mut CheckResult, e: &Value) {
    if let Ok(status) = serde_json::from_value(e["result"].clone()) {
        c.status = status;
    }
    c.message = e["message"].as_str().unwrap_or_default().to_string();
    c.observed = e["observed"].as_object().cloned().unwrap_or_default();
    c.duration = Duration::from_secs_f64(e["duration_ms"].as_f64().unwrap_or(0.0).max(0.0) / 1000.0);
    c.attempts = e["attempts"].as_u64().unwrap_or(0).try_into().unwrap_or(u32::MAX);
    c.last_check = e["last_check"].as_str().and_then(|t| humantime::parse_rfc3339(t).ok());
    c.consecutive_failures = e["consecutive_failures"].as_u64().unwrap_or(0).try_into().unwrap_or(u32::MAX);
    c.consecutive_successes = u32::from(c.status.passed());
}

/// The verdict this boot already reached, if any.
///
/// `Ok(None)` when there is none (or only one from another boot). An unreadable or
/// malformed file is an error naming it: the caller fails closed, since a boot is
/// judged once and a verdict it cannot read may be a failed one.
pub fn this_boot(run_dir: &Path) -> Result<Option<Recorded>, String> {
    this_boot_as(run_dir, boot_id().as_deref())
}

/// [`this_boot`] for a given boot id (`None`: unknown, so any verdict counts as this boot's).
pub fn this_boot_as(run_dir: &Path, boot: Option<&str>) -> Result<Option<Recorded>, String> {
    let path = run_dir.join("verdict.json");
    let shown = path.display();
    let bytes = match read_regular(&path, VERDICT_CAP) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    };
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{shown} is not a verdict: {e}"))?;
    if !doc.is_object() {
        return Err(format!("{shown} is not a verdict: not a JSON object"));
    }
    if let (Some(theirs), Some(ours)) = (doc["boot_id"].as_str(), boot)
        && theirs != ours
    {
        tracing::info!(file = %shown, boot_id = theirs, "ignoring {shown}: it is the verdict of boot {theirs}");
        return Ok(None);
    }
    let gate = match doc["gate"].as_str() {
        Some("passed") => GateState::Passed,
        Some("failed") => GateState::Failed,
        other => return Err(format!("{shown} records no decided gate (gate: {})", other.unwrap_or("missing"))),
    };
    Ok(Some(Recorded { path, gate, doc }))
}

/// Writes `doc` to `dir/verdict.json` atomically (temp file + rename), readable by all:
/// it holds no secrets and operators read it without root.
pub fn write_verdict(dir: &Path, doc: &Value) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".verdict.json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join("verdict.json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_verdict_is_this_boots_unless_it_names_another() {
        let dir = tempfile::tempdir().unwrap();
        assert!(this_boot_as(dir.path(), Some("b1")).unwrap().is_none());
        write_verdict(dir.path(), &json!({"boot_id": "b0", "gate": "failed", "failing": ["a"]})).unwrap();
        assert!(this_boot_as(dir.path(), Some("b1")).unwrap().is_none(), "another boot's verdict");
        let rec = this_boot_as(dir.path(), Some("b0")).unwrap().unwrap();
        assert_eq!((rec.gate, rec.failing()), (GateState::Failed, vec!["a".to_string()]));
        // Without a boot id to compare, the verdict counts: fail closed.
        assert!(this_boot_as(dir.path(), None).unwrap().is_some());
    }

    #[test]
    fn an_unreadable_verdict_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verdict.json");
        for bad in ["{\"gate\": \"pass", "[1]", "{\"boot_id\": \"b0\", \"gate\": \"running\"}"] {
            std::fs::write(&path, bad).unwrap();
            let err = this_boot_as(dir.path(), Some("b0")).unwrap_err();
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
        std::fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = this_boot_as(dir.path(), Some("b0")).unwrap_err();
        assert!(err.contains("FIFO"), "{err}");
    }
}
