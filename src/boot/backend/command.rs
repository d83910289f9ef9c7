//! `command`: the update stack's own commands (`boot.command`), for stacks bootgate
//! does not know. Each is an argv run without a shell, in its own process group, with
//! no stdin, killed whole at `timeout`; only exit 0 counts as done. `mark_good` marks a
//! passed boot before READY=1; `mark_bad` after a failed gate (exit 0: the boot loader
//! will fall back, so bootgate reboots; without it the gate stays); `revert` is the
//! rollback window's; `facts` prints a JSON object shown in the health document.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command as Process;

use super::{Backend, RevertError, Reverted, Step};
use crate::boot::decide::RebootDecision;
use crate::policy::CommandBackend as Settings;
use crate::record::boot::BackendFacts;
use crate::util::redact::quote;
use crate::util::text::one_line;
use crate::util::time::spelled;

/// The most of a command's standard output kept (a `facts` document must fit).
pub const MAX_STDOUT: usize = 64 * 1024;
/// The most of a message quoted from a command's output.
const SHOWN: usize = 300;

/// The policy's commands.
pub struct Command {
    settings: Settings,
}

impl Command {
    pub fn new(settings: Settings) -> Self {
        Command { settings }
    }
}

/// What a command printed, once it exited 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub stdout: String,
    /// Whether standard output went past [`MAX_STDOUT`] and was cut.
    pub cut: bool,
}

impl Done {
    /// Its output on one line, short enough for a log line or STATUS.
    pub fn said(&self) -> String {
        let line = one_line(&self.stdout);
        match line.char_indices().nth(SHOWN) {
            Some((at, _)) => format!("{}…", &line[..at]),
            None => line,
        }
    }
}

/// `argv` as one would type it, each argument quoted if needed and shortened.
fn shown(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// Reads at most `keep` bytes of `pipe` and drains the rest; `true` when some was cut.
async fn read_bounded(mut pipe: impl AsyncRead + Unpin, keep: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        cut |= n > room;
    }
    (kept, cut)
}

/// Runs `argv` within `limit`; `Err` says, in one sentence naming the command, why it
/// did not exit 0 (with the tail of what it said).
pub async fn run(argv: &[String], limit: Duration) -> Result<Done, String> {
    let name = shown(argv);
    let mut cmd = Process::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = crate::process::reaper::spawn(&mut cmd).map_err(|e| format!("cannot run `{name}`: {e}"))?;
    let pid = child.id();
    let stdout = tokio::spawn(read_bounded(child.stdout.take().expect("stdout is piped"), MAX_STDOUT));
    let stderr = tokio::spawn(read_bounded(child.stderr.take().expect("stderr is piped"), 4 * SHOWN));
    let status = tokio::time::timeout(limit, child.wait()).await;
    if let Some(pid) = pid {
        // Whatever it left behind would hold the pipes open.
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    let collect = |task: tokio::task::JoinHandle<(Vec<u8>, bool)>| async move {
        tokio::time::timeout(Duration::from_secs(1), task).await.ok().and_then(Result::ok).unwrap_or_default()
    };
    let ((out, cut), (err, _)) = (collect(stdout).await, collect(stderr).await);
    if let Some(pid) = pid {
        crate::process::reaper::forget(pid);
    }
    let said = |bytes: &[u8]| {
        let line = one_line(&String::from_utf8_lossy(bytes));
        if line.is_empty() { String::new() } else { format!(": {}", Done { stdout: line, cut: false }.said()) }
    };
    let status = match status {
        Err(_) => return Err(format!("`{name}` did not finish within {}", spelled(limit))),
        Ok(Err(e)) => return Err(format!("waiting for `{name}`: {e}")),
        Ok(Ok(status)) => status,
    };
    if !status.success() {
        let why = if err.is_empty() { said(&out) } else { said(&err) };
        return Err(format!("`{name}` failed ({status}){why}"));
    }
    Ok(Done { stdout: String::from_utf8_lossy(&out).into_owned(), cut })
}

/// The `facts` command's output as the health document shows it: a JSON object.
pub fn parse_facts(done: &Done) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if done.cut {
        return Err(format!("the facts command printed more than {MAX_STDOUT} bytes"));
    }
    match serde_json::from_str::<serde_json::Value>(&done.stdout) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("the facts command printed JSON but no object (starts {:?})", first(&other))),
        Err(e) => Err(format!("the facts command printed no JSON object: {e}")),
    }
}

fn first(v: &serde_json::Value) -> String {
    let text = v.to_string();
    text.chars().take(40).collect()
}

/// What the command said, or that it said nothing.
fn output_or(done: &Done, silent: &str) -> String {
    let said = done.said();
    if said.is_empty() { silent.to_string() } else { said }
}

impl Backend for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    fn facts(&self) -> Step<'_, BackendFacts> {
        Box::pin(async {
            let Some(argv) = &self.settings.facts else {
                return BackendFacts::Command { facts: None, error: None };
            };
            match run(argv, self.settings.timeout).await.and_then(|done| parse_facts(&done)) {
                Ok(map) => BackendFacts::Command { facts: Some(map), error: None },
                Err(e) => BackendFacts::Command { facts: None, error: Some(e) },
            }
        })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async {
            let argv = &self.settings.mark_good;
            match run(argv, self.settings.timeout).await {
                Ok(done) => {
                    Ok(format!("marked this boot good: `{}` exited 0 ({})", shown(argv), output_or(&done, "no output")))
                }
                Err(e) => Err(format!("cannot mark this boot good: {e}")),
            }
        })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async {
            let Some(argv) = &self.settings.mark_bad else {
                return RebootDecision::StayBackendError {
                    why: "boot.command sets no mark_bad to make the boot loader fall back".into(),
                };
            };
            match run(argv, self.settings.timeout).await {
                Ok(done) => RebootDecision::Fallback {
                    to: "what the boot loader boots next".into(),
                    why: format!("`{}` marked this boot bad ({})", shown(argv), output_or(&done, "no output")),
                },
                Err(e) => {
                    tracing::error!("{e}");
                    RebootDecision::StayBackendError { why: e }
                }
            }
        })
    }

    fn revertible(&self) -> Result<(), String> {
        match self.settings.revert {
            Some(_) => Ok(()),
            None => Err("not armed: boot.command sets no revert".into()),
        }
    }

    fn revert(&self) -> Step<'_, Result<Reverted, RevertError>> {
        Box::pin(async {
            let Some(argv) = &self.settings.revert else {
                return Err(RevertError::NotSupported("command"));
            };
            match run(argv, self.settings.timeout).await {
                Ok(done) => Ok(Reverted {
                    booted: "this boot".into(),
                    fallback: format!("what `{}` chose ({})", shown(argv), output_or(&done, "no output")),
                }),
                Err(why) => Err(RevertError::Failed { booted: "this boot".into(), why }),
            }
        })
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
