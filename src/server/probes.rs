//! Kubernetes-style probes in plain text: `/livez` (the process and its main loop are
//! alive) and `/readyz` (the gate passed and no critical check fails).
//!
//! Both answer `ok` when everything passes. With `?verbose`, or whenever something
//! fails, they list one line per probe (`[+]name ok`, `[-]name failed: reason`) and
//! end with `livez check passed` / `readyz check failed`. `?exclude=name`
//! (repeatable) leaves a probe out of the listing and the decision. A failing probe
//! answers 503, like the health document.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::checks::Status;
use crate::engine::{GateState, Snapshot};
use crate::lifecycle::Heartbeat;

/// One line of a probe answer.
struct Probe {
    name: String,
    /// `None` when it passes, else why not.
    failure: Option<String>,
    /// Listed, but never fails the probe (optional checks in `/readyz`).
    advisory: bool,
}

impl Probe {
    fn new(name: impl Into<String>, failure: Option<String>) -> Self {
        Probe { name: name.into(), failure, advisory: false }
    }
}

/// `GET /livez`: `ping` (this answer) and `heartbeat` (the main loop).
pub(super) async fn livez(State(state): State<AppState>, Query(params): Query<Vec<(String, String)>>) -> Response {
    let age = state.heartbeat.age();
    let heartbeat = (age > Heartbeat::STALE)
        .then(|| format!("main loop silent for {}s (limit {}s)", age.as_secs(), Heartbeat::STALE.as_secs()));
    answer("livez", vec![Probe::new("ping", None), Probe::new("heartbeat", heartbeat)], &params)
}

/// `GET /readyz`: `gate`, then one probe per check; only critical checks can fail it.
pub(super) async fn readyz(State(state): State<AppState>, Query(params): Query<Vec<(String, String)>>) -> Response {
    answer("readyz", readiness(&state.snapshot()), &params)
}

fn readiness(s: &Snapshot) -> Vec<Probe> {
    let gate = match s.gate {
        GateState::Passed => None,
        GateState::Running => Some("boot gate still running".to_string()),
        GateState::Failed => Some("boot gate failed".to_string()),
    };
    let mut probes = vec![Probe::new("gate", gate)];
    for c in &s.checks {
        let failure = (!c.status.passed()).then(|| match c.status {
            Status::Pending => format!("pending: {}", c.message),
            Status::Skipped => format!("skipped: {}", c.message),
            _ => c.message.clone(),
        });
        probes.push(Probe { name: c.name.clone(), failure, advisory: !c.critical });
    }
    probes
}

/// Renders probes the way Kubernetes' `/livez` and `/readyz` do.
fn answer(endpoint: &str, probes: Vec<Probe>, params: &[(String, String)]) -> Response {
    let verbose = params.iter().any(|(k, _)| k == "verbose");
    let excluded: Vec<&str> = params.iter().filter(|(k, _)| k == "exclude").map(|(_, v)| v.as_str()).collect();
    let unknown: Vec<&str> = excluded.iter().copied().filter(|e| !probes.iter().any(|p| p.name == *e)).collect();
    let probes: Vec<Probe> = probes.into_iter().filter(|p| !excluded.contains(&p.name.as_str())).collect();
    let ok = probes.iter().all(|p| p.failure.is_none() || p.advisory);

    let mut body = String::new();
    if ok && !verbose {
        body.push_str("ok\n");
    } else {
        for p in &probes {
            match &p.failure {
                None => body.push_str(&format!("[+]{} ok\n", p.name)),
                Some(why) if p.advisory => {
                    body.push_str(&format!("[-]{} failed: {} (optional)\n", p.name, one_line(why)))
                }
                Some(why) => body.push_str(&format!("[-]{} failed: {}\n", p.name, one_line(why))),
            }
        }
        if !unknown.is_empty() {
            let quoted: Vec<String> = unknown.iter().map(|u| format!("{u:?}")).collect();
            body.push_str(&format!(
                "warn: some health checks cannot be excluded: no matches for {}\n",
                quoted.join(",")
            ));
        }
        body.push_str(&format!("{endpoint} check {}\n", if ok { "passed" } else { "failed" }));
    }
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    (status, headers, body).into_response()
}

/// Keeps a reason on its line, whatever a check's message holds.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
