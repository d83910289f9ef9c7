//! `gate.json` kept current while the gate runs ([`crate::record::progress`]): what a
//! `bootgate wait` that times out shows. It follows the board, so the gate itself is not
//! touched, writes at most every [`GAP`] and only when something changed, and stops once
//! the gate decided (the verdict is then the answer).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use crate::engine::{Board, GateState};
use crate::record::progress::{self, GateProgress};

/// The shortest time between two writes: a gate of many retrying checks changes the
/// board many times a second, and nobody reads the file that often.
const GAP: Duration = Duration::from_millis(250);

/// Follows the gate on `board` into `run_dir/gate.json` until it decides; abort the task
/// to stop it sooner.
pub fn follow(board: &Board, run_dir: PathBuf, boot_id: Option<String>) -> JoinHandle<()> {
    let mut rx = board.subscribe();
    tokio::spawn(async move {
        let mut last: Option<GateProgress> = None;
        let mut said = false;
        loop {
            let now = {
                let s = rx.borrow_and_update();
                if s.gate != GateState::Running {
                    break;
                }
                GateProgress::of(&s, boot_id.clone(), SystemTime::now())
            };
            if !last.as_ref().is_some_and(|l| l.same_as(&now)) {
                // Only shown: a failed write is said once and never stops the gate.
                if let Err(e) = progress::write(&run_dir, &now)
                    && !said
                {
                    let dir = run_dir.display();
                    tracing::warn!(dir = %dir, error = %e, "cannot write {} in {dir}: {e}", progress::FILE);
                    said = true;
                }
                last = Some(now);
            }
            tokio::time::sleep(GAP).await;
            if rx.changed().await.is_err() {
                break;
            }
        }
    })
}
