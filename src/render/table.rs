//! Tables for a terminal: the `check` table (also printed by `run` after the gate) and
//! the boot history of `bootgate history`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::engine::{CheckResult, Snapshot};
use crate::record::history::PastBoot;
use crate::util::text::one_line;
use crate::util::time::readable;

/// The time a check took in its round: first attempt to result, retry waits included
/// (the last attempt alone outside the gate, which keeps no round timing).
fn spent(c: &CheckResult) -> Duration {
    c.timing.spent.max(c.duration)
}

/// The readable table of `check --format text`: per check its attempts and the time
/// it took, and a footer with the gate's time and where it went.
pub fn checks(s: &Snapshot) -> String {
    let rows: Vec<[String; 6]> = s
        .checks
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                if c.critical { "yes" } else { "no" }.into(),
                c.status.as_str().into(),
                c.attempts.to_string(),
                readable(spent(c)),
                one_line(&c.message),
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
    let took = s.gate_duration.map(|d| format!(" in {}", readable(d))).unwrap_or_default();
    let _ = write!(out, "verdict: {} (gate {}){took}", v.health.as_str(), v.gate.as_str());
    if let Some(c) = s.checks.iter().max_by_key(|c| spent(c)) {
        let _ = write!(out, "; slowest: {} {}", c.name, readable(spent(c)));
        if c.attempts > 1 {
            let _ = write!(out, " over {} attempts", c.attempts);
        }
        if !c.timing.waited.is_zero() {
            let _ = write!(out, " ({} waiting to retry)", readable(c.timing.waited));
        }
    }
    out.push('\n');
    out
}

/// What `history` says when it found no boot: where it looked, and whether the file is there.
pub fn no_history(file: &std::path::Path, exists: bool) -> String {
    let why = if exists { "it holds no readable boot" } else { "no such file" };
    format!("0 boots found in {} ({why})\n", file.display())
}

/// A readable table of `boots` (already in the order to show).
pub fn history(boots: &[&PastBoot]) -> String {
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
        let decision = b.decision.map_or("-", |d| d.as_str());
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
mod tests {
    use super::*;
    use crate::checks::Status;
    use crate::engine::{GateState, Timing};

    fn result(name: &str, status: Status, attempts: u32, last: u64, spent: u64, waited: u64) -> CheckResult {
        let (spent, waited) = (Duration::from_millis(spent), Duration::from_millis(waited));
        CheckResult {
            timing: Timing { spent, waited, next_attempt: None },
            ..CheckResult::finished(name, true, status)
                .with_message(format!("{name} {}", status.as_str()))
                .with_attempts(attempts, Duration::from_millis(last))
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
        let t = checks(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "CHECK  CRITICAL  RESULT  ATTEMPTS  TIME    MESSAGE");
        assert_eq!(lines[1], "root   yes       pass    1         2.0 ms  root pass");
        assert_eq!(lines[2], "api    yes       fail    3         7.0 s   api fail");
        assert_eq!(
            lines[3],
            "verdict: unhealthy (gate failed) in 7.0 s; slowest: api 7.0 s over 3 attempts (6.0 s waiting to retry)"
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
        assert!(
            checks(&s).ends_with("verdict: healthy (gate passed) in 4.0 ms; slowest: root 3.0 ms\n"),
            "{}",
            checks(&s)
        );
    }
}
