//! The page's headline: what the gate decided or waits for, and what happens next, in
//! words. Green only once the boot is accepted, as `/readyz` says: a running or soaking
//! gate is neutral, whatever its checks say so far.

use std::fmt::Write as _;

use super::View;
use super::escape::Esc;
use crate::checks::Status;
use crate::engine::{CheckResult, ComponentHealth, GateWord, Health};
use crate::record::boot::{BackendFacts, BootFacts};
use crate::record::history::Decision;
use crate::util::time::{parse_timestamp, readable_secs, readable_time};

/// Names listed before `and N more`.
const NAMED: usize = 5;

/// The headline: its colour class, its first word (also the page title's), and the rest.
pub(super) struct Headline {
    pub class: &'static str,
    pub word: &'static str,
    /// Clauses after the word, HTML, each already escaped.
    pub clauses: Vec<String>,
}

/// The headline of `v`.
pub(super) fn of(v: &View) -> Headline {
    let s = v.snapshot;
    let mut h = match s.gate_word() {
        GateWord::Running => Headline { class: "wait", word: "Gate running", clauses: running(v) },
        GateWord::Soaking => Headline { class: "wait", word: "Soaking", clauses: soaking(v) },
        GateWord::Passed => passed(v),
        GateWord::Failed(reason) => {
            let mut clauses = vec![format!("{} on {}", Esc(reason.unwrap_or("failed")), failed_names(v))];
            clauses.extend(after_failure(v));
            Headline { class: "bad", word: "Gate failed", clauses }
        }
    };
    if let Some(f) = v.boot.and_then(|b| b.fallback.as_ref()) {
        h.clauses.push(format!("<strong class=bad>fell back</strong> from {}", Esc(&f.from_partition)));
    }
    h
}

/// `a, b and 3 more`, escaped.
fn names(list: &[&str]) -> String {
    let n = list.len();
    let mut out = String::new();
    for (i, name) in list.iter().take(NAMED).enumerate() {
        let _ = write!(out, "{}{}", if i > 0 { ", " } else { "" }, Esc(name));
    }
    if n > NAMED {
        let _ = write!(out, " and {} more", n - NAMED);
    }
    out
}

/// What a check that holds up the gate is doing.
fn holding(c: &CheckResult) -> &'static str {
    if c.timing.next_attempt.is_some() {
        return "failed, retrying";
    }
    match c.status {
        Status::Pending if c.attempts == 0 => "not run yet",
        Status::Pending => "running",
        Status::Skipped => "skipped: its dependency did not pass",
        _ => "failing",
    }
}

/// Waiting for: the critical checks not passed yet (else the optional ones still
/// pending), and the time left to the deadline.
fn running(v: &View) -> Vec<String> {
    let s = v.snapshot;
    let mut blocking: Vec<&CheckResult> = s.checks.iter().filter(|c| c.critical && !c.status.passed()).collect();
    let optional = blocking.is_empty();
    if optional {
        blocking = s.checks.iter().filter(|c| c.status == Status::Pending).collect();
    }
    let mut clauses = Vec::new();
    if !blocking.is_empty() {
        let mut text = String::from(if optional { "waiting for the optional " } else { "waiting for " });
        for (i, c) in blocking.iter().take(NAMED).enumerate() {
            let _ = write!(text, "{}{} ({})", if i > 0 { ", " } else { "" }, Esc(&c.name), holding(c));
        }
        if blocking.len() > NAMED {
            let _ = write!(text, " and {} more", blocking.len() - NAMED);
        }
        clauses.push(text);
    }
    if let Some(deadline) = s.gate_deadline {
        clauses.push(match deadline.duration_since(v.now) {
            Ok(left) => format!(
                "{} left until the deadline ({})",
                readable_secs(left.as_secs_f64().ceil() as u64),
                readable_time(deadline)
            ),
            Err(_) => "the deadline has passed: the gate is deciding".into(),
        });
    }
    clauses
}

/// Soaking: the time left before the boot is accepted.
fn soaking(v: &View) -> Vec<String> {
    let Some(soak) = &v.snapshot.soak else { return Vec::new() };
    let left = soak.remaining(v.now).as_secs_f64().ceil() as u64;
    vec![format!(
        "every critical check passed; they must keep passing for {} more (of {}) before this boot is accepted",
        readable_secs(left),
        readable_secs(soak.total.as_secs())
    )]
}

