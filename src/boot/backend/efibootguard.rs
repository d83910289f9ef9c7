//! `efibootguard`: EFI Boot Guard's configurations (one `BGENV.DAT` on each of its two
//! FAT config partitions), read and written with its own tools, `bg_printenv` and
//! `bg_setenv`, each run bounded.
//!
//! EFI Boot Guard (v0.13, `load_config`) boots the configuration with the highest
//! `revision`; one `in_progress` is skipped for the next; one in `TESTING` was tested
//! and not confirmed, so it is written `FAILED` with revision 0 and the next one boots;
//! one `INSTALLED` is written `TESTING` and booted. It sets no EFI variable and adds
//! nothing to the kernel command line, so the booted configuration is found as it
//! chose it: the one whose `kernelparams` are this boot's command line when exactly one
//! matches, else its rule replayed on the environment as it is now (the highest
//! revision that is neither in progress nor still `INSTALLED`).
//!
//! A passed gate confirms it as `bg_setenv --confirm` does (`ustate` OK; in partition
//! mode the tool writes OK into every configuration, a FAILED one keeping revision 0).
//! A failed gate reboots only while EFI Boot Guard falls back: the booted configuration
//! is `TESTING`, it has the highest revision, and the next one is OK and not in
//! progress. The rollback window's revert writes the booted one `FAILED` with revision
//! 0, as the loader marks a failed test, so the other (OK) one boots.
//!
//! The tools find the config partitions themselves (GPT on every block device, FAT
//! file systems holding `BGENV.DAT`) and use a partition where it is mounted; only an
//! unmounted one needs them to mount it (CAP_SYS_ADMIN, which the shipped unit does
//! not grant: the machine mounts its config partitions, see docs/backends.md).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use tokio::process::Command;

use super::{Backend, RevertError, Reverted, Step};
use crate::boot::decide::RebootDecision;
use crate::policy::Efibootguard as Settings;
use crate::record::boot::{BackendFacts, EbgConfig};

/// How long one run of `bg_printenv` or `bg_setenv` may take (it probes every disk).
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Configurations Debian's build expects (`ENV_NUM_CONFIG_PARTS`); the loader refuses more.
pub const CONFIGS: usize = 2;
/// The kernel command line this boot started with.
const CMDLINE: &str = "/proc/cmdline";
/// The fields read, in the order `bg_printenv -r` prints them (user variables left out:
/// they could be named like a field).
const FIELDS: &str = "in_progress,revision,kernel,kernelargs,ustate";

/// `ustate` values (EFI Boot Guard's `USTATE_*`).
pub const OK: u8 = 0;
pub const INSTALLED: u8 = 1;
pub const TESTING: u8 = 2;
pub const FAILED: u8 = 3;

/// Where the configurations are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The config partitions, found by the tools (`-p INDEX`).
    Partitions,
    /// `BGENV.DAT` files, one a configuration (`-f FILE`; writes keep the rest with `-P`).
    Files(Vec<PathBuf>),
}

/// One configuration as `bg_printenv -r` printed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Its index (the partition number the tools use, or the file's place in the list).
    pub index: usize,
    pub in_progress: bool,
    pub revision: u32,
    pub kernel: String,
    pub kernelparams: String,
    pub ustate: u8,
}

impl Config {
    /// How messages name it.
    pub fn named(&self) -> String {
        format!("config #{} (revision {}, {})", self.index, self.revision, ustate_name(self.ustate))
    }
}

/// EFI Boot Guard's word for a `ustate`.
pub fn ustate_name(ustate: u8) -> String {
    match ustate {
        OK => "OK".into(),
        INSTALLED => "INSTALLED".into(),
        TESTING => "TESTING".into(),
        FAILED => "FAILED".into(),
        n => format!("UNKNOWN({n})"),
    }
}

