//! The HTTP endpoint: status page, health document, Kubernetes-style probes, Prometheus
//! metrics and the boot history.
//!
//! Every answer is built from the latest published [`Snapshot`]: a request clones the
//! `Arc` out of the watch channel and never runs a check or waits for one, so a hung
//! check cannot hang a request.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::boot::identity::Device;
use crate::engine::Snapshot;
use crate::metrics::{self, Metrics};
use crate::process::{Heartbeat, Shutdown};
use crate::record::boot::BootFacts;
use crate::record::history::PastBoot;

mod auth;
mod boots;
mod conn;
mod document;
mod endpoint;
pub mod events;
mod health;
mod page;
mod probes;
pub mod problem;
pub mod routes;
mod run;
mod services;
mod tls;
pub mod web_config;

pub use endpoint::{Endpoint, Link};
pub use routes::{Handler, Method, ROUTES, Route};
pub use run::{RunNow, RunReply};

/// What the handlers read. Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct AppState {
    /// The latest snapshot, published by the gate and the runtime loop.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Facts about the booted partition (`partition`, `priority`, `tries`, `successful`) once read.
    pub boot: watch::Receiver<Option<Arc<BootFacts>>>,
    /// The boot history, oldest first, as last read from the state dir.
    pub history: watch::Receiver<Arc<Vec<PastBoot>>>,
    /// Metrics on their own registry.
    pub metrics: Arc<Metrics>,
    /// Beaten by the daemon's main loop; `/livez` checks its age.
    pub heartbeat: Heartbeat,
    /// Status changes for `/api/v1/system/events`.
    pub events: Arc<events::Feed>,
    /// Ends the event streams when the daemon stops.
    pub stop: Option<Shutdown>,
    /// Where runs on request go (the runtime loop), if anywhere.
    pub runs: Option<mpsc::Sender<RunNow>>,
    /// `server.allow_run`.
    pub allow_run: bool,
    boot_id: Option<Arc<str>>,
    /// This device (hostname, machine id, OS), read once when the endpoint starts.
    device: Arc<Device>,
    cache: Arc<health::Cache>,
}

impl AppState {
    /// State over `snapshots`, without boot facts; this boot's id and the device are read once here.
    pub fn new(snapshots: watch::Receiver<Arc<Snapshot>>, metrics: Arc<Metrics>, heartbeat: Heartbeat) -> Self {
        AppState {
            snapshots,
            boot: watch::channel(None).1,
            history: watch::channel(Arc::default()).1,
            metrics,
            heartbeat,
            events: events::Feed::new(),
            stop: None,
            runs: None,
            allow_run: false,
            boot_id: crate::boot::identity::boot_id().map(Arc::from),
            device: Arc::new(Device::read()),
            cache: Arc::default(),
        }
    }

    /// Reports boot facts published on `boot` (`boot` appears in the health document when `Some`).
    pub fn with_boot(mut self, boot: watch::Receiver<Option<Arc<BootFacts>>>) -> Self {
        self.boot = boot;
        self
    }

    /// Names the device as `device` instead of what was read at start.
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = Arc::new(device);
        self
    }

    /// Serves the history published on `history` at `/api/v1/system/boots`.
    pub fn with_history(mut self, history: watch::Receiver<Arc<Vec<PastBoot>>>) -> Self {
        self.history = history;
        self
    }

    /// Streams the changes `events` carries (see [`events::start`]), ending them at `stop`.
    pub fn with_events(mut self, events: Arc<events::Feed>, stop: Shutdown) -> Self {
        self.events = events;
        self.stop = Some(stop);
        self
    }

    /// Sends runs on request to `runs`; `allow` is `server.allow_run`.
    pub fn with_runs(mut self, runs: mpsc::Sender<RunNow>, allow: bool) -> Self {
        self.runs = Some(runs);
        self.allow_run = allow;
        self
    }

    /// The latest snapshot; the borrow ends before anything else happens.
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    fn boot(&self) -> Option<Arc<BootFacts>> {
        self.boot.borrow().clone()
    }
}

