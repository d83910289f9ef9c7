//! This boot's verdict in two lines, where greenboot's users look: the motd file a
//! login shows (`/run/motd.d/bootgate`) and `bootgate status`. The first line is the
//! verdict, the gate's time and the mark; the second what is not passing, or else what
//! else this boot did (a fallback made permanent) and when it was decided. Plain text:
//! a check's message may carry anything, and a login must never print an escape code.

use std::time::Duration;

use crate::checks::Status;
use crate::engine::{GateState, Health};
use crate::record::verdict::{CheckRecord, VerdictRecord};
use crate::util::text::one_line;
use crate::util::time::{readable, readable_time};

/// How many checks the second line names before it counts the rest.
const NAMED: usize = 4;
/// How much of a check's message the second line keeps.
const MESSAGE_CUT: usize = 60;
/// The longest line written: a motd is read on a terminal.
const LINE_CUT: usize = 300;

/// The two lines, each ending in a newline.
pub fn two_lines(v: &VerdictRecord) -> String {
    format!("{}\n{}\n", plain(&first(v)), plain(&second(v)))
}

/// The two lines after the rollback window reverted this boot (`booted` is left for
/// `fallback`), before the reboot.
pub fn reverted(booted: &str, what: &str, fallback: &str) -> String {
    let first =
        format!("bootgate: boot reverted — {booted} is marked bad after its gate passed; rebooting to {fallback}");
    format!("{}\n{}\n", plain(&first), plain(what))
}

/// The exit code of `bootgate status`, as `check`'s: 0 healthy, 1 degraded, 2 unhealthy
/// or a failed gate (and a status this version does not know: fail closed).
pub fn exit_code(v: &VerdictRecord) -> i32 {
    match (v.gate, v.status.known()) {
        (GateState::Failed, _) => crate::exit::UNHEALTHY,
        (_, Some(Health::Healthy)) => crate::exit::OK,
        (_, Some(Health::Degraded)) => crate::exit::DEGRADED,
        _ => crate::exit::UNHEALTHY,
    }
}

/// The verdict, with the gate's time and the mark.
fn first(v: &VerdictRecord) -> String {
    let n = v.checks.len();
    let not_passing = v.checks.iter().filter(|c| !passed(c)).count();
    let what = match (v.gate, v.status.known()) {
        (GateState::Failed, _) => {
            let critical = v.checks.iter().filter(|c| c.critical).count();
            format!("gate failed — {} of {critical} critical checks failing", v.failing.len())
        }
        (_, Some(Health::Healthy)) if n == 1 => "boot healthy — the check passed".to_string(),
        (_, Some(Health::Healthy)) => format!("boot healthy — all {n} checks passed"),
        (_, Some(health)) => format!("boot {} — gate passed, {not_passing} of {n} checks not passing", health.as_str()),
        (_, None) => format!("gate {} — status unknown", v.gate.as_str()),
    };
    let mut details = Vec::new();
    if let Some(ms) = v.gate_duration_ms {
        details.push(format!("gate {}", readable(Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default())));
    }
    match &v.mark {
        Some(m) if m.done => details.push("marked good".into()),
        Some(_) => details.push("NOT marked good".into()),
        None => {}
    }
    match details.is_empty() {
        true => format!("bootgate: {what}"),
        false => format!("bootgate: {what} ({})", details.join(", ")),
    }
}

/// What is not passing; else a failed mark, the fallback this boot is and whether it
/// was made permanent, and when.
fn second(v: &VerdictRecord) -> String {
    let fell_back = v.fallback.as_ref().map(|f| cut(&f.text(), MESSAGE_CUT * 2));
    let not_passing: Vec<&CheckRecord> = v.checks.iter().filter(|c| !passed(c)).collect();
    if !not_passing.is_empty() {
        let all_failing = not_passing.iter().all(|c| c.result.known() == Some(Status::Fail));
        let word = if all_failing { "failing" } else { "not passing" };
        let mut named: Vec<String> = not_passing.iter().take(NAMED).map(|c| check(c)).collect();
        if not_passing.len() > NAMED {
            named.push(format!("and {} more", not_passing.len() - NAMED));
        }
        let failing = format!("{} {word}: {}", not_passing.len(), named.join(", "));
        return fell_back.map_or(failing.clone(), |f| format!("{failing}; {f}"));
    }
    let mut said: Vec<String> = fell_back.into_iter().collect();
    if let Some(m) = v.mark.as_ref().filter(|m| !m.done) {
        said.push(format!("marking failed: {}", cut(&m.note, MESSAGE_CUT * 2)));
    }
    if let Some(p) = &v.permanent {
        let command = p.command.as_deref().unwrap_or("no rollback");
        said.push(match p.done {
            true => format!("fallback made permanent by `{command}`"),
            false => format!("fallback NOT made permanent: {}", cut(&p.note, MESSAGE_CUT * 2)),
        });
    }
    if let Some(t) = v.timestamp {
        said.push(format!("decided {}", readable_time(t.0)));
    }
    said.push("details: bootgate history".into());
    said.join("; ")
}

/// A check's result counts as passing for these lines: pass only (a warn is named).
fn passed(c: &CheckRecord) -> bool {
    c.result.known() == Some(Status::Pass)
}

