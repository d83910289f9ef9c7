//! `uboot`: U-Boot's bootcount convention, the one SWUpdate and most U-Boot A/B systems
//! use. The updater sets `upgrade_available=1` and `bootcount=0`; while
//! `upgrade_available` is set, U-Boot counts every boot into `bootcount` and saves the
//! environment (`CONFIG_BOOTCOUNT_ENV`), and once `bootcount` exceeds `bootlimit` it runs
//! `altbootcmd` instead of `bootcmd`. A passed gate writes `upgrade_available=0` and
//! `bootcount=0`; a failed one reboots while each reboot brings `altbootcmd` nearer
//! ([`decide`]); the rollback window's revert writes `upgrade_available=1` and
//! `bootcount=bootlimit`, so that U-Boot's count on the next boot exceeds the limit.
//!
//! The environment is read and written only through libubootenv's own tools with the
//! device's `fw_env.config` (`-c`), so single and redundant environments, raw offsets on
//! a disk, partitions and MTD are whatever libubootenv makes of them. Every run is
//! bounded; both variables go in one `fw_setenv -s` (one write: a redundant environment
//! takes both or neither).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{Backend, RevertError, Reverted, Step};
use crate::boot::decide::RebootDecision;
use crate::process::reaper;
use crate::record::boot::BackendFacts;
use crate::util::redact::quote;
use crate::util::tool::{self, ToolError};

/// libubootenv's configuration unless `boot.uboot.config` names another.
pub const FW_ENV_CONFIG: &str = "/etc/fw_env.config";
/// How long one `fw_printenv` or `fw_setenv` may take (a write on slow NOR or NAND
/// erases a sector first: well under a second, never many).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The script `fw_setenv -s` reads: its standard input, which bootgate feeds.
const SCRIPT_FROM_STDIN: &str = "/proc/self/fd/0";

/// The variables U-Boot's bootcount logic reads, as it reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counting {
    /// `None` when unset (libubootenv cannot tell an empty value from an unset one).
    pub upgrade_available: Option<u64>,
    pub bootcount: Option<u64>,
    pub bootlimit: Option<u64>,
    /// Whether `altbootcmd` is set: without it, past the limit U-Boot boots nothing.
    pub altbootcmd: bool,
}

impl Counting {
    /// Whether U-Boot counts this boot: `upgrade_available` is set and not 0.
    pub fn testing(&self) -> bool {
        self.upgrade_available.unwrap_or(0) != 0
    }

    /// The three numbers as the environment has them, for messages.
    pub fn said(&self) -> String {
        let n = |v: Option<u64>| v.map_or_else(|| "unset".to_string(), |n| n.to_string());
        format!(
            "upgrade_available={}, bootcount={}, bootlimit={}",
            n(self.upgrade_available),
            n(self.bootcount),
            n(self.bootlimit)
        )
    }
}

/// U-Boot's `env_get_ulong(name, 10, 0)` of a set value: its leading decimal digits, 0
/// when it starts with anything else (U-Boot skips neither signs nor blanks).
pub fn ulong(value: &str) -> u64 {
    value
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')))
}

/// The limit past which U-Boot runs `altbootcmd`, when the environment wires that
/// fallback at all; `Err` says what is missing.
fn wired(c: &Counting) -> Result<u64, String> {
    match c.bootlimit.unwrap_or(0) {
        0 => Err("U-Boot's environment sets no bootlimit (or 0), so U-Boot never runs altbootcmd".into()),
        _ if !c.altbootcmd => {
            Err("U-Boot's environment has no altbootcmd, so past bootlimit U-Boot would boot nothing".into())
        }
        limit => Ok(limit),
    }
}

/// What a failed gate does, from the environment as Linux reads it: U-Boot has already
/// counted this boot. The next boot counts `bootcount + 1` and runs `altbootcmd` once
/// that exceeds `bootlimit`, so every reboot from `1 ≤ bootcount ≤ bootlimit` comes
/// nearer the fallback, and the one from `bootcount = bootlimit` reaches it. Outside that
/// a reboot could only loop, and the gate stays:
/// - `upgrade_available` 0 or unset: U-Boot does not count, this boot is confirmed;
/// - no `bootlimit` or no `altbootcmd`: there is no fallback to reach;
/// - `bootcount` 0 or unset: U-Boot did not count this boot, so nothing says it counts the
///   next (a U-Boot without `CONFIG_BOOTCOUNT_ENV`, or a boot that bypassed it);
/// - `bootcount > bootlimit`: this boot already is `altbootcmd`'s, and a reboot would run
///   it again.
pub fn decide(c: &Counting) -> RebootDecision {
    if !c.testing() {
        return RebootDecision::StayConfirmed;
    }
    let limit = match wired(c) {
        Ok(limit) => limit,
        Err(why) => return RebootDecision::StayBackendError { why },
    };
    let count = c.bootcount.unwrap_or(0);
    if count == 0 {
        return RebootDecision::StayBackendError {
            why: "upgrade_available=1 but bootcount is 0: U-Boot did not count this boot, so a reboot may boot it again without end".into(),
        };
    }
    if count > limit {
        return RebootDecision::StayNoFallback;
    }
    if count == limit {
        return RebootDecision::Fallback {
            to: "U-Boot's altbootcmd".into(),
            why: format!(
                "upgrade_available=1 and bootcount {count} = bootlimit {limit}: U-Boot counts the next boot {} > {limit} and runs altbootcmd",
                count + 1
            ),
        };
    }
    let left = limit - count;
    RebootDecision::Fallback {
        to: format!("U-Boot's altbootcmd after {left} more {} of this image", if left == 1 { "try" } else { "tries" }),
        why: format!(
            "upgrade_available=1, bootcount {count} of bootlimit {limit}: U-Boot boots this image again and runs altbootcmd once its count exceeds {limit}"
        ),
    }
}

