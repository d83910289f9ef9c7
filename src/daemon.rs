//! `bootgate run`: the gate at boot, then the runtime loop.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::engine::{Board, CheckResult, GateState, Round, Snapshot, apply_thresholds, run_round};
use crate::gate::{log_result, run_gate, summary_status, tick};
use crate::notify::Notifier;
use crate::policy::{Loaded, Policy};
use crate::{exit, report};

/// Where the daemon keeps its files.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// Holds `verdict.json` (default `/run/bootgate`).
    pub run: PathBuf,
    /// Holds `history.jsonl` (default `/var/lib/bootgate`).
    pub state: PathBuf,
}

/// Runs the daemon and returns the process exit code.
pub async fn run(loaded: Loaded, dirs: Dirs) -> i32 {
    let notifier = Notifier::from_env();
    if let Some(failing) = report::failed_earlier_this_boot(&dirs.run) {
        let status = format!("gate failed earlier in this boot (failing: {}); not run again", failing.join(", "));
        tracing::error!(run_dir = %dirs.run.display(), "{status}");
        notifier.status(&status);
        return exit::UNHEALTHY;
    }
    let policy = Arc::new(loaded.policy);
    let (board, _) = tokio::sync::watch::channel(Arc::new(Snapshot::new(&policy.checks)));
    tracing::info!(policy = %loaded.source, checks = policy.checks.len(), "boot gate starting");

    let snapshot = run_gate(&policy, &board, notifier, true).await;
    let doc = report::verdict_json(&snapshot, &loaded.source);
    if let Err(e) = report::write_verdict(&dirs.run, &doc) {
        tracing::error!(dir = %dirs.run.display(), error = %e, "cannot write verdict.json");
    }
    if let Err(e) = report::record_history(&dirs.state, &doc) {
        tracing::warn!(dir = %dirs.state.display(), error = %e, "cannot record boot history");
    }
    print!("{}", report::table(&snapshot));

    let status = summary_status(&snapshot);
    if snapshot.gate != GateState::Passed {
        let failing = report::failing(&snapshot).join(", ");
        tracing::error!(failing = %failing, "boot gate failed");
        notifier.status(&format!("{status} (failing: {failing})"));
        crate::boot::reboot::on_gate_failure(policy.gate.on_failure, policy.gate.reboot_delay, &failing, notifier)
            .await;
        return exit::UNHEALTHY;
    }
    tracing::info!(status = %status, "boot gate passed");
    notifier.ready(&status);
    runtime(policy, board, notifier).await;
    exit::OK
}

/// Re-checks every interval until SIGTERM or SIGINT, pinging the watchdog from
/// this same loop so a stuck scheduler stops the pings.
async fn runtime(policy: Arc<Policy>, board: Board, notifier: Notifier) {
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return;
        }
    };
    let interval = policy.runtime.interval;
    let mut every = tokio::time::interval_at(Instant::now() + interval, interval);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ping = notifier.watchdog_period().map(tokio::time::interval);
    let mut current: Option<JoinHandle<Vec<CheckResult>>> = None;
    let mut last_status = String::new();
    loop {
        tokio::select! {
            _ = every.tick() => {
                if current.is_none() {
                    let specs = policy.checks.clone();
                    let round = Round { deadline: Instant::now() + interval, retries: false };
                    current = Some(tokio::spawn(async move { run_round(&specs, round, None).await }));
                }
            }
            joined = async { current.as_mut().expect("guarded by the if").await }, if current.is_some() => {
                current = None;
                let Ok(raw) = joined else { continue };
                board.send_modify(|s| {
                    let s = Arc::make_mut(s);
                    for (prev, new) in s.checks.iter_mut().zip(raw) {
                        log_result(&new);
                        *prev = apply_thresholds(prev, new, &policy.runtime);
                    }
                });
                let status = summary_status(&board.borrow());
                if status != last_status {
                    tracing::info!(status = %status, "health changed");
                    notifier.status(&status);
                    last_status = status;
                }
            }
            _ = tick(&mut ping) => notifier.watchdog(),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping");
}
