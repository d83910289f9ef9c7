//! The endpoint as the daemons start it. Binding never decides the boot: an address
//! in use (or any other listen failure) is logged with the address, shown in
//! systemd's `STATUS=` and retried in the background while the gate goes on. Neither
//! does the web config: one that cannot be used keeps the endpoint down, reported the
//! same way, until a reload (SIGHUP) brings one that can.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    /// What the runtime loop takes over.
    link: Option<Link>,
}

/// What the runtime loop drives on the endpoint: the runs asked for, and the web config
/// read again on SIGHUP.
pub struct Link {
    /// Runs on request (`POST …/{check}/run`).
    pub requests: Option<mpsc::Receiver<RunNow>>,
    web_config: watch::Sender<Option<PathBuf>>,
}

impl Link {
    /// Reads the web config at `path` again (its certificates and CA too) and puts it in
    /// force for the next connection; `None` is plain HTTP. One that cannot be used is
    /// logged and the one in force kept.
    pub fn reload_web_config(&self, path: Option<PathBuf>) {
        self.web_config.send_replace(path);
    }
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
        let (web_config, web) = watch::channel(web_config);
        let task = tokio::spawn(listen(addr, web, state, shutdown, notifier));
        Ok(Endpoint { metrics, boot, history, task, link: Some(Link { requests: Some(run_requests), web_config }) })
    }

    /// The runs on request and the web config reload, for the runtime loop (once).
    pub fn take_link(&mut self) -> Option<Link> {
        self.link.take()
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
    mut web: watch::Receiver<Option<PathBuf>>,
    state: AppState,
    shutdown: Shutdown,
    notifier: Notifier,
) {
    let Some(first) = first_usable(&mut web, &state, &shutdown, notifier).await else { return };
    let (in_force, secured) = watch::channel(Arc::new(first));
    tokio::spawn(reloads(web, in_force, shutdown.clone()));
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
    let scheme = if secured.borrow().is_tls() { "https" } else { "http" };
    tracing::info!(addr = %local, after_failures = failures, scheme, "health endpoint listening on {scheme}://{local}");
    let stop = shutdown.clone();
    if let Err(e) = serve(listener, state, secured, async move { stop.requested().await }).await {
        tracing::error!(%addr, error = %e, "health endpoint on {addr} failed: {e}");
    }
}

/// The web config to start with: the one given or, while that cannot be used, the next one
/// a reload brings, the endpoint down and saying why meanwhile. `None`: stopped first.
async fn first_usable(
    web: &mut watch::Receiver<Option<PathBuf>>,
    state: &AppState,
    shutdown: &Shutdown,
    notifier: Notifier,
) -> Option<Secured> {
    let mut down = false;
    loop {
        let path = web.borrow_and_update().clone();
        match load(path.as_deref()) {
            Ok(secured) => {
                if down {
                    tracing::info!("the web config can be used now; starting the health endpoint");
                    notify::set_note(None);
                    notifier.refresh_status();
                }
                return Some(secured);
            }
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "cannot use the web config; the health endpoint stays down and the gate goes on without it"
                );
                state.metrics.set_http_up(false);
                notify::set_note(Some(format!("health endpoint down: {}", first_line(&e))));
                notifier.refresh_status();
                down = true;
                tokio::select! {
                    () = shutdown.requested() => return None,
                    changed = web.changed() => if changed.is_err() {
                        shutdown.requested().await;
                        return None;
                    },
                }
            }
        }
    }
}

/// Puts each web config a reload brings in force, until `shutdown` or the runtime loop is
/// gone. One that cannot be used is logged, and the one in force stays.
async fn reloads(mut web: watch::Receiver<Option<PathBuf>>, in_force: watch::Sender<Arc<Secured>>, shutdown: Shutdown) {
    loop {
        tokio::select! {
            () = shutdown.requested() => return,
            changed = web.changed() => if changed.is_err() { return },
        }
        let path = web.borrow_and_update().clone();
        let new = match load(path.as_deref()) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "cannot use the reloaded web config; the endpoint keeps the one in force"
                );
                continue;
            }
        };
        let old = in_force.borrow().clone();
        if (old.is_tls() && !new.is_tls()) || (old.needs_password() && !new.needs_password()) {
            tracing::warn!(
                tls = new.is_tls(),
                basic_auth = new.needs_password(),
                "the reloaded web config drops TLS or basic auth: the endpoint is now open to whoever reaches it"
            );
        }
        tracing::info!(
            tls = new.is_tls(),
            basic_auth = new.needs_password(),
            "web config reloaded; new connections use it"
        );
        in_force.send_replace(Arc::new(new));
    }
}

/// The web config at `path`, or plain HTTP without one.
fn load(path: Option<&Path>) -> anyhow::Result<Secured> {
    Ok(path.map(Secured::load).transpose()?.unwrap_or_default())
}

/// The first line of `e`'s chain, short enough for `STATUS=`: an invalid web config's
/// first problem, not the whole listing.
fn first_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    text.lines().map(str::trim).filter(|l| !l.is_empty()).take(2).collect::<Vec<_>>().join(" ")
}
