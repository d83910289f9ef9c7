//! `bootgate wait`: blocks until this boot's verdict, soak included, is decided, for the
//! hooks of update clients (Mender's `ArtifactCommit_Enter`, a snap's health hook).
//!
//! It reads the run dir exactly as `run`, `serve` and `status` do: `run` writes
//! `verdict.json` once, when the gate and its soak are over, so the file's presence with
//! this boot's id is the decision. A verdict of an earlier boot (another boot id, a run
//! dir kept across boots) is not this boot's; a missing run dir or verdict means the
//! gate is running or has not started, and the wait goes on. A verdict file that cannot
//! be used fails closed (exit 2), as `run` fails this boot closed on the same file. When
//! the timeout comes, the line says what the gate was doing, from the `gate.json` that
//! `run` keeps beside the verdict while the gate runs.
//!
//! The file is looked at every [`POLL`], and read again only when it changed (`run`
//! replaces it atomically, so a new inode or time is a new verdict): a stat a quarter of a
//! second costs nothing, works on any file system, and needs no watch set up before the
//! run dir exists.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::boot::identity::boot_id;
use crate::engine::GateState;
use crate::exit;
use crate::record::progress;
use crate::record::verdict::{self, Seen};
use crate::render::wait::{Undecided, decided, still_running, unusable};

/// How often the verdict file is looked at.
const POLL: Duration = Duration::from_millis(250);

/// Parses `--timeout`: a duration as a policy spells one (`90s`, `5m`), a number of
/// seconds, or `infinity` (also the default: wait as long as the gate takes).
pub(super) fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "infinity" {
        return Ok(Duration::MAX);
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration such as 30s, 5m or infinity: {e}"))
}

/// Waits for this boot's verdict in `run_dir` for at most `timeout` (`Duration::MAX`:
/// without end); prints one line and returns 0 passed, 2 failed, 75 still undecided.
pub(super) fn wait(run_dir: &Path, timeout: Duration) -> i32 {
    let boot = boot_id();
    let deadline = Instant::now().checked_add(timeout);
    let file = run_dir.join(verdict::FILE);
    // The file as last read, when it was not this boot's verdict.
    let mut last: Option<Identity> = None;
    let mut undecided = Undecided::NoRunDir;
    loop {
        let now = identity(&file);
        if now.is_none() || now != last {
            match verdict::seen(run_dir, boot.as_deref()) {
                Ok(Seen::ThisBoot(rec)) => {
                    println!("{}", decided(&rec.record));
                    return match rec.gate() {
                        GateState::Passed => exit::OK,
                        _ => exit::UNHEALTHY,
                    };
                }
                Ok(Seen::OtherBoot(theirs)) => undecided = Undecided::OtherBoot(theirs),
                Ok(Seen::Nothing) if run_dir.is_dir() => undecided = Undecided::NoVerdict,
                Ok(Seen::Nothing) => undecided = Undecided::NoRunDir,
                Err(e) => {
                    println!("{}", unusable(&e));
                    return exit::UNHEALTHY;
                }
            }
            last = now;
        }
        let left = match deadline {
            Some(end) => end.saturating_duration_since(Instant::now()),
            None => POLL,
        };
        if left.is_zero() {
            let gate = progress::this_boot(run_dir, boot.as_deref());
            println!("{}", still_running(timeout, run_dir, &undecided, gate.as_ref(), SystemTime::now()));
            return exit::TEMP_FAIL;
        }
        std::thread::sleep(left.min(POLL));
    }
}

/// What tells one version of the file from another: `run` replaces it by a rename.
type Identity = (u64, u64, i64, i64, i64, u64);

fn identity(file: &Path) -> Option<Identity> {
    let m = std::fs::metadata(file).ok()?;
    Some((m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.ctime_nsec(), m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_a_duration_seconds_or_infinity() {
        assert_eq!(parse_timeout("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_timeout("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_timeout("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("0"), Ok(Duration::ZERO));
        assert_eq!(parse_timeout("infinity"), Ok(Duration::MAX));
        for bad in ["", "-1s", "soon", "5 parsecs"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_run_dir_no_verdict_and_an_earlier_boots_verdict_all_wait() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        assert_eq!(wait(&run, Duration::ZERO), exit::TEMP_FAIL);
        std::fs::create_dir(&run).unwrap();
        assert_eq!(wait(&run, Duration::from_millis(300)), exit::TEMP_FAIL);
        std::fs::write(run.join(verdict::FILE), r#"{"boot_id": "not-this-boot", "gate": "failed", "failing": ["a"]}"#)
            .unwrap();
        assert_eq!(wait(&run, Duration::ZERO), exit::TEMP_FAIL);
        std::fs::write(run.join(verdict::FILE), r#"{"gate": "passed", "status": "healthy"}"#).unwrap();
        assert_eq!(wait(&run, Duration::ZERO), exit::OK);
        std::fs::write(run.join(verdict::FILE), r#"{"gate": "pass"#).unwrap();
        assert_eq!(wait(&run, Duration::ZERO), exit::UNHEALTHY);
    }
}
