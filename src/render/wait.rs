//! The one line `bootgate wait` prints: the decided verdict (`passed: …`, `failed: …`),
//! what it still waited for when its timeout came (`still running after 5s: …`), or why
//! the verdict file cannot be used. Plain text on one line: update clients log it, and a
//! check's name or message must not break their log.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::engine::{GateState, Health};
use crate::record::progress::{GateProgress, Phase};
use crate::record::verdict::{FILE, VerdictError, VerdictRecord};
use crate::util::text::one_line;
use crate::util::time::{readable, spelled, spelled_secs_up};

/// How many failing checks the line names before it counts the rest.
const NAMED: usize = 8;
/// The most of a mark's note the line quotes.
const MARK_CUT: usize = 120;
/// The longest line printed.
const LINE_CUT: usize = 400;

/// The line for this boot's decided verdict `v`.
pub fn decided(v: &VerdictRecord) -> String {
    let mut details = Vec::new();
    if let Some(ms) = v.gate_duration_ms {
        details.push(format!("gate {}", readable(Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default())));
    }
    if let Some(reason) = &v.reason {
        details.push(reason.clone());
    }
    match &v.mark {
        // What the backend did, in its own words: "marked good" would claim too much
        // where the mark is update_engine's, later, or where nothing marks boots.
        Some(m) if m.done => details.push(crate::util::text::cut(&one_line(&m.note), MARK_CUT)),
        Some(m) => details.push(format!("NOT marked good: {}", one_line(&m.note))),
        None => {}
    }
    let details = if details.is_empty() { String::new() } else { format!(" ({})", details.join(", ")) };
    let n = v.checks.len();
    let line = match v.gate {
        GateState::Failed => {
            let critical = v.checks.iter().filter(|c| c.critical).count();
            format!(
                "failed: {} of {critical} critical checks failing{details} (failing: {})",
                v.failing.len(),
                listed(&v.failing)
            )
        }
        _ => {
            let not_passing: Vec<String> = v
                .checks
                .iter()
                .filter(|c| c.result.known() != Some(crate::checks::Status::Pass))
                .map(|c| c.name.clone())
                .collect();
            match v.status.known() {
                Some(Health::Healthy) if n == 1 => format!("passed: boot healthy, the check passed{details}"),
                Some(Health::Healthy) => format!("passed: boot healthy, all {n} checks passed{details}"),
                Some(health) => format!(
                    "passed: boot {}, {} of {n} checks not passing: {}{details}",
                    health.as_str(),
                    not_passing.len(),
                    listed(&not_passing)
                ),
                None => format!("passed: boot status unknown to this version{details}"),
            }
        }
    };
    plain(&line)
}

/// What `run_dir` held for this boot when the wait ended undecided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecided {
    /// The run dir does not exist.
    NoRunDir,
    /// The run dir has no verdict file.
    NoVerdict,
    /// The verdict file is another boot's (its id).
    OtherBoot(String),
}

/// The line when `--timeout after` ran out before this boot's verdict came, with what
/// the gate was doing (`gate.json`) when this boot's `run` wrote that.
pub fn still_running(
    after: Duration,
    run_dir: &Path,
    what: &Undecided,
    gate: Option<&GateProgress>,
    now: SystemTime,
) -> String {
    let file = run_dir.join(FILE);
    let line = match (gate, what) {
        (Some(p), Undecided::OtherBoot(theirs)) => {
            format!("{}; {} is an earlier boot's verdict ({theirs}), not this one's", doing(p, now), file.display())
        }
        (Some(p), _) => format!("{} (no verdict yet in {})", doing(p, now), file.display()),
        (None, Undecided::NoRunDir) => format!(
            "no verdict for this boot yet: {} does not exist (bootgate run has not started in this boot, or the run dir is another one)",
            run_dir.display()
        ),
        (None, Undecided::NoVerdict) => format!(
            "no verdict for this boot yet in {} (the gate or its soak is still running, or bootgate run has not started in this boot)",
            file.display()
        ),
        (None, Undecided::OtherBoot(theirs)) => format!(
            "{} is the verdict of an earlier boot ({theirs}), not this one's (the gate or its soak is still running, or bootgate run has not started in this boot)",
            file.display()
        ),
    };
    plain(&format!("still running after {}: {line}", spelled(after)))
}

/// What the gate is doing, from its progress file.
fn doing(p: &GateProgress, now: SystemTime) -> String {
    let passed = format!("{} of {} critical checks passed", p.critical_passed, p.critical);
    let mut waiting = p.waiting_for.clone();
    if p.waiting_more > 0 {
        waiting.push(format!("{} more", p.waiting_more));
    }
    let waiting = if waiting.is_empty() { String::new() } else { format!("; waiting for {}", waiting.join(", ")) };
    match p.phase.known() {
        Some(Phase::Settling) => format!("gate settling before its {} critical checks run", p.critical),
        Some(Phase::Soaking) => {
            let left = p.soak_ends.map(|t| t.0.duration_since(now).unwrap_or_default()).unwrap_or_default();
            if left.is_zero() {
                // The soak's time is up, and its last round of checks is still running.
                format!("soaking, its last round finishing; {passed}{waiting}")
            } else {
                format!("soaking, {} left; {passed}{waiting}", spelled_secs_up(left))
            }
        }
        _ => format!("gate running, {passed}{waiting}"),
    }
}

/// The line for a verdict file that cannot be used: `run` fails this boot closed on it.
pub fn unusable(e: &VerdictError) -> String {
    plain(&format!(
        "failed: {e} (bootgate run fails this boot closed on it too; remove the file to judge this boot again)"
    ))
}

