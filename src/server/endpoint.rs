//! The endpoint as `bootgate run` starts it: bound before the gate runs, stopped
//! gracefully by the same SIGTERM/SIGINT that stops the daemon's loops.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{AppState, Heartbeat, bind, serve};
use crate::engine::Snapshot;
use crate::metrics::{self, Metrics};

/// How long open requests get to finish after a stop request.
const DRAIN: Duration = Duration::from_secs(5);

/// Set once by the first SIGTERM or SIGINT; shared by the gate, the runtime loop and the server.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Installs the signal handlers. From here on a signal no longer kills the process:
    /// whoever runs must select on [`Shutdown::requested`].
    pub fn on_signals() -> std::io::Result<Self> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "stop requested");
            let _ = tx.send(true);
        });
        Ok(Shutdown(rx))
    }

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

/// A running endpoint and what the daemon shares with it.
pub struct Endpoint {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    /// The daemon's main loop beats this; `/livez` reads it.
    pub heartbeat: Heartbeat,
    pub metrics: Arc<Metrics>,
    /// Publishes boot facts (the booted partition) into the health document and metrics.
    pub boot: watch::Sender<Option<Arc<Value>>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Endpoint {
    /// Binds `addr` and serves the snapshots published on `snapshots`.
    ///
    /// Installs the signal handlers and makes the metrics the sink of [`metrics::observe`].
    /// Fails, naming the address, when it cannot listen.
    pub async fn start(addr: SocketAddr, snapshots: watch::Receiver<Arc<Snapshot>>) -> anyhow::Result<Endpoint> {
        let listener = bind(addr).await?;
        let addr = listener.local_addr().context("cannot read the endpoint's bound address")?;
        let shutdown = Shutdown::on_signals().context("cannot install the SIGTERM/SIGINT handlers")?;
        let metrics = Arc::new(Metrics::new(&snapshots.borrow()).context("cannot register the metrics")?);
        metrics::install(Arc::clone(&metrics));
        let heartbeat = Heartbeat::new();
        let (boot, boot_rx) = watch::channel(None);
        let state = AppState::new(snapshots, Arc::clone(&metrics), heartbeat.clone()).with_boot(boot_rx);
        let stop = shutdown.clone();
        let task = tokio::spawn(serve(listener, state, async move { stop.requested().await }));
        tracing::info!(%addr, "health endpoint listening");
        Ok(Endpoint { addr, shutdown, heartbeat, metrics, boot, task })
    }

    /// Waits for the server to finish after a stop request, at most [`DRAIN`].
    pub async fn finish(self) {
        match tokio::time::timeout(DRAIN, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "health endpoint failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "health endpoint task ended abnormally"),
            Err(_) => tracing::warn!(after = ?DRAIN, "health endpoint still had open requests; leaving them"),
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
