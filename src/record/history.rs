//! The boot history, `history.jsonl` in the state dir: one JSON line a boot, the last
//! [`KEEP`] boots. Writes are atomic (temp file + rename); reads go through
//! [`read_regular`] with a cap, and a line that does not parse is skipped with a
//! warning, never fatal: a history is for people and for fallback detection, never a
//! reason to fail a boot.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::boot::PartitionInfo;
use crate::boot::decide::RebootDecision;
use crate::fsread::read_regular;

/// Keeps this many boots in `history.jsonl`.
pub const KEEP: usize = 50;
/// The largest history file read (50 boots of a few KiB each).
pub const CAP: u64 = 4 << 20;
/// The file in the state dir.
pub const FILE: &str = "history.jsonl";

/// The booted slot of a past boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub label: String,
    pub index: u32,
    pub uuid: String,
}

impl From<&PartitionInfo> for Slot {
    fn from(p: &PartitionInfo) -> Self {
        Slot { label: p.label.clone(), index: p.index, uuid: p.uuid.clone() }
    }
}

/// A check that failed a past gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failing {
    pub name: String,
    #[serde(default)]
    pub message: String,
}

/// What bootgate did about a failed gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Rebooted into the fallback slot.
    Reboot,
    /// Stayed: the booted slot was already marked successful.
    StayConfirmed,
    /// Stayed: the boot loader had no other slot to pick.
    StayNoFallback,
    /// Stayed: not an A/B system.
    NotAb,
    /// The boot was reverted after its gate (a rollback window).
    Reverted,
    /// Stayed because the policy says `on_failure: stay`.
    StayPolicy,
}

impl From<RebootDecision> for Decision {
    fn from(d: RebootDecision) -> Self {
        match d {
            RebootDecision::Reboot { .. }
            | RebootDecision::CountDown { .. }
            | RebootDecision::RebootTo { .. }
            | RebootDecision::RebootToEntry { .. } => Decision::Reboot,
            RebootDecision::StayConfirmed => Decision::StayConfirmed,
            RebootDecision::StayNoFallback => Decision::StayNoFallback,
            RebootDecision::NotAbSystem => Decision::NotAb,
        }
    }
}

/// The fallback a boot found itself in, as its line records it (so a later boot on the
/// same slot does not report it again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenFallback {
    pub from_uuid: String,
    pub reason: String,
}

/// One line of the history. Not `deny_unknown_fields`: a line a newer bootgate wrote
/// must stay readable after a fallback to an older one, the case history exists for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PastBoot {
    pub timestamp: Option<String>,
    pub boot_id: Option<String>,
    /// The booted slot; `None` off A/B.
    pub partition: Option<Slot>,
    /// `VERSION` of the booted OS.
    pub version: Option<String>,
    pub gate: Option<String>,
    pub status: Option<String>,
    #[serde(deserialize_with = "failing_any")]
    pub failing: Vec<Failing>,
    /// `None` for a passed gate.
    pub decision: Option<Decision>,
    /// Why, when the failing checks alone do not say (`failed during soak`, or what a revert saw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub gate_duration_ms: Option<f64>,
    /// The bootgate version that wrote the line.
    pub bootgate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<SeenFallback>,
}

/// `failing` as objects, or as the plain names that older lines hold.
fn failing_any<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Failing>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Name(String),
        Full(Failing),
    }
    let entries: Option<Vec<Entry>> = Option::deserialize(d)?;
    Ok(entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| match e {
            Entry::Name(name) => Failing { name, message: String::new() },
            Entry::Full(f) => f,
        })
        .collect())
}

impl PastBoot {
    /// This boot's line from its verdict document, slot, OS version and decision.
    pub fn from_verdict(doc: &Value, slot: Option<Slot>, version: Option<String>, decision: Option<Decision>) -> Self {
        let checks = doc["checks"].as_array().cloned().unwrap_or_default();
        let failing = doc["failing"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|name| {
                let entry = checks.iter().find(|c| c["name"] == name);
                let message = entry.and_then(|c| c["message"].as_str()).unwrap_or_default().to_string();
                Failing { name: name.into(), message }
            })
            .collect();
        PastBoot {
            timestamp: doc["timestamp"].as_str().map(String::from),
            boot_id: doc["boot_id"].as_str().map(String::from),
            partition: slot,
            version,
            gate: doc["gate"].as_str().map(String::from),
            status: doc["status"].as_str().map(String::from),
            failing,
            decision,
            reason: doc["reason"].as_str().map(String::from),
            gate_duration_ms: doc["gate_duration_ms"].as_f64(),
            bootgate: Some(env!("CARGO_PKG_VERSION").into()),
            fallback: None,
        }
    }

