//! Making a boot loader's fallback permanent, after the verdict: on the boot GRUB reached
//! by falling back (`boot_counter=-1`) the deployment order still puts the failed
//! deployment first, so the platform's rollback runs ([`permanent::rollback`] says which)
//! and the next boot stays here. The counter is cleared first, as greenboot's
//! fallback check does: a rollback that fails is said (log, STATUS, the health
//! document's `boot.permanent`, the history line), never run again on the next boot —
//! `bootc rollback` run twice would swap the deployments back.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::boot::backend::Backend;
use crate::boot::decide::permanent;
use crate::process::notify::{self, Notifier};
use crate::process::reaper;
use crate::record::boot::Permanent;
use crate::server::Endpoint;
use crate::util::redact::quote;
use crate::util::text::one_line;

/// How long a rollback may take: `rpm-ostree rollback` rewrites the boot loader
/// configuration, seconds on a slow eMMC, never minutes.
pub const TIMEOUT: Duration = Duration::from_secs(120);
/// How much of the rollback's output the log and the note keep.
const OUTPUT_CAP: usize = 400;

/// What to do about a fallback, decided before the gate's mark (which clears the
/// counter it is read from): `None` when this boot is no fallback to keep.
pub type Plan = Option<Result<Vec<String>, String>>;

/// Reads whether this boot is a fallback to keep, and the rollback that keeps it.
pub async fn plan(backend: &dyn Backend, configured: Option<&[String]>) -> Plan {
    if !backend.fell_back().await {
        return None;
    }
    permanent::rollback(Some(-1), on_path, configured).transpose()
}

/// Whether an executable named `tool` is in a directory of PATH.
fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .any(|p| std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Carries out `plan`: the counter cleared, then the rollback run (bounded, its output
/// logged), the outcome said and recorded in this boot's history line. Returns it, for
/// the verdict and then [`show`].
pub async fn keep(
    plan: Plan,
    backend: &dyn Backend,
    state_dir: &Path,
    endpoint: &Endpoint,
    notifier: Notifier,
) -> Option<Permanent> {
    let plan = plan?;
    let kept = match plan {
        Err(why) => {
            // Nothing can keep it: clear the counter all the same, so the next boot does not
            // ask again, and say what is left to do.
            let settled = backend.fallback_settled().await;
            Permanent { command: None, done: false, note: with_settled(why, settled) }
        }
        Ok(argv) => match backend.fallback_settled().await {
            Err(e) => {
                // Not run: with the counter still set the next boot would run it again, and a
                // second rollback swaps the deployments back.
                let command = Some(shown(&argv));
                Permanent { command, done: false, note: format!("{e}; the rollback was not run") }
            }
            Ok(_) => run(&argv).await,
        },
    };
    say(&kept, notifier);
    let recorded = kept.clone();
    super::facts::amend_history(state_dir, endpoint, move |line| line.permanent = Some(recorded)).await;
    Some(kept)
}

/// Shows the outcome in the health document's `boot.permanent`: last, once every file
/// that records it is written.
pub fn show(endpoint: &Endpoint, kept: Permanent) {
    super::facts::show(endpoint, |shown| shown.permanent = Some(kept));
}

/// `why`, with what clearing the counter did.
fn with_settled(why: String, settled: Result<String, String>) -> String {
    match settled {
        Ok(_) => why,
        Err(e) => format!("{why}; {e}"),
    }
}

/// `argv` as one line for people.
fn shown(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// Runs the rollback, bounded.
async fn run(argv: &[String]) -> Permanent {
    let command = shown(argv);
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    tracing::info!(command = %command, "this boot is GRUB's fallback: running `{command}` so the next boot stays on it");
    match reaper::run_tool(cmd, command.clone(), TIMEOUT).await {
        Ok(out) => Permanent { command: Some(command), done: true, note: said(&out) },
        // The error carries the tool's stderr, whatever its length.
        Err(e) => Permanent { command: Some(command), done: false, note: bounded(&e.to_string()) },
    }
}

/// The rollback's output, on one bounded line.
fn said(out: &Output) -> String {
    bounded(&format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `text` on one line of at most [`OUTPUT_CAP`] characters.
fn bounded(text: &str) -> String {
    let line = one_line(text.trim());
    match line.char_indices().nth(OUTPUT_CAP) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// The outcome in the log, and in every STATUS when it failed.
fn say(kept: &Permanent, notifier: Notifier) {
    let command = kept.command.as_deref().unwrap_or("no rollback");
    if kept.done {
        tracing::info!(command = %command, output = %kept.note, "fallback made permanent by `{command}`: {}", kept.note);
        return;
    }
    let text = format!("fallback not made permanent: {}", kept.note);
    tracing::error!(command = %command, "{text}");
    notify::set_boot_note(Some(text));
    notifier.refresh_status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_rollback_said_is_kept_to_one_bounded_line() {
        assert_eq!(bounded("  Moving the rollback\n deployment\n"), "Moving the rollback deployment");
        let long = bounded(&"e".repeat(10_000));
        assert_eq!(long.chars().count(), OUTPUT_CAP + 1);
        assert!(long.ends_with('…'));
    }
}
