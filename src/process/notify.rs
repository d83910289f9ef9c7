//! systemd notifications. Without `NOTIFY_SOCKET` (a plain foreground run) every
//! call is a no-op, so the daemon behaves the same with or without systemd.

use std::sync::Mutex;
use std::time::Duration;

use sd_notify::NotifyState;

/// A condition that every `STATUS=` carries until it clears (e.g. the endpoint cannot listen).
static NOTE: Mutex<Option<String>> = Mutex::new(None);

/// A fact about this boot that every `STATUS=` carries for the whole boot (a fallback).
static BOOT_NOTE: Mutex<Option<String>> = Mutex::new(None);

/// A failed mark of this boot as good, carried by every `STATUS=` until a mark succeeds.
static MARK_NOTE: Mutex<Option<String>> = Mutex::new(None);

/// A hold on updates, carried by every `STATUS=` while it is in force.
static HOLD_NOTE: Mutex<Option<String>> = Mutex::new(None);

/// The latest STATUS text without the note, so a note change can re-send it.
static LAST: Mutex<String> = Mutex::new(String::new());

/// Sets or clears the note appended to every STATUS.
pub fn set_note(note: Option<String>) {
    *NOTE.lock().unwrap_or_else(|e| e.into_inner()) = note;
}

/// Sets or clears the boot note appended to every STATUS.
pub fn set_boot_note(note: Option<String>) {
    *BOOT_NOTE.lock().unwrap_or_else(|e| e.into_inner()) = note;
}

/// Sets or clears the note of a failed mark appended to every STATUS.
pub fn set_mark_note(note: Option<String>) {
    *MARK_NOTE.lock().unwrap_or_else(|e| e.into_inner()) = note;
}

/// Sets or clears the note of a hold on updates appended to every STATUS.
pub fn set_hold_note(note: Option<String>) {
    *HOLD_NOTE.lock().unwrap_or_else(|e| e.into_inner()) = note;
}

fn with_note(text: &str) -> String {
    *LAST.lock().unwrap_or_else(|e| e.into_inner()) = text.to_string();
    let mut out = text.to_string();
    for note in [&MARK_NOTE, &NOTE, &BOOT_NOTE, &HOLD_NOTE] {
        if let Some(note) = note.lock().unwrap_or_else(|e| e.into_inner()).as_deref() {
            out = format!("{out}; {note}");
        }
    }
    bounded(out)
}

/// The longest `STATUS=` text sent. systemd drops a notification datagram of 4,096 bytes
/// or more whole, so a longer STATUS (120 degraded checks reach it) would be lost, and
/// READY=1 with it were they sent together.
pub const STATUS_MAX: usize = 3000;

/// `text` within [`STATUS_MAX`] bytes: cut on a character boundary, saying how much was left out.
pub fn bounded(text: String) -> String {
    if text.len() <= STATUS_MAX {
        return text;
    }
    let left_out = |at: usize| format!("… ({} more bytes)", text.len() - at);
    let mut at = STATUS_MAX - left_out(STATUS_MAX).len();
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    format!("{}{}", &text[..at], left_out(at))
}

/// `EXTEND_TIMEOUT_USEC=` for `by`, in the microseconds systemd reads as a 64-bit number
/// (the sd-notify crate's own state holds only 32 bits, about 71 minutes).
fn extend_message(by: Duration) -> String {
    format!("EXTEND_TIMEOUT_USEC={}", u64::try_from(by.as_micros()).unwrap_or(u64::MAX))
}

/// Sends READY, STATUS, EXTEND_TIMEOUT_USEC and WATCHDOG to the service manager.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    watchdog: Option<Duration>,
    enabled: bool,
}

impl Notifier {
    /// Reads the watchdog interval systemd granted us, if any.
    pub fn from_env() -> Self {
        Notifier { watchdog: sd_notify::watchdog_enabled(), enabled: true }
    }

