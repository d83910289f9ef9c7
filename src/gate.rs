//! The boot gate as the daemon runs it: one round with retries inside the deadline,
//! keeping the live snapshot and systemd's STATUS current while it runs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};

use crate::checks::Status;
use crate::engine::{Board, CheckResult, Event, GateState, Round, Snapshot, run_round};
use crate::notify::Notifier;
use crate::policy::Policy;

/// Runs the gate and publishes every step on `board`; returns the final snapshot.
pub async fn run_gate(policy: &Policy, board: &Board, notifier: Notifier, settle: bool) -> Arc<Snapshot> {
    let started_wall = SystemTime::now();
    if settle && !policy.gate.settle.is_zero() {
        notifier.status(&format!("settling for {}", humantime::format_duration(policy.gate.settle)));
        sleep(policy.gate.settle).await;
    }
    let started = Instant::now();
    let deadline = Round::deadline_after(started, policy.gate.deadline);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let round = run_round(&policy.checks, Round { deadline, retries: true }, Some(tx));
    tokio::pin!(round);
    let mut attempts: Vec<(u32, u32)> = vec![(0, 0); policy.checks.len()];
    let mut ping = notifier.watchdog_period().map(tokio::time::interval);
    let results = loop {
        tokio::select! {
            results = &mut round => break results,
            Some(event) = rx.recv() => {
                match event {
                    Event::Attempt { index, attempt, of } => attempts[index] = (attempt, of),
                    Event::Retry { index, attempt, backoff, message } => {
                        let name = &policy.checks[index].name;
                        let retry_in = humantime::format_duration(backoff);
                        tracing::info!(check = %name, attempt, retry_in_ms = backoff.as_millis() as u64, %message, "{name}: attempt {attempt} failed, retrying in {retry_in}: {message}");
                        // The gate ends by its own deadline; keep systemd from ending it sooner.
                        notifier.extend_start(deadline.saturating_duration_since(Instant::now()).saturating_add(Duration::from_secs(30)));
                    }
                    Event::Done { index, result } => {
                        log_result(&result);
                        crate::metrics::observe(&result);
                        board.send_modify(|s| Arc::make_mut(s).checks[index] = result);
                    }
                }
                notifier.status(&running_status(&board.borrow(), &attempts));
            }
            _ = tick(&mut ping) => notifier.watchdog(),
        }
    };
    // The round can finish while its last results still wait in the channel: they
    // get their log line and metrics too (the board takes them from `results`).
    while let Ok(event) = rx.try_recv() {
        if let Event::Done { result, .. } = event {
            log_result(&result);
            crate::metrics::observe(&result);
        }
    }
    board.send_modify(|s| {
        let s = Arc::make_mut(s);
        s.checks = results;
        s.gate_started = started_wall;
        s.gate_duration = Some(started.elapsed());
        s.gate = match s.verdict().gate {
            GateState::Passed => GateState::Passed,
            _ => GateState::Failed,
        };
    });
    board.borrow().clone()
}

/// Waits for the next watchdog tick, or forever when there is no watchdog.
pub async fn tick(ping: &mut Option<tokio::time::Interval>) {
    match ping {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// One structured event per check result.
pub fn log_result(r: &CheckResult) {
    // Two decimals: a log line is read by people, and 0.6985480000000001 helps nobody.
    let duration_ms = (r.duration.as_secs_f64() * 100_000.0).round() / 100.0;
    let (check, result, attempt, detail) = (r.name.as_str(), r.status.as_str(), r.attempts, r.message.as_str());
    let text = format!("{check}: {result} in {duration_ms} ms (attempt {attempt}): {detail}");
    match r.status {
        Status::Pass => tracing::info!(check, result, duration_ms, attempt, "{text}"),
        _ => tracing::warn!(check, result, duration_ms, attempt, "{text}"),
    }
}

/// STATUS while the gate runs: what it still waits for, in words.
fn running_status(s: &Snapshot, attempts: &[(u32, u32)]) -> String {
    let waiting: Vec<String> = s
        .checks
        .iter()
        .zip(attempts)
        .filter(|(c, _)| c.status == Status::Pending)
        .map(|(c, &(n, of))| if n > 1 { format!("{} (attempt {n}/{of})", c.name) } else { c.name.clone() })
        .collect();
    let done = s.checks.len() - waiting.len();
    format!("gate running: {done}/{} checks done; waiting for {}", s.checks.len(), waiting.join(", "))
}

/// STATUS after the gate or a runtime round, e.g. `gate passed: 3/3 critical, docker degraded`.
pub fn summary_status(s: &Snapshot) -> String {
    let critical = s.checks.iter().filter(|c| c.critical).count();
    let critical_ok = s.checks.iter().filter(|c| c.critical && c.status.passed()).count();
    let problems: Vec<String> = s
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| match (c.critical, c.status) {
            (true, st) if !st.passed() => {
                format!("{} {}", c.name, if st == Status::Skipped { "skipped" } else { "failed" })
            }
            (_, Status::Warn) => format!("{} warning", c.name),
            _ => format!("{} degraded", c.name),
        })
        .collect();
    let head = match s.gate {
        GateState::Running => "gate running".to_string(),
        GateState::Passed => format!("gate passed, now {}", s.verdict().health.as_str()),
        GateState::Failed => "gate failed".to_string(),
    };
    let mut text = format!("{head}: {critical_ok}/{critical} critical");
    if !problems.is_empty() {
        text.push_str(", ");
        text.push_str(&problems.join(", "));
    }
    text
}
