//! `grubenv`: greenboot's GRUB handshake. The updater sets `boot_counter=N` before the
//! new deployment's first boot; GRUB decrements it on every boot with `boot_success=0`
//! and falls back once it is used up. A passed gate writes `boot_success=1` and unsets
//! `boot_counter`; a failed one reboots while the reboot changes what GRUB boots:
//! `boot_counter` ≥ 1 (GRUB tries the deployment again, one count down) and 0 (GRUB's
//! script sees 0 and boots the previous deployment — the fallback itself needs this
//! reboot). At -1 this boot already is the fallback, and it stays.
//!
//! The block lives in `/boot`, which rpm-ostree and bootc hosts mount read-only: the
//! mark remounts the file system holding the block (a symlink's target, the ESP on
//! Fedora UEFI) read-write for the write and read-only again after it ([`remount`]).

use std::path::{Path, PathBuf};

use super::{Backend, Step};
use crate::boot::decide::RebootDecision;
use crate::boot::grubenv::{Env, EnvError};
use crate::boot::remount::{self, Around};
use crate::record::boot::BackendFacts;

/// The mount table the block's mount is found in.
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The environment block at `path`.
pub struct Grubenv {
    path: PathBuf,
}

impl Grubenv {
    pub fn new(path: PathBuf) -> Self {
        Grubenv { path }
    }

    /// Changes the block with `change` (`what` names it in the note), the block's file
    /// system remounted read-write around the write when it is mounted read-only. `Ok`
    /// says what was done.
    async fn change(&self, what: &str, change: fn(&mut Env)) -> Result<String, String> {
        let mount = match remount::mount_of(Path::new(MOUNTINFO), &self.path) {
            Ok(mount) => mount,
            Err(e) => {
                // Without the table the write is tried as it is: a read-only file system then says so.
                tracing::warn!("{e}; writing {} without a remount", self.path.display());
                None
            }
        };
        let path = self.path.clone();
        // Lazy: a blocking task starts when spawned, and this one must wait for the remount.
        let write = async move {
            tokio::task::spawn_blocking(move || {
                let mut env = Env::read(&path)?;
                change(&mut env);
                env.write(&path)
            })
            .await
        };
        let shown = self.path.display();
        match remount::writing(mount, write).await {
            Err(e) => Err(e.to_string()),
            Ok((Ok(Ok(())), around)) => Ok(format!("{what}, in {shown}{}", said(&around))),
            Ok((Ok(Err(e)), around)) => Err(format!("{e}{}", said(&around))),
            Ok((Err(e), _)) => Err(format!("writing {shown} ended abnormally: {e}")),
        }
    }
}

/// What was remounted around the write, for the mark's note.
fn said(around: &Around) -> String {
    match around {
        Around::Writable => String::new(),
        Around::Restored(point) => format!(" ({} remounted read-write for the write, then read-only)", point.display()),
        Around::LeftWritable(point, why) => {
            format!(" ({} remounted read-write for the write; back to read-only failed: {why})", point.display())
        }
    }
}

/// Whether the block at `path` carries greenboot's `boot_counter`.
pub fn counting(path: &Path) -> bool {
    Env::read(path).ok().is_some_and(|e| e.get("boot_counter").is_some())
}

/// greenboot's "this boot is good": `boot_success=1`, `boot_counter` unset.
pub fn pass(path: &Path) -> Result<(), EnvError> {
    let mut env = Env::read(path)?;
    good(&mut env);
    env.write(path)
}

fn good(env: &mut Env) {
    env.set("boot_success", "1");
    env.unset("boot_counter");
}

/// Whether GRUB reached this boot by falling back: `boot_counter=-1`, which its script
/// sets when it boots the previous deployment.
pub fn fell_back(path: &Path) -> bool {
    Env::read(path).ok().and_then(|e| e.get("boot_counter").map(|v| v.trim() == "-1")).unwrap_or(false)
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
            let done = self.change("marked this boot good: boot_success=1, boot_counter unset", good).await;
            done.map_err(|e| format!("cannot mark this boot good: {e}; GRUB will count it as failed"))
        })
    }

    fn fell_back(&self) -> Step<'_, bool> {
        Box::pin(async { fell_back(&self.path) })
    }

    fn fallback_settled(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async {
            let unset = |env: &mut Env| env.unset("boot_counter");
            let done = self.change("unset boot_counter", unset).await;
            done.map_err(|e| format!("cannot unset boot_counter: {e}"))
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
