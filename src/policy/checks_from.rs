//! `checks_from:` — greenboot's way of writing checks, kept: every file in a listed
//! directory (`/usr/lib/greenboot/check/required.d`, `/etc/greenboot/check/wanted.d`, …)
//! becomes an `exec` check named after its file, run as greenboot runs it: a `*.sh` file
//! through `bash` whatever its mode, any other file when it is executable. They run
//! concurrently with the policy's own checks.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::CheckSpec;
use super::greenboot::Greenboot;
use super::located::Ctx;
use super::raw::RawChecksFrom;
use super::types::{NonEmpty, Str};
use super::yaml::Seg;
use crate::checks::exec::{Exec, Keys};
use crate::checks::{Check, CheckFuture, Kind, Outcome, RunCtx};
use crate::util::redact::quote;

/// The most entries one directory may hold: every entry counts, run or not, so no
/// required check can hide past the limit.
const MAX_ENTRIES: usize = super::MAX_CHECKS;

/// How greenboot runs the file at `path`: the argv, or why it cannot be run. Symlinks are
/// followed, as greenboot follows them.
pub fn how_to_run(path: &Path) -> Result<Vec<String>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown} cannot run: {e}"))?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file" };
        return Err(format!("{shown} cannot run: {what}"));
    }
    if path.extension().is_some_and(|e| e == "sh") {
        return Ok(vec!["bash".into(), shown.to_string()]);
    }
    if meta.permissions().mode() & 0o111 != 0 {
        return Ok(vec![shown.to_string()]);
    }
    Err(format!("{shown} cannot run: not executable, and not a `*.sh` script (which would run through bash)"))
}

/// Appends the checks of each `checks_from` entry to `specs`; every problem is located
/// at the entry. A missing directory is a problem (a required check that vanished must
/// not pass the gate), and so is one with more than [`MAX_ENTRIES`] entries. Every entry
/// becomes a check: one that cannot be run (see [`how_to_run`]) fails saying why, in a
/// critical directory failing the gate and in an optional one degrading it, so that no
/// file greenboot would have run is skipped unseen. A file greenboot.conf disables is a
/// passing optional check that says so and runs nothing. Returns how many checks the
/// entries gave.
pub fn add(
    cx: &mut Ctx,
    entries: &[RawChecksFrom],
    default_timeout: Duration,
    deadline: Option<Duration>,
    greenboot: &Greenboot,
    specs: &mut Vec<CheckSpec>,
) -> usize {
    let before = specs.len();
    let mut names: HashSet<String> = specs.iter().map(|s| s.name.clone()).collect();
    let mut disabled_seen: HashSet<&str> = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let at = |key: &str| [Seg::key("checks_from"), Seg::Index(i), Seg::key(key)];
        let dir = &e.dir.0;
        let critical = e.critical.unwrap_or(true);
        let timeout = e.timeout.map_or(default_timeout, |d| d.0);
        if let Some(why) = super::rules::timeout_problem(timeout, deadline) {
            cx.at(&at("timeout"), why);
            continue;
        }
        let files = match entries_of(dir) {
            Ok(files) => files,
            Err(why) => {
                cx.at(&at("dir"), why);
                continue;
            }
        };
        if files.is_empty() {
            tracing::warn!(dir = %dir.display(), "checks_from: {} is empty", dir.display());
        }
        let prefix = e.prefix.as_ref().map_or("", |p| p.0.as_str());
        for file in files {
            let name = format!("{prefix}{file}");
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
                let message = format!(
                    "`{name}` in {} has the name of another check; greenboot runs both: give this entry a `prefix`",
                    dir.display()
                );
                cx.at(&at("dir"), message);
                continue;
            }
            let path = dir.join(&file);
            let disabled = greenboot.conf.disabled.iter().find(|d| **d == file);
            let (check, critical): (Arc<dyn Check>, bool) = if let Some(d) = disabled {
                disabled_seen.insert(d.as_str());
                let conf = greenboot.config.as_deref().map_or("greenboot.conf".into(), |p| p.display().to_string());
                let said = format!("disabled by {conf} (DISABLED_HEALTHCHECKS): {} is not run", path.display());
                tracing::info!(check = %name, "checks_from: {said}");
                // Optional, so that a check greenboot would not run cannot fail the gate.
                (Arc::new(Said(Outcome::pass(said).with("disabled", true))), false)
            } else {
                match how_to_run(&path) {
                    Ok(argv) => {
                        let command = NonEmpty(argv.into_iter().map(Str).collect());
                        match Exec::build(Keys { command, warn_exit_codes: None }) {
                            Ok(check) => (Arc::new(check), critical),
                            Err(e) => {
                                cx.at(&at("dir"), e.message);
                                continue;
                            }
                        }
                    }
                    Err(why) => {
                        let effect = if critical { "fails the gate" } else { "degrades the boot" };
                        tracing::warn!(file = %path.display(), "checks_from: {why}; its check {effect}");
                        (Arc::new(Said(Outcome::fail(why))), critical)
                    }
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
                check,
            });
        }
    }
    if let Some(conf) = &greenboot.config {
        for name in greenboot.conf.disabled.iter().filter(|d| !disabled_seen.contains(d.as_str())) {
            tracing::warn!(config = %conf.display(), "{}: DISABLED_HEALTHCHECKS names `{}`, which no checks_from directory holds", conf.display(), quote(name));
        }
    }
    specs.len() - before
}

