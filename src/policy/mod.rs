//! The policy: raw YAML ([`raw`]) validated into types that cannot hold an invalid
//! value ([`Policy`]). Every problem names file, line, column and key.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::checks::Check;

mod boot;
pub mod checks_from;
pub mod greenboot;
mod load;
pub mod located;
pub mod raw;
mod rollback;
mod rules;
pub mod schema;
pub mod types;
pub mod unique;
mod validate;
pub mod yaml;

pub use load::{DEFAULT_POLICY, Loaded, load, load_at, parse};
pub use raw::{Backend, Judge, OnFailure};
pub use yaml::index::{MAX_ALIASED_NODES, MAX_CHECKS, MAX_DEPTH};

/// The longest duration a policy may name: 30 days. Longer is surely a typo, and
/// adding it to a clock could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The shortest runtime interval, of the policy, of a check and of `BOOTGATE_INTERVAL`.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The largest policy file read, in bytes; a bigger one is refused unread.
pub const MAX_POLICY_BYTES: u64 = 1 << 20;
/// How many problems an invalid policy lists before it only counts the rest.
pub const MAX_PROBLEMS_SHOWN: usize = 50;

/// A validated policy.
pub struct Policy {
    pub gate: Gate,
    pub runtime: Runtime,
    pub rollback: Rollback,
    /// How this system's boot gets marked (`auto` until the daemon detects it).
    pub backend: Backend,
    /// Each backend's own settings (`boot.grubenv`, `boot.uboot`, …).
    pub boot: BootSettings,
    /// `boot.fallback_command`: makes a GRUB fallback permanent where neither `bootc` nor
    /// `rpm-ostree` is on PATH.
    pub fallback_command: Option<Vec<String>>,
    pub listen: SocketAddr,
    /// `server.allow_run`: whether a client may run a check on request.
    pub allow_run: bool,
    /// `server.web_config`: the endpoint's TLS and basic auth, if any.
    pub web_config: Option<std::path::PathBuf>,
    /// `greenboot:`: greenboot.conf as read, and the green.d/red.d hooks.
    pub greenboot: greenboot::Greenboot,
    pub checks: Vec<CheckSpec>,
}

/// The most threads blocking calls (a disk check's statvfs, file writes) get however
/// many checks run at once: beyond it, such calls wait for a thread instead of each
/// starting one that then stays.
pub const MAX_BLOCKING_THREADS: usize = 64;
/// Threads beside the checks' for the daemon's own blocking work (verdict, history,
/// textfile, password hashes).
const OWN_BLOCKING_THREADS: usize = 4;

impl Policy {
    /// Threads for blocking calls: as many as checks may run at once in the gate (all of
    /// them, unless `gate.max_concurrent`) or at run time, at most
    /// [`MAX_BLOCKING_THREADS`], and a few for the daemon's own.
    pub fn blocking_threads(&self) -> usize {
        let gate = self.gate.max_concurrent.unwrap_or(self.checks.len());
        gate.max(self.runtime.max_concurrent).clamp(1, MAX_BLOCKING_THREADS) + OWN_BLOCKING_THREADS
    }
}

/// The backends' own settings from `boot:`; each is read only by its backend.
#[derive(Debug, Clone, Default)]
pub struct BootSettings {
    /// The `grubenv` backend's block, when the policy names one.
    pub grubenv: Option<std::path::PathBuf>,
    /// `boot.efibootguard`.
    pub efibootguard: Efibootguard,
    /// `boot.uboot.config`: libubootenv's configuration, when the policy names one.
    pub uboot_config: Option<std::path::PathBuf>,
    /// `boot.command`, required by (and only read by) the `command` backend.
    pub command: Option<CommandBackend>,
}

/// `boot.efibootguard`.
#[derive(Debug, Clone, Default)]
pub struct Efibootguard {}

/// `boot.command`: argv lists, run without a shell, each within `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandBackend {
    pub mark_good: Vec<String>,
    pub mark_bad: Option<Vec<String>>,
    pub revert: Option<Vec<String>>,
    pub facts: Option<Vec<String>>,
    pub timeout: Duration,
}

/// Boot gate settings.
#[derive(Debug, Clone)]
pub struct Gate {
    pub deadline: Duration,
    pub settle: Duration,
    pub on_failure: OnFailure,
    pub reboot_delay: Duration,
    /// Zero: READY=1 as soon as every critical check passed.
    pub soak: Duration,
    pub soak_interval: Duration,
    /// At most this many checks at once; `None`: no limit.
    pub max_concurrent: Option<usize>,
    /// What a trial boot's gate is judged against.
    pub judge: Judge,
}

/// The rollback window after READY=1 (a zero `window` never reverts), and what a
/// fallback leads to: a retry after an outage, a hold after repeated failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollback {
    pub window: Duration,
    pub failing_for: Duration,
    /// `retry_after_environment`, when set.
    pub retry: Option<Retry>,
    /// `hold_after` and `hold_for`, when set.
    pub hold: Option<Hold>,
}

impl Rollback {
    /// A window of `window` that reverts after `failing_for`, with no retry and no hold.
    pub fn window(window: Duration, failing_for: Duration) -> Self {
        Rollback { window, failing_for, retry: None, hold: None }
    }
}

/// `rollback.retry_after_environment`: at most `max` retries of one version, each once
/// the checks it failed have passed on the fallback for `delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub max: u32,
    pub delay: Duration,
}

/// `rollback.hold_after` / `hold_for`: after `after` failures of one version blamed on
/// the image, updates are held for `hold_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub after: u32,
    pub hold_for: Duration,
}

/// Runtime re-check settings; thresholds are at least 1.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub interval: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    /// At most this many checks run at once; at least 1.
    pub max_concurrent: usize,
}

/// One configured check.
#[derive(Clone)]
pub struct CheckSpec {
    pub name: String,
    pub kind: &'static str,
    pub critical: bool,
    pub timeout: Duration,
    pub retries: u32,
    /// Indices into [`Policy::checks`] that must pass first; acyclic.
    pub after: Vec<usize>,
    /// Its own runtime interval, overriding the policy's and `BOOTGATE_INTERVAL`.
    pub interval: Option<Duration>,
    /// After the gate, failures this long do not count toward `failure_threshold`.
    pub start_period: Duration,
    pub check: Arc<dyn Check>,
}

impl fmt::Debug for CheckSpec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("CheckSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("critical", &self.critical)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("after", &self.after)
            .field("interval", &self.interval)
            .field("start_period", &self.start_period)
            .finish()
    }
}

/// One located problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Why no policy could be used. The gate fails closed on every variant.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid policy {file}:\n{}", listing(problems))]
    Invalid { file: String, problems: Vec<Problem> },
}

/// The first [`MAX_PROBLEMS_SHOWN`] problems, one a line, then how many more there are.
pub fn listing(problems: &[Problem]) -> String {
    let mut lines: Vec<String> = problems.iter().take(MAX_PROBLEMS_SHOWN).map(|p| format!("  {p}")).collect();
    match problems.len().saturating_sub(MAX_PROBLEMS_SHOWN) {
        0 => {}
        1 => lines.push("  … and 1 more problem".into()),
        n => lines.push(format!("  … and {n} more problems")),
    }
    lines.join("\n")
}
