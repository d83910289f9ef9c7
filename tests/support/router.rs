//! The router without a socket (`tower::ServiceExt::oneshot`): check results and
//! snapshots to serve, the state `run` would publish, and the one client for it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use bootgate::checks::Status;
use bootgate::engine::{CheckResult, GateState, Snapshot};
use bootgate::metrics::Metrics;
use bootgate::process::Heartbeat;
use bootgate::server::{AppState, app};
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt as _;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A result of check `name` of `kind` as the engine reports it: one attempt of 1.5 ms
/// just now, with the values a `disk` or `http` check observes; none while pending.
pub fn check(name: &str, kind: &'static str, critical: bool, status: Status) -> CheckResult {
    let took = Duration::from_micros(1500);
    let result = CheckResult::finished(name, critical, status).with_kind(kind);
    if status == Status::Pending {
        return result.with_message("pending: not run yet").with_attempts(0, took).with_failures(0);
    }
    let result = result
        .with_message(format!("{name}: {}", status.as_str()))
        .with_attempts(1, took)
        .with_last_check(SystemTime::now());
    match kind {
        "disk" => result.with_observed("free_space_percent", 65.2).with_observed("io_errors", 0),
        "http" => result.with_observed("response_ms", 12.5),
        _ => result,
    }
}

/// A snapshot of `checks` with the gate in state `gate` (decided in 250 ms unless running).
pub fn snapshot(gate: GateState, checks: Vec<CheckResult>) -> Snapshot {
    let gate_duration = (gate != GateState::Running).then(|| Duration::from_millis(250));
    Snapshot {
        gate,
        checks,
        gate_started: SystemTime::now(),
        gate_duration,
        gate_failing: Vec::new(),
        ..Snapshot::new(&[])
    }
}

/// A passed gate: a critical disk check and an optional http check, both passing.
pub fn healthy() -> Snapshot {
    snapshot(
        GateState::Passed,
        vec![check("storage", "disk", true, Status::Pass), check("api", "http", false, Status::Pass)],
    )
}

/// The state serving `s` for good, with `metrics` and `heartbeat`.
pub fn state_with(s: Snapshot, metrics: Arc<Metrics>, heartbeat: Heartbeat) -> AppState {
    // The receiver keeps the last value after the sender is gone.
    AppState::new(watch::channel(Arc::new(s)).1, metrics, heartbeat)
}

/// The state serving `s` for good, with its metrics and a main loop that beats.
pub fn state(s: Snapshot) -> AppState {
    let metrics = Arc::new(Metrics::new(&s).unwrap());
    state_with(s, metrics, Heartbeat::new())
}

/// A router over `s`, plus the sender that publishes later snapshots.
pub fn router(s: Snapshot) -> (Router, watch::Sender<Arc<Snapshot>>) {
    let metrics = Arc::new(Metrics::new(&s).unwrap());
    let (tx, rx) = watch::channel(Arc::new(s));
    (app(AppState::new(rx, metrics, Heartbeat::new())), tx)
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Only the status of `METHOD uri`, its body left unread (a stream never ends).
pub async fn status(app: &Router, method: Method, uri: &str) -> StatusCode {
    app.clone().oneshot(request(method, uri, None)).await.unwrap().status()
}

/// `METHOD uri`, with `Accept: accept` if given, read whole.
pub async fn call(app: &Router, method: Method, uri: &str, accept: Option<&str>) -> Answer {
    let res = app.clone().oneshot(request(method, uri, accept)).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    Answer { status, headers, body: String::from_utf8(bytes.to_vec()).unwrap() }
}

pub async fn get(app: &Router, uri: &str) -> Answer {
    call(app, Method::GET, uri, None).await
}

fn request(method: Method, uri: &str, accept: Option<&str>) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(accept) = accept {
        req = req.header(header::ACCEPT, accept);
    }
    req.body(Body::empty()).unwrap()
}
