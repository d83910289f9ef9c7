//! The rollback window as `bootgate run` keeps it: opened at READY=1, fed by every
//! runtime round, and — when a critical check stays failing for `failing_for` inside
//! it — the revert: mark the slot bad, record why, reboot (see [`crate::rollback`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::engine::{Board, CheckResult};
use crate::facts::BootFacts;
use crate::history::{self, Decision};
use crate::notify::Notifier;
use crate::policy::Policy;
use crate::rollback::{self, Watch};

/// The window of this boot and what the revert needs.
pub struct Window {
    watch: Watch,
    reboot_delay: Duration,
    state_dir: PathBuf,
    notifier: Notifier,
    revert: Option<JoinHandle<()>>,
}

/// Opens the window at READY=1 when the policy has one and this boot can be reverted;
/// either way the board shows it (`armed`, or why not).
pub fn open(
    policy: &Policy,
    boot: &BootFacts,
    board: &Board,
    notifier: Notifier,
    state_dir: PathBuf,
) -> Option<Window> {
    if policy.rollback.window.is_zero() {
        return None;
    }
    let (armed, note) = match rollback::arm(boot.status.as_ref()) {
        Ok(()) => {
            let (w, f) = (policy.rollback.window, policy.rollback.failing_for);
            let (w, f) = (humantime::format_duration(w), humantime::format_duration(f));
            (true, format!("armed for {w}: a critical check failing for {f} without a pass reverts this update"))
        }
        Err(why) => (false, why.to_string()),
    };
    tracing::info!(armed, "rollback window: {note}");
    Window::start(policy, Watch::open(policy.rollback), armed, note, board, notifier, state_dir)
}

/// The verdict file's `rollback`, so a restart in the same boot re-opens the same window.
pub fn verdict_json(board: &Board) -> Option<Value> {
    let s = board.borrow();
    let w = s.rollback.as_ref()?;
    Some(json!({"window_ends": crate::report::timestamp(w.ends), "armed": w.armed}))
}

/// Re-opens the window a passed gate recorded earlier in this boot, if still armed and open.
pub fn reopen(
    policy: &Policy,
    recorded: &Value,
    board: &Board,
    notifier: Notifier,
    state_dir: PathBuf,
) -> Option<Window> {
    let w = &recorded["rollback"];
    let ends = w["window_ends"].as_str().and_then(|t| humantime::parse_rfc3339(t).ok())?;
    let left = ends.duration_since(SystemTime::now()).ok().filter(|_| w["armed"] == true)?;
    if policy.rollback.window.is_zero() {
        return None;
    }
    let mut watch = Watch::open(policy.rollback);
    (watch.ends, watch.ends_wall) = (Instant::now() + left, ends);
    tracing::info!("rollback window re-opened after a restart: {}s left", left.as_secs());
    let note = "armed (re-opened after bootgate restarted in this boot)".to_string();
    Window::start(policy, watch, true, note, board, notifier, state_dir)
}

impl Window {
    /// Shows the window on the board; `Some` when it is armed.
    fn start(
        policy: &Policy,
        watch: Watch,
        armed: bool,
        note: String,
        board: &Board,
        notifier: Notifier,
        state_dir: PathBuf,
    ) -> Option<Window> {
        board.send_modify(|s| Arc::make_mut(s).rollback = Some(watch.shown(armed, note)));
        let reboot_delay = policy.gate.reboot_delay;
        armed.then(|| Window { watch, reboot_delay, state_dir, notifier, revert: None })
    }

    /// Takes one runtime round's raw results; starts the revert once a failure is sustained.
    pub fn observe(&mut self, raw: &[CheckResult], board: &Board) {
        if self.watch.done {
            return;
        }
        self.watch.observe(raw);
        if self.watch.sustained() {
            self.watch.done = true;
            let task =
                revert(self.watch.clone(), board.clone(), self.reboot_delay, self.state_dir.clone(), self.notifier);
            self.revert = Some(tokio::spawn(task));
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if let Some(task) = self.revert.take() {
            task.abort();
        }
    }
}

/// Reads the table anew, decides, and on a revert marks the slot bad, amends this
/// boot's history line, says so and reboots after `reboot_delay`.
async fn revert(watch: Watch, board: Board, delay: Duration, state_dir: PathBuf, notifier: Notifier) {
    let table = tokio::task::spawn_blocking(crate::boot::detect).await.unwrap_or_default();
    let decision = watch.decide(&table);
    let now = Instant::now();
    let show = |armed: bool, note: String| {
        board.send_modify(|s| Arc::make_mut(s).rollback = Some(watch.shown(armed, note)));
    };
    let (booted, fallback, failing) = match decision {
        rollback::Decision::Revert { booted, fallback, failing } => (booted, fallback, failing),
        rollback::Decision::NoFallback { failing } => {
            let text = format!(
                "not reverting: {} inside the rollback window, but no other slot is bootable and good",
                rollback::describe(&failing, now)
            );
            tracing::error!("{text}");
            show(false, text);
            return;
        }
        other => {
            tracing::info!(decision = ?other, "rollback window: nothing to revert");
            return;
        }
    };
    let what = rollback::describe(&failing, now);
    let disk = table.disk.clone().map(PathBuf::from);
    let marked = match &disk {
        Some(disk) => rollback::revert(disk, &booted, &fallback).await,
        None => Err("the boot disk is not known".into()),
    };
    if let Err(e) = marked {
        let text = format!("revert of {} failed: {e} — manual intervention needed ({what})", booted.label);
        tracing::error!("{text}");
        notifier.status(&text);
        show(false, text);
        return;
    }
    let after = tokio::task::spawn_blocking(crate::boot::detect).await.unwrap_or_default();
    if !rollback::falls_back(&after, &fallback) {
        tracing::warn!(
            "after the revert the boot loader would not pick {} as expected; rebooting anyway",
            fallback.label
        );
    }
    record(&state_dir, &failing, &what).await;
    let text = format!(
        "reverted {} after its gate: {what}; rebooting in {} to fall back to {}",
        booted.label,
        humantime::format_duration(delay),
        fallback.label
    );
    tracing::error!(message_id = crate::logging::GATE_VERDICT_ID, decision = "reverted", "{text}");
    notifier.status(&text);
    show(false, text);
    tokio::time::sleep(delay).await;
    if let Err(e) = crate::boot::reboot::request_reboot().await {
        let text =
            format!("reverted {}, but the reboot request failed: {e} — manual intervention needed", booted.label);
        tracing::error!("{text}");
        notifier.status(&text);
    }
}

/// Amends this boot's history line: `decision: reverted`, the failing checks and why.
async fn record(state_dir: &std::path::Path, failing: &[rollback::Failing], what: &str) {
    let boot_id = crate::state::boot_id().unwrap_or_default();
    let failing: Vec<history::Failing> =
        failing.iter().map(|f| history::Failing { name: f.name.clone(), message: f.message.clone() }).collect();
    let reason = format!("reverted: {what}");
    let dir = state_dir.to_path_buf();
    let amended = tokio::task::spawn_blocking(move || {
        history::amend(&dir, &boot_id, |b| {
            b.decision = Some(Decision::Reverted);
            b.failing = failing;
            b.reason = Some(reason);
        })
    })
    .await;
    match amended {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => tracing::warn!("this boot has no line in the history to record the revert on"),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot record the revert in the boot history: {e}"),
        Err(e) => tracing::warn!(error = %e, "recording the revert ended abnormally: {e}"),
    }
}
