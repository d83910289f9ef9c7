//! The retry of an update after a fallback the environment caused
//! (`rollback.retry_after_environment`), run by `bootgate serve` on the fallback boot
//! whose own gate failed the same checks: once every check the left image failed has
//! passed here for `delay`, the backend makes the left slot boot once more and bootgate
//! reboots into it, at most `max` times per version. Each step is logged, shown in
//! `boot.fallback.retry` and recorded on this boot's history line; the decisions are
//! [`crate::boot::decide::judge::retry`]'s.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use super::facts::{ThisBoot, amend_history_on, show_on};
use super::judge::image;
use super::last_seen;
use crate::boot::backend::choose;
use crate::boot::decide::judge::{RetryStep, retries_of, retry};
use crate::boot::reboot;
use crate::engine::Board;
use crate::policy::Policy;
use crate::process::Notifier;
use crate::process::logging::BOOT_FALLBACK_ID;
use crate::record::boot::{BootFacts, Fallback, RetryFacts};
use crate::record::history::PastBoot;
use crate::util::time::{spelled, spelled_secs_up, timestamp};

/// How often the checks on the board are looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What the retry works with.
pub struct Retrying {
    pub policy: Arc<Policy>,
    pub board: Board,
    pub boot: ThisBoot,
    pub state_dir: std::path::PathBuf,
    pub facts: watch::Sender<Option<Arc<BootFacts>>>,
    pub history: watch::Sender<Arc<Vec<PastBoot>>>,
    pub notifier: Notifier,
}

/// Watches for the retry this boot's fallback may earn, and makes it; returns when there
/// is none to make (off, not the environment's fault, used up) or once the reboot is asked for.
pub async fn watch(r: Retrying) {
    let (Some(rule), Some(fallback)) = (r.policy.rollback.retry, r.boot.fallback.clone()) else { return };
    let version = fallback.from_version.clone().unwrap_or_default();
    // The history `serve` read at start and published.
    let tried = retries_of(&r.history.borrow(), &version);
    let names: Vec<String> = fallback.failing.iter().map(|f| f.name.clone()).collect();
    let named = names.join(", ");
    let shown = if version.is_empty() { fallback.from_partition.clone() } else { version.clone() };
    let mut since: Option<Instant> = None;
    let mut said: Option<bool> = None;
    let mut look = tokio::time::interval(LOOK_EVERY);
    loop {
        look.tick().await;
        let snapshot = r.board.borrow().clone();
        let passing = names.iter().all(|n| snapshot.checks.iter().any(|c| &c.name == n && c.status.passed()));
        since = if passing { since.or(Some(Instant::now())) } else { None };
        let step = retry(Some(rule), &fallback, tried, since.map(|t| t.elapsed()));
        match step {
            RetryStep::Off | RetryStep::NotEnvironment => return,
            RetryStep::Exhausted { tried } => {
                let text = format!(
                    "not retrying the update to {shown}: it was retried {} already, the most \
                     rollback.retry_after_environment.max allows",
                    crate::util::text::counted(tried as usize, "time")
                );
                tracing::warn!(version = %version, "{text}");
                publish(&r, &fallback, RetryFacts { attempt: tried, max: rule.max, at: now(), text, done: false });
                return;
            }
            RetryStep::Waiting { left } => {
                if said != Some(passing) {
                    said = Some(passing);
                    let text = if passing {
                        format!(
                            "{named} pass(es) here again; retrying the update to {shown} in {} if they keep passing",
                            spelled_secs_up(left)
                        )
                    } else {
                        format!(
                            "waiting for {named} to pass here for {} before retrying the update to {shown}",
                            spelled(rule.delay)
                        )
                    };
                    tracing::info!(version = %version, "{text}");
                    publish(
                        &r,
                        &fallback,
                        RetryFacts { attempt: tried + 1, max: rule.max, at: now(), text, done: false },
                    );
                }
            }
            RetryStep::Now { attempt } => {
                rearm_and_reboot(&r, &fallback, attempt, rule.max, &shown, &named).await;
                return;
            }
        }
    }
}

/// Records what this image saw (the checks pass here now), re-arms the left slot through
/// the backend, records the retry and asks for the reboot; a failure is said and recorded.
async fn rearm_and_reboot(r: &Retrying, fallback: &Fallback, attempt: u32, max: u32, shown: &str, named: &str) {
    let snapshot = r.board.borrow().clone();
    last_seen::write(&r.state_dir, &image(&r.boot), &snapshot).await;
    let armed = match choose(r.policy.backend, r.boot.status.as_ref(), &r.policy.boot).await {
        Ok((backend, _)) => backend.rearm(&fallback.from_uuid).await,
        Err(e) => Err(e),
    };
    let (text, done) = match armed {
        Ok(what) => (
            format!(
                "retry {attempt} of {max} of the update to {shown}: {named} passed here for {}, so the environment \
                 failed them; {what}; rebooting into it",
                spelled(r.policy.rollback.retry.map_or(Duration::ZERO, |x| x.delay))
            ),
            true,
        ),
        Err(e) => (format!("cannot retry the update to {shown}: {e} — it stays on this image"), false),
    };
    let facts = RetryFacts { attempt, max, at: now(), text: text.clone(), done };
    publish(r, fallback, facts.clone());
    amend(r, facts).await;
    if !done {
        tracing::error!(message_id = BOOT_FALLBACK_ID, "{text}");
        return;
    }
    tracing::warn!(message_id = BOOT_FALLBACK_ID, attempt, max, "{text}");
    reboot::reboot_after(r.policy.gate.reboot_delay, &text, r.notifier).await;
}

fn now() -> String {
    timestamp(SystemTime::now())
}

/// Shows the retry on the boot facts' fallback.
fn publish(r: &Retrying, fallback: &Fallback, retry: RetryFacts) {
    let mut shown = fallback.clone();
    shown.retry = Some(retry);
    show_on(&r.facts, move |facts| facts.fallback = Some(shown));
}

/// Puts the retry on this boot's history line (so it is counted against its version) and
/// publishes the history.
async fn amend(r: &Retrying, retry: RetryFacts) {
    amend_history_on(&r.state_dir, &r.history, move |line| line.retry = Some(retry)).await;
}
