//! What happens after a failed gate: reboot into the fallback partition, or stay
//! down and say why. The reboot is requested from systemd over D-Bus, never with
//! reboot(2), so services stop cleanly and the journal is flushed.

use std::time::{Duration, SystemTime};

use tracing::Level;

use super::BootStatus;
use super::decide::RebootDecision;
use super::decide::count_down;
use crate::engine::GateWord;
use crate::process::Notifier;
use crate::record::boot::OnFailure;
use crate::record::history::Decision;
use crate::util::time::{spelled, timestamp_seconds};

/// Acts on a failed gate's decision, made once before it was recorded: `None` is the
/// policy's `on_failure: stay`. `failing` names the checks for STATUS, `gate` says how the
/// gate failed (`failed`, `failed during soak`).
pub async fn on_gate_failure(
    boot: &BootStatus,
    decision: Option<RebootDecision>,
    delay: Duration,
    failing: &str,
    gate: GateWord<'_>,
    notifier: Notifier,
) {
    let head = format!("gate {gate}");
    let Some(decision) = decision else {
        notifier.say(Level::ERROR, &format!("{head} (failing: {failing}); on_failure is stay — not rebooting"));
        return;
    };
    let text = describe(&decision, boot, failing, delay).replacen("gate failed", &head, 1);
    tracing::error!(decision = ?decision, "{text}");
    notifier.status(&text);
    if decision.reboots() {
        reboot_after(delay, &format!("{head} (failing: {failing})"), notifier).await;
    }
}

/// A failed gate's decision as the page and the health document show it: `None` is the
/// policy's `on_failure: stay`; a reboot is asked for `delay` after `now`.
pub fn shown(decision: Option<&RebootDecision>, boot: &BootStatus, delay: Duration, now: SystemTime) -> OnFailure {
    let stay = |decision, text: String| OnFailure { decision, reboot_to: None, reboot_at: None, text };
    let reboot = |to: String, text: String| OnFailure {
        decision: Decision::Reboot,
        reboot_to: Some(to),
        reboot_at: now.checked_add(delay).map(timestamp_seconds),
        text,
    };
    let Some(decision) = decision else {
        let text = "the policy says on_failure: stay. Fix the failing checks; the boot stays unconfirmed";
        return stay(Decision::StayPolicy, text.into());
    };
    match decision {
        RebootDecision::Reboot { fallback } => {
            let to = match boot.partitions.iter().find(|p| p.index == *fallback) {
                Some(p) => format!("{} (partition {fallback})", p.label),
                None => format!("partition {fallback}"),
            };
            reboot(to, "gptprio boots it next: this slot was never marked good".into())
        }
        RebootDecision::CountDown { boot_counter } => {
            let to = if *boot_counter <= 0 { "the previous deployment" } else { "this deployment again" };
            reboot(to.into(), count_down(*boot_counter))
        }
        RebootDecision::RebootTo { slot } => {
            reboot(format!("RAUC slot {slot}"), "the booted slot is marked bad; RAUC boots the good one".into())
        }
        RebootDecision::RebootToEntry { bad, next } => {
            reboot(next.clone(), format!("boot entry {bad} is marked bad; systemd-boot boots {next} next"))
        }
        RebootDecision::Fallback { to, why } => reboot(to.clone(), why.clone()),
        RebootDecision::StayConfirmed => stay(
            Decision::StayConfirmed,
            "this slot was already marked good, so a reboot would come back here. Fix the failing checks on this image"
                .into(),
        ),
        RebootDecision::StayNoFallback => stay(
            Decision::StayNoFallback,
            "no other slot can boot. Manual intervention needed: fix the failing checks or reinstall a good image"
                .into(),
        ),
        RebootDecision::NotAbSystem => stay(
            Decision::NotAb,
            "this is no A/B system, so there is nothing to fall back to. Fix the failing checks".into(),
        ),
        RebootDecision::StayBackendError { why } => stay(
            Decision::StayBackendError,
            format!("{why}, so a reboot may not fall back. Manual intervention needed: check the boot loader's state"),
        ),
    }
}

/// Waits `delay`, then asks for the reboot; a refused request is said after `what`, as
/// needing manual intervention.
pub async fn reboot_after(delay: Duration, what: &str, notifier: Notifier) {
    tokio::time::sleep(delay).await;
    if let Err(e) = request_reboot().await {
        notifier.say(Level::ERROR, &format!("{what}; the reboot request failed: {e} — manual intervention needed"));
    }
}

fn describe(decision: &RebootDecision, boot: &BootStatus, failing: &str, delay: Duration) -> String {
    let Some((before, after)) = decision.reboot_clauses() else {
        return format!("{} (failing: {failing})", decision.status_text());
    };
    // A gptprio fallback is also named by its label.
    let label = match decision {
        RebootDecision::Reboot { fallback } => {
            let label = boot.partitions.iter().find(|p| p.index == *fallback).map(|p| p.label.as_str());
            format!(" {}", label.unwrap_or(""))
        }
        _ => String::new(),
    };
    format!("gate failed (failing: {failing}); {before}rebooting in {}{after}{label}", spelled(delay))
}

