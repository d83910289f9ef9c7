//! Renders results: the `check` table, verdict JSON, the verdict file and boot history.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::engine::{CheckResult, Snapshot};

/// RFC 3339 UTC time with milliseconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// One check as JSON: result, message, timing and its observed values.
pub fn check_json(c: &CheckResult) -> Value {
    let mut v = json!({
        "name": c.name,
        "kind": c.kind,
        "critical": c.critical,
        "result": c.status,
        "message": c.message,
        "duration_ms": millis(c.duration),
        "attempts": c.attempts,
        "last_check": c.last_check.map(timestamp),
        "consecutive_failures": c.consecutive_failures,
    });
    v["observed"] = Value::Object(c.observed.clone());
    v
}

/// The verdict document of `check --format json` and the verdict file.
pub fn verdict_json(s: &Snapshot, policy_source: &str) -> Value {
    let v = s.verdict();
    json!({
        "status": v.health,
        "gate": v.gate,
        "boot_id": boot_id(),
        "policy": policy_source,
        "timestamp": timestamp(SystemTime::now()),
        "gate_started": timestamp(s.gate_started),
        "gate_duration_ms": s.gate_duration.map(millis),
        "failing": failing(s),
        "checks": s.checks.iter().map(check_json).collect::<Vec<_>>(),
    })
}

/// Names of the checks that keep the gate from passing (critical, not passed).
pub fn failing(s: &Snapshot) -> Vec<&str> {
    s.checks.iter().filter(|c| c.critical && !c.status.passed()).map(|c| c.name.as_str()).collect()
}

/// The readable table of `check --format text`.
pub fn table(s: &Snapshot) -> String {
    let rows: Vec<[String; 5]> = s
        .checks
        .iter()
        .map(|c| {
            let attempts = if c.attempts > 1 { format!(" ×{}", c.attempts) } else { String::new() };
            [
                c.name.clone(),
                if c.critical { "yes" } else { "no" }.into(),
                format!("{}{attempts}", c.status.as_str()),
                format!("{:.1}ms", millis(c.duration)),
                one_line(&c.message),
            ]
        })
        .collect();
    let head = ["CHECK", "CRITICAL", "RESULT", "DURATION", "MESSAGE"];
    let mut widths = head.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(head.map(String::from)).chain(rows) {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    let v = s.verdict();
    let took = s.gate_duration.map(|d| format!(" in {:.1}ms", millis(d))).unwrap_or_default();
    let _ = writeln!(out, "verdict: {} (gate {}){took}", v.health.as_str(), v.gate.as_str());
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Writes `doc` to `dir/verdict.json` atomically (temp file + rename), readable by all:
/// it holds no secrets and operators read it without root.
pub fn write_verdict(dir: &Path, doc: &Value) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".verdict.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, dir.join("verdict.json"))
}

/// The checks that failed the gate earlier in this same boot, if it did fail.
///
/// A restarted service (systemd `Upholds=`, `Restart=`) must not re-run a failed gate and
/// perhaps pass on a second try: the verdict of a boot is given once.
pub fn failed_earlier_this_boot(dir: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("verdict.json")).ok()?;
    let doc: Value = serde_json::from_str(&text).ok()?;
    let same_boot = doc["boot_id"].as_str().is_some() && doc["boot_id"].as_str().map(String::from) == boot_id();
    (same_boot && doc["gate"] == "failed")
        .then(|| doc["failing"].as_array().into_iter().flatten().filter_map(|n| n.as_str().map(String::from)).collect())
}

/// Keeps this many boots in `history.jsonl`.
const HISTORY: usize = 50;

/// Appends a one-line summary of this boot's verdict to `dir/history.jsonl`.
pub fn record_history(dir: &Path, doc: &Value) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("history.jsonl");
    let line = json!({
        "timestamp": doc["timestamp"],
        "boot_id": boot_id(),
        "status": doc["status"],
        "gate": doc["gate"],
        "failing": doc["failing"],
        "gate_duration_ms": doc["gate_duration_ms"],
    });
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut lines: Vec<&str> = old.lines().collect();
    let keep_from = lines.len().saturating_sub(HISTORY - 1);
    lines.drain(..keep_from);
    let tmp = dir.join(".history.jsonl.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    for l in lines {
        writeln!(f, "{l}")?;
    }
    writeln!(f, "{line}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)
}

/// This boot's id from the kernel, if readable.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_boots() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..(HISTORY + 5) {
            let doc =
                json!({"timestamp": i, "status": "healthy", "gate": "passed", "failing": [], "gate_duration_ms": 1.0});
            record_history(dir.path(), &doc).unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), HISTORY);
        assert_eq!(lines.last().unwrap()["timestamp"], HISTORY + 4);
    }
}
