//! `bootgate run`: the gate at boot, then the runtime loop.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::engine::{Board, CheckResult, GateState, Round, Snapshot, apply_thresholds, run_round};
use crate::gate::{log_result, run_gate, summary_status, tick};
use crate::notify::Notifier;
use crate::policy::{Loaded, Policy};
use crate::server::{Endpoint, Heartbeat, Shutdown};
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

    // Listening before the gate runs, so the endpoint answers 503 while it does.
    let endpoint = match Endpoint::start(policy.listen, board.subscribe()).await {
        Ok(endpoint) => endpoint,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cannot start the health endpoint");
            notifier.status(&format!("{e:#}"));
            return exit::SOFTWARE;
        }
    };
    publish_boot_facts(&endpoint).await;
    let gate = endpoint.heartbeat.keep(run_gate(&policy, &board, notifier, true));
    let Some(snapshot) = endpoint.shutdown.until(gate).await else {
        tracing::info!("stopped before the gate reached a verdict");
        endpoint.finish().await;
        return exit::OK;
    };
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
        let failure =
            crate::boot::reboot::on_gate_failure(policy.gate.on_failure, policy.gate.reboot_delay, &failing, notifier);
        // A stop request during the reboot delay ends the wait (signals no longer kill the process).
        endpoint.shutdown.until(endpoint.heartbeat.keep(failure)).await;
        return exit::UNHEALTHY;
    }
    tracing::info!(status = %status, "boot gate passed");
    notifier.ready(&status);
    runtime(policy, board, notifier, endpoint.heartbeat.clone(), endpoint.shutdown.clone()).await;
    endpoint.finish().await;
    exit::OK
}

/// Hands memory freed since the last round back to the kernel. A burst of requests
/// leaves glibc's per-thread arenas at their high-water mark; on a small device that
/// memory belongs to the workloads, not to the health gate.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap under its locks; no pointers are passed.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Reads the booted slot's GPT attributes for the health document and metrics. Bounded:
/// a disk that does not answer must not hold up the gate.
async fn publish_boot_facts(endpoint: &Endpoint) {
    let detect = tokio::task::spawn_blocking(crate::boot::detect);
    match tokio::time::timeout(std::time::Duration::from_secs(2), detect).await {
        Ok(Ok(status)) => {
            match &status.note {
                Some(note) => tracing::info!(%note, "boot partition"),
                None => tracing::info!(booted = ?status.booted, disk = ?status.disk, "boot partition"),
            }
            let _ = endpoint.boot.send(status.health_json().map(Arc::new));
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the boot partition"),
        Err(_) => tracing::warn!("reading the boot partition table took over 2s; going on without it"),
    }
}

/// Re-checks every interval until SIGTERM or SIGINT, pinging the watchdog from
/// this same loop so a stuck scheduler stops the pings.
async fn runtime(policy: Arc<Policy>, board: Board, notifier: Notifier, heartbeat: Heartbeat, shutdown: Shutdown) {
    let mut beat = tokio::time::interval(Heartbeat::PERIOD);
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
                        crate::metrics::observe(&new);
                        *prev = apply_thresholds(prev, new, &policy.runtime);
                    }
                });
                let status = summary_status(&board.borrow());
                if status != last_status {
                    tracing::info!(status = %status, "health changed");
                    notifier.status(&status);
                    last_status = status;
                }
                release_free_memory();
            }
            _ = tick(&mut ping) => notifier.watchdog(),
            _ = beat.tick() => heartbeat.beat(),
            _ = shutdown.requested() => break,
        }
    }
    tracing::info!("stopping");
}