/// Parses `bg_printenv -r -o in_progress,revision,kernel,kernelargs,ustate`: the fields
/// line by line in that order. The kernel arguments are everything between their key
/// and the last line, so arguments holding a newline cannot pose as a field.
pub fn parse(index: usize, out: &str) -> Result<Config, String> {
    let out = out.strip_suffix('\n').unwrap_or(out);
    if out.is_empty() {
        return Err("it printed no environment".into());
    }
    let field = |rest: &str, key: &str| -> Result<(String, String), String> {
        let (line, rest) = rest.split_once('\n').ok_or_else(|| format!("its output ends before {key}"))?;
        let value = line.strip_prefix(key).and_then(|v| v.strip_prefix('=')).ok_or_else(|| {
            format!("expected {key}=… but it printed `{}`", line.chars().take(80).collect::<String>())
        })?;
        Ok((value.to_string(), rest.to_string()))
    };
    let number = |key: &str, v: &str| v.parse::<u32>().map_err(|_| format!("{key} is not a number: `{v}`"));
    let (in_progress, rest) = field(out, "IN_PROGRESS")?;
    let (revision, rest) = field(&rest, "REVISION")?;
    let (kernel, rest) = field(&rest, "KERNEL")?;
    let (args_and_state, ustate) = rest.rsplit_once('\n').ok_or("its output ends before USTATE")?;
    let kernelparams = args_and_state.strip_prefix("KERNELARGS=").ok_or("expected KERNELARGS=…")?;
    let ustate = ustate.strip_prefix("USTATE=").ok_or("expected USTATE=… last")?;
    Ok(Config {
        index,
        in_progress: number("IN_PROGRESS", &in_progress)? != 0,
        revision: number("REVISION", &revision)?,
        kernel,
        kernelparams: kernelparams.to_string(),
        ustate: u8::try_from(number("USTATE", ustate)?).map_err(|_| format!("USTATE {ustate} is out of range"))?,
    })
}

/// The configuration EFI Boot Guard booted: the one whose kernel parameters are this
/// boot's command line (whitespace aside) when exactly one matches; else its choice
/// replayed (see the module's documentation). `None` when neither tells.
pub fn booted(configs: &[Config], cmdline: Option<&str>) -> Option<usize> {
    fn words(s: &str) -> Vec<&str> {
        s.split_whitespace().collect()
    }
    if let Some(cmdline) = cmdline.map(words).filter(|w| !w.is_empty()) {
        let mut matching = configs.iter().filter(|c| words(&c.kernelparams) == cmdline);
        if let (Some(one), None) = (matching.next(), matching.next()) {
            return Some(one.index);
        }
    }
    configs
        .iter()
        .filter(|c| c.revision > 0 && !c.in_progress && c.ustate != INSTALLED)
        // Highest revision; on a tie the lower index, as the loader's strict `>` scan.
        .max_by_key(|c| (c.revision, std::cmp::Reverse(c.index)))
        .map(|c| c.index)
}

/// The configuration EFI Boot Guard boots once `booted` is out of the way: the highest
/// other revision, if it is OK, above revision 0 and not being written.
pub fn good_other(configs: &[Config], booted: usize) -> Option<&Config> {
    let next = configs.iter().filter(|c| c.index != booted).max_by_key(|c| (c.revision, std::cmp::Reverse(c.index)))?;
    (next.ustate == OK && next.revision > 0 && !next.in_progress).then_some(next)
}

/// What a failed gate does: reboot only while the loader falls back (see the module's
/// documentation), with why it will or why not.
pub fn decide(configs: &[Config], booted: Option<usize>) -> (RebootDecision, String) {
    let Some(b) = booted.and_then(|i| configs.iter().find(|c| c.index == i)) else {
        let why = "cannot tell which EFI Boot Guard configuration booted".to_string();
        return (RebootDecision::StayBackendError { why: why.clone() }, why);
    };
    match b.ustate {
        OK => {
            (RebootDecision::StayConfirmed, format!("the booted {} is confirmed: the loader boots it again", b.named()))
        }
        TESTING => {
            if let Some(higher) = configs.iter().find(|c| c.index != b.index && c.revision >= b.revision) {
                let why = format!(
                    "the booted {} does not have the highest revision ({} has {}): the loader would not judge it again",
                    b.named(),
                    higher.named(),
                    higher.revision
                );
                return (RebootDecision::StayNoFallback, why);
            }
            match good_other(configs, b.index) {
                Some(next) => {
                    let why = format!(
                        "config #{} is TESTING, so EFI Boot Guard marks it FAILED (revision 0) and boots the next",
                        b.index
                    );
                    (RebootDecision::Fallback { to: next.named(), why: why.clone() }, why)
                }
                None => (
                    RebootDecision::StayNoFallback,
                    format!("the booted {} is TESTING, but no other configuration is OK to fall back to", b.named()),
                ),
            }
        }
        _ => (
            RebootDecision::StayNoFallback,
            format!("the booted {} is not under test: a reboot would not fall back", b.named()),
        ),
    }
}

/// EFI Boot Guard's environment, read and written with its tools.
pub struct Efibootguard {
    source: Source,
    printenv: PathBuf,
    setenv: PathBuf,
    cmdline: PathBuf,
    limit: Duration,
    /// What the last read found (configurations, booted), for [`Backend::revertible`].
    last: Mutex<Option<(Vec<Config>, Option<usize>)>>,
}