    /// Names of the failing checks, joined for one line.
    pub fn failing_names(&self) -> String {
        self.failing.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// `VERSION` from `/usr/lib/os-release`.
pub fn os_version() -> Option<String> {
    os_version_at(Path::new("/usr/lib/os-release"))
}

/// [`os_version`] from the os-release file at `path`.
pub fn os_version_at(path: &Path) -> Option<String> {
    let bytes = read_regular(path, 64 << 10).ok()?;
    String::from_utf8_lossy(&bytes).lines().find_map(|l| {
        let v = l.trim().strip_prefix("VERSION=")?;
        let v = v.trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// The history file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The lines of `text` that parse, oldest first; each bad one is skipped with a warning.
pub fn parse(text: &str, source: &Path) -> Vec<PastBoot> {
    good_lines(text, source).into_iter().map(|(_, b)| b).collect()
}

fn good_lines<'a>(text: &'a str, source: &Path) -> Vec<(&'a str, PastBoot)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(n, l)| match serde_json::from_str::<PastBoot>(l) {
            Ok(b) => Some((l, b)),
            Err(e) => {
                let file = source.display();
                tracing::warn!(file = %file, line = n + 1, error = %e, "skipping line {} of {file}: {e}", n + 1);
                None
            }
        })
        .collect()
}

/// The boots recorded in `dir`, oldest first; no file is an empty history.
pub fn read(dir: &Path) -> std::io::Result<Vec<PastBoot>> {
    match read_regular(&path(dir), CAP) {
        Ok(bytes) => Ok(parse(&String::from_utf8_lossy(&bytes), &path(dir))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// [`read`], with a warning instead of an error: the callers go on without a history.
pub fn read_or_warn(dir: &Path) -> Vec<PastBoot> {
    read(dir).unwrap_or_else(|e| {
        let file = path(dir);
        let file = file.display();
        tracing::warn!(file = %file, error = %e, "cannot read the boot history {file}: {e}");
        Vec::new()
    })
}

/// Appends `boot` to the history in `dir`, keeping the last [`KEEP`] boots. Old lines
/// are kept as written; bad ones are dropped; a history that cannot be read is replaced.
pub fn append(dir: &Path, boot: &PastBoot) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let old = read_lines(dir);
    let mut lines: Vec<&str> = good_lines(&old, &path(dir)).into_iter().map(|(l, _)| l).collect();
    lines.drain(..lines.len().saturating_sub(KEEP - 1));
    let new = serde_json::to_string(boot).map_err(std::io::Error::other)?;
    lines.push(&new);
    write_lines(dir, &lines)
}

/// Changes the newest line of boot `boot_id` with `change` (a revert after the gate
/// passed); `Ok(false)` when the history has no line of that boot.
pub fn amend(dir: &Path, boot_id: &str, change: impl FnOnce(&mut PastBoot)) -> std::io::Result<bool> {
    let old = read_lines(dir);
    let mut lines: Vec<(String, PastBoot)> =
        good_lines(&old, &path(dir)).into_iter().map(|(l, b)| (l.to_string(), b)).collect();
    let Some((line, boot)) = lines.iter_mut().rev().find(|(_, b)| b.boot_id.as_deref() == Some(boot_id)) else {
        return Ok(false);
    };
    change(boot);
    *line = serde_json::to_string(boot).map_err(std::io::Error::other)?;
    write_lines(dir, &lines.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>())?;
    Ok(true)
}

/// The history's text, or nothing (with a warning when it exists but cannot be read).
fn read_lines(dir: &Path) -> String {
    let file = path(dir);
    match read_regular(&file, CAP) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            let shown = file.display();
            tracing::warn!(file = %shown, error = %e, "cannot read the boot history {shown} ({e}); starting it anew");
            String::new()
        }
    }
}

/// Replaces the history with `lines`, atomically (temp file, fsync, rename).
fn write_lines(dir: &Path, lines: &[&str]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    for l in lines {
        writeln!(f, "{l}")?;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, path(dir))
}

/// The newest `limit` boots first.
pub fn newest(boots: &[PastBoot], limit: usize) -> Vec<&PastBoot> {
    boots.iter().rev().take(limit).collect()
}

/// `bootgate history`: the newest `limit` boots in `dir`, as JSON or a table.
pub fn render(dir: &Path, json: bool, limit: usize) -> std::io::Result<String> {
    let boots = read(dir)?;
    let shown = newest(&boots, limit);
    Ok(if json {
        format!("{}\n", serde_json::to_string_pretty(&shown).map_err(std::io::Error::other)?)
    } else {
        table(&shown)
    })
}

/// A readable table of `boots` (already in the order to show).
pub fn table(boots: &[&PastBoot]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<36} {:<10} {:<14} {:<7} {:<10} {:<17} failing",
        "time", "boot", "slot", "version", "gate", "status", "decision"
    );
    for b in boots {
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        // Whole: it is what `journalctl -b` takes.
        let boot = b.boot_id.as_deref().unwrap_or("-");
        let slot = b.partition.as_ref().map_or("-".into(), |p| p.label.clone());
        let decision = b.decision.and_then(|d| serde_json::to_value(d).ok());
        let decision = decision.as_ref().and_then(Value::as_str).unwrap_or("-");
        let failing: Vec<String> = b
            .failing
            .iter()
            .map(|f| if f.message.is_empty() { f.name.clone() } else { format!("{} ({})", f.name, f.message) })
            .collect();
        let _ = writeln!(
            out,
            "{:<24} {boot:<36} {slot:<10} {:<14} {:<7} {:<10} {decision:<17} {}",
            dash(&b.timestamp),
            dash(&b.version),
            dash(&b.gate),
            dash(&b.status),
            if failing.is_empty() { "-".into() } else { failing.join("; ") }
        );
    }
    out
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
