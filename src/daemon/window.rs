//! The rollback window as `bootgate run` keeps it: opened at READY=1, fed by every
//! runtime round, and — when a critical check stays failing for `failing_for` inside
//! it — the revert: the backend marks this boot bad, the history records why, and the
//! machine reboots. The decisions are pure ([`crate::boot::decide::revert`]); the act is
//! the backend's ([`Backend::revert`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Level;

use super::start::Dirs;
use crate::boot::backend::{Backend, RevertError};
use crate::boot::decide::revert::{Decision, Since, Watch, describe, reopened_left};
use crate::boot::reboot::reboot_after;
use crate::engine::{Board, CheckResult, Failing};
use crate::policy::Policy;
use crate::process::Notifier;
use crate::process::logging::GATE_VERDICT_ID;
use crate::record::history::{self, Decision as Recorded};
use crate::record::verdict::WindowRecord;
use crate::util::time::{since_boot, spelled};

/// The window of this boot and what the revert needs.
pub struct Window {
    watch: Watch,
    backend: Arc<dyn Backend>,
    reboot_delay: Duration,
    /// Where the revert is recorded and said: the run, state and motd paths.
    dirs: Arc<Dirs>,
    notifier: Notifier,
    revert: Option<JoinHandle<()>>,
}

/// Opens the window at READY=1 when the policy has one and the backend can revert this
/// boot; either way the board shows it (`armed`, or why not).
pub fn open(
    policy: &Policy,
    backend: Arc<dyn Backend>,
    board: &Board,
    notifier: Notifier,
    dirs: Dirs,
) -> Option<Window> {
    if policy.rollback.window.is_zero() {
        return None;
    }
    let (armed, note) = match backend.revertible() {
        Ok(()) => {
            let (w, f) = (spelled(policy.rollback.window), spelled(policy.rollback.failing_for));
            (true, format!("armed for {w}: a critical check failing for {f} without a pass reverts this update"))
        }
        Err(why) => (false, why),
    };
    tracing::info!(armed, "rollback window: {note}");
    let watch = Watch::open(policy.rollback);
    Window::start(policy, watch, backend, armed, note, board, notifier, dirs)
}

/// What the verdict file records of the window, so a restart in the same boot re-opens
/// it: its end on the wall clock (for readers) and on the boot clock (which no one steps).
pub fn record(board: &Board, window: Option<&Window>) -> Option<WindowRecord> {
    let s = board.borrow();
    let w = s.rollback.as_ref()?;
    let left = window.map(|w| w.watch.ends.saturating_duration_since(Instant::now()));
    let ends_since_boot_ms = left.zip(since_boot()).and_then(|(left, now)| (now + left).as_millis().try_into().ok());
    Some(WindowRecord { armed: w.armed, ends_since_boot_ms, window_ends: w.ends })
}

/// Re-opens the window a passed gate recorded earlier in this boot, if still armed and open.
pub fn reopen(
    policy: &Policy,
    recorded: Option<&WindowRecord>,
    backend: Arc<dyn Backend>,
    board: &Board,
    notifier: Notifier,
    dirs: Dirs,
) -> Option<Window> {
    let recorded = recorded.filter(|w| w.armed)?;
    if policy.rollback.window.is_zero() {
        return None;
    }
    let left = reopened_left(recorded, SystemTime::now(), since_boot(), policy.rollback.window)?;
    let mut watch = Watch::open(policy.rollback);
    (watch.ends, watch.ends_wall) = (Instant::now() + left, SystemTime::now() + left);
    tracing::info!("rollback window re-opened after a restart: {}s left", left.as_secs());
    let note = "armed (re-opened after bootgate restarted in this boot)".to_string();
    Window::start(policy, watch, backend, true, note, board, notifier, dirs)
}

impl Window {
    /// Shows the window on the board; `Some` when it is armed.
    #[allow(clippy::too_many_arguments)]
    fn start(
        policy: &Policy,
        watch: Watch,
        backend: Arc<dyn Backend>,
        armed: bool,
        note: String,
        board: &Board,
        notifier: Notifier,
        dirs: Dirs,
    ) -> Option<Window> {
        board.send_modify(|s| Arc::make_mut(s).rollback = Some(watch.shown(armed, note)));
        let reboot_delay = policy.gate.reboot_delay;
        armed.then(|| Window { watch, backend, reboot_delay, dirs: Arc::new(dirs), notifier, revert: None })
    }

    /// Takes one runtime round's raw results; starts the revert once a failure is sustained.
    pub fn observe<'a, I>(&mut self, raw: I, board: &Board)
    where
        I: IntoIterator<Item = &'a CheckResult>,
        I::IntoIter: Clone,
    {
        if self.watch.done {
            return;
        }
        self.watch.observe(raw);
        if let Decision::Revert { failing } = self.watch.decide() {
            self.watch.done = true;
            let revert = Revert {
                watch: self.watch.clone(),
                backend: Arc::clone(&self.backend),
                board: board.clone(),
                delay: self.reboot_delay,
                dirs: Arc::clone(&self.dirs),
                notifier: self.notifier,
            };
            self.revert = Some(tokio::spawn(revert.run(failing)));
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

/// One revert in progress.
struct Revert {
    watch: Watch,
    backend: Arc<dyn Backend>,
    board: Board,
    delay: Duration,
    dirs: Arc<Dirs>,
    notifier: Notifier,
}

impl Revert {
    /// Marks the boot bad through the backend, amends this boot's history line, says so
    /// and reboots after the delay.
    async fn run(self, failing: Vec<Since>) {
        let what = describe(&failing, Instant::now());
        let show = |armed: bool, note: String| {
            self.board.send_modify(|s| Arc::make_mut(s).rollback = Some(self.watch.shown(armed, note)));
        };
        let reverted = match self.backend.revert().await {
            Ok(reverted) => reverted,
            Err(RevertError::NoFallback) => {
                let text =
                    format!("not reverting: {what} inside the rollback window, but no other slot is bootable and good");
                tracing::error!("{text}");
                show(false, text);
                return;
            }
            Err(e) => {
                let text = format!("{e} — manual intervention needed ({what})");
                self.notifier.say(Level::ERROR, &text);
                show(false, text);
                return;
            }
        };
        record_revert(&self.dirs.state, &failing, &what).await;
        let text = format!(
            "reverted {} after its gate: {what}; rebooting in {} to fall back to {}",
            reverted.booted,
            spelled(self.delay),
            reverted.fallback
        );
        super::motd::write_lines(
            &self.dirs.motd,
            &crate::render::motd::reverted(&reverted.booted, &what, &reverted.fallback),
        );
        tracing::error!(message_id = GATE_VERDICT_ID, decision = "reverted", "{text}");
        self.notifier.status(&text);
        show(false, text);
        reboot_after(self.delay, &format!("reverted {}", reverted.booted), self.notifier).await;
    }
}

/// Amends this boot's history line: `decision: reverted`, the failing checks and why.
async fn record_revert(state_dir: &std::path::Path, failing: &[Since], what: &str) {
    let boot_id = crate::boot::identity::boot_id().unwrap_or_default();
    let failing: Vec<Failing> = failing.iter().map(|f| f.check.clone()).collect();
    let reason = format!("reverted: {what}");
    let dir = state_dir.to_path_buf();
    let amended = tokio::task::spawn_blocking(move || {
        history::amend(&dir, &boot_id, |b| {
            b.decision = Some(Recorded::Reverted);
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
