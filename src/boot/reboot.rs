//! What happens after a failed gate: reboot into the fallback partition, or stay
//! down and say why. The reboot is requested from systemd over D-Bus, never with
//! reboot(2), so services stop cleanly and the journal is flushed.

use std::time::Duration;

use super::BootStatus;
use super::decide::RebootDecision;
use crate::notify::Notifier;

/// Acts on a failed gate's decision, made once before it was recorded: `None` is the
/// policy's `on_failure: stay`. `failing` names the checks for STATUS, `reason` says
/// why when they alone do not (`failed during soak`).
pub async fn on_gate_failure(
    boot: &BootStatus,
    decision: Option<RebootDecision>,
    delay: Duration,
    failing: &str,
    reason: Option<&str>,
    notifier: Notifier,
) {
    let head = reason.map_or_else(|| "gate failed".to_string(), |r| format!("gate {r}"));
    let Some(decision) = decision else {
        let text = format!("{head} (failing: {failing}); on_failure is stay — not rebooting");
        tracing::error!("{text}");
        notifier.status(&text);
        return;
    };
    let text = describe(&decision, boot, failing, delay).replacen("gate failed", &head, 1);
    tracing::error!(decision = ?decision, "{text}");
    notifier.status(&text);
    if decision.reboots() {
        tokio::time::sleep(delay).await;
        if let Err(e) = request_reboot().await {
            let text =
                format!("{head} (failing: {failing}); the reboot request failed: {e} — manual intervention needed");
            tracing::error!("{text}");
            notifier.status(&text);
        }
    }
}

fn describe(decision: &RebootDecision, boot: &BootStatus, failing: &str, delay: Duration) -> String {
    match decision {
        RebootDecision::Reboot { fallback } => {
            let label = boot.partitions.iter().find(|p| p.index == *fallback).map(|p| p.label.as_str()).unwrap_or("");
            format!(
                "gate failed (failing: {failing}); rebooting in {} to fall back to partition {fallback} {label}",
                humantime::format_duration(delay)
            )
        }
        RebootDecision::CountDown { boot_counter } => format!(
            "gate failed (failing: {failing}); rebooting in {}: {}",
            humantime::format_duration(delay),
            super::decide::count_down(*boot_counter)
        ),
        RebootDecision::RebootTo { slot } => format!(
            "gate failed (failing: {failing}); marked the booted slot bad, rebooting in {} to fall back to RAUC slot {slot}",
            humantime::format_duration(delay)
        ),
        RebootDecision::RebootToEntry { bad, next } => format!(
            "gate failed (failing: {failing}); marked boot entry {bad} bad, rebooting in {} to fall back to {next}",
            humantime::format_duration(delay)
        ),
        other => format!("{} (failing: {failing})", other.status_text()),
    }
}

/// Asks logind to reboot; falls back to starting `reboot.target` like `systemctl reboot`.
pub async fn request_reboot() -> Result<(), String> {
    let conn = zbus::Connection::system().await.map_err(|e| format!("cannot connect to the system D-Bus: {e}"))?;
    let logind = conn
        .call_method(
            Some("org.freedesktop.login1"),
            "/org/freedesktop/login1",
            Some("org.freedesktop.login1.Manager"),
            "Reboot",
            &(false,),
        )
        .await;
    let Err(logind_error) = logind else { return Ok(()) };
    tracing::warn!(error = %logind_error, "logind refused the reboot ({logind_error}); asking systemd");
    conn.call_method(
        Some("org.freedesktop.systemd1"),
        "/org/freedesktop/systemd1",
        Some("org.freedesktop.systemd1.Manager"),
        "StartUnit",
        &("reboot.target", "replace-irreversibly"),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("logind: {logind_error}; systemd: {e}"))
}
