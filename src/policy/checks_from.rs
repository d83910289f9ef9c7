//! `checks_from:` — greenboot's way of writing checks, kept: every executable file in a
//! listed directory (`/etc/greenboot/check/required.d`, `wanted.d`) becomes an `exec`
//! check named after its file. They run concurrently with the policy's own checks.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::CheckSpec;
use super::located::Ctx;
use super::raw::RawChecksFrom;
use super::types::{NonEmpty, Str};
use super::yaml::Seg;
use crate::checks::Kind;
use crate::checks::exec::{Exec, Keys};
use crate::util::redact::quote;

/// The most entries one directory may hold: every entry counts, run or not, so no
/// required check can hide past the limit.
const MAX_ENTRIES: usize = super::MAX_CHECKS;

/// Appends the checks of each `checks_from` entry to `specs`; every problem is located
/// at the entry. A missing directory is a problem (a required check that vanished must
/// not pass the gate), and so is one with more than [`MAX_ENTRIES`] entries. Executable
/// files become checks; in a critical directory so does an entry that cannot even be
/// looked at (a dangling symlink), whose check fails saying why, as greenboot would fail
/// running it, instead of vanishing. A file without the executable bit is skipped with a
/// log line, as greenboot skips it.
pub fn add(
    cx: &mut Ctx,
    entries: &[RawChecksFrom],
    default_timeout: Duration,
    deadline: Option<Duration>,
    specs: &mut Vec<CheckSpec>,
) {
    let mut names: HashSet<String> = specs.iter().map(|s| s.name.clone()).collect();
    for (i, e) in entries.iter().enumerate() {
        let at = |key: &str| [Seg::key("checks_from"), Seg::Index(i), Seg::key(key)];
        let dir = &e.dir.0;
        let critical = e.critical.unwrap_or(true);
        let timeout = e.timeout.map_or(default_timeout, |d| d.0);
        if let Some(why) = super::rules::timeout_problem(timeout, deadline) {
            cx.at(&at("timeout"), why);
            continue;
        }
        let files = match entries_of(dir, critical) {
            Ok(files) => files,
            Err(why) => {
                cx.at(&at("dir"), why);
                continue;
            }
        };
        if files.is_empty() {
            tracing::warn!(dir = %dir.display(), "checks_from: {} holds no executable file", dir.display());
        }
        for name in files {
            if !crate::policy::types::Name::valid(&name) {
                let message = format!(
                    "`{}` in {} cannot be a check name ({})",
                    quote(&name),
                    dir.display(),
                    crate::policy::types::NAME_RULE
                );
                cx.at(&at("dir"), message);
                continue;
            }
            if let Some(why) = super::rules::reserved(&name) {
                cx.at(&at("dir"), format!("{} in {}: {why}", quote(&name), dir.display()));
                continue;
            }
            if !names.insert(name.clone()) {
                cx.at(&at("dir"), format!("`{name}` in {} has the name of another check", dir.display()));
                continue;
            }
            let path = dir.join(&name).display().to_string();
            let keys = Keys { command: NonEmpty(vec![Str(path)]), warn_exit_codes: None };
            let check = match Exec::build(keys) {
                Ok(check) => check,
                Err(e) => {
                    cx.at(&at("dir"), e.message);
                    continue;
                }
            };
            specs.push(CheckSpec {
                name,
                kind: Exec::NAME,
                critical,
                timeout,
                // greenboot runs each script once a boot; a retry would only hide a flap.
                retries: e.retries.unwrap_or(0),
                after: Vec::new(),
                interval: None,
                start_period: Duration::ZERO,
                check: Arc::new(check),
            });
        }
    }
}

/// The names of the entries of `dir` that become checks, sorted: every executable
/// regular file, and in a `critical` directory every entry that cannot be looked at (its
/// check fails, saying why it cannot run). Every entry counts toward the limit.
fn entries_of(dir: &Path, critical: bool) -> Result<Vec<String>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("cannot read the directory {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for (n, entry) in read.enumerate() {
        if n >= MAX_ENTRIES {
            return Err(format!(
                "{} holds more than {MAX_ENTRIES} entries; a required check past them would not run",
                dir.display()
            ));
        }
        let entry = entry.map_err(|e| format!("cannot read the directory {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Following a symlink, as greenboot's run-parts does.
        match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => names.push(name),
            Err(e) if critical => {
                tracing::warn!(file = %entry.path().display(), "checks_from: {} cannot run ({e}); as a required check it fails the gate", entry.path().display());
                names.push(name);
            }
            Ok(_) => {
                tracing::warn!(file = %entry.path().display(), "checks_from: skipping {}: not an executable file", entry.path().display())
            }
            Err(e) => {
                tracing::warn!(file = %entry.path().display(), "checks_from: skipping {}: {e}", entry.path().display())
            }
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use crate::checks::{Found, RunCtx};

    fn policy(dir: &Path, extra: &str) -> String {
        format!(
            "version: 1\ngate: {{deadline: 60s}}\nchecks:\n  - {{name: root, kind: disk, path: /}}\n\
             checks_from:\n  - {{dir: {}{extra}}}\n",
            dir.display()
        )
    }

    fn script(dir: &Path, name: &str, body: &str, mode: u32) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    use super::*;

    #[test]
    fn every_entry_counts_and_a_directory_past_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_ENTRIES {
            std::fs::write(dir.path().join(format!("notes-{i:04}.txt")), "").unwrap();
        }
        script(dir.path(), "zz_required.sh", "exit 1", 0o755);
        let err = crate::policy::parse(&policy(dir.path(), ""), "p.yaml").err().expect("refused").to_string();
        assert!(err.contains("holds more than 1000 entries"), "{err}");
        // At the limit, the late failing script is read and is a check.
        std::fs::remove_file(dir.path().join("notes-0000.txt")).unwrap();
        let p = crate::policy::parse(&policy(dir.path(), ""), "p.yaml").unwrap();
        assert_eq!(p.checks.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["root", "zz_required.sh"]);
    }

    #[tokio::test]
    async fn a_dangling_symlink_in_a_required_directory_is_a_failing_check() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone.sh"), dir.path().join("10_check.sh")).unwrap();
        let p = crate::policy::parse(&policy(dir.path(), ""), "p.yaml").unwrap();
        assert_eq!((p.checks.len(), p.checks[1].critical), (2, true));
        let limit = std::time::Duration::from_secs(10);
        let ctx = RunCtx { deadline: tokio::time::Instant::now() + limit, limit };
        let out = p.checks[1].check.run(&ctx).await;
        assert_eq!(out.status, Found::Fail, "{}", out.message);
        // Optional, it is skipped: a wanted check that cannot run only degrades greenboot too.
        let p = crate::policy::parse(&policy(dir.path(), ", critical: false"), "p.yaml");
        assert!(p.map(|p| p.checks.len() == 1).unwrap_or(false));
    }

    #[test]
    fn a_directory_timeout_follows_the_rules_of_a_check_timeout() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "ok.sh", "exit 0", 0o755);
        for (timeout, why) in [("0s", "longer than 0s"), ("60s", "not shorter than the gate deadline 1m")] {
            let err = crate::policy::parse(&policy(dir.path(), &format!(", timeout: {timeout}")), "p.yaml")
                .err()
                .expect("refused")
                .to_string();
            assert!(err.contains("checks_from[0].timeout") && err.contains(why), "{timeout}: {err}");
        }
    }
}
