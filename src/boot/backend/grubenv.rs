//! `grubenv`: greenboot's GRUB handshake. The updater sets `boot_counter=N` before the
//! new deployment's first boot; GRUB decrements it on every boot with `boot_success=0`
//! and falls back once it is used up. A passed gate writes `boot_success=1` and unsets
//! `boot_counter`; a failed one reboots while the reboot changes what GRUB boots:
//! `boot_counter` ≥ 1 (GRUB tries the deployment again, one count down) and 0 (GRUB's
//! script sees 0 and boots the previous deployment — the fallback itself needs this
//! reboot). At -1 this boot already is the fallback, and it stays.

use std::path::{Path, PathBuf};

use super::{Backend, Step};
use crate::boot::decide::RebootDecision;
use crate::boot::grubenv::{Env, EnvError};
use crate::record::boot::BackendFacts;

/// The environment block at `path`.
pub struct Grubenv {
    path: PathBuf,
}

impl Grubenv {
    pub fn new(path: PathBuf) -> Self {
        Grubenv { path }
    }
}

/// Whether the block at `path` carries greenboot's `boot_counter`.
pub fn counting(path: &Path) -> bool {
    Env::read(path).ok().is_some_and(|e| e.get("boot_counter").is_some())
}

/// greenboot's "this boot is good": `boot_success=1`, `boot_counter` unset.
pub fn pass(path: &Path) -> Result<(), EnvError> {
    let mut env = Env::read(path)?;
    env.set("boot_success", "1");
    env.unset("boot_counter");
    env.write(path)
}

/// `Some(boot_counter)` while a reboot changes what GRUB boots (≥ 0); `None` on the
/// fallback boot (-1) or without greenboot's counter.
pub fn reboots(path: &Path) -> Result<Option<i64>, EnvError> {
    let env = Env::read(path)?;
    Ok(env.get("boot_counter").and_then(|v| v.parse::<i64>().ok()).filter(|&n| n >= 0))
}

impl Backend for Grubenv {
    fn name(&self) -> &'static str {
        "grubenv"
    }

    fn facts(&self) -> Step<'_, BackendFacts> {
        Box::pin(async {
            let grubenv = self.path.display().to_string();
            match Env::read(&self.path) {
                Ok(env) => BackendFacts::Grubenv {
                    grubenv,
                    boot_counter: env.get("boot_counter").and_then(|v| v.parse::<i64>().ok()),
                    boot_success: Some(env.get("boot_success") == Some("1")),
                    error: None,
                },
                Err(e) => BackendFacts::Grubenv {
                    grubenv,
                    boot_counter: None,
                    boot_success: None,
                    error: Some(e.to_string()),
                },
            }
        })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async {
            let path = self.path.clone();
            match tokio::task::spawn_blocking(move || pass(&path)).await {
                Ok(Ok(())) => {
                    Ok(format!("marked this boot good in {}: boot_success=1, boot_counter unset", self.path.display()))
                }
                Ok(Err(e)) => Err(format!("cannot mark this boot good: {e}; GRUB will count it as failed")),
                Err(e) => Err(format!("marking this boot good ended abnormally: {e}")),
            }
        })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async {
            match reboots(&self.path) {
                Ok(Some(n)) => RebootDecision::CountDown { boot_counter: n },
                Ok(None) => RebootDecision::StayNoFallback,
                Err(e) => {
                    tracing::error!("{e}");
                    RebootDecision::StayBackendError { why: e.to_string() }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_block_that_cannot_be_read_is_said_as_such_not_as_no_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Grubenv::new(dir.path().join("grubenv"));
        match backend.on_failure().await {
            RebootDecision::StayBackendError { why } => assert!(why.contains("cannot read"), "{why}"),
            other => panic!("{other:?}"),
        }
        let said = RebootDecision::StayBackendError { why: "cannot read /boot/grub/grubenv".into() }.status_text();
        assert_eq!(
            said,
            "gate failed; cannot read /boot/grub/grubenv, so a reboot may not fall back — manual intervention needed"
        );
    }
}
