//! Which boot loader marks this boot, and how (`boot.backend`): one module per
//! backend behind [`Backend`], as one module per check kind sits behind `Check`.
//! `run` chooses one at start ([`choose`]), logs which and why, shows its facts in the
//! health document's `boot`, calls [`Backend::on_pass`] before READY=1,
//! [`Backend::on_failure`] after a failed gate and [`Backend::revert`] when the rollback
//! window reverts the update. Every `on_failure` is loop-guarded: it reboots only when
//! the boot loader will then boot something else; every `revert` only when there is a
//! good fallback.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use super::BootStatus;
use super::decide::RebootDecision;
use crate::policy::{Backend as Named, BootSettings};
use crate::record::boot::BackendFacts;

pub mod bless_boot;
pub mod command;
pub mod efibootguard;
pub mod flatcar;
pub mod grubenv;
pub mod none;
pub mod rauc;
pub mod uboot;

/// A boxed future of a backend step (the trait stays object-safe).
pub type Step<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One way of marking boots.
pub trait Backend: Send + Sync {
    /// The policy's name for it.
    fn name(&self) -> &'static str;
    /// What the health document's `boot` shows of it (beside the GPT slot's facts).
    fn facts(&self) -> Step<'_, BackendFacts>;
    /// The gate passed: mark this boot good where bootgate does it (before READY=1).
    /// `Ok` says what was done, for the log.
    fn on_pass(&self) -> Step<'_, Result<String, String>>;
    /// The gate failed (and the policy says reboot): mark it bad where the loader needs
    /// that, and say whether a reboot boots something else.
    fn on_failure(&self) -> Step<'_, RebootDecision>;
    /// Whether the boot loader reached this boot by falling back and waits to be told the
    /// fallback is kept (greenboot's `boot_counter=-1`); read before the mark, which may
    /// clear what it reads.
    fn fell_back(&self) -> Step<'_, bool> {
        Box::pin(async { false })
    }
    /// Clears what [`Backend::fell_back`] read, so that the next boot is no fallback to
    /// keep again; `Ok` says what was done.
    fn fallback_settled(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async { Ok(String::new()) })
    }
    /// Whether the rollback window can revert this boot, judged once when the gate
    /// passes; `Err` says why not (shown in the health document).
    fn revertible(&self) -> Result<(), String> {
        Err(format!("not armed: the {} backend cannot revert an update yet", self.name()))
    }
    /// The rollback window's revert: mark this boot bad so the boot loader falls back.
    /// `Ok` names the boot left and the one the reboot leads to.
    fn revert(&self) -> Step<'_, Result<Reverted, RevertError>> {
        Box::pin(async { Err(RevertError::NotSupported(self.name())) })
    }
    /// After a fallback the environment caused: make the failed update (the slot with
    /// PARTUUID `failed_uuid`) boot once more, as its installation did. `Ok` says what was done.
    fn rearm<'a>(&'a self, failed_uuid: &'a str) -> Step<'a, Result<String, String>> {
        let _ = failed_uuid;
        Box::pin(async { Err(format!("the {} backend cannot boot a failed update again", self.name())) })
    }
}

/// What a revert did, for the log, STATUS and the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reverted {
    /// The boot marked bad (a slot's label).
    pub booted: String,
    /// What the boot loader picks next.
    pub fallback: String,
}

/// Why a revert did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    #[error("the {0} backend cannot revert an update")]
    NotSupported(&'static str),
    #[error("no other slot is bootable and good")]
    NoFallback,
    #[error("revert of {booted} failed: {why}")]
    Failed { booted: String, why: String },
}

/// Where greenboot's systems keep the GRUB environment block: Fedora first, then Debian's path.
pub const GRUBENV_PATHS: [&str; 2] = ["/boot/grub2/grubenv", "/boot/grub/grubenv"];

