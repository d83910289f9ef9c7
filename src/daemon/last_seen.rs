//! Keeps `last-seen.json` current while an image runs: every check's latest result, at
//! most once per runtime interval (never more often than [`FLOOR`]) and only after
//! something changed, plus at once after the gate and before a reboot asked for by
//! bootgate. When the checks failing change, this boot's history line gets the new summary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::boot::identity::boot_id;
use crate::engine::{Board, Snapshot};
use crate::record::history::{PastBoot, SeenSummary};
use crate::record::last_seen::{self, Image, ImageSeen};

/// The shortest time between two writes, whatever the interval: a device's storage is worn by writes.
pub const FLOOR: Duration = Duration::from_secs(10);

/// Writes what `snapshot` shows for `image`, off the async threads; the failing checks'
/// summary it wrote, or `None` (said) when it could not.
pub async fn write(state_dir: &Path, image: &Image, snapshot: &Snapshot) -> Option<SeenSummary> {
    let seen = ImageSeen::of(image.clone(), &boot_id().unwrap_or_default(), &snapshot.checks, SystemTime::now());
    let summary = SeenSummary::of(&seen);
    let dir = state_dir.to_path_buf();
    match tokio::task::spawn_blocking(move || last_seen::write(&dir, seen)).await {
        Ok(Ok(())) => Some(summary),
        Ok(Err(e)) => {
            tracing::warn!(dir = %state_dir.display(), "cannot write {} in {}: {e}", last_seen::FILE, state_dir.display());
            None
        }
        Err(_) => None,
    }
}

/// Follows `board` and writes what this image saw, at most once per `every` (at least
/// [`FLOOR`]); puts the summary on this boot's history line when the failing checks
/// change, and publishes the history on `history`.
pub fn keep(
    board: &Board,
    state_dir: PathBuf,
    image: Image,
    every: Duration,
    history: watch::Sender<Arc<Vec<PastBoot>>>,
) -> tokio::task::JoinHandle<()> {
    let mut rx = board.subscribe();
    let every = every.max(FLOOR);
    tokio::spawn(async move {
        let mut failing: Option<Vec<String>> = None;
        loop {
            if rx.changed().await.is_err() {
                return;
            }
            let snapshot = rx.borrow_and_update().clone();
            let Some(summary) = write(&state_dir, &image, &snapshot).await else {
                tokio::time::sleep(every).await;
                continue;
            };
            if failing.as_ref() != Some(&summary.failing) {
                failing = Some(summary.failing.clone());
                amend(&state_dir, summary, &history).await;
            }
            tokio::time::sleep_until(Instant::now() + every).await;
        }
    })
}

/// Puts `summary` on this boot's history line and publishes the history.
async fn amend(state_dir: &Path, summary: SeenSummary, published: &watch::Sender<Arc<Vec<PastBoot>>>) {
    super::facts::amend_history_on(state_dir, published, move |line| line.seen = Some(summary)).await;
}