/// Passed: the health now, the checks that do not pass, and how the boot gets marked.
fn passed(v: &View) -> Headline {
    let s = v.snapshot;
    let health = s.verdict().health;
    let (class, word) = match health {
        Health::Healthy => ("ok", "Healthy"),
        Health::Degraded => ("warn", "Degraded"),
        Health::Unhealthy => ("bad", "Unhealthy"),
    };
    let mut clauses = vec!["gate passed".to_string()];
    let of =
        |h: ComponentHealth| s.checks.iter().filter(|c| c.health() == h).map(|c| c.name.as_str()).collect::<Vec<_>>();
    let (bad, degraded) = (of(ComponentHealth::Unhealthy), of(ComponentHealth::Degraded));
    if bad.is_empty() && degraded.is_empty() {
        let n = s.checks.len();
        clauses.push(if n == 1 { "the check passes".into() } else { format!("all {n} checks pass") });
    }
    if !bad.is_empty() {
        clauses.push(format!("failing: {}", names(&bad)));
    }
    if !degraded.is_empty() {
        clauses.push(format!("degraded: {}", names(&degraded)));
    }
    clauses.extend(v.boot.and_then(marked));
    Headline { class, word, clauses }
}

/// Who marks this boot good, and whether it has.
fn marked(boot: &BootFacts) -> Option<String> {
    let mark = boot.mark.as_ref();
    if mark.is_some_and(|m| !m.done) {
        return Some("<strong class=bad>not marked good</strong>: see below".into());
    }
    Some(match boot.backend.as_ref()? {
        BackendFacts::Flatcar => match &boot.slot {
            Some(slot) if slot.successful => format!("{} was already marked good", Esc(&slot.partition)),
            Some(slot) => format!(
                "waiting for update_engine to mark {} good (it does about 45 s after it starts)",
                Esc(&slot.partition)
            ),
            None => "waiting for update_engine to mark the slot good".into(),
        },
        BackendFacts::None => "accepted; no boot loader backend marks it".into(),
        other if mark.is_some() => format!("marked good by the {} backend", backend_name(other)),
        other => format!("waiting for the {} backend to mark it good", backend_name(other)),
    })
}

/// The policy's name of a backend.
pub(super) fn backend_name(b: &BackendFacts) -> &'static str {
    match b {
        BackendFacts::Flatcar => "flatcar",
        BackendFacts::None => "none",
        BackendFacts::Grubenv { .. } => "grubenv",
        BackendFacts::Rauc { .. } => "rauc",
        BackendFacts::BlessBoot { .. } => "bless-boot",
        BackendFacts::Efibootguard { .. } => "efibootguard",
        BackendFacts::Uboot { .. } => "uboot",
        BackendFacts::Command { .. } => "command",
    }
}

/// The checks that failed the gate, as recorded; else the critical ones failing now.
fn failed_names(v: &View) -> String {
    let s = v.snapshot;
    if s.gate_failing.is_empty() {
        let now = s.critical_failures();
        return names(&now.iter().map(|f| f.name.as_str()).collect::<Vec<_>>());
    }
    names(&s.gate_failing.iter().map(|f| f.name.as_str()).collect::<Vec<_>>())
}

/// What the failed gate led to: the decision shown in the boot facts, else the one this
/// boot's history line recorded (`bootgate serve` after `run` ended).
fn after_failure(v: &View) -> Option<String> {
    if let Some(f) = v.boot.and_then(|b| b.on_failure.as_ref()) {
        let Some(to) = &f.reboot_to else {
            return Some(format!("<strong>stayed</strong>: {}", Esc(&f.text)));
        };
        let at = f.reboot_at.as_deref().and_then(parse_timestamp);
        return Some(match at.map(|at| at.duration_since(v.now)) {
            Some(Ok(left)) => format!(
                "<strong>rebooting in {} to {}</strong>: {}",
                readable_secs(left.as_secs_f64().ceil() as u64),
                Esc(to),
                Esc(&f.text)
            ),
            _ => format!("<strong>rebooting to {}</strong>: {}", Esc(to), Esc(&f.text)),
        });
    }
    let this = v.boot_id?;
    let line = v.history.iter().rev().find(|b| b.boot_id.as_deref() == Some(this))?;
    Some(match line.decision? {
        Decision::Reboot => "<strong>rebooting</strong> into the other slot: the reboot was asked for".into(),
        d => format!("<strong>{}</strong>. Next: {}", super::boot::decision_text(d), next_step(d)),
    })
}

/// What is left to do after bootgate stayed.
fn next_step(d: Decision) -> &'static str {
    match d {
        Decision::StayNoFallback | Decision::StayBackendError | Decision::Other => {
            "manual intervention needed; fix the failing checks or reinstall a good image"
        }
        Decision::StayConfirmed => "fix the failing checks on this image; a reboot would come back here",
        _ => "fix the failing checks; they are re-run here until they pass",
    }
}
