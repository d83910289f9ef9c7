//! greenboot's `green.d` and `red.d`: after the verdict, the scripts of the matching
//! directories run one after another in name order, directory by directory, as greenboot
//! runs them (a hook may rely on an earlier one, e.g. a notification after the motd).
//! Each is bounded by `greenboot.hook_timeout` and killed with its process group at the
//! limit; its output's tail is logged. A hook never changes the verdict.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use crate::checks::exec::{Exec, Keys};
use crate::checks::{Check, Found, Kind, RunCtx};
use crate::policy::checks_from::{entries_of, how_to_run};
use crate::policy::types::{NonEmpty, Str};

/// Which hooks: those of a passed gate or of a failed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hooks {
    Green,
    Red,
}

impl Hooks {
    fn word(self) -> &'static str {
        match self {
            Hooks::Green => "green",
            Hooks::Red => "red",
        }
    }
}

/// How one hook ended, for the log and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub path: PathBuf,
    pub ok: bool,
    pub message: String,
}

/// Runs the hooks of `dirs` in order; a missing directory is skipped quietly, as
/// greenboot ships them empty and a host may remove them.
pub async fn run(which: Hooks, dirs: &[PathBuf], timeout: Duration) -> Vec<Ran> {
    let mut ran = Vec::new();
    for dir in dirs {
        let files = match entries_of(dir) {
            Ok(files) => files,
            Err(_) if !dir.exists() => continue,
            Err(why) => {
                tracing::warn!(dir = %dir.display(), "{} hooks not run: {why}", which.word());
                continue;
            }
        };
        for file in files {
            let one = run_one(which, &dir.join(file), timeout).await;
            ran.push(one);
        }
    }
    ran
}

async fn run_one(which: Hooks, path: &Path, timeout: Duration) -> Ran {
    let word = which.word();
    let shown = path.display();
    let done = |ok, message: String| {
        if ok {
            tracing::info!(hook = %shown, "{word} hook {shown}: {message}");
        } else {
            tracing::warn!(hook = %shown, "{word} hook {shown} failed: {message}");
        }
        Ran { path: path.to_path_buf(), ok, message }
    };
    let argv = match how_to_run(path) {
        Ok(argv) => argv,
        Err(why) => return done(false, why),
    };
    let keys = Keys { command: NonEmpty(argv.into_iter().map(Str).collect()), warn_exit_codes: None };
    let exec = match Exec::build(keys) {
        Ok(exec) => exec,
        Err(e) => return done(false, e.message),
    };
    let ctx = RunCtx { deadline: Instant::now() + timeout, limit: timeout };
    // Dropping the attempt at the limit kills the hook's whole process group.
    match tokio::time::timeout(timeout, exec.run(&ctx)).await {
        Ok(out) => done(out.status == Found::Pass, out.message),
        Err(_) => done(false, format!("killed after {}", crate::util::time::spelled(timeout))),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn script(dir: &Path, name: &str, body: &str, mode: u32) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[tokio::test]
    async fn hooks_run_in_name_order_bounded_and_a_failure_does_not_stop_the_next() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let log = a.path().join("log");
        let append = |word: &str| format!("echo {word} >> {}", log.display());
        script(a.path(), "20_second.sh", &append("second"), 0o644);
        script(a.path(), "10_first", &format!("{}; exit 4", append("first")), 0o755);
        script(a.path(), "30_hangs.sh", "sleep 600", 0o644);
        script(a.path(), "40_notes", "", 0o644);
        script(b.path(), "00_other_dir.sh", &append("third"), 0o644);
        let dirs = [a.path().to_path_buf(), a.path().join("missing"), b.path().to_path_buf()];
        let started = std::time::Instant::now();
        let ran = run(Hooks::Green, &dirs, Duration::from_secs(2)).await;
        assert!(started.elapsed() < Duration::from_secs(30), "the hung hook was not cut at its timeout");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\nsecond\nthird\n");
        let oks: Vec<bool> = ran.iter().map(|r| r.ok).collect();
        assert_eq!(oks, [false, true, false, false, true]);
        assert!(ran[0].message.contains("exit 4"), "{:?}", ran[0]);
        assert!(ran[2].message.contains("killed after 2s"), "{:?}", ran[2]);
        assert!(ran[3].message.contains("cannot run"), "{:?}", ran[3]);
    }
}