/// A check whose every run says the same: a disabled one, or a file that cannot run.
struct Said(Outcome);

impl Check for Said {
    fn run<'a>(&'a self, _: &'a RunCtx) -> CheckFuture<'a> {
        Box::pin(async move { self.0.clone() })
    }
}

/// The names of the entries of `dir`, sorted as greenboot sorts them; every entry counts
/// toward the limit.
pub fn entries_of(dir: &Path) -> Result<Vec<String>, String> {
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
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use crate::checks::Found;

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
    }

    fn run(check: &CheckSpec) -> crate::checks::Outcome {
        let limit = std::time::Duration::from_secs(10);
        let ctx = RunCtx { deadline: tokio::time::Instant::now() + limit, limit };
        futures_lite(check.check.run(&ctx))
    }

    /// Runs a check's future to its end on a runtime of its own.
    fn futures_lite(f: crate::checks::CheckFuture<'_>) -> crate::checks::Outcome {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn every_file_greenboot_would_run_runs_and_one_that_cannot_run_fails() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "10_plain.sh", "echo from-sh; exit 3", 0o644);
        script(dir.path(), "20_binary", "exit 0", 0o755);
        script(dir.path(), "30_notes", "exit 0", 0o644);
        std::os::unix::fs::symlink(dir.path().join("gone.sh"), dir.path().join("40_dangling.sh")).unwrap();
        std::fs::create_dir(dir.path().join("50_dir")).unwrap();
        let p = crate::policy::parse(&policy(dir.path(), ""), "p.yaml").unwrap();
        let names: Vec<&str> = p.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["root", "10_plain.sh", "20_binary", "30_notes", "40_dangling.sh", "50_dir"]);
        assert!(p.checks[1..].iter().all(|c| c.critical));
        let out: Vec<_> = p.checks[1..].iter().map(run).collect();
        assert_eq!(out[0].status, Found::Fail);
        assert!(out[0].message.contains("exit 3: from-sh"), "{}", out[0].message);
        assert_eq!(out[1].status, Found::Pass, "{}", out[1].message);
        for (o, why) in out[2..].iter().zip(["not executable, and not a `*.sh`", "No such file", "a directory"]) {
            assert_eq!(o.status, Found::Fail);
            assert!(o.message.contains("cannot run") && o.message.contains(why), "{}", o.message);
        }
        // Optional, the same files degrade the boot instead of failing it, still shown.
        let p = crate::policy::parse(&policy(dir.path(), ", critical: false"), "p.yaml").unwrap();
        assert_eq!(p.checks.len(), 6);
        assert!(p.checks[1..].iter().all(|c| !c.critical));
    }

    #[test]
    fn a_prefix_tells_apart_the_same_file_name_in_two_trees() {
        let (vendor, admin) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        script(vendor.path(), "01_check.sh", "exit 0", 0o644);
        script(admin.path(), "01_check.sh", "exit 0", 0o644);
        let text = |prefix: &str| {
            format!(
                "version: 1\nchecks_from:\n  - {{dir: {}{prefix}}}\n  - {{dir: {}}}\n",
                vendor.path().display(),
                admin.path().display()
            )
        };
        let err = crate::policy::parse(&text(""), "p.yaml").err().expect("refused").to_string();
        assert!(err.contains("p.yaml:4:") && err.contains("give this entry a `prefix`"), "{err}");
        let p = crate::policy::parse(&text(", prefix: vendor."), "p.yaml").unwrap();
        let names: Vec<&str> = p.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["vendor.01_check.sh", "01_check.sh"]);
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
