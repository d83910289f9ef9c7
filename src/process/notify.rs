//! systemd notifications. Without `NOTIFY_SOCKET` (a plain foreground run) every
//! call is a no-op, so the daemon behaves the same with or without systemd.

use std::sync::Mutex;
use std::time::Duration;

use sd_notify::NotifyState;

/// A condition that every `STATUS=` carries until it clears (e.g. the endpoint cannot listen).
static NOTE: Mutex<Option<String>> = Mutex::new(None);

/// A fact about this boot that every `STATUS=` carries for the whole boot (a fallback).
static BOOT_NOTE: Mutex<Option<String>> = Mutex::new(None);

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

fn with_note(text: &str) -> String {
    *LAST.lock().unwrap_or_else(|e| e.into_inner()) = text.to_string();
    let mut out = text.to_string();
    for note in [&NOTE, &BOOT_NOTE] {
        if let Some(note) = note.lock().unwrap_or_else(|e| e.into_inner()).as_deref() {
            out = format!("{out}; {note}");
        }
    }
    out
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

    pub fn ready(&self, text: &str) {
        let text = with_note(text);
        self.send(&[NotifyState::Ready, NotifyState::Status(&text)]);
    }

    /// Asks systemd not to time the start out for another `by`.
    pub fn extend_start(&self, by: Duration) {
        let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
        self.send(&[NotifyState::ExtendTimeoutUsec(usec)]);
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
}
