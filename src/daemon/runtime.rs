//! The runtime loop after the gate, shared by `bootgate run` and `bootgate serve`: every
//! check on its own schedule (see [`super::schedule`]), runs on request
//! (`POST …/{check}/run`), SIGHUP reloads the policy and the endpoint's web config and
//! reschedules, and the watchdog and the
//! heartbeat are kept from this same loop, so a stuck scheduler stops them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::reload::{Reloader, reload_policy};
use super::schedule::{INTERVAL_ENV, MAX_INTERVAL, Schedule, env_interval};
use super::window::Window;
use crate::engine::{Board, CheckResult};
use crate::policy::Policy;
use crate::process::{Heartbeat, Notifier, Signals, release_free_memory};
use crate::render::status;
use crate::server::{Link, RunNow};
use crate::util::time::spelled;

/// Runs the checks on their schedules until SIGTERM or SIGINT, pinging the watchdog from this
/// same loop so a stuck scheduler stops the pings. SIGHUP re-reads the policy and reschedules,
/// and has the endpoint read its web config again. The rollback `window` (`run` only) sees
/// every result; `link` brings runs on request.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn runtime(
    mut policy: Arc<Policy>,
    board: &Board,
    notifier: Notifier,
    heartbeat: &Heartbeat,
    signals: &mut Signals,
    reload: &Reloader,
    mut window: Option<Window>,
    link: Option<Link>,
) {
    let (mut requests, link) = match link {
        Some(mut link) => (link.requests.take(), Some(link)),
        None => (None, None),
    };
    let env = env_interval(std::env::var(INTERVAL_ENV).ok().as_deref());
    if let Some(d) = env {
        tracing::info!("runtime interval {} from {INTERVAL_ENV} (checks with their own interval keep it)", spelled(d));
    }
    let since = Instant::now();
    let mut schedule = Schedule::new(&policy, board, env, None, since, None);
    let mut beat = tokio::time::interval(Heartbeat::PERIOD);
    let mut pings = notifier.pings();
    let mut last_status = String::new();
    let mut summary_stale = true;
    let mut last_trim = Instant::now();
    loop {
        let due = schedule.next_due().unwrap_or_else(|| Instant::now() + MAX_INTERVAL);
        tokio::select! {
            () = sleep_until(due) => schedule.start_due(),
            Some(joined) = schedule.runs.join_next() => {
                let (i, raw) = match joined {
                    Ok(done) => done,
                    // Only a panic gets here (aborted runs go with their set): a failed check, never a stuck one.
                    Err(e) => match schedule.ids.remove(&e.id()) {
                        Some(i) => (i, CheckResult::crashed(&schedule.slots[i].spec, &e)),
                        None => continue,
                    },
                };
                // Only a check whose status changed (or a new policy) can change the summary.
                if schedule.finish(i, raw, &policy, board, window.as_mut()) || summary_stale {
                    summary_stale = false;
                    let status = status::summary(&board.borrow());
                    if status != last_status {
                        tracing::info!(status = %status, "health changed: {status}");
                        notifier.status(&status);
                        last_status = status;
                    }
                }
                if last_trim.elapsed() >= Duration::from_secs(1) && schedule.idle() {
                    release_free_memory();
                    last_trim = Instant::now();
                }
            }
            Some(req) = next_request(&mut requests) => schedule.request(req),
            _ = signals.reload.requested() => {
                if let Some(new) = reload_policy(&policy, board, reload) {
                    // Runs of the old checks would not match the new list: drop them, run anew now.
                    schedule.runs.abort_all();
                    policy = new;
                    schedule = Schedule::new(&policy, board, env, Some(Instant::now()), since, Some(&schedule));
                    summary_stale = true;
                }
                // Renewed certificates count even when the policy itself did not load.
                if let Some(link) = &link {
                    link.reload_web_config(policy.web_config.clone());
                }
            }
            () = pings.due() => notifier.watchdog(),
            _ = beat.tick() => heartbeat.beat(),
            _ = signals.shutdown.requested() => break,
        }
    }
    schedule.runs.abort_all();
    tracing::info!("stopping");
}

/// The next run request; never, without a channel or once every sender is gone.
async fn next_request(requests: &mut Option<mpsc::Receiver<RunNow>>) -> Option<RunNow> {
    match requests {
        Some(rx) => match rx.recv().await {
            Some(req) => Some(req),
            None => {
                *requests = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}
