//! `bootgate check`: every check once (with the gate's retries), the verdict printed for a
//! person or a script, and on a terminal a progress line of what it still waits for.

use std::io::{IsTerminal as _, Write as _};
use std::time::SystemTime;

use super::Format;
use crate::boot::identity::boot_id;
use crate::daemon::gate::run_gate;
use crate::engine::{Health, Snapshot};
use crate::exit;
use crate::policy;
use crate::process::{Notifier, reaper};
use crate::record::verdict::VerdictRecord;
use crate::render::table;

/// `bootgate check`: every check once, with the gate's retries; the verdict as a table or JSON.
pub(super) async fn check(loaded: policy::Loaded, format: Format) -> i32 {
    let (board, _) = tokio::sync::watch::channel(std::sync::Arc::new(Snapshot::new(&loaded.policy.checks)));
    let notifier = Notifier::from_env();
    reaper::become_subreaper();
    reaper::watch();
    // Progress only for a person watching: a pipe or a log file gets the verdict alone.
    let progress = std::io::stderr().is_terminal().then(|| {
        let of: Vec<u32> = loaded.policy.checks.iter().map(|c| c.retries.saturating_add(1)).collect();
        tokio::spawn(show_progress(board.subscribe(), of))
    });
    let snapshot = run_gate(&loaded.policy, &board, notifier, false, None).await;
    if let Some(task) = progress {
        task.abort();
        let _ = task.await;
        let mut err = std::io::stderr();
        let _ = write!(err, "{}", erase_line(width()));
        let _ = err.flush();
    }
    // Whatever a check detached from itself is reparented here: it must not outlive the verdict.
    reaper::finish(std::time::Duration::from_secs(1));
    match format {
        Format::Text => print!("{}", table::checks(&snapshot)),
        // Rendered first: stdout is line-buffered, streamed JSON would cost a write per line.
        Format::Json => {
            let record = VerdictRecord::of(&snapshot, &loaded.source, boot_id(), SystemTime::now());
            let mut doc = record.to_bytes();
            doc.push(b'\n');
            let _ = std::io::stdout().write_all(&doc);
        }
    }
    match snapshot.verdict().health {
        Health::Healthy => exit::OK,
        Health::Degraded => exit::DEGRADED,
        Health::Unhealthy => exit::UNHEALTHY,
    }
}

/// Erases the terminal line the cursor is on (ECMA-48 EL 2).
const ERASE_LINE: &str = "\x1b[2K";

/// What blanks the progress line and leaves the cursor at column 0: EL 2, or under
/// `NO_COLOR` (no escape code at all) as many spaces as a progress line can be wide.
fn erase_line(width: usize) -> String {
    if crate::process::logging::escapes_allowed() {
        format!("\r{ERASE_LINE}")
    } else {
        format!("\r{}\r", " ".repeat(width.saturating_sub(1)))
    }
}

/// The terminal's width as the shell tells it, else 80.
fn width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(80)
}

/// Redraws one progress line on stderr four times a second until aborted.
async fn show_progress(board: tokio::sync::watch::Receiver<std::sync::Arc<Snapshot>>, of: Vec<u32>) {
    let width = width();
    let erase = erase_line(width);
    let mut every = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        every.tick().await;
        let line = progress_line(&board.borrow(), &of, std::time::SystemTime::now(), width);
        let mut err = std::io::stderr();
        // Back to column 0 after drawing: a log line (warnings reach stderr too)
        // then writes over the progress line instead of being glued to its end.
        let _ = write!(err, "{erase}{line}\r");
        let _ = err.flush();
    }
}

/// What the gate still waits for, in one line of at most `width - 1` characters:
/// `checking: 1/3 done; net attempt 2/7 failed, next in 1.5s; tpm attempt 1/1 running`.
fn progress_line(s: &Snapshot, of: &[u32], now: std::time::SystemTime, width: usize) -> String {
    let pending: Vec<String> = s
        .checks
        .iter()
        .zip(of.iter().copied().chain(std::iter::repeat(1)))
        .filter(|(c, _)| c.status == crate::checks::Status::Pending)
        .map(|(c, of)| match (c.attempts, c.timing.next_attempt) {
            (0, _) => format!("{} waiting", c.name),
            (n, Some(at)) => {
                let left = at.duration_since(now).unwrap_or_default().as_secs_f64();
                format!("{} attempt {n}/{of} failed, next in {left:.1}s", c.name)
            }
            (n, None) => format!("{} attempt {n}/{of} running", c.name),
        })
        .collect();
    let done = s.checks.len() - pending.len();
    let line = format!("checking: {done}/{} done; {}", s.checks.len(), pending.join("; "));
    let max = width.saturating_sub(1).max(10);
    if line.chars().count() <= max {
        line
    } else {
        let mut cut: String = line.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::checks::Status;
    use crate::engine::{CheckResult, GateState, Timing};

    fn result(name: &str, status: Status, attempts: u32, next: Option<SystemTime>) -> CheckResult {
        CheckResult {
            timing: Timing { next_attempt: next, ..Timing::default() },
            ..CheckResult::finished(name, true, status).with_attempts(attempts, Duration::ZERO)
        }
    }

    #[test]
    fn progress_names_each_pending_check_its_attempt_and_next_retry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let s = Snapshot {
            gate: GateState::Running,
            checks: vec![
                result("root", Status::Pass, 1, None),
                result("net", Status::Pending, 2, Some(now + Duration::from_millis(1500))),
                result("tpm", Status::Pending, 1, None),
                result("apps", Status::Pending, 0, None),
            ],
            gate_started: now,
            gate_duration: None,
            gate_failing: Vec::new(),
            ..Snapshot::new(&[])
        };
        let line = progress_line(&s, &[1, 7, 1, 3], now, 200);
        assert_eq!(
            line,
            "checking: 1/4 done; net attempt 2/7 failed, next in 1.5s; tpm attempt 1/1 running; apps waiting"
        );
        let narrow = progress_line(&s, &[1, 7, 1, 3], now, 30);
        assert_eq!(narrow.chars().count(), 29, "{narrow}");
        assert!(narrow.ends_with('…'), "{narrow}");
        assert!(!line.contains('\n') && !line.contains('\r'));
    }
}
