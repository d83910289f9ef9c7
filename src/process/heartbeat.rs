//! The main loop's heartbeat: the daemon beats from the task that drives the gate and
//! the runtime loop, and `/livez` fails once the beats stop.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
