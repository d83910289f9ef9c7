//! `bootgate serve`: keeps a boot whose gate is already decided observable.
//!
//! Run by `bootgate-report.service` after `bootgate run` ended failed, it serves the same
//! endpoint on the same address from this boot's `verdict.json`: the health document
//! answers 503 naming the checks that failed the gate, `/readyz` fails and `/metrics`
//! has `bootgate_gate_passed 0`. It re-runs the checks on their runtime schedule, so an
//! operator sees whether the problem persists, but it never runs a gate, never tells
//! systemd anything (nothing in the update path waits for it) and never rewrites the
//! recorded verdict. On a fallback the environment caused, it is what retries the update
//! once the checks pass again (`rollback.retry_after_environment`, [`super::retry`]).

use std::sync::Arc;

use super::facts::learn_fallback;
use super::reload::Reloader;
use super::retry::{self, Retrying};
use super::runtime::runtime;
use super::start::{Dirs, install_signals, learn_boot, start_endpoint};
use super::{judge, last_seen};
use crate::boot::identity::boot_id;
use crate::engine::GateState;
use crate::exit;
use crate::policy::Loaded;
use crate::process::{Heartbeat, Notifier};
use crate::record::verdict;

/// Serves this boot's recorded verdict until SIGTERM; returns the process exit code.
pub async fn serve(loaded: Loaded, reload: Reloader, dirs: Dirs) -> i32 {
    let notifier = Notifier::silent();
    let recorded = match verdict::this_boot(&dirs.run, boot_id().as_deref()) {
        Ok(Some(recorded)) => recorded,
        Ok(None) => {
            eprintln!(
                "bootgate serve: no verdict for this boot in {}: serve only reports a gate that `bootgate run` \
                 already decided, and never runs one of its own",
                dirs.run.join(verdict::FILE).display()
            );
            return exit::NO_INPUT;
        }
        Err(e) => {
            eprintln!("bootgate serve: {e}");
            return exit::NO_INPUT;
        }
    };
    let Some(mut signals) = install_signals(notifier) else { return exit::SOFTWARE };
    let policy = Arc::new(loaded.policy);
    let (board, _) = tokio::sync::watch::channel(Arc::new(recorded.snapshot(&policy.checks)));
    let failing = recorded.failing().join(", ");
    match recorded.gate() {
        GateState::Failed => {
            tracing::warn!(verdict = %recorded.path.display(), failing = %failing, "reporting the failed gate of this boot (failing: {failing})")
        }
        _ => tracing::info!(verdict = %recorded.path.display(), "reporting the passed gate of this boot"),
    }
    let heartbeat = Heartbeat::new();
    let Some(mut endpoint) = start_endpoint(&policy, &board, &heartbeat, &signals, notifier) else {
        return exit::SOFTWARE;
    };
    let mut boot = learn_boot(&endpoint, &board, &dirs).await;
    boot.fallback = learn_fallback(&dirs.state, &boot, &endpoint, notifier).await;
    judge::recorded_verdict(&mut boot, recorded.record.fallback.as_ref(), &endpoint);
    let every = policy.runtime.interval;
    let seen = last_seen::keep(&board, dirs.state.clone(), judge::image(&boot), every, endpoint.history.clone());
    let held = judge::follow_hold(&dirs.run, endpoint.boot.clone());
    let retrying = tokio::spawn(retry::watch(Retrying {
        policy: Arc::clone(&policy),
        board: board.clone(),
        boot: boot.clone(),
        state_dir: dirs.state.clone(),
        facts: endpoint.boot.clone(),
        history: endpoint.history.clone(),
        notifier,
    }));
    let link = endpoint.take_link();
    runtime(policy, &board, notifier, &heartbeat, &mut signals, &reload, None, link).await;
    for task in [seen, held, retrying] {
        task.abort();
    }
    endpoint.finish().await;
    exit::OK
}
