//! `GET /api/v1/system/events`: a Server-Sent Events stream of status changes (a check's
//! status, the gate's state), each also one journal entry (`event=status_changed` or
//! `event=gate_changed`).
//!
//! The changes come from the snapshots themselves, so whoever changes a status (the gate,
//! the soak, the runtime schedule, a run on request) is heard. Every client reads from one
//! bounded broadcast buffer of [`Batch`]es, one per new snapshot however many checks it
//! changed: a burst (a round that changes a thousand checks) is one step, and only a
//! client that falls [`BUFFER`] steps behind is dropped, never waited for. A stream ends by itself before the endpoint's connection lifetime
//! (`conn::MAX_LIFETIME`) would cut it, and asks the client (`retry:`) to reconnect at once,
//! as EventSource does by itself: a long-lived stream must not hold a connection slot forever.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::AppState;
use crate::engine::Snapshot;

/// Batches of changes a client may fall behind before it is dropped.
pub const BUFFER: usize = 64;

/// The changes of one new snapshot, sent to the streams as one step.
pub type Batch = Arc<Vec<Change>>;
/// A comment this often keeps proxies and idle timeouts from closing a quiet stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// A stream ends after this long, before the connection lifetime closes it.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(55);
/// How soon a client reconnects after a stream ended.
const RETRY: Duration = Duration::from_secs(1);

/// One change, as the stream and the journal tell it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Change {
    /// A check's reported status changed.
    Status { check: String, from: &'static str, to: &'static str, message: String, time: String },
    /// The gate went from one state to another.
    Gate { from: &'static str, to: &'static str, message: String, time: String },
}

impl Change {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Change::Status { .. } => "status_changed",
            Change::Gate { .. } => "gate_changed",
        }
    }
}

/// The changes from `old` to `new`: each check (by name) whose status changed, then the gate.
pub fn changes(old: &Snapshot, new: &Snapshot, now: SystemTime) -> Vec<Change> {
    let time = crate::util::time::timestamp(now);
    let mut out: Vec<Change> = new
        .checks
        .iter()
        .filter_map(|c| {
            let before = old.checks.iter().find(|o| o.name == c.name)?;
            (before.status != c.status).then(|| Change::Status {
                check: c.name.clone(),
                from: before.status.as_str(),
                to: c.status.as_str(),
                message: c.message.clone(),
                time: time.clone(),
            })
        })
        .collect();
    if old.gate != new.gate {
        let message = format!("gate {}", new.gate_word());
        out.push(Change::Gate { from: old.gate.as_str(), to: new.gate.as_str(), message, time });
    }
    out
}

/// Starts the feed over `snapshots`: logs each change and broadcasts each snapshot's
/// changes to the streams as one batch.
pub fn start(mut snapshots: watch::Receiver<Arc<Snapshot>>) -> broadcast::Sender<Batch> {
    let (tx, _) = broadcast::channel(BUFFER);
    let feed = tx.clone();
    tokio::spawn(async move {
        let mut prev = snapshots.borrow_and_update().clone();
        while snapshots.changed().await.is_ok() {
            let cur = snapshots.borrow_and_update().clone();
            let batch = changes(&prev, &cur, SystemTime::now());
            batch.iter().for_each(log);
            if !batch.is_empty() {
                // No subscriber is no error: the journal entries are written either way.
                let _ = feed.send(Arc::new(batch));
            }
            prev = cur;
        }
    });
    tx
}

fn log(change: &Change) {
    match change {
        Change::Status { check, from, to, message, .. } => {
            tracing::info!(event = "status_changed", check = %check, from, to, "{check}: {from} → {to}: {message}")
        }
        Change::Gate { from, to, message, .. } => {
            tracing::info!(event = "gate_changed", from, to, "gate: {from} → {to}: {message}")
        }
    }
}

