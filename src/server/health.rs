//! `GET /api/v1/system/health` (seed JSON or IETF `application/health+json`) and
//! `GET /api/v1/system/health/{check}`.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::document::{self, Facts};
use super::problem::{Report, member, problem};
use crate::engine::Snapshot;
use crate::record::boot::BootFacts;

const JSON: &str = "application/json";
const HEALTH_JSON: &str = "application/health+json";

/// The last rendering of each health document.
///
/// Under load the route serves these bytes as they are: a new snapshot, new boot
/// facts or a new second (`timestamp`, `uptime_seconds`) renders again.
#[derive(Default)]
pub(super) struct Cache {
    seed: Slot,
    ietf: Slot,
}

#[derive(Default)]
struct Slot(RwLock<Option<Rendered>>);

/// A rendered answer and the inputs it was rendered from. Holding the `Arc`s keeps
/// their addresses from being reused, so pointer equality is identity.
struct Rendered {
    snapshot: Arc<Snapshot>,
    boot: Option<Arc<BootFacts>>,
    second: u64,
    status: StatusCode,
    body: Bytes,
}

impl Slot {
    fn get_or_render(
        &self,
        snapshot: &Arc<Snapshot>,
        boot: &Option<Arc<BootFacts>>,
        second: u64,
        render: impl FnOnce() -> (StatusCode, Bytes),
    ) -> (StatusCode, Bytes) {
        if let Some(r) = self.0.read().unwrap_or_else(PoisonError::into_inner).as_ref() {
            let same_boot = match (&r.boot, boot) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            };
            if Arc::ptr_eq(&r.snapshot, snapshot) && same_boot && r.second == second {
                return (r.status, r.body.clone());
            }
        }
        let (status, body) = render();
        *self.0.write().unwrap_or_else(PoisonError::into_inner) =
            Some(Rendered { snapshot: Arc::clone(snapshot), boot: boot.clone(), second, status, body: body.clone() });
        (status, body)
    }
}

/// 200 while the gate has passed and nothing critical fails, else 503 (so `curl -f` tells the truth).
fn overall_status(s: &Snapshot) -> StatusCode {
    if document::is_ok(s) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

/// `GET /api/v1/system/health`.
pub(super) async fn overall(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let snapshot = state.snapshot();
    let boot = state.boot();
    if wants_health_json(&headers) {
        // The IETF document has no clock-dependent fields: one rendering per snapshot.
        let (status, body) = state
            .cache
            .ietf
            .get_or_render(&snapshot, &boot, 0, || (overall_status(&snapshot), to_bytes(&document::ietf(&snapshot))));
        return respond(status, HEALTH_JSON, body);
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (status, body) = state.cache.seed.get_or_render(&snapshot, &boot, second, || {
        let facts = Facts {
            now,
            boot_id: state.boot_id.as_deref(),
            uptime_seconds: document::uptime(),
            process_uptime_seconds: document::process_uptime(),
            boot: boot.as_deref(),
            device: Some(&state.device),
        };
        (overall_status(&snapshot), to_bytes(&document::seed(&snapshot, &facts)))
    });
    respond(status, JSON, body)
}

/// `GET /api/v1/system/health/{check}`: one component with its name (or its IETF
/// document when asked for `application/health+json`); 404 for unknown names.
pub(super) async fn component(State(state): State<AppState>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let snapshot = state.snapshot();
    let Some(c) = snapshot.checks.iter().find(|c| c.name == name) else {
        let known: Vec<&str> = snapshot.checks.iter().map(|c| c.name.as_str()).collect();
        let detail = format!("no check named `{name}`; ask for one of `checks`");
        return problem(StatusCode::NOT_FOUND, detail, member("checks", known));
    };
    let status = StatusCode::from_u16(c.health().http_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if wants_health_json(&headers) {
        return respond(status, HEALTH_JSON, to_bytes(&document::ietf_one(c)));
    }
    respond(status, JSON, to_bytes(&document::component(c)))
}

/// A health answer; its 503 is the document's verdict, not an error.
fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::VARY, HeaderValue::from_static("Accept")),
    ];
    let mut res = (status, headers, body).into_response();
    res.extensions_mut().insert(Report);
    res
}

/// Compact JSON and a newline, for curl in a terminal.
fn to_bytes(doc: &Value) -> Bytes {
    let mut body = serde_json::to_vec(doc).unwrap_or_default();
    body.push(b'\n');
    Bytes::from(body)
}

/// Whether the client prefers the IETF format: it names `application/health+json`
/// with a quality above zero and at least that of plain `application/json`.
fn wants_health_json(headers: &HeaderMap) -> bool {
    let (mut health, mut plain) = (0.0f32, 0.0f32);
    for value in headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()) {
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if media.eq_ignore_ascii_case(HEALTH_JSON) {
                health = health.max(q);
            } else if media.eq_ignore_ascii_case(JSON) {
                plain = plain.max(q);
            }
        }
    }
    health > 0.0 && health >= plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn negotiation() {
        assert!(wants_health_json(&accept(&["application/health+json"])));
        assert!(wants_health_json(&accept(&["application/json, application/health+json"])));
        assert!(wants_health_json(&accept(&["text/html", "Application/Health+JSON;q=0.5"])));
        assert!(!wants_health_json(&accept(&[])));
        assert!(!wants_health_json(&accept(&["*/*"])));
        assert!(!wants_health_json(&accept(&["application/json"])));
        assert!(!wants_health_json(&accept(&["application/health+json;q=0"])));
        assert!(!wants_health_json(&accept(&["application/health+json;q=0.4, application/json"])));
    }
}
