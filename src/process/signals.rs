//! The daemon's own life: stop and reload signals, the main-loop heartbeat, and the
//! child-subreaper role. The gate and the runtime loop select on these; the HTTP
//! server only receives a stop future and a heartbeat reader, so neither the gate's
//! stop nor `/livez` depends on whether the endpoint could bind.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// Proof that the daemon's main task (the gate, then the runtime loop) still runs.
///
/// The daemon beats every [`Heartbeat::PERIOD`] from the same task that drives the
/// gate and the runtime loop, so a task stuck in a blocking call stops the beats;
/// `/livez` fails once the last beat is older than [`Heartbeat::STALE`].
#[derive(Debug, Clone)]
pub struct Heartbeat(Arc<Beats>);

#[derive(Debug)]
struct Beats {
    origin: Instant,
    /// Milliseconds after `origin` of the latest beat.
    last: AtomicU64,
}

impl Heartbeat {
    /// How often the daemon beats.
    pub const PERIOD: Duration = Duration::from_secs(1);
    /// Silence after which the main loop counts as dead: ten missed beats.
    pub const STALE: Duration = Duration::from_secs(10);

    /// A heartbeat that has just beaten.
    pub fn new() -> Self {
        Self::silent_since(Instant::now())
    }

    /// A heartbeat whose latest beat was at `at` (for a daemon that hangs, in tests).
    pub fn silent_since(at: Instant) -> Self {
        Heartbeat(Arc::new(Beats { origin: at, last: AtomicU64::new(0) }))
    }

    /// Records a beat now.
    pub fn beat(&self) {
        let ms = self.0.origin.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        self.0.last.store(ms, Ordering::Relaxed);
    }

    /// Time since the latest beat.
    pub fn age(&self) -> Duration {
        self.age_at(Instant::now())
    }

    /// Time from the latest beat to `now`.
    pub fn age_at(&self, now: Instant) -> Duration {
        let last = Duration::from_millis(self.0.last.load(Ordering::Relaxed));
        now.saturating_duration_since(self.0.origin).saturating_sub(last)
    }

    /// Drives `work` to completion in the calling task, beating every [`Self::PERIOD`] meanwhile.
    pub async fn keep<F: Future>(&self, work: F) -> F::Output {
        let mut every = tokio::time::interval(Self::PERIOD);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = every.tick() => self.beat(),
            }
        }
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
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

    #[test]
    fn heartbeat_goes_stale_without_beats() {
        let hb = Heartbeat::new();
        assert!(hb.age() < Heartbeat::STALE);
        let later = Instant::now() + Heartbeat::STALE + Duration::from_secs(1);
        assert!(hb.age_at(later) > Heartbeat::STALE);
    }

    #[tokio::test]
    async fn keep_beats_while_work_runs() {
        let hb = Heartbeat::new();
        let work = Duration::from_millis(1300);
        let answer = hb.keep(async {
            tokio::time::sleep(work).await;
            42
        });
        assert_eq!(answer.await, 42);
        // Beats at 0 s and 1 s: the last one is about 0.3 s old, not 1.3 s.
        assert!(hb.age() < Duration::from_millis(900), "age {:?}", hb.age());
    }
}
