//! `POST /api/v1/system/health/{check}/run`: runs one check now (once, no retries) through
//! the runtime loop and answers its result as the snapshot now reports it.
//!
//! Only with `server.allow_run: true` (403 otherwise): whoever reaches the port could start
//! exec checks. The runtime loop keeps one run in flight per check (a second request gets
//! the same result) and starts one on request at most once a second per check (429 beyond).
//! While the gate runs there is no runtime loop yet: 503.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::time::Duration;

use tokio::sync::oneshot;

use super::AppState;
use super::document;
use super::problem::{member, problem};
use crate::engine::{CheckResult, GateState};

/// A request to run one check now, answered on `reply`.
#[derive(Debug)]
pub struct RunNow {
    pub check: String,
    pub reply: oneshot::Sender<RunReply>,
}

/// What a run on request came to.
#[derive(Debug)]
pub enum RunReply {
    /// The check ran (or was already running); its result as now reported.
    Done(Box<CheckResult>),
    /// No check has this name.
    Unknown,
    /// It was started on request too recently; try again after this long.
    TooSoon(Duration),
}

/// `POST /api/v1/system/health/{check}/run`.
pub(super) async fn run(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    if !state.allow_run {
        let detail =
            "running checks on request is off; set `server.allow_run: true` in the policy and restart bootgate";
        return problem(StatusCode::FORBIDDEN, detail, Map::new());
    }
    let snapshot = state.snapshot();
    if !snapshot.checks.iter().any(|c| c.name == name) {
        let known: Vec<&str> = snapshot.checks.iter().map(|c| c.name.as_str()).collect();
        let detail = format!("no check named `{name}`; run one of `checks`");
        return problem(StatusCode::NOT_FOUND, detail, member("checks", known));
    }
    let (Some(runs), false) = (&state.runs, snapshot.gate == GateState::Running) else {
        return unavailable("the boot gate is still running; checks run on request once it has decided");
    };
    let (reply, answered) = oneshot::channel();
    if runs.send(RunNow { check: name.clone(), reply }).await.is_err() {
        return unavailable("the runtime loop is not running");
    }
    match answered.await {
        Ok(RunReply::Done(result)) => answer(StatusCode::OK, document::component(&result)),
        Ok(RunReply::Unknown) => {
            let detail = format!(
                "no check named `{name}` any more (the policy was reloaded); read the health document for the checks now"
            );
            problem(StatusCode::NOT_FOUND, detail, Map::new())
        }
        Ok(RunReply::TooSoon(left)) => {
            let secs = left.as_secs_f64().ceil().max(1.0) as u64;
            let detail = format!("`{name}` was run on request less than a second ago; try again after {secs} s");
            let mut res = problem(StatusCode::TOO_MANY_REQUESTS, detail, Map::new());
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            res
        }
        // The run was dropped: the policy was reloaded or the daemon is stopping.
        Err(_) => unavailable("the run was cancelled (policy reload or shutdown); try again"),
    }
}

fn unavailable(why: &str) -> Response {
    let mut res = problem(StatusCode::SERVICE_UNAVAILABLE, why, Map::new());
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    res
}

fn answer(status: StatusCode, doc: Value) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], doc.to_string()).into_response()
}
