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

/// The most files one directory may add (the policy's own check limit bounds the total).
const MAX_FILES: usize = super::MAX_CHECKS;

/// Appends the checks of each `checks_from` entry to `specs`; every problem is located
/// at the entry. A missing directory is a problem (a required check that vanished must
/// not pass the gate); a file that is not executable is skipped with a log line.
pub fn add(cx: &mut Ctx, entries: &[RawChecksFrom], default_timeout: Duration, specs: &mut Vec<CheckSpec>) {
    let mut names: HashSet<String> = specs.iter().map(|s| s.name.clone()).collect();
    for (i, e) in entries.iter().enumerate() {
        let at = |key: &str| [Seg::key("checks_from"), Seg::Index(i), Seg::key(key)];
        let dir = &e.dir.0;
        let files = match executables(dir) {
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
                critical: e.critical.unwrap_or(true),
                timeout: e.timeout.map_or(default_timeout, |d| d.0),
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

/// The names of the executable regular files in `dir`, sorted; others are logged and skipped.
fn executables(dir: &Path) -> Result<Vec<String>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("cannot read the directory {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in read.take(MAX_FILES + 1) {
        let entry = entry.map_err(|e| format!("cannot read the directory {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Following a symlink, as greenboot's run-parts does.
        match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => names.push(name),
            Ok(_) => {
                tracing::warn!(file = %entry.path().display(), "checks_from: skipping {}: not an executable file", entry.path().display())
            }
            Err(e) => {
                tracing::warn!(file = %entry.path().display(), "checks_from: skipping {}: {e}", entry.path().display())
            }
        }
    }
    if names.len() > MAX_FILES {
        return Err(format!("{} holds more than {MAX_FILES} files", dir.display()));
    }
    names.sort();
    Ok(names)
}