impl Efibootguard {
    /// The machine's config partitions, with the tools on `PATH`.
    pub fn new(_settings: &Settings) -> Self {
        Self::at(Source::Partitions, Path::new("bg_printenv"), Path::new("bg_setenv"), Path::new(CMDLINE), TIMEOUT)
    }

    /// Everything injected: where the configurations are, the two tools, the kernel
    /// command line's file and the bound on each tool run.
    pub fn at(source: Source, printenv: &Path, setenv: &Path, cmdline: &Path, limit: Duration) -> Self {
        Efibootguard {
            source,
            printenv: printenv.to_path_buf(),
            setenv: setenv.to_path_buf(),
            cmdline: cmdline.to_path_buf(),
            limit,
            last: Mutex::new(None),
        }
    }

    fn count(&self) -> usize {
        match &self.source {
            Source::Partitions => CONFIGS,
            Source::Files(files) => files.len(),
        }
    }

    /// Where config `index` is, as the tools take it.
    fn target(&self, index: usize) -> Vec<String> {
        match &self.source {
            Source::Partitions => vec!["-p".into(), index.to_string()],
            Source::Files(files) => vec!["-f".into(), files[index].display().to_string()],
        }
    }

    async fn tool(&self, program: &Path, args: Vec<String>) -> Result<String, String> {
        let shown = format!("{} {}", program.display(), args.join(" "));
        let mut cmd = Command::new(program);
        cmd.args(&args).env("LC_ALL", "C");
        let out = crate::process::reaper::run_tool(cmd, shown.clone(), self.limit).await.map_err(|e| e.to_string())?;
        // bg_printenv says some failures on stderr with exit 0; its output then lacks fields.
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = crate::util::text::one_line(String::from_utf8_lossy(&out.stderr).trim());
        if !stderr.is_empty() && stdout.is_empty() {
            return Err(format!("`{shown}`: {stderr}"));
        }
        Ok(stdout)
    }

    /// Every configuration and which one booted.
    pub async fn read(&self) -> Result<(Vec<Config>, Option<usize>), String> {
        let mut configs = Vec::with_capacity(self.count());
        for index in 0..self.count() {
            let mut args = self.target(index);
            args.extend(["-r".into(), "-o".into(), FIELDS.into()]);
            let out = self.tool(&self.printenv, args).await?;
            let config = parse(index, &out).map_err(|e| {
                format!("cannot read EFI Boot Guard config #{index} from {}: {e}", self.printenv.display())
            })?;
            configs.push(config);
        }
        let cmdline = crate::util::read::read_regular(&self.cmdline, 64 * 1024)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let booted = booted(&configs, cmdline.as_deref());
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((configs.clone(), booted));
        Ok((configs, booted))
    }

    /// `bg_setenv` on config `index` with `change` (in file mode `-P` keeps the rest).
    async fn write(&self, index: usize, change: &[&str]) -> Result<(), String> {
        let mut args = self.target(index);
        if matches!(self.source, Source::Files(_)) {
            args.push("-P".into());
        }
        args.extend(change.iter().map(|s| s.to_string()));
        self.tool(&self.setenv, args).await.map(|_| ())
    }

    async fn confirm(&self) -> Result<String, String> {
        let (configs, booted) = self.read().await?;
        let Some(b) = booted.and_then(|i| configs.into_iter().find(|c| c.index == i)) else {
            return Err("cannot tell which EFI Boot Guard configuration booted".into());
        };
        if b.ustate == OK {
            return Ok(format!("EFI Boot Guard {} is already confirmed", b.named()));
        }
        self.write(b.index, &["-c"]).await?;
        let (after, _) = self.read().await?;
        match after.iter().find(|c| c.index == b.index) {
            Some(c) if c.ustate == OK => Ok(format!(
                "confirmed EFI Boot Guard config #{} (revision {}): ustate {} → OK",
                b.index,
                b.revision,
                ustate_name(b.ustate)
            )),
            Some(c) => {
                Err(format!("config #{} still reads ustate {} after the confirm", c.index, ustate_name(c.ustate)))
            }
            None => Err(format!("config #{} is gone after the confirm", b.index)),
        }
    }
}

