//! Renders results: the `check` table, verdict JSON, the verdict file and boot history.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::engine::{CheckResult, Snapshot, blocks_gate};

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
    let mut doc = json!({
        "status": v.health,
        "gate": v.gate,
        "boot_id": crate::state::boot_id(),
        "policy": policy_source,
        "timestamp": timestamp(SystemTime::now()),
        "gate_started": timestamp(s.gate_started),
        "gate_duration_ms": s.gate_duration.map(millis),
        "failing": failing(s),
        "checks": s.checks.iter().map(check_json).collect::<Vec<_>>(),
    });
    if let Some(reason) = &s.gate_reason {
        doc["reason"] = reason.as_str().into();
    }
    doc
}

/// Names of the checks that keep the gate from passing (critical, not passed).
pub fn failing(s: &Snapshot) -> Vec<&str> {
    s.checks.iter().filter(|c| blocks_gate(c.critical, c.status)).map(|c| c.name.as_str()).collect()
}

/// The time a check took in its round: first attempt to result, retry waits included
/// (the last attempt alone outside the gate, which keeps no round timing).
fn spent(c: &CheckResult) -> Duration {
    c.timing.spent.max(c.duration)
}

/// `12.3ms` under a second, `7.0s` above.
fn short(d: Duration) -> String {
    if d < Duration::from_secs(1) { format!("{:.1}ms", millis(d)) } else { format!("{:.1}s", d.as_secs_f64()) }
}

/// The readable table of `check --format text`: per check its attempts and the time
/// it took, and a footer with the gate's time and where it went.
pub fn table(s: &Snapshot) -> String {
    let rows: Vec<[String; 6]> = s
        .checks
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                if c.critical { "yes" } else { "no" }.into(),
                c.status.as_str().into(),
                c.attempts.to_string(),
                short(spent(c)),
                crate::text::one_line(&c.message),
            ]
        })
        .collect();
    let head = ["CHECK", "CRITICAL", "RESULT", "ATTEMPTS", "TIME", "MESSAGE"];
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
    let took = s.gate_duration.map(|d| format!(" in {}", short(d))).unwrap_or_default();
    let _ = write!(out, "verdict: {} (gate {}){took}", v.health.as_str(), v.gate.as_str());
    if let Some(c) = s.checks.iter().max_by_key(|c| spent(c)) {
        let _ = write!(out, "; slowest: {} {}", c.name, short(spent(c)));
        if c.attempts > 1 {
            let _ = write!(out, " over {} attempts", c.attempts);
        }
        if !c.timing.waited.is_zero() {
            let _ = write!(out, " ({} waiting to retry)", short(c.timing.waited));
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{Observed, Status};
    use crate::engine::{GateState, Timing};

    fn result(name: &str, status: Status, attempts: u32, last: u64, spent: u64, waited: u64) -> CheckResult {
        CheckResult {
            name: name.into(),
            kind: "tcp",
            critical: true,
            status,
            message: format!("{name} {}", status.as_str()),
            observed: Observed::new(),
            duration: Duration::from_millis(last),
            attempts,
            last_check: None,
            consecutive_failures: 0,
            consecutive_successes: 0,
            timing: Timing {
                spent: Duration::from_millis(spent),
                waited: Duration::from_millis(waited),
                next_attempt: None,
            },
        }
    }

    #[test]
    fn rows_show_attempts_and_time_and_the_footer_adds_up() {
        let s = Snapshot {
            gate: GateState::Failed,
            checks: vec![result("root", Status::Pass, 1, 2, 2, 0), result("api", Status::Fail, 3, 500, 7000, 6000)],
            gate_started: std::time::SystemTime::now(),
            gate_duration: Some(Duration::from_millis(7010)),
            gate_failing: Vec::new(),
            ..Snapshot::new(&[])
        };
        let t = table(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "CHECK  CRITICAL  RESULT  ATTEMPTS  TIME   MESSAGE");
        assert_eq!(lines[1], "root   yes       pass    1         2.0ms  root pass");
        assert_eq!(lines[2], "api    yes       fail    3         7.0s   api fail");
        assert_eq!(
            lines[3],
            "verdict: unhealthy (gate failed) in 7.0s; slowest: api 7.0s over 3 attempts (6.0s waiting to retry)"
        );
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn a_single_attempt_names_no_attempts_or_waits() {
        let s = Snapshot {
            gate: GateState::Passed,
            checks: vec![result("root", Status::Pass, 1, 3, 3, 0)],
            gate_started: std::time::SystemTime::now(),
            gate_duration: Some(Duration::from_millis(4)),
            gate_failing: Vec::new(),
            ..Snapshot::new(&[])
        };
        assert!(table(&s).ends_with("verdict: healthy (gate passed) in 4.0ms; slowest: root 3.0ms\n"), "{}", table(&s));
    }
}
