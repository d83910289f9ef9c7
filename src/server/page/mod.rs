//! `GET /` and `GET /status`: the status page a person reads on the device's port or
//! through a tunnel. One self-contained HTML answer (inline CSS, no script, no external
//! asset), rendered from the same snapshot, boot facts and history the JSON routes read.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use crate::engine::{GateState, Snapshot};
use crate::history::PastBoot;

mod boot;
mod escape;
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
    pub boot: Option<&'a Value>,
    /// Oldest first, as the daemon keeps it.
    pub history: &'a [PastBoot],
    pub boot_id: Option<&'a str>,
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

/// The line under the verdict about the gate's soak and the rollback window, if any.
pub(super) fn soak_and_rollback_line(s: &Snapshot, now: SystemTime) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(soak) = &s.soak {
        let left = soak.remaining(now).as_secs_f64().ceil() as u64;
        parts.push(format!(
            "Soaking: every critical check has passed; they must keep passing for {} more (of {}) before this boot is accepted.",
            span_text(left),
            span_text(soak.total.as_secs())
        ));
    }
    if let Some(w) = &s.rollback {
        let ends = boot::readable(w.ends);
        parts.push(if w.armed_at(now) {
            let left = span_text(w.remaining(now).as_secs());
            format!("Rollback window open until {ends} ({left} left): {}.", w.note)
        } else if w.armed {
            format!("Rollback window closed at {ends}: this update is kept.")
        } else {
            format!("Rollback window (until {ends}): {}.", w.note)
        });
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `d` for a person: `850 µs`, `1.5 ms`, `120 ms`, `2.3 s`, `3 min 5 s`.
fn duration_text(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{} µs", d.as_micros())
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        span_text(d.as_secs())
    }
}

/// Whole seconds as the two largest units: `42 s`, `3 min 5 s`, `2 h 10 min`, `4 d 3 h`.
fn span_text(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let (big, small) = match (d, h, m) {
        (0, 0, 0) => return format!("{s} s"),
        (0, 0, _) => ((m, "min"), (s, "s")),
        (0, _, _) => ((h, "h"), (m, "min")),
        _ => ((d, "d"), (h, "h")),
    };
    // `1 min`, not `1 min 0 s`.
    match small {
        (0, _) => format!("{} {}", big.0, big.1),
        (n, unit) => format!("{} {} {n} {unit}", big.0, big.1),
    }
}

/// How long before `now` `then` was: `3 s ago`; a time ahead of the clock is `just now`.
fn ago(now: SystemTime, then: SystemTime) -> String {
    match now.duration_since(then) {
        Ok(d) if d.as_secs() > 0 => format!("{} ago", span_text(d.as_secs())),
        _ => "just now".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ages_read_like_a_person_writes_them() {
        let ms = Duration::from_millis;
        assert_eq!(duration_text(Duration::from_micros(850)), "850 µs");
        assert_eq!(duration_text(Duration::from_micros(1500)), "1.5 ms");
        assert_eq!(duration_text(ms(120)), "120 ms");
        assert_eq!(duration_text(ms(2300)), "2.3 s");
        assert_eq!(duration_text(ms(185_000)), "3 min 5 s");
        assert_eq!(span_text(7800), "2 h 10 min");
        assert_eq!((span_text(60), span_text(7200), span_text(86_400)), ("1 min".into(), "2 h".into(), "1 d".into()));
        assert_eq!(span_text(356_400), "4 d 3 h");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(ago(t, t - Duration::from_secs(3)), "3 s ago");
        assert_eq!(ago(t, t + Duration::from_secs(3)), "just now");
        assert_eq!(ago(t, t), "just now");
    }
}
