//! `grubenv`: greenboot's GRUB handshake. The updater sets `boot_counter=N` before the
//! new deployment's first boot; GRUB decrements it on every boot with `boot_success=0`
//! and falls back once it is used up. A passed gate writes `boot_success=1` and unsets
//! `boot_counter`; a failed one reboots while the reboot changes what GRUB boots:
//! `boot_counter` ≥ 1 (GRUB tries the deployment again, one count down) and 0 (GRUB's
//! script sees 0 and boots the previous deployment — the fallback itself needs this
//! reboot). At -1 this boot already is the fallback, and it stays. The rollback window's
//! revert writes `boot_success=0` and `boot_counter=0`, so that GRUB's script boots the
//! previous deployment next (and sets -1); it is armed only on a boot GRUB was counting.
//!
//! The block lives in `/boot`, which rpm-ostree and bootc hosts mount read-only: the
//! mark remounts the file system holding the block (a symlink's target, the ESP on
//! Fedora UEFI) read-write for the write and read-only again after it ([`remount`]).

use std::path::{Path, PathBuf};

use super::{Backend, RevertError, Reverted, Step};
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

/// Whether the rollback window can revert, from `boot_counter` as the gate found it
/// (before the mark unsets it): only a boot GRUB counts is an update on trial, and
/// reverting the fallback (-1) would only boot it again.
pub fn armed(boot_counter: Result<Option<&str>, &EnvError>) -> Result<(), String> {
    match boot_counter.map(|c| c.map(|v| v.trim().parse::<i64>())) {
        Err(e) => Err(format!("not armed: {e}")),
        Ok(None) => {
            Err("not armed: boot_counter is not set, so GRUB is not counting this boot: no update is on trial".into())
        }
        Ok(Some(Ok(-1))) => {
            Err("not armed: this boot is GRUB's fallback (boot_counter=-1), there is nothing older to revert to".into())
        }
        Ok(Some(Ok(n))) if n >= 0 => Ok(()),
        Ok(Some(_)) => Err("not armed: boot_counter is no count GRUB's script understands".into()),
    }
}

/// The revert: GRUB's script sees a boot that was not marked good with its count used
/// up, and boots the previous deployment.
fn reverted(env: &mut Env) {
    env.set("boot_success", "0");
    env.set("boot_counter", "0");
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

    fn revertible(&self) -> Result<(), String> {
        let env = Env::read(&self.path);
        armed(env.as_ref().map(|e| e.get("boot_counter")))
    }

    fn revert(&self) -> Step<'_, Result<Reverted, RevertError>> {
        Box::pin(async {
            let booted = "the booted deployment".to_string();
            if fell_back(&self.path) {
                return Err(RevertError::NoFallback);
            }
            match self.change("boot_success=0, boot_counter=0", reverted).await {
                Ok(done) => {
                    tracing::info!("reverted: {done}");
                    let fallback = format!("the previous deployment ({done}: GRUB's script boots it next)");
                    Ok(Reverted { booted, fallback })
                }
                Err(why) => Err(RevertError::Failed { booted, why }),
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

    #[test]
    fn only_a_boot_grub_counts_arms_the_window() {
        for n in ["0", "1", "3", " 2"] {
            assert_eq!(armed(Ok(Some(n))), Ok(()), "boot_counter={n}");
        }
        let why = |c| armed(Ok(c)).unwrap_err();
        assert!(why(None).contains("boot_counter is not set"), "{}", why(None));
        assert!(why(Some("-1")).contains("GRUB's fallback"), "{}", why(Some("-1")));
        assert!(why(Some("x")).contains("no count"), "{}", why(Some("x")));
        assert!(why(Some("-2")).contains("no count"), "{}", why(Some("-2")));
        let e = EnvError::Read { path: "/boot/grub/grubenv".into(), source: std::io::ErrorKind::NotFound.into() };
        assert!(armed(Err(&e)).unwrap_err().starts_with("not armed: cannot read"));
    }

    #[tokio::test]
    async fn the_revert_leaves_grub_a_used_up_count_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grubenv");
        let mut env = Env::default();
        env.set("saved_entry", "0");
        env.set("boot_success", "1");
        std::fs::write(&path, env.render().unwrap()).unwrap();
        let backend = Grubenv::new(path.clone());
        let done = backend.revert().await.unwrap();
        assert_eq!(done.booted, "the booted deployment");
        assert!(done.fallback.starts_with("the previous deployment (boot_success=0, boot_counter=0, in "), "{done:?}");
        let env = Env::read(&path).unwrap();
        assert_eq!((env.get("boot_success"), env.get("boot_counter")), (Some("0"), Some("0")));
        assert_eq!(env.get("saved_entry"), Some("0"), "other variables stay");
    }

    #[tokio::test]
    async fn the_fallback_boot_is_not_reverted_and_a_missing_block_is_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grubenv");
        let mut env = Env::default();
        env.set("boot_counter", "-1");
        std::fs::write(&path, env.render().unwrap()).unwrap();
        let backend = Grubenv::new(path.clone());
        assert!(matches!(backend.revert().await, Err(RevertError::NoFallback)));
        assert_eq!(Env::read(&path).unwrap().get("boot_counter"), Some("-1"), "left as it was");
        let missing = Grubenv::new(dir.path().join("none"));
        match missing.revert().await {
            Err(RevertError::Failed { booted, why }) => {
                assert_eq!(booted, "the booted deployment");
                assert!(why.contains("cannot read"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

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
