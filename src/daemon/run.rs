//! `bootgate run`: the gate at boot, then the runtime loop (shared with `bootgate serve`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::boot::BootStatus;
use crate::boot::backend::{Backend, choose};
use crate::boot::decide::RebootDecision;
use crate::engine::{Board, CheckResult, GateState, Snapshot};
use crate::facts::{self, BootFacts};
use crate::gate::{run_gate, summary_status};
use crate::history::Decision;
use crate::lifecycle::{Heartbeat, Signals};
use crate::logging::GATE_VERDICT_ID;
use crate::notify::Notifier;
use crate::policy::{Loaded, OnFailure, Policy, PolicyError};
use crate::runtime::runtime;
use crate::server::Endpoint;
use crate::{exit, reaper, report, state};

/// Where the daemon keeps its files.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// Holds `verdict.json` (default `/run/bootgate`).
    pub run: PathBuf,
    /// Holds `history.jsonl` (default `/var/lib/bootgate`).
    pub state: PathBuf,
    /// Where `--textfile` writes the metrics after every round, if anywhere.
    pub textfile: Option<PathBuf>,
}

/// Re-reads the policy by the same lookup the daemon started with (on SIGHUP).
pub type Reloader = Box<dyn Fn() -> Result<Loaded, PolicyError> + Send + Sync>;