/// Whether the rollback window can revert this boot, judged from the environment as this
/// boot found it (before the mark clears it): an update under test, with a fallback wired.
pub fn arm(found: &Counting) -> Result<(), String> {
    if !found.testing() {
        return Err("not armed: upgrade_available was 0 when this boot started, so it is no update under test".into());
    }
    let limit = wired(found).map_err(|e| format!("not armed: {e}"))?;
    if found.bootcount.unwrap_or(0) > limit {
        return Err("not armed: this boot already is U-Boot's altbootcmd boot (bootcount past bootlimit)".into());
    }
    Ok(())
}

/// The U-Boot environment that `config` describes.
pub struct Uboot {
    config: PathBuf,
    timeout: Duration,
    /// The environment as first read in this run (at start, before any mark), for [`arm`].
    found: OnceLock<Counting>,
}

impl Uboot {
    pub fn new(config: PathBuf) -> Self {
        Uboot::with_timeout(config, TIMEOUT)
    }

    /// With every tool run bounded by `timeout`.
    pub fn with_timeout(config: PathBuf, timeout: Duration) -> Self {
        Uboot { config, timeout, found: OnceLock::new() }
    }

    /// Reads the convention's variables, one `fw_printenv -n` each (a value may hold
    /// newlines, so one variable a run is the unambiguous way).
    pub async fn read(&self) -> Result<Counting, String> {
        if !self.config.exists() {
            return Err(format!(
                "{} does not exist (libubootenv's fw_env.config, naming where the environment is)",
                self.config.display()
            ));
        }
        let number = |v: Option<String>| v.map(|v| ulong(&v));
        let counting = Counting {
            upgrade_available: number(self.get("upgrade_available").await?),
            bootcount: number(self.get("bootcount").await?),
            bootlimit: number(self.get("bootlimit").await?),
            altbootcmd: self.get("altbootcmd").await?.is_some(),
        };
        let _ = self.found.set(counting.clone());
        Ok(counting)
    }

    /// One variable's value; `None` when unset (`fw_printenv -n` prints an empty line for
    /// a variable that does not exist, with exit 0).
    async fn get(&self, name: &str) -> Result<Option<String>, String> {
        let mut cmd = Command::new("fw_printenv");
        cmd.arg("-c").arg(&self.config).args(["-n", name]);
        let shown = format!("fw_printenv -c {} -n {name}", quote(&self.config.display().to_string()));
        let out = reaper::run_tool(cmd, shown, self.timeout).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        let value = text.strip_suffix('\n').unwrap_or(&text);
        Ok((!value.is_empty()).then(|| value.to_string()))
    }

    /// Sets `vars` in one `fw_setenv -s` (one write of the environment), then reads the
    /// environment back; `Ok` is what it reads.
    async fn set(&self, vars: &[(&str, u64)]) -> Result<Counting, String> {
        let script: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let shown = format!(
            "fw_setenv -c {} -s {SCRIPT_FROM_STDIN} ({})",
            quote(&self.config.display().to_string()),
            script.trim().replace('\n', ", ")
        );
        let mut cmd = Command::new("fw_setenv");
        cmd.arg("-c").arg(&self.config).args(["-s", SCRIPT_FROM_STDIN]);
        tool::prepare(&mut cmd);
        cmd.stdin(Stdio::piped()).process_group(0);
        let mut child = reaper::spawn(&mut cmd)
            .map_err(|source| ToolError::Spawn { command: shown.clone(), source }.to_string())?;
        let pid = child.id();
        if let Some(mut stdin) = child.stdin.take() {
            // A few bytes, far below a pipe's buffer: the write never waits on the tool.
            // Should the tool be gone already, its exit says why.
            let _ = stdin.write_all(script.as_bytes()).await;
        }
        let done = tool::wait(child, shown, self.timeout).await;
        if let Some(pid) = pid {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            reaper::forget(pid);
        }
        done.map_err(|e| e.to_string())?;
        self.read().await.map_err(|e| format!("after the write, {e}"))
    }

