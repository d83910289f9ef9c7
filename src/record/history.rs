//! The boot history, `history.jsonl` in the state dir: one JSON line a boot, the last
//! [`KEEP`] boots, each a [`PastBoot`]. Every line is bounded when written
//! ([`LINE_CAP`]), so [`KEEP`] of them stay well under what is read ([`CAP`]); a
//! larger file (written by hand, or by something else) is read from its end, its newest
//! lines, never refused. Writes are atomic and one at a time (a lock file beside the
//! history); reads go through [`read_regular_tail`], and lines that do not parse are
//! skipped with one warning, never fatal: a history is for people and for fallback
//! detection, never a reason to fail a boot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Lenient;
pub use super::boot::Decision;
use super::boot::{Fallback, FallbackBlame, Mark, Permanent, Reason, RetryFacts};
use super::verdict::VerdictRecord;
use crate::engine::Blame;
use crate::util::read::read_regular_tail;

/// Keeps this many boots in `history.jsonl`.
pub const KEEP: usize = 50;
/// The most of the history file read: its last 4 MiB.
pub const CAP: u64 = 4 << 20;
/// The longest line written: [`KEEP`] of them are a fraction of [`CAP`].
pub const LINE_CAP: usize = 16 << 10;
/// The longest failing check's message a line keeps.
const MESSAGE_CAP: usize = 400;
/// The lock file beside the history that serializes its writers.
const LOCK: &str = ".history.jsonl.lock";
/// The file in the state dir.
pub const FILE: &str = "history.jsonl";

/// The booted slot of a past boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub label: String,
    pub index: u32,
    pub uuid: String,
}

pub use crate::engine::Failing;

/// The fallback a boot found itself in, as its line records it (so a later boot on the
/// same slot does not report it again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenFallback {
    pub from_uuid: String,
    #[serde(default)]
    pub reason: Lenient<Reason>,
    /// The left image's version, when its boot recorded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,
    /// The second verdict: whether the left image failed by its own fault.
    #[serde(default, skip_serializing_if = "Lenient::is_other")]
    pub blame: Lenient<FallbackBlame>,
}

impl From<&Fallback> for SeenFallback {
    /// What this boot's history line records of its fallback, so the next boot does not report it again.
    fn from(f: &Fallback) -> Self {
        SeenFallback {
            from_uuid: f.from_uuid.clone(),
            reason: Lenient::Known(f.reason),
            from_version: f.from_version.clone(),
            blame: f.blame.map_or(Lenient::Other, Lenient::Known),
        }
    }
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
    /// The booted OS's version, as `os_version`; kept for readers older than `os_version`.
    pub version: Option<String>,
    /// `ID` of the booted OS's os-release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_id: Option<String>,
    /// The booted OS's version: `IMAGE_VERSION`, else `VERSION_ID`, else `VERSION`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
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
    /// How many more checks failed than `failing` names (a line is bounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_more: Option<usize>,
    /// The rollback that made a GRUB fallback permanent, on the boot that ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permanent: Option<Permanent>,
    /// A passed gate's mark that failed: the boot loader still counts this boot as unconfirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    /// On a trial boot, the blame of each critical check that failed its gate.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub blame: BTreeMap<String, Lenient<Blame>>,
    /// What this image last saw, as `last-seen.json` has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<SeenSummary>,
    /// The retry of the left update this fallback boot made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryFacts>,
}

/// A boot's last results in short: how many checks passed and which did not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeenSummary {
    /// When (RFC 3339).
    pub at: String,
    pub passed: usize,
    /// The checks not passing, the first [`SEEN_NAMED`] of them.
    pub failing: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_more: Option<usize>,
}

/// How many failing checks a [`SeenSummary`] names.
pub const SEEN_NAMED: usize = 20;

impl SeenSummary {
    /// The summary of what an image saw.
    pub fn of(seen: &super::last_seen::ImageSeen) -> Self {
        let failing = seen.failing();
        let more = failing.len().saturating_sub(SEEN_NAMED);
        SeenSummary {
            at: seen.updated.clone(),
            passed: seen.checks.len() - failing.len(),
            failing: failing.into_iter().take(SEEN_NAMED).map(str::to_string).collect(),
            failing_more: (more > 0).then_some(more),
        }
    }
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
    /// This boot's line from its verdict, slot, OS and decision.
    pub fn from_verdict(
        v: &VerdictRecord,
        slot: Option<Slot>,
        os_id: Option<String>,
        os_version: Option<String>,
        decision: Option<Decision>,
    ) -> Self {
        PastBoot {
            timestamp: v.timestamp.map(|t| crate::util::time::timestamp(t.0)),
            boot_id: v.boot_id.clone(),
            partition: slot,
            version: os_version.clone(),
            os_id,
            os_version,
            gate: Some(v.gate.as_str().to_string()),
            status: v.status.known().map(|h| h.as_str().to_string()),
            failing: v.failing(),
            decision,
            reason: v.reason.clone(),
            gate_duration_ms: v.gate_duration_ms,
            bootgate: Some(env!("CARGO_PKG_VERSION").into()),
            fallback: None,
            failing_more: None,
            permanent: None,
            mark: None,
            blame: v
                .checks
                .iter()
                .filter_map(|c| c.blame.known().map(|b| (c.name.clone(), Lenient::Known(b))))
                .take(SEEN_NAMED)
                .collect(),
            seen: None,
            retry: None,
        }
    }