/// The first [`NAMED`] names, then how many more.
fn listed(names: &[String]) -> String {
    let mut text = names.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > NAMED {
        text.push_str(&format!(" and {} more", names.len() - NAMED));
    }
    text
}

/// A line with every control character as a space, cut to [`LINE_CUT`].
fn plain(line: &str) -> String {
    crate::util::text::plain(line, LINE_CUT)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::checks::Status;
    use crate::engine::{CheckResult, Snapshot};
    use crate::record::boot::Mark;

    fn record(gate: GateState, checks: Vec<CheckResult>) -> VerdictRecord {
        let mut s = Snapshot::new(&[]);
        s.gate = gate;
        s.checks = checks;
        s.gate_duration = Some(Duration::from_millis(3210));
        VerdictRecord::of(&s, "p.yaml", None, SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn a_passed_gate_says_how_healthy_the_boot_is_and_whether_it_was_marked() {
        let checks =
            vec![CheckResult::finished("root", true, Status::Pass), CheckResult::finished("api", true, Status::Pass)];
        let mut v = record(GateState::Passed, checks);
        v.mark = Some(Mark { done: true, note: "confirmed EFI Boot Guard config #1".into() });
        assert_eq!(
            decided(&v),
            "passed: boot healthy, all 2 checks passed (gate 3.2 s, confirmed EFI Boot Guard config #1)"
        );
        let checks = vec![
            CheckResult::finished("root", true, Status::Pass),
            CheckResult::finished("docker", false, Status::Warn),
        ];
        let mut v = record(GateState::Passed, checks);
        v.mark = Some(Mark { done: false, note: "bg_setenv:\nread-only".into() });
        assert_eq!(
            decided(&v),
            "passed: boot degraded, 1 of 2 checks not passing: docker (gate 3.2 s, NOT marked good: bg_setenv: read-only)"
        );
    }

    #[test]
    fn a_failed_gate_names_its_failing_checks_and_why_on_one_plain_line() {
        let checks = vec![
            CheckResult::finished("api\x1b[31m", true, Status::Fail),
            CheckResult::finished("disk", true, Status::Fail),
            CheckResult::finished("root", true, Status::Pass),
        ];
        let mut v = record(GateState::Failed, checks);
        v.reason = Some("failed during soak".into());
        assert_eq!(v.failing.len(), 2);
        let line = decided(&v);
        assert_eq!(
            line,
            "failed: 2 of 3 critical checks failing (gate 3.2 s, failed during soak) (failing: api [31m, disk)"
        );
        let many: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        assert_eq!(listed(&many), "c0, c1, c2, c3, c4, c5, c6, c7 and 12 more");
    }

    #[test]
    fn an_undecided_wait_says_what_it_found() {
        let dir = Path::new("/run/bootgate");
        let after = Duration::from_secs(1);
        let now = SystemTime::UNIX_EPOCH;
        assert!(
            still_running(after, dir, &Undecided::NoVerdict, None, now)
                .starts_with("still running after 1s: no verdict for this boot yet in /run/bootgate/verdict.json (")
        );
        assert!(still_running(after, dir, &Undecided::NoRunDir, None, now).contains("/run/bootgate does not exist"));
        let other = still_running(Duration::from_secs(90), dir, &Undecided::OtherBoot("b0".into()), None, now);
        assert!(other.starts_with(
            "still running after 1m 30s: /run/bootgate/verdict.json is the verdict of an earlier boot (b0)"
        ));
    }

    #[test]
    fn an_undecided_wait_says_what_the_gate_was_doing() {
        let dir = Path::new("/run/bootgate");
        let after = Duration::from_secs(5);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let mut s = Snapshot::new(&[]);
        s.checks = vec![
            CheckResult::finished("root", true, Status::Pass),
            CheckResult::finished("api", true, Status::Pending),
            CheckResult::finished("db", true, Status::Fail),
            CheckResult::finished("docker", false, Status::Pending),
        ];
        let settling = GateProgress::of(&s, None, now);
        assert_eq!(
            still_running(after, dir, &Undecided::NoRunDir, Some(&settling), now),
            "still running after 5s: gate settling before its 3 critical checks run (no verdict yet in /run/bootgate/verdict.json)"
        );
        s.gate_deadline = Some(now + Duration::from_secs(60));
        let running = GateProgress::of(&s, None, now);
        assert_eq!(
            still_running(after, dir, &Undecided::OtherBoot("b0".into()), Some(&running), now),
            "still running after 5s: gate running, 1 of 3 critical checks passed; waiting for api, db; \
             /run/bootgate/verdict.json is an earlier boot's verdict (b0), not this one's"
        );
        s.checks.truncate(1);
        s.soak =
            Some(crate::engine::Soak { total: Duration::from_secs(60), ends: now + Duration::from_millis(40_500) });
        let soaking = GateProgress::of(&s, None, now);
        assert_eq!(
            still_running(after, dir, &Undecided::NoVerdict, Some(&soaking), now),
            "still running after 5s: soaking, 41s left; 1 of 1 critical checks passed (no verdict yet in /run/bootgate/verdict.json)"
        );
        // Past its end, a soak still waits for the round of checks it started.
        let last_round = GateProgress::of(&s, None, now);
        assert_eq!(
            still_running(after, dir, &Undecided::NoVerdict, Some(&last_round), now + Duration::from_secs(50)),
            "still running after 5s: soaking, its last round finishing; 1 of 1 critical checks passed (no verdict yet in /run/bootgate/verdict.json)"
        );
    }
}