    fn shown(&self) -> String {
        self.config.display().to_string()
    }
}

/// Whether `config` names a U-Boot environment that carries the convention
/// (`upgrade_available` or `bootlimit` set), for `auto`; `Some` says why.
pub async fn counting(config: &Path) -> Option<String> {
    if !config.exists() {
        return None;
    }
    let env = Uboot::with_timeout(config.to_path_buf(), TIMEOUT);
    match env.read().await {
        Ok(c) if c.upgrade_available.is_some() || c.bootlimit.is_some() => {
            Some(format!("U-Boot's environment ({}) carries the bootcount convention: {}", config.display(), c.said()))
        }
        Ok(_) => None,
        Err(e) => {
            tracing::debug!("not the uboot backend: {e}");
            None
        }
    }
}

/// The fact shown for a count: saturated, a counter past 4 billion says as much.
fn fact(n: Option<u64>) -> Option<u32> {
    n.map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

impl Backend for Uboot {
    fn name(&self) -> &'static str {
        "uboot"
    }

    fn facts(&self) -> Step<'_, BackendFacts> {
        Box::pin(async {
            let config = self.shown();
            match self.read().await {
                Ok(c) => BackendFacts::Uboot {
                    config,
                    upgrade_available: Some(c.testing()),
                    bootcount: fact(c.bootcount),
                    bootlimit: fact(c.bootlimit),
                    error: None,
                },
                Err(e) => BackendFacts::Uboot {
                    config,
                    upgrade_available: None,
                    bootcount: None,
                    bootlimit: None,
                    error: Some(e),
                },
            }
        })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async {
            let config = self.shown();
            let before = self.read().await.map_err(|e| format!("cannot mark this boot good: {e}"))?;
            if !before.testing() && before.bootcount.unwrap_or(0) == 0 {
                // Nothing to clear: no write, so a confirmed system's flash is not worn every boot.
                return Ok(format!(
                    "nothing to mark: U-Boot does not count this boot ({} in {config}); the environment is left as it is",
                    before.said()
                ));
            }
            let after = self
                .set(&[("upgrade_available", 0), ("bootcount", 0)])
                .await
                .map_err(|e| format!("cannot mark this boot good: {e}; U-Boot goes on counting it"))?;
            if after.upgrade_available != Some(0) || after.bootcount != Some(0) {
                return Err(format!(
                    "cannot mark this boot good: after fw_setenv the environment in {config} reads {}; U-Boot goes on counting it",
                    after.said()
                ));
            }
            Ok(format!("marked this boot good: upgrade_available=0, bootcount=0 in {config} (was {})", before.said()))
        })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async {
            let counting = match self.read().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("{e}");
                    return RebootDecision::StayBackendError { why: format!("cannot read U-Boot's environment: {e}") };
                }
            };
            let decision = decide(&counting);
            match &decision {
                RebootDecision::StayConfirmed => {
                    tracing::warn!(
                        "U-Boot's environment has {}: this boot is confirmed, not rebooting",
                        counting.said()
                    )
                }
                RebootDecision::StayNoFallback => tracing::warn!(
                    "U-Boot's environment has {}: this boot already is U-Boot's altbootcmd boot, and a reboot would run it again; not rebooting",
                    counting.said()
                ),
                _ => {}
            }
            decision
        })
    }

    fn revertible(&self) -> Result<(), String> {
        match self.found.get() {
            Some(found) => arm(found),
            None => Err("not armed: U-Boot's environment could not be read when this boot started".into()),
        }
    }

    fn revert(&self) -> Step<'_, Result<Reverted, RevertError>> {
        Box::pin(async {
            let booted = "this boot".to_string();
            let failed = |why: String| RevertError::Failed { booted: booted.clone(), why };
            let now = self.read().await.map_err(failed)?;
            let limit = wired(&now).map_err(failed)?;
            let after = self.set(&[("upgrade_available", 1), ("bootcount", limit)]).await.map_err(failed)?;
            if after.upgrade_available != Some(1) || after.bootcount != Some(limit) {
                return Err(failed(format!(
                    "after fw_setenv the environment in {} reads {}",
                    self.shown(),
                    after.said()
                )));
            }
            Ok(Reverted {
                booted: booted.clone(),
                fallback: format!(
                    "U-Boot's altbootcmd (upgrade_available=1, bootcount={limit}: U-Boot counts the next boot {} > bootlimit {limit})",
                    limit.saturating_add(1)
                ),
            })
        })
    }
}

#[cfg(test)]
#[path = "uboot_tests.rs"]
mod tests;
