//! The stop and reload signals of a daemon (`run`, `serve`). The gate and the runtime
//! loop select on these; the HTTP server only receives a stop future, so the gate's
//! stop does not depend on whether the endpoint could bind.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// The signals a daemon (`run`, `serve`) reacts to, installed once.
#[derive(Debug, Clone)]
pub struct Signals {
    /// SIGTERM or SIGINT.
    pub shutdown: Shutdown,
    /// SIGHUP.
    pub reload: Reload,
}

impl Signals {
    /// Installs the handlers. From here on these signals no longer kill the process:
    /// whoever runs must select on [`Shutdown::requested`] and [`Reload::requested`].
    pub fn install() -> std::io::Result<Self> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (reload_tx, reload_rx) = watch::channel(0u64);
        tokio::spawn(async move {
            let name = loop {
                tokio::select! {
                    _ = term.recv() => break "SIGTERM",
                    _ = int.recv() => break "SIGINT",
                    _ = hup.recv() => {
                        tracing::info!(signal = "SIGHUP", "policy reload requested");
                        reload_tx.send_modify(|n| *n += 1);
                    }
                }
            };
            tracing::info!(signal = name, "stop requested ({name})");
            let _ = stop_tx.send(true);
            // Keep the SIGHUP handler (and its receivers) alive while the daemon stops.
            std::future::pending::<()>().await;
        });
        Ok(Signals { shutdown: Shutdown(stop_rx), reload: Reload(reload_rx) })
    }
}

/// Set once by the first SIGTERM or SIGINT; shared by the gate, the runtime loop and the server.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A shutdown that only [`ShutdownTrigger::trigger`] requests, for tests.
    pub fn manual() -> (ShutdownTrigger, Self) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// Resolves once a stop was requested (at once if it already was).
    pub async fn requested(&self) {
        let mut rx = self.0.clone();
        // An error means the signal task is gone, which only happens as the runtime ends.
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Runs `work` to completion unless a stop is requested first (then `None`).
    pub async fn until<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::select! {
            out = work => Some(out),
            _ = self.requested() => None,
        }
    }
}

/// Requests the stop of a [`Shutdown::manual`].
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

/// Counts SIGHUPs; each new one asks the daemon to re-read its policy.
#[derive(Debug, Clone)]
pub struct Reload(watch::Receiver<u64>);

impl Reload {
    /// Resolves at the next SIGHUP not yet seen by this receiver (never, once the signal task is gone).
    pub async fn requested(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn until_runs_work_until_a_stop_is_requested() {
        let (trigger, shutdown) = Shutdown::manual();
        assert_eq!(shutdown.until(async { 7 }).await, Some(7));
        trigger.trigger();
        assert_eq!(shutdown.until(std::future::pending::<()>()).await, None);
        // Once requested, every later wait ends at once.
        shutdown.clone().requested().await;
    }
}