/// `name (message)`, or `name (warn: message)` for a result other than fail.
fn check(c: &CheckRecord) -> String {
    let result = c.result.known().map_or("unknown", Status::as_str);
    let message = cut(&c.message, MESSAGE_CUT);
    match (result, message.is_empty()) {
        ("fail", true) => c.name.clone(),
        ("fail", false) => format!("{} ({message})", c.name),
        (word, true) => format!("{} ({word})", c.name),
        (word, false) => format!("{} ({word}: {message})", c.name),
    }
}

/// `text` on one line, cut to `max` characters with `…`.
fn cut(text: &str, max: usize) -> String {
    crate::util::text::cut(&one_line(text), max)
}

/// A line with every control character (escape codes, bells) as a space, cut to [`LINE_CUT`].
fn plain(line: &str) -> String {
    crate::util::text::plain(line, LINE_CUT)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::engine::{CheckResult, Snapshot};
    use crate::record::boot::{Mark, Permanent};

    fn record(gate: GateState, checks: Vec<CheckResult>) -> VerdictRecord {
        let mut s = Snapshot::new(&[]);
        s.gate = gate;
        s.checks = checks;
        s.gate_duration = Some(Duration::from_millis(1234));
        let mut v = VerdictRecord::of(&s, "p.yaml", None, SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000));
        v.status = crate::record::Lenient::Known(s.verdict().health);
        v
    }

    #[test]
    fn a_fallback_boot_says_where_it_fell_back_from_before_the_rollback_that_kept_it() {
        let checks = vec![CheckResult::finished("api", true, Status::Pass)];
        let mut v = record(GateState::Passed, checks);
        v.fallback = Some(crate::record::boot::Fallback::sample());
        v.permanent = Some(Permanent { command: Some("bootc rollback".into()), done: true, note: String::new() });
        let second = two_lines(&v).lines().nth(1).unwrap().to_string();
        assert!(
            second.starts_with(
                "fell back from USR-B (4230.0.0): its gate failed (failing: api); \
                 fallback made permanent by `bootc rollback`; decided "
            ),
            "{second}"
        );
        // A failed fallback boot names its failing checks first, then the fallback.
        let mut v = record(GateState::Failed, vec![CheckResult::finished("disk", true, Status::Fail)]);
        v.failing = vec!["disk".into()];
        v.fallback = Some(crate::record::boot::Fallback::sample());
        let second = two_lines(&v).lines().nth(1).unwrap().to_string();
        assert!(second.starts_with("1 failing: disk") && second.contains("; fell back from USR-B"), "{second}");
    }

    #[test]
    fn a_healthy_boot_reads_in_two_plain_lines() {
        let checks = (0..6).map(|i| CheckResult::finished(&format!("c{i}"), true, Status::Pass)).collect();
        let mut v = record(GateState::Passed, checks);
        v.mark = Some(Mark { done: true, note: "marked".into() });
        assert_eq!(
            two_lines(&v),
            "bootgate: boot healthy — all 6 checks passed (gate 1.2 s, marked good)\n\
             decided 2026-11-30 00:53:20 UTC; details: bootgate history\n"
        );
        assert_eq!(exit_code(&v), 0);
        v.mark = Some(Mark { done: false, note: "cannot mark this boot good: read-only".into() });
        v.permanent = Some(Permanent { command: Some("bootc rollback".into()), done: true, note: String::new() });
        let text = two_lines(&v);
        assert!(
            text.starts_with("bootgate: boot healthy — all 6 checks passed (gate 1.2 s, NOT marked good)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "marking failed: cannot mark this boot good: read-only; fallback made permanent by `bootc rollback`"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_revert_says_what_is_left_and_why() {
        assert_eq!(
            reverted("USR-B", "api failing for 300s without a pass\x1b[0m", "USR-A"),
            "bootgate: boot reverted — USR-B is marked bad after its gate passed; rebooting to USR-A\n\
             api failing for 300s without a pass [0m\n"
        );
    }

    #[test]
    fn what_fails_is_named_with_its_message_and_no_escape_code_gets_through() {
        let checks = vec![
            CheckResult::finished("api", true, Status::Fail).with_message("connection \x1b[31mrefused\x1b[0m\nretry"),
            CheckResult::finished("disk", true, Status::Fail).with_message("3% free"),
            CheckResult::finished("tpm", true, Status::Pass),
        ];
        let v = record(GateState::Failed, checks);
        let text = two_lines(&v);
        assert_eq!(
            text,
            "bootgate: gate failed — 2 of 3 critical checks failing (gate 1.2 s)\n\
             2 failing: api (connection [31mrefused [0m retry), disk (3% free)\n"
        );
        assert!(!text.contains('\x1b'));
        assert_eq!(exit_code(&v), 2);
        let checks = vec![
            CheckResult::finished("root", true, Status::Pass),
            CheckResult::finished("docker", false, Status::Warn).with_message("slow"),
        ];
        let v = record(GateState::Passed, checks);
        assert_eq!(
            two_lines(&v),
            "bootgate: boot degraded — gate passed, 1 of 2 checks not passing (gate 1.2 s)\n1 not passing: docker (warn: slow)\n"
        );
        assert_eq!(exit_code(&v), 1);
    }
}
