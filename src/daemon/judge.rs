//! Judging the update against the image it replaces, as `run` does it: the blame of a
//! trial boot's failing checks (read beside the gate, applied when its round ends), the
//! second verdict of a fallback boot, and the hold on updates of a version that keeps
//! failing by its own fault. The decisions are [`crate::boot::decide::judge`]'s; here
//! they are read from and written to the boot's records and shown.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{oneshot, watch};

use super::facts::{ThisBoot, show, show_on};
use crate::boot::decide::judge::{self, Judged};
use crate::engine::{Blame, CheckResult, Snapshot};
use crate::policy::{Judge, Policy};
use crate::process::logging::BOOT_FALLBACK_ID;
use crate::record::boot::{BootFacts, FallbackBlame, Reason};
use crate::record::hold;
use crate::record::last_seen::{self, Image, ImageSeen};
use crate::server::Endpoint;

/// What this boot's image is, as `last-seen.json` tells images apart.
pub fn image(boot: &ThisBoot) -> Image {
    let slot = boot.slot();
    Image {
        slot: slot.as_ref().map(|s| s.label.clone()),
        slot_uuid: slot.map(|s| s.uuid),
        os_id: boot.os_id.clone(),
        os_version: boot.os_version.clone(),
    }
}

/// Whether this boot is the trial of a new image: its GPT slot is not marked successful
/// yet. A fallback lands on a marked slot, so it is never a trial; off GPT bootgate cannot
/// tell, and blames nothing (every failure then fails the gate, as under `absolute`).
pub fn trial(boot: &ThisBoot) -> bool {
    boot.status.as_ref().and_then(|s| s.booted_partition()).is_some_and(|p| !p.successful)
}

/// The blame a trial boot's gate applies once its round ends: whether this boot is a
/// trial, and the previous image's record, are learnt beside the round, so neither the
/// partition table nor a large file ever delays a check.
pub struct Judging {
    mode: Judge,
    /// This image and what the previous one saw; `None` when this boot is not a trial.
    trial: tokio::task::JoinHandle<Option<(Image, Option<ImageSeen>)>>,
}

impl Judging {
    /// Starts learning, once the boot facts come through `known`, whether this boot is a
    /// trial and, if so, what the previous image saw. Facts that never come judge nothing.
    pub fn once_known(policy: &Policy, known: oneshot::Receiver<ThisBoot>, state_dir: &Path) -> Judging {
        let dir = state_dir.to_path_buf();
        let learning = tokio::spawn(async move {
            let this = known.await.ok().filter(trial).as_ref().map(image)?;
            let seen = this.clone();
            let previous = tokio::task::spawn_blocking(move || last_seen::read_or_warn(&dir).previous(&seen).cloned());
            Some((this, previous.await.ok().flatten()))
        });
        Judging { mode: policy.gate.judge, trial: learning }
    }

    /// Blames each critical check that keeps the gate from passing, accepts what the
    /// judge accepts, and says each in the log.
    pub async fn apply(self, results: &mut [CheckResult]) {
        // Nothing keeps the gate from passing: nothing to blame, and no reason to wait for
        // the boot facts.
        if !results.iter().any(CheckResult::blocks) {
            self.trial.abort();
            return;
        }
        let Some((this, previous)) = self.trial.await.ok().flatten() else { return };
        let judged = judge::judge(self.mode, true, results, previous.as_ref(), SystemTime::now());
        let against = previous.as_ref().map_or("no record of the previous image".to_string(), |p| {
            format!("the previous image, {}, as it last saw them", p.image.text())
        });
        for Judged { index, blame, accepted } in judged {
            let c = &mut results[index];
            (c.blame, c.accepted) = (Some(blame), accepted);
            let name = &c.name;
            let what = match blame {
                Blame::Regression => "it passed on the previous image: the update broke it",
                Blame::Preexisting if accepted => {
                    "it was failing on the previous image too; gate.judge regression accepts it (degraded)"
                }
                Blame::Preexisting => {
                    "it was failing on the previous image too (gate.judge absolute: it still fails the gate)"
                }
                Blame::Unknown => "no recent record of it on the previous image",
            };
            tracing::warn!(check = %name, blame = blame.as_str(), accepted, "{name} blamed {}: {what} (judged against {against}, this image {})", blame.as_str(), this.text());
        }
    }
}

