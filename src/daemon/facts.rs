//! What `run` and `serve` learn about this boot at start (the booted slot, the OS
//! version, the history, whether this boot is a fallback), how they publish it, and how
//! `run` records this boot's line in the history.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::boot::BootStatus;
use crate::boot::backend::Backend;
use crate::boot::decide::fallback;
use crate::boot::identity::{self, OsRelease};
use crate::process::logging::BOOT_FALLBACK_ID;
use crate::process::notify::{self, Notifier};
use crate::record::boot::{BackendFacts, BootFacts, Fallback, Mark, OnFailure};
use crate::record::history::{self, Decision, PastBoot, SeenFallback, Slot};
use crate::record::verdict::VerdictRecord;
use crate::server::Endpoint;

/// A disk that does not answer must not hold up the gate.
const DETECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the booted slot's GPT attributes are read again while it is not marked
/// successful after a passed gate, and for how long: on Flatcar update_engine marks the
/// slot by itself, about 45 s after it starts, and the page and the health document must
/// show it once it has, not what the table said when bootgate started.
const MARK_WATCH_EVERY: Duration = Duration::from_secs(10);
const MARK_WATCH_FOR: Duration = Duration::from_secs(15 * 60);

/// This boot as the daemon found it at start.
#[derive(Debug, Clone, Default)]
pub struct ThisBoot {
    /// The partition table and booted slot; `None` when it could not be read in time.
    pub status: Option<BootStatus>,
    /// `ID` of the booted OS's os-release.
    pub os_id: Option<String>,
    /// The booted OS's version ([`OsRelease::os_version`]).
    pub os_version: Option<String>,
    pub fallback: Option<Fallback>,
}

impl ThisBoot {
    /// The booted slot, if on A/B.
    pub fn slot(&self) -> Option<Slot> {
        self.status.as_ref().and_then(BootStatus::booted_partition).map(Slot::from)
    }

    /// The boot facts before the backend has answered: the slot, the OS version and any
    /// fallback; `None` off A/B, where only the backend has something to show.
    pub fn facts(&self) -> Option<BootFacts> {
        let status = self.status.as_ref()?;
        let slot = status.slot_facts()?;
        Some(BootFacts {
            slot: Some(slot),
            version: self.os_version.clone(),
            fallback: self.fallback.clone(),
            backend: None,
            mark: None,
            gpt_slots: status.gpt_slots(),
            gpt_next: crate::boot::next::of_table(status).and_then(|n| n.index),
            on_failure: None,
            permanent: None,
            hold: None,
        })
    }
}

/// Reads the slot (bounded) and the OS version: what the gate's start needs. The history
/// and the fallback it shows come later, beside the gate ([`learn_fallback`]).
pub async fn gather() -> ThisBoot {
    let status = match tokio::time::timeout(DETECT_TIMEOUT, tokio::task::spawn_blocking(crate::boot::detect)).await {
        Ok(Ok(status)) => {
            match &status.note {
                Some(note) => tracing::info!("boot partition: {note}"),
                None => {
                    tracing::info!(booted = ?status.booted, disk = ?status.disk, "boot partition {:?} on {:?}", status.booted, status.disk)
                }
            }
            Some(status)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the boot partition: {e}");
            None
        }
        Err(_) => {
            tracing::warn!("reading the boot partition table took over 2s; going on without it");
            None
        }
    };
    let os = OsRelease::read();
    ThisBoot { status, os_version: os.os_version().map(str::to_string), os_id: os.id, fallback: None }
}

/// Publishes what [`gather`] found: the health document's `boot` and the boot metrics.
pub fn publish(boot: &ThisBoot, endpoint: &Endpoint) {
    let _ = endpoint.boot.send(boot.facts().map(Arc::new));
    let slot = boot.slot();
    endpoint.metrics.set_boot_info(
        slot.as_ref().map_or("", |s| s.label.as_str()),
        slot.as_ref().map_or("", |s| s.uuid.as_str()),
        boot.os_id.as_deref().unwrap_or(""),
        boot.os_version.as_deref().unwrap_or(""),
    );
}

