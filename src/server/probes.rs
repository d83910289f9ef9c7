//! Kubernetes-style probes in plain text: `/livez` (the process and its main loop are
//! alive) and `/readyz` (the gate passed and no critical check fails).
//!
//! Both answer `ok` when everything passes. With `?verbose`, or whenever something
//! fails, they list one line per probe (`[+]name ok`, `[-]name failed: reason`) and
//! end with `livez check passed` / `readyz check failed`. `?exclude=name`
//! (repeatable) leaves a probe out of the decision and lists it as
//! `[+]name excluded: ok`. `/livez/{name}` and `/readyz/{name}` answer for one probe.
//!
//! A failing probe answers 503 where kube-apiserver answers 500: 503 is what the
//! health document answers for the same state, and a kubelet counts every code
//! outside 200–399 as a failure, so the probes lose nothing by agreeing with it.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::problem::{Report, member, problem};
use crate::checks::Status;
use crate::engine::{GateWord, Snapshot};
use crate::process::Heartbeat;
use crate::util::text::one_line;

/// One line of a probe answer.
struct Probe {
    name: String,
    /// `None` when it passes, else why not.
    failure: Option<String>,
    /// Not decided yet (the gate running or soaking, a check without a result): it does
    /// not pass, and says `pending`, not `failed`.
    pending: bool,
    /// Listed, but never fails the probe (optional checks in `/readyz`).
    advisory: bool,
}

impl Probe {
    fn new(name: impl Into<String>, failure: Option<String>) -> Self {
        Probe { name: name.into(), failure, pending: false, advisory: false }
    }

    fn passes(&self) -> bool {
        self.failure.is_none() || self.advisory
    }

    /// `[+]name ok`, `[-]name failed: why` (or `pending: why`), with `(optional)` when it
    /// cannot fail the probe.
    fn line(&self) -> String {
        let word = if self.pending { "pending" } else { "failed" };
        // A pending check's message says `pending:` itself; once is enough.
        let why = |why: &str| one_line(if self.pending { why.strip_prefix("pending: ").unwrap_or(why) } else { why });
        match &self.failure {
            None => format!("[+]{} ok\n", self.name),
            Some(text) if self.advisory => format!("[-]{} {word}: {} (optional)\n", self.name, why(text)),
            Some(text) => format!("[-]{} {word}: {}\n", self.name, why(text)),
        }
    }
}

/// `GET /livez`: `ping` (this answer) and `heartbeat` (the main loop).
pub(super) async fn livez(State(state): State<AppState>, Query(params): Query<Vec<(String, String)>>) -> Response {
    answer("livez", liveness(&state), &params)
}

fn liveness(state: &AppState) -> Vec<Probe> {
    let age = state.heartbeat.age();
    let heartbeat = (age > Heartbeat::STALE)
        .then(|| format!("main loop silent for {}s (limit {}s)", age.as_secs(), Heartbeat::STALE.as_secs()));
    vec![Probe::new("ping", None), Probe::new("heartbeat", heartbeat)]
}

/// `GET /livez/{probe}`: one liveness probe.
pub(super) async fn livez_one(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    one(liveness(&state), &name)
}

/// `GET /readyz/{probe}`: the gate or one check.
pub(super) async fn readyz_one(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    one(readiness(&state.snapshot()), &name)
}

/// `GET /readyz`: `gate`, then one probe per check; only critical checks can fail it.
pub(super) async fn readyz(State(state): State<AppState>, Query(params): Query<Vec<(String, String)>>) -> Response {
    answer("readyz", readiness(&state.snapshot()), &params)
}

fn readiness(s: &Snapshot) -> Vec<Probe> {
    let word = s.gate_word();
    let gate = match word {
        GateWord::Passed => None,
        undecided if undecided.undecided() => Some(format!("boot gate {word}, not decided yet")),
        _ => Some(format!("boot gate {word}")),
    };
    let mut probes = vec![Probe { pending: word.undecided(), ..Probe::new("gate", gate) }];
    for c in &s.checks {
        // Pending, retrying and skipped messages name their state themselves.
        let failure = (!c.status.passed()).then(|| c.message.clone());
        let (pending, advisory) = (c.status == Status::Pending, !c.blocks());
        probes.push(Probe { name: c.name.clone(), failure, pending, advisory });
    }
    probes
}

/// Renders probes the way Kubernetes' `/livez` and `/readyz` do.
fn answer(endpoint: &str, probes: Vec<Probe>, params: &[(String, String)]) -> Response {
    let verbose = params.iter().any(|(k, _)| k == "verbose");
    let excluded: Vec<&str> = params.iter().filter(|(k, _)| k == "exclude").map(|(_, v)| v.as_str()).collect();
    let unknown: Vec<&str> = excluded.iter().copied().filter(|e| !probes.iter().any(|p| p.name == *e)).collect();
    let is_excluded = |p: &Probe| excluded.contains(&p.name.as_str());
    let ok = probes.iter().filter(|p| !is_excluded(p)).all(Probe::passes);

    let mut body = String::new();
    if ok && !verbose {
        body.push_str("ok\n");
    } else {
        for p in &probes {
            if is_excluded(p) {
                body.push_str(&format!("[+]{} excluded: ok\n", p.name));
            } else {
                body.push_str(&p.line());
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
    text(if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, body)
}

/// One probe by name: `ok`, else its line; 404 naming the known probes.
fn one(probes: Vec<Probe>, name: &str) -> Response {
    let Some(p) = probes.iter().find(|p| p.name == name) else {
        let known: Vec<&str> = probes.iter().map(|p| p.name.as_str()).collect();
        let detail = format!("no probe named `{name}`; ask for one of `probes`: {}", known.join(", "));
        return problem(StatusCode::NOT_FOUND, detail, member("probes", known));
    };
    let status = if p.passes() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    text(status, if p.failure.is_none() { "ok\n".into() } else { p.line() })
}

/// A probe answer; its 503 is the probe's result, not an error.
fn text(status: StatusCode, body: String) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    let mut res = (status, headers, body).into_response();
    res.extensions_mut().insert(Report);
    res
}