/// Runs the daemon and returns the process exit code.
pub async fn run(loaded: Loaded, reload: Reloader, dirs: Dirs) -> i32 {
    let notifier = Notifier::from_env();
    let Some(mut signals) = install_signals(notifier) else { return exit::SOFTWARE };
    // A boot is judged once: a restart in the same boot (Restart=, Upholds=) finds the verdict.
    let recorded = match state::this_boot(&dirs.run) {
        Ok(recorded) => recorded,
        Err(e) => {
            let text = format!("gate failed closed: {e}; remove the file to judge this boot again");
            tracing::error!("{text}");
            notifier.status(&text);
            return exit::UNHEALTHY;
        }
    };
    if let Some(rec) = recorded.as_ref().filter(|r| r.gate == GateState::Failed) {
        let status = format!("gate failed earlier in this boot (failing: {}); not run again", rec.failing().join(", "));
        tracing::error!(run_dir = %dirs.run.display(), "{status}");
        notifier.status(&status);
        return exit::UNHEALTHY;
    }
    let policy = Arc::new(loaded.policy);
    let first = match &recorded {
        Some(rec) => rec.snapshot(&policy.checks),
        None => Snapshot::new(&policy.checks),
    };
    let (board, _) = tokio::sync::watch::channel(Arc::new(first));
    let source = &loaded.source;
    tracing::info!(policy = %source, checks = policy.checks.len(), "boot gate starting: {} checks from {source}", policy.checks.len());

    let heartbeat = Heartbeat::new();
    // The endpoint binds in the background: it answers 503 while the gate runs, and a
    // port it cannot have never keeps the gate from judging.
    let Some((mut endpoint, boot)) = start_endpoint(&policy, &board, &heartbeat, &signals, notifier, &dirs).await
    else {
        return exit::SOFTWARE;
    };
    let backend = match choose(policy.backend, boot.status.as_ref(), policy.grubenv.as_deref()).await {
        Ok((backend, why)) => {
            tracing::info!(backend = backend.name(), "boot backend {}: {why}", backend.name());
            backend
        }
        Err(e) => {
            tracing::error!("{e}");
            notifier.status(&format!("gate failed closed: {e}"));
            return exit::CONFIG;
        }
    };

    let mut window = None;
    if let Some(rec) = &recorded {
        publish_backend(backend.as_ref(), &endpoint).await;
        window = crate::window::reopen(&policy, &rec.doc, &board, notifier, dirs.state.clone());
        let status = format!("{} (gate passed earlier in this boot; not run again)", summary_status(&board.borrow()));
        let path = rec.path.display();
        tracing::info!(verdict = %path, "gate passed earlier in this boot ({path}); resuming the runtime loop");
        notifier.ready(&status);
    } else {
        let gate = heartbeat.keep(run_gate(&policy, &board, notifier, true));
        // The backend's facts alongside the gate: the first call may have to start the
        // boot loader's service (D-Bus activation of RAUC takes seconds), which the
        // checks need not wait for.
        let (outcome, ()) = tokio::join!(signals.shutdown.until(gate), publish_backend(backend.as_ref(), &endpoint));
        let Some(snapshot) = outcome else {
            tracing::info!("stopped before the gate reached a verdict");
            endpoint.finish().await;
            return exit::OK;
        };
        let mut doc = report::verdict_json(&snapshot, &loaded.source);
        if snapshot.gate == GateState::Passed {
            // Opened before READY=1 and recorded with the verdict: update_engine marks the
            // slot right after READY=1, and a restart must find the window, not a good slot.
            window = crate::window::open(&policy, &boot, &board, notifier, dirs.state.clone());
            if let Some(w) = crate::window::verdict_json(&board) {
                doc["rollback"] = w;
            }
        }
        if let Err(e) = state::write_verdict(&dirs.run, &doc) {
            let dir = dirs.run.display();
            tracing::error!(dir = %dir, error = %e, "cannot write verdict.json in {dir}: {e}");
        }
        // The decision is made once, recorded, then acted on.
        let failure = match snapshot.gate {
            GateState::Passed => None,
            _ => Some(decide_failure(policy.gate.on_failure, &boot, backend.as_ref()).await),
        };
        let decision = failure.as_ref().map(|(_, d)| d.clone().map_or(Decision::StayPolicy, Decision::from));
        facts::record(&dirs.state, &doc, &boot, decision, &endpoint).await;
        print!("{}", report::table(&snapshot));

        let status = summary_status(&snapshot);
        if let Some((slots, reboot)) = failure {
            board.send_modify(|s| Arc::make_mut(s).gate_failing = s.critical_failures());
            let failing = report::failing(&snapshot).join(", ");
            tracing::error!(message_id = GATE_VERDICT_ID, gate = "failed", failing = %failing, "boot gate failed: {status} (failing: {failing})");
            notifier.status(&format!("{status} (failing: {failing})"));
            let failure = crate::boot::reboot::on_gate_failure(
                &slots,
                reboot,
                policy.gate.reboot_delay,
                &failing,
                snapshot.gate_reason.as_deref(),
                notifier,
            );
            // A stop request during the reboot delay ends the wait (signals no longer kill the process).
            signals.shutdown.until(heartbeat.keep(failure)).await;
            // No drain: the endpoint was never asked to stop, and exiting hands the port
            // to bootgate-report.service at once.
            drop(endpoint);
            return exit::UNHEALTHY;
        }
        tracing::info!(message_id = GATE_VERDICT_ID, gate = "passed", "boot gate passed: {status}");
        match backend.on_pass().await {
            Ok(done) => tracing::info!(backend = backend.name(), "{done}"),
            Err(e) => tracing::error!(backend = backend.name(), "{e}"),
        }
        publish_backend(backend.as_ref(), &endpoint).await;
        notifier.ready(&status);
    }
    let requests = endpoint.take_run_requests();
    runtime(policy, &board, notifier, &heartbeat, &mut signals, &reload, window, requests).await;
    endpoint.finish().await;
    exit::OK
}

/// What a failed gate does: `None` when the policy says stay, else the backend's
/// decision (it marks the boot bad where its loader needs that). The slots returned are
/// the GPT's, for the reboot message.
async fn decide_failure(
    on_failure: OnFailure,
    boot: &BootFacts,
    backend: &dyn Backend,
) -> (BootStatus, Option<RebootDecision>) {
    let slots = boot.status.clone().unwrap_or_default();
    if on_failure == OnFailure::Stay {
        return (slots, None);
    }
    (slots, Some(backend.on_failure().await))
}