/// `GET /api/v1/system/events`.
pub(super) async fn stream(State(state): State<AppState>) -> Response {
    let rx = state.events.subscribe();
    let ends = Instant::now() + STREAM_LIFETIME;
    let stop = state.stop.clone();
    let hello = Event::default().retry(RETRY).comment("bootgate events");
    let first = futures_util::stream::once(async move { Ok::<_, Infallible>(hello) });
    let changes = futures_util::stream::unfold(rx, move |mut rx| {
        let stop = stop.clone();
        async move {
            let next = async {
                match rx.recv().await {
                    Ok(batch) => Some(futures_util::stream::iter(batch.iter().map(event).map(Ok).collect::<Vec<_>>())),
                    // Lagged: this client reads too slowly; dropped, never waited for. Closed: stopping.
                    Err(_) => None,
                }
            };
            let stopped = async {
                match stop {
                    Some(s) => s.requested().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                events = next => events.map(|events| (events, rx)),
                () = tokio::time::sleep_until(ends) => None,
                () = stopped => None,
            }
        }
    });
    use futures_util::StreamExt as _;
    let changes = changes.flatten().map(|e: Result<Event, Infallible>| e);
    Sse::new(first.chain(changes)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

fn event(change: &Change) -> Event {
    let data = serde_json::to_string(change).unwrap_or_else(|_| "{}".into());
    Event::default().event(change.name()).data(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use crate::engine::{CheckResult, GateState};

    fn snap(gate: GateState, statuses: &[(&str, Status)]) -> Snapshot {
        let mut s = Snapshot::new(&[]);
        s.gate = gate;
        s.checks = statuses.iter().map(|&(n, st)| CheckResult::finished(n, true, st)).collect();
        s
    }

    #[test]
    fn a_status_change_and_a_gate_transition_are_changes() {
        let old = snap(GateState::Running, &[("a", Status::Pass), ("b", Status::Pass)]);
        let new = snap(GateState::Passed, &[("a", Status::Fail), ("b", Status::Pass), ("c", Status::Fail)]);
        let got = changes(&old, &new, SystemTime::UNIX_EPOCH);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(&got[0], Change::Status { check, from: "pass", to: "fail", .. } if check == "a"));
        assert!(matches!(&got[1], Change::Gate { from: "running", to: "passed", .. }));
        assert!(changes(&new, &new, SystemTime::UNIX_EPOCH).is_empty());
    }

    #[tokio::test]
    async fn a_burst_of_changes_in_one_round_drops_no_reader() {
        let mut s = snap(GateState::Passed, &[]);
        s.checks = (0..500).map(|i| CheckResult::finished(&format!("c{i}"), true, Status::Pass)).collect();
        let (board, rx) = watch::channel(Arc::new(s.clone()));
        let feed = start(rx);
        let mut reader = feed.subscribe();
        // The feed takes its first snapshot before the round changes it (one thread here).
        tokio::task::yield_now().await;
        let mut failed = s.clone();
        failed.checks.iter_mut().for_each(|c| c.status = Status::Fail);
        board.send(Arc::new(failed)).unwrap();
        let batch = tokio::time::timeout(Duration::from_secs(10), reader.recv()).await.unwrap().expect("not dropped");
        assert_eq!(batch.len(), 500, "every change of the round, in one step");
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_dropped_not_waited_for() {
        use tower::ServiceExt as _;
        let (_tx, rx) = watch::channel(Arc::new(Snapshot::new(&[])));
        let metrics = Arc::new(crate::metrics::Metrics::new(&rx.borrow()).unwrap());
        let (events, _) = broadcast::channel(BUFFER);
        let (_trigger, stop) = crate::process::Shutdown::manual();
        let state = AppState::new(rx, metrics, crate::process::Heartbeat::new()).with_events(events.clone(), stop);
        let request = axum::http::Request::get("/api/v1/system/events").body(axum::body::Body::empty()).unwrap();
        let res = super::super::app(state).oneshot(request).await.unwrap();
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        // The client reads nothing while more batches than its buffer holds arrive.
        for n in 0..=BUFFER {
            let change = Change::Gate { from: "running", to: "passed", message: format!("{n}"), time: String::new() };
            events.send(Arc::new(vec![change])).unwrap();
        }
        let body = tokio::time::timeout(Duration::from_secs(5), axum::body::to_bytes(res.into_body(), 1 << 20))
            .await
            .expect("a lagging stream ends instead of waiting")
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with("retry: 1000\n: bootgate events\n"), "{text}");
        assert!(!text.contains("gate_changed"), "{text}");
    }
}