/// Resolves the policy's backend over what this machine has: `status` is the GPT read at
/// start, `settings` the backends' own from `boot:`. `auto` asks the system bus whether RAUC is
/// on it (bounded). Returns the backend and why it was chosen; `Err` for a backend this
/// version cannot drive, or a named one whose facts are missing.
pub async fn choose(
    named: Named,
    status: Option<&BootStatus>,
    settings: &BootSettings,
) -> Result<(Box<dyn Backend>, String), String> {
    let grubenv = settings.grubenv.as_deref();
    let on_slot = status.and_then(BootStatus::booted_partition).is_some();
    let flatcar = || Box::new(flatcar::Flatcar::new(status.cloned()));
    let block = || -> Option<PathBuf> {
        match grubenv {
            Some(p) => Some(p.to_path_buf()),
            None => GRUBENV_PATHS.iter().map(PathBuf::from).find(|p| p.exists()),
        }
    };
    let rauc = || Box::new(rauc::Rauc::new(rauc::Bus::System, rauc::TIMEOUT));
    let uboot_config = || settings.uboot_config.clone().unwrap_or_else(|| PathBuf::from(uboot::FW_ENV_CONFIG));
    match named {
        Named::Flatcar => Ok((flatcar(), "boot.backend is flatcar".into())),
        Named::None => Ok((Box::new(none::None), "boot.backend is none".into())),
        Named::Grubenv => match block() {
            Some(p) => {
                let why = format!("boot.backend is grubenv ({})", p.display());
                Ok((Box::new(grubenv::Grubenv::new(p)), why))
            }
            None => Err(format!("boot.backend is grubenv, but none of {} exists", GRUBENV_PATHS.join(", "))),
        },
        Named::Rauc => Ok((rauc(), "boot.backend is rauc".into())),
        Named::Efibootguard => Ok((
            Box::new(efibootguard::Efibootguard::new(&settings.efibootguard)),
            "boot.backend is efibootguard".into(),
        )),
        Named::Uboot => {
            let config = uboot_config();
            let why = format!("boot.backend is uboot ({})", config.display());
            Ok((Box::new(uboot::Uboot::new(config)), why))
        }
        Named::Command => match &settings.command {
            Some(c) => Ok((Box::new(command::Command::new(c.clone())), "boot.backend is command".into())),
            None => Err("boot.backend is command, but the policy has no boot.command".into()),
        },
        Named::BlessBoot => match bless_boot::BlessBoot::system() {
            Ok(b) if b.counting() => Ok((Box::new(b), "boot.backend is bless-boot".into())),
            Ok(b) => {
                let why = "boot.backend is bless-boot; systemd-boot did not count this boot (no LoaderBootCountPath)";
                Ok((Box::new(b), why.into()))
            }
            Err(e) => Err(format!("boot.backend is bless-boot, but {e}")),
        },
        Named::Auto if on_slot => Ok((flatcar(), "auto: booted from a gptprio slot".into())),
        Named::Auto => match bless_boot::BlessBoot::system() {
            Ok(b) if b.counting() => {
                Ok((Box::new(b), "auto: systemd-boot counts this boot (LoaderBootCountPath is set)".into()))
            }
            _ => auto_past_uefi(block(), rauc, uboot_config()).await,
        },
    }
}

/// `auto` past the GPT and systemd-boot: RAUC, then EFI Boot Guard's environment (which
/// RAUC may drive itself), then U-Boot's bootcount, then greenboot's counting, else nothing.
async fn auto_past_uefi(
    block: Option<PathBuf>,
    rauc: impl FnOnce() -> Box<rauc::Rauc>,
    uboot_config: PathBuf,
) -> Result<(Box<dyn Backend>, String), String> {
    if let Some(why) = rauc_on_bus().await {
        return Ok((rauc(), format!("auto: {} {why}", rauc::SERVICE)));
    }
    if let Some(why) = efibootguard::detect(Path::new("/sys/firmware"), Path::new("/proc/self/mountinfo")) {
        return Ok((Box::new(efibootguard::Efibootguard::new(&Default::default())), format!("auto: {why}")));
    }
    match uboot::counting(&uboot_config).await {
        Some(why) => Ok((Box::new(uboot::Uboot::new(uboot_config)), format!("auto: {why}"))),
        None => auto_grubenv(block),
    }
}

/// `auto` past the GPT and RAUC: greenboot's counting, else nothing to mark.
fn auto_grubenv(block: Option<PathBuf>) -> Result<(Box<dyn Backend>, String), String> {
    match block.filter(|p| grubenv::counting(p)) {
        Some(p) => {
            let why = format!("auto: boot_counter is set in {}", p.display());
            Ok((Box::new(grubenv::Grubenv::new(p)), why))
        }
        None => Ok((
            Box::new(none::None),
            "auto: no gptprio slot, no systemd-boot counting, no RAUC, no EFI Boot Guard, no U-Boot bootcount and no GRUB boot_counter"
                .into(),
        )),
    }
}

/// Why RAUC is this machine's, when it is on the system bus; a bus that is missing or
/// mute counts as no RAUC.
async fn rauc_on_bus() -> Option<&'static str> {
    match rauc::on_bus(&rauc::Bus::System, rauc::TIMEOUT).await {
        Ok(rauc::Presence::Running) => Some("is on the system bus"),
        Ok(rauc::Presence::Activatable) => Some("is activatable on the system bus"),
        Ok(rauc::Presence::Absent) => None,
        Err(e) => {
            tracing::debug!("cannot ask the system D-Bus for {}: {e:#}", rauc::SERVICE);
            None
        }
    }
}
