//! What systemd's `STATUS=` says about the checks, in words: while the gate runs, while
//! it soaks, and after it decided. The gate's own word comes from [`GateWord`].

use std::time::SystemTime;

use crate::checks::Status;
use crate::engine::{ComponentHealth, GateWord, Snapshot};
use crate::util::text::one_line;
use crate::util::time::{spelled, spelled_secs_up};

/// STATUS while the gate runs: what it still waits for, and why a retrying check
/// failed. `attempts` holds each check's attempt and how many it may have.
pub fn running(s: &Snapshot, attempts: &[(u32, u32)]) -> String {
    let waiting: Vec<String> = s
        .checks
        .iter()
        .zip(attempts)
        .filter(|(c, _)| c.status == Status::Pending)
        .map(|(c, &(attempt, of))| match (c.timing.next_attempt, attempt) {
            (Some(_), _) => format!("{} ({})", c.name, one_line(&c.message)),
            (None, n) if n > 1 => format!("{} (attempt {n}/{of})", c.name),
            _ => c.name.clone(),
        })
        .collect();
    let done = s.checks.len() - waiting.len();
    let mut text = format!("gate running: {done}/{} checks done", s.checks.len());
    if !waiting.is_empty() {
        text.push_str("; waiting for ");
        text.push_str(&listed(waiting));
    }
    text
}

