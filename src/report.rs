//! Renders results: the `check` table, verdict JSON, the verdict file and boot history.

use std::fmt::Write as _;
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

/// This boot's id from the kernel, if readable.
pub use crate::state::boot_id;
