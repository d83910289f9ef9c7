//! Which boot loader marks this boot, and how (`boot.backend`). `flatcar` is the GPT
//! gptprio slots behind `/usr` (update_engine marks them after READY=1); `grubenv` is
//! greenboot's GRUB handshake (bootgate writes `boot_success=1` and unsets
//! `boot_counter` on pass; a failed boot reboots while `boot_counter` > 0, so GRUB's own
//! script falls back); `none` only sends READY=1. `bless-boot` and `rauc` are named by
//! the policy format but not available in this version: `run` refuses them (exit 78)
//! rather than act as another backend.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::BootStatus;
use super::grubenv::{Env, EnvError};
use crate::policy::Backend;

/// Where greenboot's systems keep the block: Fedora first, then Debian's path.
pub const GRUBENV_PATHS: [&str; 2] = ["/boot/grub2/grubenv", "/boot/grub/grubenv"];

/// The backend `run` uses this boot, and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chosen {
    Flatcar,
    Grubenv(PathBuf),
    None,
}

impl Chosen {
    pub fn name(&self) -> &'static str {
        match self {
            Chosen::Flatcar => "flatcar",
            Chosen::Grubenv(_) => "grubenv",
            Chosen::None => "none",
        }
    }
}

/// Resolves the policy's backend over what this machine has: `status` is the GPT read
/// at start, `grubenv` the policy's block path (else [`GRUBENV_PATHS`]). `Err` for a
/// backend this version cannot drive, or a named one whose facts are missing.
pub fn choose(
    policy: Backend,
    status: Option<&BootStatus>,
    grubenv: Option<&Path>,
) -> Result<(Chosen, String), String> {
    let on_slot = status.and_then(BootStatus::booted_partition).is_some();
    let block = || -> Option<PathBuf> {
        match grubenv {
            Some(p) => Some(p.to_path_buf()),
            None => GRUBENV_PATHS.iter().map(PathBuf::from).find(|p| p.exists()),
        }
    };
    let counting = |p: &Path| Env::read(p).ok().is_some_and(|e| e.get("boot_counter").is_some());
    match policy {
        Backend::Flatcar => Ok((Chosen::Flatcar, "boot.backend is flatcar".into())),
        Backend::None => Ok((Chosen::None, "boot.backend is none".into())),
        Backend::Grubenv => match block() {
            Some(p) => Ok((Chosen::Grubenv(p.clone()), format!("boot.backend is grubenv ({})", p.display()))),
            None => Err(format!("boot.backend is grubenv, but none of {} exists", GRUBENV_PATHS.join(", "))),
        },
        Backend::BlessBoot | Backend::Rauc => {
            let name = if policy == Backend::Rauc { "rauc" } else { "bless-boot" };
            Err(format!(
                "boot.backend `{name}` is not available in this version of bootgate; use flatcar, grubenv, none or auto"
            ))
        }
        Backend::Auto if on_slot => Ok((Chosen::Flatcar, "auto: booted from a gptprio slot".into())),
        Backend::Auto => match block().filter(|p| counting(p)) {
            Some(p) => Ok((Chosen::Grubenv(p.clone()), format!("auto: boot_counter is set in {}", p.display()))),
            None => Ok((Chosen::None, "auto: no gptprio slot and no GRUB boot_counter".into())),
        },
    }
}

/// The grubenv facts for the health document's `boot` and `boot-status`.
pub fn grubenv_json(path: &Path) -> Value {
    match Env::read(path) {
        Ok(env) => json!({
            "backend": "grubenv",
            "grubenv": path.display().to_string(),
            "boot_counter": env.get("boot_counter").and_then(|v| v.parse::<i64>().ok()),
            "boot_success": env.get("boot_success") == Some("1"),
        }),
        Err(e) => json!({"backend": "grubenv", "grubenv": path.display().to_string(), "error": e.to_string()}),
    }
}

/// greenboot's "this boot is good": `boot_success=1`, `boot_counter` unset.
pub fn grubenv_pass(path: &Path) -> Result<(), EnvError> {
    let mut env = Env::read(path)?;
    env.set("boot_success", "1");
    env.unset("boot_counter");
    env.write(path)
}

/// A failed boot reboots while GRUB still counts it down (`boot_counter` > 0): GRUB
/// falls back by itself once the counter is used up. `Some(counter)` when it does.
pub fn grubenv_reboots(path: &Path) -> Result<Option<i64>, EnvError> {
    let env = Env::read(path)?;
    Ok(env.get("boot_counter").and_then(|v| v.parse::<i64>().ok()).filter(|&n| n > 0))
}