/// Shows the backend's facts in the health document's `boot`, over the GPT slot's.
async fn publish_backend(backend: &dyn Backend, endpoint: &Endpoint) {
    let facts = backend.facts().await;
    endpoint.boot.send_modify(|boot| {
        let mut doc = match boot.as_deref() {
            Some(serde_json::Value::Object(doc)) => doc.clone(),
            _ => serde_json::Map::new(),
        };
        if let serde_json::Value::Object(extra) = facts {
            doc.extend(extra);
        }
        *boot = Some(Arc::new(serde_json::Value::Object(doc)));
    });
}

/// Installs the stop/reload handlers and the orphan sweep; `None` (already logged) when it cannot.
pub(crate) fn install_signals(notifier: Notifier) -> Option<Signals> {
    reaper::become_subreaper();
    reaper::watch();
    match Signals::install() {
        Ok(signals) => Some(signals),
        Err(e) => {
            let text = format!("cannot install the SIGTERM/SIGINT/SIGHUP handlers: {e}");
            tracing::error!("{text}");
            notifier.status(&text);
            None
        }
    }
}

/// Hands memory freed since the last round back to the kernel. A burst of requests
/// leaves glibc's per-thread arenas at their high-water mark; on a small device that
/// memory belongs to the workloads, not to the health gate.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap under its locks; no pointers are passed.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Starts the endpoint over `board` and publishes the boot facts (see [`facts`]); `None`
/// (logged) when the metrics cannot be set up.
pub(crate) async fn start_endpoint(
    policy: &Policy,
    board: &Board,
    heartbeat: &Heartbeat,
    signals: &Signals,
    notifier: Notifier,
    dirs: &Dirs,
) -> Option<(Endpoint, BootFacts)> {
    let started = Endpoint::start(
        policy.listen,
        board.subscribe(),
        heartbeat.clone(),
        signals.shutdown.clone(),
        notifier,
        policy.allow_run,
    );
    match started {
        Ok(endpoint) => {
            let (boot, boots) = facts::gather(&dirs.state).await;
            facts::publish(&boot, boots, &endpoint, notifier);
            if let Some(path) = &dirs.textfile {
                crate::textfile::start(path.clone(), &endpoint, board);
            }
            Some((endpoint, boot))
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cannot set up the metrics");
            None
        }
    }
}

/// Re-reads the policy; on success moves the board to its checks (keeping the results of
/// checks it still has, by name and kind) and returns it. An invalid policy keeps the old one.
pub(crate) fn reload_policy(current: &Policy, board: &Board, reload: &Reloader) -> Option<Arc<Policy>> {
    let loaded = match reload() {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!(error = %e, "policy reload failed; keeping the policy in force: {e}");
            return None;
        }
    };
    let new = loaded.policy;
    if new.allow_run != current.allow_run {
        tracing::warn!(
            "server.allow_run changed to {}; the endpoint keeps {} until bootgate restarts",
            new.allow_run,
            current.allow_run
        );
    }
    if new.listen != current.listen {
        tracing::warn!(
            from = %current.listen,
            to = %new.listen,
            "server.listen changed from {} to {}; the endpoint keeps its address until bootgate restarts",
            current.listen,
            new.listen
        );
    }
    board.send_modify(|s| {
        let s = Arc::make_mut(s);
        let old = std::mem::take(&mut s.checks);
        s.checks = new
            .checks
            .iter()
            .map(|spec| match old.iter().find(|c| c.name == spec.name && c.kind == spec.kind) {
                Some(c) => CheckResult { critical: spec.critical, ..c.clone() },
                None => CheckResult::pending(spec),
            })
            .collect();
    });
    let source = &loaded.source;
    tracing::info!(policy = %source, checks = new.checks.len(), "policy reloaded: {} checks from {source}", new.checks.len());
    Some(Arc::new(new))
}