/// The config partitions' signs in a mount table (`/proc/self/mountinfo` text): the
/// FAT mount points holding a `BGENV.DAT` (`exists` asks the file system).
pub fn mounted_envs(table: &str, exists: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for line in table.lines() {
        let Some((head, tail)) = line.split_once(" - ") else { continue };
        if tail.split(' ').next() != Some("vfat") {
            continue;
        }
        let Some(point) = head.split(' ').nth(4) else { continue };
        let file = Path::new(&crate::boot::remount::unescape(point)).join("BGENV.DAT");
        if exists(&file) && !found.contains(&file) {
            found.push(file);
        }
    }
    found
}

/// `auto`: a UEFI boot with EFI Boot Guard's environment on mounted FAT file systems
/// (EFI Boot Guard v0.13 sets no EFI variable of its own); `Some` says where.
pub fn detect(firmware: &Path, mountinfo: &Path) -> Option<String> {
    if !firmware.join("efi").is_dir() {
        return None;
    }
    let table = crate::util::read::read_regular(mountinfo, 4 << 20).ok()?;
    let found = mounted_envs(&String::from_utf8_lossy(&table), |p| p.is_file());
    let shown: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
    (!found.is_empty()).then(|| format!("EFI Boot Guard's environment is mounted ({})", shown.join(", ")))
}

impl Backend for Efibootguard {
    fn name(&self) -> &'static str {
        "efibootguard"
    }

    fn facts(&self) -> Step<'_, BackendFacts> {
        Box::pin(async {
            match self.read().await {
                Ok((configs, booted)) => BackendFacts::Efibootguard {
                    configs: Some(
                        configs
                            .iter()
                            .map(|c| EbgConfig {
                                source: match &self.source {
                                    Source::Partitions => format!("config partition #{}", c.index),
                                    Source::Files(files) => files[c.index].display().to_string(),
                                },
                                revision: c.revision,
                                ustate: ustate_name(c.ustate),
                                in_progress: c.in_progress,
                                kernel: Some(c.kernel.clone()).filter(|k| !k.is_empty()),
                                booted: booted == Some(c.index),
                            })
                            .collect(),
                    ),
                    error: booted.is_none().then(|| "cannot tell which configuration booted".into()),
                },
                Err(e) => BackendFacts::Efibootguard { configs: None, error: Some(e) },
            }
        })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async {
            self.confirm()
                .await
                .map_err(|e| format!("cannot confirm this boot: {e}; EFI Boot Guard will count it as a failed test"))
        })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async {
            match self.read().await {
                Ok((configs, booted)) => {
                    let (decision, why) = decide(&configs, booted);
                    if decision.reboots() {
                        tracing::info!("efibootguard: {why}");
                    } else {
                        tracing::warn!("efibootguard: not rebooting: {why}");
                    }
                    decision
                }
                Err(e) => {
                    tracing::error!("{e}");
                    RebootDecision::StayBackendError { why: e }
                }
            }
        })
    }

    fn revertible(&self) -> Result<(), String> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let Some((configs, Some(booted))) = last.as_ref() else {
            return Err("not armed: cannot tell which EFI Boot Guard configuration booted".into());
        };
        match good_other(configs, *booted) {
            Some(_) => Ok(()),
            None => Err("not armed: no other EFI Boot Guard configuration is OK to fall back to".into()),
        }
    }

    fn revert(&self) -> Step<'_, Result<Reverted, RevertError>> {
        Box::pin(async {
            let failed = |booted: String, why: String| RevertError::Failed { booted, why };
            let (configs, now) = self.read().await.map_err(|e| failed("this boot".into(), e))?;
            let b = now.ok_or(RevertError::NoFallback)?;
            let other = good_other(&configs, b).ok_or(RevertError::NoFallback)?.clone();
            let named = configs.iter().find(|c| c.index == b).map_or_else(|| format!("config #{b}"), Config::named);
            // The loader's own mark of a failed test: FAILED, revision 0, never chosen again.
            self.write(b, &["-s", "FAILED", "-r", "0"]).await.map_err(|e| failed(named.clone(), e))?;
            let (after, _) = self.read().await.map_err(|e| failed(named.clone(), e))?;
            let marked = after.iter().any(|c| c.index == b && c.ustate == FAILED && c.revision == 0);
            if !marked {
                return Err(failed(named, "the configuration does not read FAILED, revision 0 after the write".into()));
            }
            if booted(&after, None) != Some(other.index) {
                tracing::warn!("after the revert EFI Boot Guard would not pick {} as expected", other.named());
            }
            Ok(Reverted { booted: named, fallback: other.named() })
        })
    }
}

#[cfg(test)]
#[path = "efibootguard_tests.rs"]
mod tests;