/// The second verdict of a fallback boot whose left image failed its gate or was
/// reverted: given once this boot's gate has run, put on `boot.fallback` (for the
/// verdict and the history line), the boot facts (health document, metrics, page) and
/// the journal.
pub fn second_verdict(boot: &mut ThisBoot, snapshot: &Snapshot, endpoint: &Endpoint) {
    let Some(f) = boot.fallback.as_mut().filter(|f| matches!(f.reason, Reason::GateFailed | Reason::Reverted)) else {
        return;
    };
    if f.blame.is_some() {
        return;
    }
    let failed: Vec<String> = f.failing.iter().map(|c| c.name.clone()).collect();
    let blame = judge::second_verdict(&failed, &snapshot.checks);
    f.blame = Some(blame);
    let shown = f.clone();
    crate::process::notify::set_boot_note(Some(f.text()));
    show(endpoint, move |facts| facts.fallback = Some(shown));
    let version = f.from_version.as_deref().unwrap_or("unknown version");
    let what = match blame {
        FallbackBlame::Image => "they pass here: the image failed by its own fault",
        FallbackBlame::Environment => "they fail here too: the environment failed them, not the image",
        FallbackBlame::Unknown => "none of them runs here, so there is nothing to compare",
    };
    tracing::warn!(
        message_id = BOOT_FALLBACK_ID,
        from_partition = %f.from_partition,
        from_version = version,
        blame = blame.as_str(),
        failing = %failed.join(", "),
        "second verdict on the fallback from {} ({version}): blame {}; {what} (failed there: {})",
        f.from_partition,
        blame.as_str(),
        failed.join(", ")
    );
}

/// Holds updates when the history says so (`rollback.hold_after`): writes the hold file
/// in the run dir (update agents condition on it) and shows the hold, or removes a stale
/// file. Run at every boot, after its history line and before READY=1.
pub async fn hold_updates(policy: &Policy, run_dir: &Path, state_dir: &Path, endpoint: &Endpoint) {
    let Some(rule) = policy.rollback.hold else { return };
    let (run, state) = (run_dir.to_path_buf(), state_dir.to_path_buf());
    // The history as this boot's line left it, published by `facts::record`.
    let boots = endpoint.history.borrow().clone();
    let decided = tokio::task::spawn_blocking(move || {
        let released = hold::released(&state);
        let held = judge::hold(&boots, rule, &|v| released.at(v), SystemTime::now());
        let wrote = match &held {
            Some(h) => hold::write(&run, h).map(|()| true),
            None => hold::remove(&run).map(|_| false),
        };
        (held, wrote)
    })
    .await;
    let Ok((held, wrote)) = decided else { return };
    if let Err(e) = wrote {
        tracing::error!(dir = %run_dir.display(), "cannot write or clear {} in {}: {e}", hold::FILE, run_dir.display());
    }
    if let Some(h) = &held {
        tracing::warn!(version = %h.version, until = %h.until, failures = h.failures, "{}", h.text);
        crate::process::notify::set_hold_note(Some(h.text.clone()));
    }
    show(endpoint, move |facts| facts.hold = held);
}

/// A restarted `run`, or `serve` after it, finds the fallback again without the second
/// verdict and the retry this boot recorded: they are taken from this boot's verdict.
pub fn recorded_verdict(boot: &mut ThisBoot, recorded: Option<&crate::record::boot::Fallback>, endpoint: &Endpoint) {
    let (Some(f), Some(rec)) = (boot.fallback.as_mut(), recorded) else { return };
    if f.from_partition != rec.from_partition || rec.blame.is_none() {
        return;
    }
    (f.blame, f.retry) = (rec.blame, rec.retry.clone());
    crate::process::notify::set_boot_note(Some(f.text()));
    let shown = f.clone();
    show(endpoint, move |facts| facts.fallback = Some(shown));
}

/// How often a running daemon looks whether its hold was lifted (`bootgate release`).
const HOLD_LOOK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Shows the hold the run dir's file says is in force (a restart, or `serve` after `run`,
/// finds it there), then follows the file: once it is gone the hold is shown lifted.
pub fn follow_hold(run_dir: &Path, facts: watch::Sender<Option<Arc<BootFacts>>>) -> tokio::task::JoinHandle<()> {
    let dir = run_dir.to_path_buf();
    tokio::spawn(async move {
        let mut shown: Option<crate::record::boot::HoldFacts> = None;
        loop {
            let read_dir = dir.clone();
            let now = tokio::task::spawn_blocking(move || hold::read(&read_dir).ok().flatten()).await.ok().flatten();
            if now != shown {
                match &now {
                    Some(h) => crate::process::notify::set_hold_note(Some(h.text.clone())),
                    None => {
                        if let Some(old) = &shown {
                            tracing::info!(version = %old.version, "the hold on updates of {} is lifted", old.version);
                        }
                        crate::process::notify::set_hold_note(None);
                    }
                }
                let held = now.clone();
                show_on(&facts, move |f| f.hold = held);
                shown = now;
            }
            tokio::time::sleep(HOLD_LOOK_EVERY).await;
        }
    })
}