/// Reads the history (off the gate's path: a large or garbled one must not delay the
/// checks), publishes it for `/api/v1/system/boots`, works out whether this boot is a
/// fallback and, if so, says it in the boot facts, the metrics, the journal and
/// `STATUS=`. Returns the fallback, for this boot's history line.
pub async fn learn_fallback(
    state_dir: &Path,
    boot: &ThisBoot,
    endpoint: &Endpoint,
    notifier: Notifier,
) -> Option<Fallback> {
    let dir = state_dir.to_path_buf();
    let boots = tokio::task::spawn_blocking(move || history::read_or_warn(&dir)).await.unwrap_or_default();
    let this_boot = identity::boot_id().unwrap_or_default();
    let fallback =
        boot.status.as_ref().and_then(|s| fallback::detect(&boots, &s.partitions, s.booted_partition(), &this_boot));
    let _ = endpoint.history.send(Arc::new(boots));
    let f = fallback.as_ref()?;
    endpoint.boot.send_modify(|facts| {
        if let Some(facts) = facts {
            Arc::make_mut(facts).fallback = Some(f.clone());
        }
    });
    let text = f.text();
    let failing: Vec<&str> = f.failing.iter().map(|c| c.name.as_str()).collect();
    tracing::warn!(
        message_id = BOOT_FALLBACK_ID,
        from_partition = %f.from_partition,
        from_version = f.from_version.as_deref().unwrap_or(""),
        reason = f.reason.as_str(),
        failing = %failing.join(", "),
        "this boot is a fallback: {text}"
    );
    notify::set_boot_note(Some(text));
    notifier.refresh_status();
    fallback
}

/// Marks this boot good through the backend (idempotent: a restart in the same boot marks
/// again, since a crash may have come between the verdict and the mark) and shows how it
/// went: the boot facts (`mark`, and `bootgate_boot_marked`), the log, and, when it
/// failed, every STATUS from now on. Returns the mark, for the verdict.
pub async fn mark_good(backend: &dyn Backend, endpoint: &Endpoint, notifier: Notifier) -> Mark {
    let (done, note) = match backend.on_pass().await {
        Ok(done) => {
            tracing::info!(backend = backend.name(), "{done}");
            notify::set_mark_note(None);
            (true, done)
        }
        Err(e) => {
            tracing::error!(backend = backend.name(), "marking this boot good failed: {e}");
            notify::set_mark_note(Some(format!("marking this boot good failed: {e}")));
            (false, e)
        }
    };
    let mark = Mark { done, note };
    show(endpoint, |shown| shown.mark = Some(mark.clone()));
    notifier.refresh_status();
    watch_slot_mark(endpoint);
    mark
}

/// While the booted GPT slot is not marked successful, reads the table again every
/// [`MARK_WATCH_EVERY`] (for at most [`MARK_WATCH_FOR`]) and shows the slots as they are.
fn watch_slot_mark(endpoint: &Endpoint) {
    let unmarked = endpoint.boot.borrow().as_ref().and_then(|f| f.slot.as_ref()).is_some_and(|s| !s.successful);
    if !unmarked {
        return;
    }
    let boot = endpoint.boot.clone();
    tokio::spawn(async move {
        let end = tokio::time::Instant::now() + MARK_WATCH_FOR;
        while tokio::time::Instant::now() < end {
            tokio::time::sleep(MARK_WATCH_EVERY).await;
            let read = tokio::time::timeout(DETECT_TIMEOUT, tokio::task::spawn_blocking(crate::boot::detect)).await;
            let Ok(Ok(status)) = read else { continue };
            let Some(slot) = status.slot_facts() else { return };
            let successful = slot.successful;
            boot.send_modify(|facts| {
                if let Some(facts) = facts {
                    let facts = Arc::make_mut(facts);
                    facts.gpt_slots = status.gpt_slots();
                    facts.gpt_next = crate::boot::next::of_table(&status).and_then(|n| n.index);
                    facts.slot = Some(slot);
                }
            });
            if successful {
                tracing::info!("the booted slot is marked successful now");
                return;
            }
        }
    });
}

/// Changes the boot facts with `change` (creating them off A/B) and publishes them.
pub fn show(endpoint: &Endpoint, change: impl FnOnce(&mut BootFacts)) {
    show_on(&endpoint.boot, change);
}

/// [`show`] on the boot facts' channel itself.
pub fn show_on(facts: &tokio::sync::watch::Sender<Option<Arc<BootFacts>>>, change: impl FnOnce(&mut BootFacts)) {
    facts.send_modify(|boot| {
        let mut shown = boot.as_deref().cloned().unwrap_or_default();
        change(&mut shown);
        *boot = Some(Arc::new(shown));
    });
}

/// Shows a failed gate's decision in the boot facts, before it is acted on.
pub fn show_on_failure(endpoint: &Endpoint, on_failure: OnFailure) {
    show(endpoint, |shown| shown.on_failure = Some(on_failure));
}

/// Shows the backend's facts in the boot facts, beside the GPT slot's.
pub async fn publish_backend(backend: &dyn Backend, endpoint: &Endpoint) -> BackendFacts {
    let facts = backend.facts().await;
    let shown_facts = facts.clone();
    show(endpoint, |shown| shown.backend = Some(facts));
    shown_facts
}

