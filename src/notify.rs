//! systemd notifications. Without `NOTIFY_SOCKET` (a plain foreground run) every
//! call is a no-op, so the daemon behaves the same with or without systemd.

use std::time::Duration;

use sd_notify::NotifyState;

/// Sends READY, STATUS, EXTEND_TIMEOUT_USEC and WATCHDOG to the service manager.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads the watchdog interval systemd granted us, if any.
    pub fn from_env() -> Self {
        Notifier { watchdog: sd_notify::watchdog_enabled() }
    }

    /// How often to ping: half the watchdog interval, as systemd recommends.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog.map(|w| (w / 2).max(Duration::from_millis(100)))
    }

    pub fn status(&self, text: &str) {
        tracing::debug!(status = text, "status");
        send(&[NotifyState::Status(text)]);
    }

    pub fn ready(&self, text: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(text)]);
    }

    /// Asks systemd not to time the start out for another `by`.
    pub fn extend_start(&self, by: Duration) {
        let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
        send(&[NotifyState::ExtendTimeoutUsec(usec)]);
    }

    pub fn watchdog(&self) {
        send(&[NotifyState::Watchdog]);
    }
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
