//! `exec`: runs a command (argv, no shell). Exit 0 passes, a listed code warns,
//! anything else fails; the output's tail is the message. The command runs in its
//! own process group, which is killed whole when the attempt ends, so nothing it
//! started outlives it.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::{Check, CheckFuture, KeyError, Kind, Outcome, RunCtx, tail};
use crate::policy::types::{NonEmpty, Str};
use crate::policy::yaml::Seg;
use crate::util::redact::quote;

/// Bytes of output kept for the message.
const KEEP: usize = 400;

/// Keys of an `exec` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// Program and arguments; no shell is involved.
    pub command: NonEmpty<Str>,
    /// Exit codes that mean "works, but warn".
    #[schemars(inner(range(min = 1, max = 255)))]
    pub warn_exit_codes: Option<Vec<i32>>,
}

/// A validated `exec` check.
#[derive(Debug)]
pub struct Exec {
    argv: Vec<String>,
    warn: Vec<i32>,
}

impl Kind for Exec {
    const NAME: &'static str = "exec";
    type Keys = Keys;

    fn build(k: Keys) -> Result<Self, KeyError> {
        let warn = k.warn_exit_codes.unwrap_or_default();
        if let Some((i, c)) = warn.iter().enumerate().find(|(_, c)| !(1..=255).contains(*c)) {
            let key = vec![Seg::key("warn_exit_codes"), Seg::Index(i)];
            return Err(KeyError { key, message: format!("{c} is not an exit code from 1 to 255") });
        }
        let argv: Vec<String> = k.command.0.into_iter().map(|a| a.0).collect();
        if argv[0].is_empty() {
            return Err(KeyError::at("command", "the program name is empty"));
        }
        Ok(Exec { argv, warn })
    }
}

/// Hands the child back to the orphan sweep once it is gone (after the group guard's kill).
struct Known(u32);

impl Drop for Known {
    fn drop(&mut self) {
        crate::process::reaper::forget(self.0);
    }
}

/// Kills the whole process group when dropped: on exit, on timeout, on cancellation.
struct GroupGuard(Pid);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // ESRCH means the group is already gone, which is the goal.
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}

async fn read_tail(mut pipe: impl AsyncRead + Unpin) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 4 * KEEP {
            kept.drain(..kept.len() - KEEP);
        }
    }
    tail(&String::from_utf8_lossy(&kept), KEEP).to_string()
}

impl Exec {
    async fn attempt(&self) -> Outcome {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match crate::process::reaper::spawn(&mut cmd) {
            Ok(child) => child,
            Err(e) => return Outcome::fail(format!("cannot start `{}`: {e}", quote(&self.argv[0]))),
        };
        let Some(pid) = child.id() else {
            return Outcome::fail(format!("`{}` exited before it could be watched", quote(&self.argv[0])));
        };
        // Declared first, dropped last: the group is killed before the sweep may take the child.
        let _known = Known(pid);
        let guard = GroupGuard(Pid::from_raw(pid as i32));
        let stdout = tokio::spawn(read_tail(child.stdout.take().expect("stdout is piped")));
        let stderr = tokio::spawn(read_tail(child.stderr.take().expect("stderr is piped")));
        let status = child.wait().await;
        // Leftover children of the command would hold the pipes open: end them now.
        drop(guard);
        let collect = |task: tokio::task::JoinHandle<String>| async move {
            tokio::time::timeout(Duration::from_secs(1), task).await.ok().and_then(Result::ok).unwrap_or_default()
        };
        let (out, err) = (collect(stdout).await, collect(stderr).await);
        let status = match status {
            Ok(s) => s,
            Err(e) => return Outcome::fail(format!("waiting for `{}`: {e}", quote(&self.argv[0]))),
        };
        let code = status.code();
        let detail = |text: &str| {
            if text.is_empty() { String::new() } else { format!(": {text}") }
        };
        let outcome = match code {
            Some(0) => Outcome::pass(format!("exit 0{}", detail(&out))),
            Some(c) if self.warn.contains(&c) => {
                Outcome::warn(format!("exit {c}{}", detail(if err.is_empty() { &out } else { &err })))
            }
            Some(c) => Outcome::fail(format!("exit {c}{}", detail(if err.is_empty() { &out } else { &err }))),
            None => {
                use std::os::unix::process::ExitStatusExt;
                let sig = status.signal().unwrap_or_default();
                Outcome::fail(format!("killed by signal {sig}{}", detail(&err)))
            }
        };
        match code {
            Some(c) => outcome.with("exit_code", c),
            None => outcome,
        }
    }
}

impl Check for Exec {
    fn run<'a>(&'a self, _: &'a RunCtx) -> CheckFuture<'a> {
        // The command goes with every outcome: "exit 1" alone does not say what ran.
        let command = self.argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
        Box::pin(async move { self.attempt().await.with("command", command) })
    }
}