    /// This line as written: at most [`LINE_CAP`] bytes. Long messages are cut first, then
    /// messages dropped, then the failing checks past the ones that fit are counted in
    /// `failing_more` instead of named; a long reason is cut too.
    pub fn to_line(&self) -> String {
        let line = self.json();
        if line.len() <= LINE_CAP {
            return line;
        }
        let mut b = self.clone();
        b.reason = b.reason.map(|r| cut(&r, MESSAGE_CAP));
        if let Some(p) = &mut b.permanent {
            p.note = cut(&p.note, MESSAGE_CAP);
        }
        if let Some(m) = &mut b.mark {
            m.note = cut(&m.note, MESSAGE_CAP);
        }
        if let Some(r) = &mut b.retry {
            r.text = cut(&r.text, MESSAGE_CAP);
        }
        b.failing.iter_mut().for_each(|f| f.message = cut(&f.message, MESSAGE_CAP));
        if b.json().len() > LINE_CAP {
            b.failing.iter_mut().for_each(|f| f.message.clear());
        }
        let mut dropped = 0;
        while b.json().len() > LINE_CAP && !b.failing.is_empty() {
            // Halving keeps this quick for a thousand failing checks.
            let keep = b.failing.len() / 2;
            dropped += b.failing.len() - keep;
            b.failing.truncate(keep);
            b.failing_more = Some(self.failing_more.unwrap_or(0) + dropped);
        }
        b.json()
    }

    fn json(&self) -> String {
        serde_json::to_string(self).expect("a history line is JSON")
    }

    /// Names of the failing checks, joined for one line.
    pub fn failing_names(&self) -> String {
        self.failing.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// The history file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

use crate::util::text::cut;

/// The lines of `text` that parse, oldest first; bad ones are skipped with one warning.
pub fn parse(text: &str, source: &Path) -> Vec<PastBoot> {
    good_lines(text, source).into_iter().map(|(_, b)| b).collect()
}

fn good_lines<'a>(text: &'a str, source: &Path) -> Vec<(&'a str, PastBoot)> {
    let mut skipped = 0usize;
    let mut first = None;
    let good = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(n, l)| match serde_json::from_str::<PastBoot>(l) {
            Ok(b) => Some((l, b)),
            Err(e) => {
                skipped += 1;
                first.get_or_insert((n + 1, e));
                None
            }
        })
        .collect();
    if let Some((line, e)) = first {
        let file = source.display();
        // One warning, however many lines: a file of garbage must not flood the journal.
        tracing::warn!(file = %file, skipped, line, error = %e, "skipped {skipped} line(s) of {file} that are no boot record (the first, line {line}: {e})");
    }
    good
}

/// The history's text: the whole file, or its newest lines when it is larger than [`CAP`].
fn read_text(dir: &Path) -> std::io::Result<String> {
    let (bytes, cut) = read_regular_tail(&path(dir), CAP)?;
    if cut {
        let file = path(dir);
        tracing::warn!(file = %file.display(), "{} is larger than {CAP} bytes; reading its newest lines", file.display());
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The boots recorded in `dir`, oldest first; no file is an empty history.
pub fn read(dir: &Path) -> std::io::Result<Vec<PastBoot>> {
    match read_text(dir) {
        Ok(text) => Ok(parse(&text, &path(dir))),
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
    let _one_writer = lock(dir)?;
    let old = read_lines(dir);
    let mut lines: Vec<&str> = good_lines(&old, &path(dir)).into_iter().map(|(l, _)| l).collect();
    lines.drain(..lines.len().saturating_sub(KEEP - 1));
    let new = boot.to_line();
    lines.push(&new);
    write_lines(dir, &lines)
}

/// Changes the newest line of boot `boot_id` with `change` (a revert after the gate
/// passed); `Ok(false)` when the history has no line of that boot.
pub fn amend(dir: &Path, boot_id: &str, change: impl FnOnce(&mut PastBoot)) -> std::io::Result<bool> {
    let _one_writer = lock(dir)?;
    let old = read_lines(dir);
    let mut lines: Vec<(String, PastBoot)> =
        good_lines(&old, &path(dir)).into_iter().map(|(l, b)| (l.to_string(), b)).collect();
    let Some((line, boot)) = lines.iter_mut().rev().find(|(_, b)| b.boot_id.as_deref() == Some(boot_id)) else {
        return Ok(false);
    };
    change(boot);
    *line = boot.to_line();
    write_lines(dir, &lines.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>())?;
    Ok(true)
}

/// Holds the history's lock until dropped: one writer at a time, so two boots' records
/// (a revert's amend beside a run by hand) never lose each other's line.
fn lock(dir: &Path) -> std::io::Result<nix::fcntl::Flock<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(dir.join(LOCK))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| std::io::Error::from(e))
}

/// The history's text, or nothing (with a warning when it exists but cannot be read).
fn read_lines(dir: &Path) -> String {
    let file = path(dir);
    match read_text(dir) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            let shown = file.display();
            tracing::warn!(file = %shown, error = %e, "cannot read the boot history {shown} ({e}); starting it anew");
            String::new()
        }
    }
}

/// Replaces the history with `lines`, atomically.
fn write_lines(dir: &Path, lines: &[&str]) -> std::io::Result<()> {
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    crate::util::atomic::write(&path(dir), text.as_bytes(), 0o644)
}

/// The newest `limit` boots first.
pub fn newest(boots: &[PastBoot], limit: usize) -> Vec<&PastBoot> {
    boots.iter().rev().take(limit).collect()
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
