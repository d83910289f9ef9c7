//! The endpoint as the daemons start it. Binding never decides the boot: an address
//! in use (or any other listen failure) is logged with the address, shown in
//! systemd's `STATUS=` and retried in the background while the gate goes on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{AppState, RunNow, Secured, bind, serve};
use crate::engine::Snapshot;
use crate::metrics::{self, Metrics};
use crate::process::notify::{self, Notifier};
use crate::process::{Heartbeat, Shutdown};
use crate::record::boot::BootFacts;
use crate::record::history::PastBoot;

/// How long open requests get to finish after a stop request.
const DRAIN: Duration = Duration::from_secs(5);

/// Pause between two attempts to listen.
const RETRY: Duration = Duration::from_secs(5);

/// A running (or still binding) endpoint and what the daemon shares with it.
pub struct Endpoint {
    pub metrics: Arc<Metrics>,
    /// Publishes boot facts (the booted partition) into the health document and metrics.
    pub boot: watch::Sender<Option<Arc<BootFacts>>>,
    /// Publishes the boot history for `/api/v1/system/boots`.
    pub history: watch::Sender<Arc<Vec<PastBoot>>>,
    task: JoinHandle<()>,
    /// Runs on request, for the runtime loop to take.
    run_requests: Option<mpsc::Receiver<RunNow>>,
}

/// Requests waiting for the runtime loop at most; more wait in their handlers.
const RUN_QUEUE: usize = 16;

impl Endpoint {
    /// Serves the snapshots published on `snapshots` at `addr`, binding in the background,
    /// with the TLS and headers of `web_config` when given.
    ///
    /// Makes the metrics the sink of [`metrics::observe`] and starts the status-change feed. Fails only when the metrics
    /// cannot be registered; a listen failure is retried every [`RETRY`] until `shutdown`.
    pub fn start(
        addr: SocketAddr,
        snapshots: watch::Receiver<Arc<Snapshot>>,
        heartbeat: Heartbeat,
        shutdown: Shutdown,
        notifier: Notifier,
        allow_run: bool,
        web_config: Option<PathBuf>,
    ) -> anyhow::Result<Endpoint> {
        let metrics = Arc::new(Metrics::new(&snapshots.borrow()).context("cannot register the metrics")?);
        metrics::install(Arc::clone(&metrics));
        let (boot, boot_rx) = watch::channel(None);
        let (history, history_rx) = watch::channel(Arc::default());
        let events = super::events::start(snapshots.clone());
        let (runs, run_requests) = mpsc::channel(RUN_QUEUE);
        let state = AppState::new(snapshots, Arc::clone(&metrics), heartbeat)
            .with_boot(boot_rx)
            .with_history(history_rx)
            .with_events(events, shutdown.clone())
            .with_runs(runs, allow_run);
        let task = tokio::spawn(listen(addr, web_config, state, shutdown, notifier));
        Ok(Endpoint { metrics, boot, history, task, run_requests: Some(run_requests) })
    }

    /// The runs on request, for the runtime loop (once).
    pub fn take_run_requests(&mut self) -> Option<mpsc::Receiver<RunNow>> {
        self.run_requests.take()
    }

    /// Waits for the server to finish after a stop request, at most [`DRAIN`].
    pub async fn finish(self) {
        match tokio::time::timeout(DRAIN, self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "health endpoint task ended abnormally: {e}"),
            Err(_) => tracing::warn!(after = ?DRAIN, "health endpoint still had open requests; leaving them"),
        }
    }
}

/// Reads the web config, binds (retrying) and serves until `shutdown`. A web config that
/// cannot be used keeps the endpoint down, never open without its protection.
async fn listen(
    addr: SocketAddr,
    web_config: Option<PathBuf>,
    state: AppState,
    shutdown: Shutdown,
    notifier: Notifier,
) {
    let secured = match web_config.as_deref().map(Secured::load).transpose() {
        Ok(secured) => secured.unwrap_or_default(),
        Err(e) => {
            tracing::error!(%addr, error = format!("{e:#}"), "cannot use the web config; the health endpoint stays down and the gate goes on without it");
            state.metrics.set_http_up(false);
            notify::set_note(Some(format!("health endpoint down: {}", first_line(&e))));
            notifier.refresh_status();
            shutdown.requested().await;
            return;
        }
    };
    let mut failures = 0u32;
    let listener = loop {
        match bind(addr).await {
            Ok(listener) => break listener,
            Err(e) => {
                failures += 1;
                let text = format!("health endpoint down: {e:#}; retrying every {}s", RETRY.as_secs());
                // The first failure is an error; repeats stay quiet unless they change.
                if failures == 1 {
                    tracing::error!(%addr, error = format!("{e:#}"), "cannot start the health endpoint ({e:#}); the gate goes on without it");
                    notify::set_note(Some(text));
                    notifier.refresh_status();
                } else {
                    tracing::debug!(%addr, error = format!("{e:#}"), failures, "still cannot listen");
                }
                if shutdown.until(tokio::time::sleep(RETRY)).await.is_none() {
                    return;
                }
            }
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    if failures > 0 {
        notify::set_note(None);
        notifier.refresh_status();
    }
    state.metrics.set_http_up(true);
    let scheme = if secured.is_tls() { "https" } else { "http" };
    tracing::info!(addr = %local, after_failures = failures, scheme, "health endpoint listening on {scheme}://{local}");
    let stop = shutdown.clone();
    if let Err(e) = serve(listener, state, secured, async move { stop.requested().await }).await {
        tracing::error!(%addr, error = %e, "health endpoint on {addr} failed: {e}");
    }
}

/// The first line of `e`'s chain, short enough for `STATUS=`: an invalid web config's
/// first problem, not the whole listing.
fn first_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    text.lines().map(str::trim).filter(|l| !l.is_empty()).take(2).collect::<Vec<_>>().join(" ")
}