    /// A notifier that never tells systemd anything (`bootgate serve`: not part of the update path).
    pub fn silent() -> Self {
        Notifier { watchdog: None, enabled: false }
    }

    /// How often to ping: half the watchdog interval, as systemd recommends.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog.map(|w| (w / 2).max(Duration::from_millis(100)))
    }

    /// Says `text` twice, the way an operator looks: one journal entry at `level`, and `STATUS=`.
    pub fn say(&self, level: tracing::Level, text: &str) {
        match level {
            tracing::Level::ERROR => tracing::error!("{text}"),
            tracing::Level::WARN => tracing::warn!("{text}"),
            _ => tracing::info!("{text}"),
        }
        self.status(text);
    }

    pub fn status(&self, text: &str) {
        tracing::debug!(status = text, "status");
        let text = with_note(text);
        self.send(&[NotifyState::Status(&text)]);
    }

    /// Re-sends the latest STATUS with the current note.
    pub fn refresh_status(&self) {
        let last = LAST.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.status(&last);
    }

    /// The STATUS, then READY=1 alone in a datagram of its own: nothing sent beside it
    /// can make systemd drop it.
    pub fn ready(&self, text: &str) {
        self.status(text);
        self.send(&[NotifyState::Ready]);
    }

    /// Asks systemd not to time the start out for another `by`.
    pub fn extend_start(&self, by: Duration) {
        self.send(&[NotifyState::Custom(&extend_message(by))]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// The watchdog's rhythm, for a loop that selects on [`Pings::due`] and then calls [`Self::watchdog`].
    pub fn pings(&self) -> Pings {
        Pings(self.watchdog_period().map(tokio::time::interval))
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!(error = %e, "cannot notify systemd: {e}");
        }
    }
}

/// When the next watchdog ping is due: every half watchdog interval, never without a watchdog.
pub struct Pings(Option<tokio::time::Interval>);

impl Pings {
    /// Resolves at the next ping (at once for the first), or never when there is no watchdog.
    pub async fn due(&mut self) {
        match &mut self.0 {
            Some(every) => {
                every.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Drives `work` to completion, pinging the watchdog through `notifier` whenever a
    /// ping is due: for a wait of the main task that may outlast `WatchdogSec=` (a settle,
    /// a soak, a reboot delay), which a stuck task would not.
    pub async fn during<F: std::future::Future>(&mut self, notifier: Notifier, work: F) -> F::Output {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = self.due() => notifier.watchdog(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_carries_the_endpoint_note_and_the_boot_note() {
        set_boot_note(Some("fell back from USR-B (4230.0.0): its gate failed (failing: api)".into()));
        assert_eq!(with_note("healthy"), "healthy; fell back from USR-B (4230.0.0): its gate failed (failing: api)");
        set_note(Some("health endpoint down".into()));
        assert_eq!(
            with_note("healthy"),
            "healthy; health endpoint down; fell back from USR-B (4230.0.0): its gate failed (failing: api)"
        );
        set_note(None);
        set_boot_note(None);
        assert_eq!(with_note("healthy"), "healthy");
    }

    #[test]
    fn a_long_status_is_cut_under_the_datagram_limit_and_says_so() {
        let long = "é".repeat(4000);
        let cut = bounded(long.clone());
        assert!(cut.len() <= STATUS_MAX, "{}", cut.len());
        let said: usize = cut.rsplit_once("… (").unwrap().1.trim_end_matches(" more bytes)").parse().unwrap();
        assert_eq!(cut.rsplit_once("… (").unwrap().0.len() + said, long.len(), "the count is what was left out");
        assert_eq!(bounded("short".into()), "short");
    }

    #[test]
    fn the_start_timeout_extends_past_32_bits_of_microseconds() {
        assert_eq!(extend_message(Duration::from_secs(2 * 3600)), "EXTEND_TIMEOUT_USEC=7200000000");
        assert_eq!(extend_message(Duration::MAX), format!("EXTEND_TIMEOUT_USEC={}", u64::MAX));
    }
}