/// How long each step of the reboot request (connecting, each call) may take: a bus
/// that accepts and never answers must end in "manual intervention needed", not in a
/// STATUS that says "rebooting" forever.
pub const BUS_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks logind to reboot; falls back to starting `reboot.target` like `systemctl reboot`.
pub async fn request_reboot() -> Result<(), String> {
    request_reboot_on(None, BUS_TIMEOUT).await
}

/// [`request_reboot`] on the bus at `address` (`None`: the system bus), each step within `limit`.
pub async fn request_reboot_on(address: Option<&str>, limit: Duration) -> Result<(), String> {
    let within =
        |what: &'static str| move |_| format!("the system D-Bus did not answer within {} ({what})", spelled(limit));
    let connect = async {
        match address {
            Some(a) => zbus::connection::Builder::address(a)?.build().await,
            None => zbus::Connection::system().await,
        }
    };
    let conn = tokio::time::timeout(limit, connect)
        .await
        .map_err(within("connecting"))?
        .map_err(|e| format!("cannot connect to the system D-Bus: {e}"))?;
    let logind = conn.call_method(
        Some("org.freedesktop.login1"),
        "/org/freedesktop/login1",
        Some("org.freedesktop.login1.Manager"),
        "Reboot",
        &(false,),
    );
    let logind_error = match tokio::time::timeout(limit, logind).await.map_err(within("logind's Reboot"))? {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    tracing::warn!(error = %logind_error, "logind refused the reboot ({logind_error}); asking systemd");
    let systemd = conn.call_method(
        Some("org.freedesktop.systemd1"),
        "/org/freedesktop/systemd1",
        Some("org.freedesktop.systemd1.Manager"),
        "StartUnit",
        &("reboot.target", "replace-irreversibly"),
    );
    tokio::time::timeout(limit, systemd)
        .await
        .map_err(within("systemd's StartUnit"))?
        .map(|_| ())
        .map_err(|e| format!("logind: {logind_error}; systemd: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::PartitionInfo;

    /// A stand-in for a wedged bus (the real one cannot be made to hang here): a socket
    /// that accepts every connection and never says a word.
    #[tokio::test]
    async fn a_bus_that_never_answers_ends_the_request_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                open.push(conn);
            }
        });
        let address = format!("unix:path={}", path.display());
        let asked = request_reboot_on(Some(&address), Duration::from_millis(500));
        let err = tokio::time::timeout(Duration::from_secs(20), asked).await.expect("the request ends").unwrap_err();
        assert!(err.contains("did not answer within 500ms"), "{err}");
        held.abort();
    }

    #[test]
    fn the_page_is_told_where_a_reboot_leads_and_when_or_why_it_stays() {
        let usr_a = PartitionInfo::usr(3, 1, 0, true).with_label("USR-A");
        let boot = BootStatus { partitions: vec![usr_a], ..BootStatus::default() };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let shown = |d: Option<RebootDecision>| shown(d.as_ref(), &boot, Duration::from_secs(10), now);
        let gpt = shown(Some(RebootDecision::Reboot { fallback: 3 }));
        assert_eq!(gpt.decision, Decision::Reboot);
        assert_eq!(gpt.reboot_to.as_deref(), Some("USR-A (partition 3)"));
        assert_eq!(gpt.reboot_at.as_deref(), Some("1970-01-01T00:01:50Z"));
        let rauc = shown(Some(RebootDecision::RebootTo { slot: "A".into() }));
        assert_eq!(rauc.reboot_to.as_deref(), Some("RAUC slot A"));
        let grub = shown(Some(RebootDecision::CountDown { boot_counter: 0 }));
        assert_eq!(grub.reboot_to.as_deref(), Some("the previous deployment"));
        let stuck = shown(Some(RebootDecision::StayNoFallback));
        assert_eq!((stuck.decision, stuck.reboot_at), (Decision::StayNoFallback, None));
        assert!(stuck.text.contains("Manual intervention needed"), "{}", stuck.text);
        assert_eq!(shown(None).decision, Decision::StayPolicy);
    }

    #[test]
    fn each_reboot_says_what_was_marked_when_and_where_it_leads() {
        let usr_a = PartitionInfo::usr(1, 1, 0, true).with_label("USR-A");
        let boot = BootStatus { partitions: vec![usr_a], ..BootStatus::default() };
        let said = |d: RebootDecision| describe(&d, &boot, "api", Duration::from_secs(1));
        assert_eq!(
            said(RebootDecision::Reboot { fallback: 1 }),
            "gate failed (failing: api); rebooting in 1s to fall back to partition 1 USR-A"
        );
        assert_eq!(
            said(RebootDecision::CountDown { boot_counter: 0 }),
            "gate failed (failing: api); rebooting in 1s: GRUB's boot_counter is 0, so GRUB boots the previous deployment"
        );
        assert_eq!(
            said(RebootDecision::RebootTo { slot: "rootfs.0".into() }),
            "gate failed (failing: api); marked the booted slot bad, rebooting in 1s to fall back to RAUC slot rootfs.0"
        );
        assert_eq!(
            said(RebootDecision::RebootToEntry { bad: "b.conf".into(), next: "a.conf".into() }),
            "gate failed (failing: api); marked boot entry b.conf bad, rebooting in 1s to fall back to a.conf"
        );
        assert_eq!(
            said(RebootDecision::StayNoFallback),
            "gate failed; no fallback partition — manual intervention needed (failing: api)"
        );
    }
}