/// The router with every route of [`ROUTES`]; tests drive it without a socket.
pub fn app(state: AppState) -> Router {
    ROUTES
        .iter()
        .fold(Router::new(), |router, r| router.route(r.path, handler_of(r)))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(axum::middleware::from_fn(problem::as_problems))
        .layer(axum::middleware::map_response(no_store))
        .with_state(state)
}

/// The handler of `route`, for its method.
fn handler_of(route: &Route) -> MethodRouter<AppState> {
    let handler: MethodRouter<AppState> = match route.handler {
        Handler::Page => get(page::status),
        Handler::Health => get(health::overall),
        Handler::Component => get(health::component),
        Handler::Run => post(run::run),
        Handler::Events => get(events::stream),
        Handler::Boots => get(boots::boots),
        Handler::Service => get(services::service),
        Handler::Livez => get(probes::livez),
        Handler::LivezOne => get(probes::livez_one),
        Handler::Readyz => get(probes::readyz),
        Handler::ReadyzOne => get(probes::readyz_one),
        Handler::Metrics => get(scrape),
    };
    debug_assert!(
        matches!((route.method, route.handler), (Method::Post, Handler::Run) | (Method::Get, _)),
        "{} {} is not the method its handler answers",
        route.method.as_str(),
        route.path
    );
    handler
}

/// Binds the endpoint's address; the error names it.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))
}

/// What a web config turns on, ready for the accept loop and the router; the default is
/// plain HTTP without authentication.
#[derive(Default)]
pub struct Secured {
    tls: Option<TlsAcceptor>,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Option<auth::Auth>,
}

impl Secured {
    /// Reads and validates the web config at `path` and builds its TLS acceptor.
    pub fn load(path: &Path) -> anyhow::Result<Secured> {
        let config = web_config::load(path)?;
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        Ok(Secured { tls, headers: config.headers, auth: auth::Auth::new(config.users) })
    }

    /// Whether the endpoint speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether requests need a user and password.
    pub fn needs_password(&self) -> bool {
        self.auth.is_some()
    }

    /// This web config in force for good: nothing can reload it.
    pub fn fixed(self) -> InForce {
        watch::channel(Arc::new(self)).1
    }
}

/// The web config in force; a reload replaces it whole. Each connection reads it once for
/// its handshake, each request once for its password and headers.
pub type InForce = watch::Receiver<Arc<Secured>>;

/// Serves [`app`] on `listener` until `shutdown` resolves, then lets open requests finish.
///
/// Connections are capped and time-limited (see `conn`), so clients of the endpoint can never
/// take the file descriptors the gate needs. Accept errors are retried, never returned.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    secured: InForce,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = conn::Limits::for_this_process();
    tracing::info!(max_connections = limits.max_connections, "health endpoint connection cap");
    let metrics = Arc::clone(&state.metrics);
    let router = app(state).layer(axum::middleware::from_fn_with_state(secured.clone(), guard));
    let tls = move || secured.borrow().tls.clone();
    conn::run(listener, router, tls, limits, move || metrics.connection_rejected(), shutdown).await;
    Ok(())
}

/// Every route behind the web config in force: its `basic_auth_users`, then its
/// `http_server_config.headers` on every answer, a refusal included.
async fn guard(State(secured): State<InForce>, request: Request, next: Next) -> Response {
    let secured = Arc::clone(&secured.borrow());
    let mut res = match &secured.auth {
        Some(auth) => auth.check(request, next).await,
        None => next.run(request).await,
    };
    for (name, value) in &secured.headers {
        res.headers_mut().insert(name.clone(), value.clone());
    }
    res
}

/// `GET /metrics`: Prometheus text format 0.0.4.
async fn scrape(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshot();
    let boot = state.boot();
    match state.metrics.render(&snapshot, boot.as_deref()) {
        Ok(body) => ([(header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE))], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics: {e}");
            let detail = format!("cannot encode metrics: {e}; this is a bug in bootgate, the log has the details");
            problem::problem(StatusCode::INTERNAL_SERVER_ERROR, detail, Default::default())
        }
    }
}

/// Health answers describe one moment; caches must not replay them.
async fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