/// Names or phrases listed in a STATUS: the first [`LISTED`], then how many more, so one
/// STATUS stays readable (and within what systemd accepts) with a thousand checks.
fn listed(items: Vec<String>) -> String {
    let more = items.len().saturating_sub(LISTED);
    let mut text = items.into_iter().take(LISTED).collect::<Vec<_>>().join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// Items a STATUS lists before `and N more`.
const LISTED: usize = 10;

/// STATUS after the gate or a runtime round, e.g. `gate passed, now degraded: 3/3 critical, docker degraded`.
pub fn summary(s: &Snapshot) -> String {
    let critical = s.checks.iter().filter(|c| c.critical).count();
    let critical_ok = s.checks.iter().filter(|c| c.critical && !c.blocks()).count();
    let problems: Vec<String> = s
        .checks
        .iter()
        .filter_map(|c| {
            let word = match (c.health(), c.status) {
                (ComponentHealth::Healthy, _) => return None,
                (ComponentHealth::Unhealthy, Status::Skipped) => "skipped",
                (ComponentHealth::Unhealthy, _) => "failed",
                (ComponentHealth::Pending, _) => "pending",
                (ComponentHealth::Degraded, Status::Warn) => "warning",
                (ComponentHealth::Degraded, _) => "degraded",
            };
            let blame = match (c.blame, c.accepted) {
                (_, true) => " (preexisting, accepted)".to_string(),
                (Some(blame), false) if !c.status.passed() => format!(" ({})", blame.as_str()),
                _ => String::new(),
            };
            Some(format!("{} {word}{blame}", c.name))
        })
        .collect();
    let word = s.gate_word();
    let head = match word {
        GateWord::Passed => format!("gate {word}, now {}", s.verdict().health.as_str()),
        _ => format!("gate {word}"),
    };
    let mut text = format!("{head}: {critical_ok}/{critical} critical");
    if !problems.is_empty() {
        text.push_str(", ");
        text.push_str(&listed(problems));
    }
    text
}

/// STATUS during the soak, e.g. `soaking: 40s of 1m left; api failed 1 in a row`.
pub fn soaking(s: &Snapshot, now: SystemTime) -> String {
    let Some(soak) = &s.soak else { return String::new() };
    let mut text = format!("soaking: {} of {} left", spelled_secs_up(soak.remaining(now)), spelled(soak.total));
    let wobbling: Vec<String> = s
        .checks
        .iter()
        .filter(|c| c.critical && c.consecutive_failures > 0)
        .map(|c| format!("{} failed {} in a row", c.name, c.consecutive_failures))
        .collect();
    if !wobbling.is_empty() {
        text.push_str("; ");
        text.push_str(&listed(wobbling));
    }
    text
}

/// Where this boot stands in greenboot's countdown. greenboot's set-counter writes
/// `boot_counter=N` (`GREENBOOT_MAX_BOOT_ATTEMPTS`) before an update's reboot and leaves
/// `boot_success=1` from the last good boot, so GRUB counts down only from the update's
/// second boot: the first sees N, a boot that fails at 0 is the update's last, and -1 is
/// the fallback. What is said is therefore how many more boots the update gets, which
/// the counter alone tells exactly. `None` without a counter (no update is being tried).
pub fn greenboot_attempt(boot_counter: Option<i64>, max: u32) -> Option<String> {
    let k = boot_counter?;
    let n = i64::from(max);
    Some(match k {
        -1 => "greenboot fallback boot: the update's boot attempts are used up (boot_counter -1)".to_string(),
        0 => format!(
            "greenboot: the update's last boot attempt (boot_counter 0, GREENBOOT_MAX_BOOT_ATTEMPTS {n}): if it fails, GRUB falls back"
        ),
        k if (1..=n).contains(&k) => format!(
            "greenboot: if this boot fails, GRUB tries the update {k} more time{} before it falls back (boot_counter {k}, GREENBOOT_MAX_BOOT_ATTEMPTS {n})",
            if k == 1 { "" } else { "s" }
        ),
        k => format!("boot_counter {k} does not fit GREENBOOT_MAX_BOOT_ATTEMPTS {n}: set by another tool or setting"),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::{CheckResult, GateState, Soak};

    fn result(name: &str, critical: bool, status: Status) -> CheckResult {
        CheckResult { attempts: 0, ..CheckResult::finished(name, critical, status) }
    }

    fn snapshot(gate: GateState, checks: Vec<CheckResult>) -> Snapshot {
        Snapshot { gate, checks, ..Snapshot::new(&[]) }
    }

    #[test]
    fn summary_words_follow_component_health() {
        let s = snapshot(
            GateState::Passed,
            vec![
                result("a", true, Status::Pass),
                result("b", true, Status::Warn),
                result("c", false, Status::Fail),
                result("d", true, Status::Pending),
            ],
        );
        assert_eq!(summary(&s), "gate passed, now unhealthy: 2/3 critical, b warning, c degraded, d pending");
        let mut s =
            snapshot(GateState::Failed, vec![result("e", true, Status::Fail), result("f", true, Status::Skipped)]);
        assert_eq!(summary(&s), "gate failed: 0/2 critical, e failed, f skipped");
        s.gate_reason = Some("failed during soak".into());
        assert_eq!(summary(&s), "gate failed during soak: 0/2 critical, e failed, f skipped");
    }

    #[test]
    fn a_long_list_names_the_first_and_counts_the_rest() {
        let s = snapshot(GateState::Passed, (0..120).map(|i| result(&format!("c{i}"), false, Status::Fail)).collect());
        let text = summary(&s);
        assert!(text.ends_with("c8 degraded, c9 degraded and 110 more"), "{text}");
        assert!(text.len() < 300, "{text}");
        let running = running(&snapshot(GateState::Running, vec![result("a", true, Status::Pass)]), &[(1, 1)]);
        assert_eq!(running, "gate running: 1/1 checks done", "nothing left to wait for says nothing");
    }

    #[test]
    fn soak_status_says_what_is_left_and_what_wobbles() {
        let now = SystemTime::now();
        let mut s = Snapshot::new(&[]);
        let failed = |name: &str, critical: bool, n: u32| CheckResult {
            consecutive_failures: n,
            ..CheckResult::finished(name, critical, Status::Fail)
        };
        s.checks = vec![failed("api", true, 1), failed("docker", false, 2)];
        s.soak = Some(Soak { total: Duration::from_secs(60), ends: now + Duration::from_millis(39_500) });
        assert_eq!(soaking(&s, now), "soaking: 40s of 1m left; api failed 1 in a row");
    }

    #[test]
    fn greenboot_attempts_say_how_many_boots_the_update_has_left() {
        let said = |k| greenboot_attempt(k, 3);
        assert_eq!(said(None), None);
        // The update's first boot: set-counter wrote 3 and GRUB did not count (boot_success=1).
        assert_eq!(
            said(Some(3)).unwrap(),
            "greenboot: if this boot fails, GRUB tries the update 3 more times before it falls back \
             (boot_counter 3, GREENBOOT_MAX_BOOT_ATTEMPTS 3)"
        );
        assert!(said(Some(1)).unwrap().contains("1 more time before"));
        assert!(said(Some(0)).unwrap().contains("last boot attempt"));
        assert!(said(Some(-1)).unwrap().contains("fallback boot"));
        assert!(said(Some(4)).unwrap().contains("does not fit"));
    }
}
