//! `GET /`: the routes, one line each, for someone who points curl or a browser at the port.

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;

/// Every route and what it answers; kept beside [`super::app`]'s list.
const ROUTES: &[(&str, &str)] = &[
    ("/", "this list"),
    (
        "/api/v1/system/health",
        "health document (JSON; application/health+json on request); 503 unless healthy or degraded",
    ),
    ("/api/v1/system/health/{check}", "one check's part of it"),
    ("/api/v1/system/boots", "the boot history, newest first (JSON); ?limit=N"),
    ("/livez", "ok while the daemon's main loop runs; ?verbose, ?exclude=probe"),
    ("/livez/{probe}", "one liveness probe: ping, heartbeat"),
    ("/readyz", "ok when the boot gate passed and no critical check fails; ?verbose, ?exclude=check"),
    ("/readyz/{probe}", "one readiness probe: gate or a check"),
    ("/metrics", "Prometheus metrics"),
];

/// `GET /`: plain text, one route a line.
pub(super) async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], render())
}

fn render() -> String {
    let width = ROUTES.iter().map(|(path, _)| path.len()).max().unwrap_or(0);
    let mut out = format!("bootgate {}: boot health gate\n\n", env!("CARGO_PKG_VERSION"));
    for (path, what) in ROUTES {
        out.push_str(&format!("GET {path:<width$}  {what}\n"));
    }
    out
}
