//! Kubernetes-style probes in plain text: `/livez` (the process and its main loop are
//! alive) and `/readyz` (the gate passed and no critical check fails).
//!
//! Both answer `ok` when everything passes. With `?verbose`, or whenever something
//! fails, they list one line per probe (`[+]name ok`, `[-]name failed: reason`) and
//! end with `livez check passed` / `readyz check failed`. `?exclude=name`
//! (repeatable) leaves a probe out of the listing and the decision. A failing probe
//! answers 503, like the health document.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::checks::Status;
use crate::engine::{GateState, Snapshot};

/// Proof that the daemon's main task (the gate, then the runtime loop) still runs.
///
/// The daemon beats every [`Heartbeat::PERIOD`] from the same task that drives the
/// gate and the runtime loop, so a task stuck in a blocking call stops the beats;
/// `/livez` fails once the last beat is older than [`Heartbeat::STALE`].
#[derive(Debug, Clone)]
pub struct Heartbeat(Arc<Beats>);

#[derive(Debug)]
struct Beats {
    origin: Instant,
    /// Milliseconds after `origin` of the latest beat.
    last: AtomicU64,
}

impl Heartbeat {
    /// How often the daemon beats.
    pub const PERIOD: Duration = Duration::from_secs(1);
    /// Silence after which the main loop counts as dead: ten missed beats.
    pub const STALE: Duration = Duration::from_secs(10);

    /// A heartbeat that has just beaten.
    pub fn new() -> Self {
        Self::silent_since(Instant::now())
    }

    /// A heartbeat whose latest beat was at `at` (for a daemon that hangs, in tests).
    pub fn silent_since(at: Instant) -> Self {
        Heartbeat(Arc::new(Beats { origin: at, last: AtomicU64::new(0) }))
    }

    /// Records a beat now.
    pub fn beat(&self) {
        let ms = self.0.origin.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        self.0.last.store(ms, Ordering::Relaxed);
    }

    /// Time since the latest beat.
    pub fn age(&self) -> Duration {
        self.age_at(Instant::now())
    }

    /// Time from the latest beat to `now`.
    pub fn age_at(&self, now: Instant) -> Duration {
        let last = Duration::from_millis(self.0.last.load(Ordering::Relaxed));
        now.saturating_duration_since(self.0.origin).saturating_sub(last)
    }

    /// Drives `work` to completion in the calling task, beating every [`Self::PERIOD`] meanwhile.
    pub async fn keep<F: Future>(&self, work: F) -> F::Output {
        let mut every = tokio::time::interval(Self::PERIOD);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = every.tick() => self.beat(),
            }
        }
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_goes_stale_without_beats() {
        let hb = Heartbeat::new();
        assert!(hb.age() < Heartbeat::STALE);
        let later = Instant::now() + Heartbeat::STALE + Duration::from_secs(1);
        assert!(hb.age_at(later) > Heartbeat::STALE);
    }

    #[tokio::test]
    async fn keep_beats_while_work_runs() {
        let hb = Heartbeat::new();
        let work = Duration::from_millis(1300);
        let answer = hb.keep(async {
            tokio::time::sleep(work).await;
            42
        });
        assert_eq!(answer.await, 42);
        // Beats at 0 s and 1 s: the last one is about 0.3 s old, not 1.3 s.
        assert!(hb.age() < Duration::from_millis(900), "age {:?}", hb.age());
    }
}