/// With greenboot.conf in the policy and GRUB's counter in the facts, says which of
/// greenboot's boot attempts this boot is.
pub fn say_greenboot_attempt(policy: &crate::policy::Policy, facts: &BackendFacts) {
    let (Some(config), BackendFacts::Grubenv { boot_counter, .. }) = (&policy.greenboot.config, facts) else {
        return;
    };
    // greenboot's own default when greenboot.conf does not say.
    let max = policy.greenboot.conf.max_boot_attempts.unwrap_or(3);
    if let Some(text) = crate::render::status::greenboot_attempt(*boot_counter, max) {
        tracing::info!(config = %config.display(), "{text}");
    }
}

/// Appends this boot's line and publishes the new history.
pub async fn record(
    state_dir: &Path,
    verdict: &VerdictRecord,
    boot: &ThisBoot,
    decision: Option<Decision>,
    endpoint: &Endpoint,
) {
    let mut line = PastBoot::from_verdict(verdict, boot.slot(), boot.os_id.clone(), boot.os_version.clone(), decision);
    line.fallback = boot.fallback.as_ref().map(SeenFallback::from);
    let dir = state_dir.to_path_buf();
    let written = tokio::task::spawn_blocking(move || {
        let result = history::append(&dir, &line);
        (result, history::read_or_warn(&dir))
    })
    .await;
    match written {
        Ok((Ok(()), boots)) => {
            let _ = endpoint.history.send(Arc::new(boots));
        }
        Ok((Err(e), _)) => {
            let dir = state_dir.display();
            tracing::warn!(dir = %dir, error = %e, "cannot record the boot history in {dir}: {e}");
        }
        Err(e) => tracing::warn!(error = %e, "recording the boot history ended abnormally: {e}"),
    }
}

/// Changes this boot's history line with `change` (what happened after it was written:
/// a failed mark, a fallback made permanent) and publishes the new history.
pub async fn amend_history(state_dir: &Path, endpoint: &Endpoint, change: impl FnOnce(&mut PastBoot) + Send + 'static) {
    amend_history_on(state_dir, &endpoint.history, change).await;
}

/// [`amend_history`], publishing the new history on `published`.
pub async fn amend_history_on(
    state_dir: &Path,
    published: &tokio::sync::watch::Sender<Arc<Vec<PastBoot>>>,
    change: impl FnOnce(&mut PastBoot) + Send + 'static,
) {
    let Some(id) = identity::boot_id() else { return };
    let dir = state_dir.to_path_buf();
    let amended = tokio::task::spawn_blocking(move || {
        let amended = history::amend(&dir, &id, change);
        (amended, history::read_or_warn(&dir))
    })
    .await;
    match amended {
        Ok((Ok(true), boots)) => {
            let _ = published.send(Arc::new(boots));
        }
        Ok((Ok(false), _)) => tracing::warn!("this boot has no history line to amend"),
        Ok((Err(e), _)) => tracing::warn!(error = %e, "cannot amend this boot's history line: {e}"),
        Err(e) => tracing::warn!(error = %e, "amending this boot's history line ended abnormally: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::boot::PartitionInfo;

    #[test]
    fn the_boot_facts_carry_version_and_fallback() {
        let part = |index: u32, label: &str| PartitionInfo::usr(index, 1, 0, true).with_label(label);
        let status = BootStatus {
            booted: Some(3),
            disk: Some("/dev/vda".into()),
            partitions: vec![part(3, "USR-A"), part(4, "USR-B")],
            note: None,
        };
        let fallback = Fallback::sample();
        let mut boot = ThisBoot {
            status: Some(status),
            os_id: Some("flatcar".into()),
            os_version: Some("4152.2.0".into()),
            fallback: None,
        };
        let doc = serde_json::to_value(boot.facts().unwrap()).unwrap();
        assert_eq!((doc["partition"].clone(), doc["version"].clone()), (json!("USR-A"), json!("4152.2.0")));
        assert!(doc.get("fallback").is_none(), "{doc:#}");
        assert_eq!(boot.slot().map(|s| s.uuid), Some("u3".into()));
        boot.fallback = Some(fallback);
        assert_eq!(
            serde_json::to_value(boot.facts().unwrap()).unwrap()["fallback"],
            json!({"from_partition": "USR-B", "from_version": "4230.0.0", "reason": "gate_failed",
                "at": "2026-12-01T10:00:00Z", "failing": [{"name": "api", "message": "refused"}]})
        );
        assert_eq!(ThisBoot::default().facts(), None, "off A/B there are no boot facts until the backend's");
    }
}
