//! `GET /` and `GET /status`: the status page a person reads on the device's port or
//! through a tunnel. One self-contained HTML answer (inline CSS, no script, no external
//! asset), rendered from the same snapshot, boot facts and history the JSON routes read.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::boot::identity::Device;
use crate::engine::{GateState, Snapshot};
use crate::record::boot::BootFacts;
use crate::record::history::PastBoot;
use crate::util::time::{readable_secs, readable_time};

mod boot;
mod escape;
mod headline;
mod slots;
mod template;

/// Refresh interval while the gate runs: its verdict is minutes away at most.
const REFRESH_RUNNING: u64 = 5;
/// Refresh interval once the gate decided; the runtime loop re-checks about this often.
const REFRESH_DECIDED: u64 = 15;
/// The longest refresh interval a query may ask for.
const REFRESH_MAX: u64 = 3600;

/// Even if escaping were ever bypassed, a browser runs no script and loads nothing from
/// this page: the inline style is all it may use.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Everything one rendering reads, taken once per request.
pub(super) struct View<'a> {
    pub snapshot: &'a Snapshot,
    /// The health document's `boot` (slot attributes, OS version, any `fallback`).
    pub boot: Option<&'a BootFacts>,
    /// Oldest first, as the daemon keeps it.
    pub history: &'a [PastBoot],
    pub boot_id: Option<&'a str>,
    /// Which device the page is of.
    pub device: &'a Device,
    pub now: SystemTime,
    pub uptime_seconds: Option<u64>,
    /// Seconds between reloads; `None` when the reader turned it off.
    pub refresh: Option<u64>,
}

/// `GET /` and `GET /status`: `?refresh=N` sets the reload interval in seconds, 0 turns it off.
pub(super) async fn status(State(state): State<AppState>, Query(query): Query<Vec<(String, String)>>) -> Response {
    let snapshot = state.snapshot();
    let mut refresh = Some(if snapshot.gate == GateState::Running { REFRESH_RUNNING } else { REFRESH_DECIDED });
    for (key, value) in &query {
        if key == "refresh" {
            match value.parse::<u64>() {
                Ok(0) => refresh = None,
                Ok(n) if n <= REFRESH_MAX => refresh = Some(n),
                _ => {
                    let text =
                        format!("refresh must be a whole number of seconds from 0 to {REFRESH_MAX}, not `{value}`\n");
                    return (StatusCode::BAD_REQUEST, text).into_response();
                }
            }
        }
    }
    let boot = state.boot();
    let history: Arc<Vec<PastBoot>> = state.history.borrow().clone();
    let view = View {
        snapshot: &snapshot,
        boot: boot.as_deref(),
        history: &history,
        boot_id: state.boot_id.as_deref(),
        device: &state.device,
        now: SystemTime::now(),
        uptime_seconds: super::document::uptime(),
        refresh,
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    (headers, template::render(&view)).into_response()
}

/// The line under the headline about the rollback window, if the policy has one.
pub(super) fn rollback_line(s: &Snapshot, now: SystemTime) -> Option<String> {
    let w = s.rollback.as_ref()?;
    let ends = readable_time(w.ends);
    Some(if w.armed_at(now) {
        let left = readable_secs(w.remaining(now).as_secs());
        format!("Rollback window open until {ends} ({left} left): {}.", w.note)
    } else if w.armed {
        format!("Rollback window closed at {ends}: this update is kept.")
    } else {
        // Never armed: it has no end worth showing.
        format!("Rollback window: {}.", w.note)
    })
}
