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
//!
//! Every change has an `id:` (this daemon's start, then a sequence number). A client that
//! reconnects with `Last-Event-ID` gets the changes it missed from the last [`REPLAY`]
//! kept; when the gap is older than that, or the id is another daemon's, it gets one
//! `resync` event instead, telling it to read the health document again.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::AppState;
use crate::checks::Status;
use crate::engine::{Blame, GateState, Snapshot};

/// Batches of changes a client may fall behind before it is dropped.
pub const BUFFER: usize = 64;

/// Changes kept for clients that reconnect with `Last-Event-ID`.
pub const REPLAY: usize = 256;

/// The changes of one new snapshot, each with its sequence number, sent to the streams as one step.
pub type Batch = Arc<Vec<(u64, Change)>>;
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
    /// A trial boot's gate blamed a failing check against the previous image.
    Blame { check: String, blame: &'static str, accepted: bool, message: String, time: String },
}

impl Change {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Change::Status { .. } => "status_changed",
            Change::Gate { .. } => "gate_changed",
            Change::Blame { .. } => "check_blamed",
        }
    }
}

/// The changes from `old` to `new`: each check (by name) whose status changed, then the gate.
pub fn changes(old: &Snapshot, new: &Snapshot, now: SystemTime) -> Vec<Change> {
    Seen::of(old).changes(new, now)
}

/// What the feed keeps of the snapshot before: each check's name, status and blame, and
/// the gate's state. A new snapshot is compared check by check at the same place (one
/// result changes one place), so a change costs the same however many checks there are
/// and no snapshot is held (which would make every writer copy the whole board); a list
/// whose length or order changed (a reload) is compared by name.
struct Seen {
    checks: Vec<(String, Status, Option<Blame>)>,
    gate: GateState,
}

impl Seen {
    fn of(s: &Snapshot) -> Seen {
        Seen { checks: s.checks.iter().map(|c| (c.name.clone(), c.status, c.blame)).collect(), gate: s.gate }
    }

    /// The changes from what was seen to `new`, which is then what was seen.
    fn changes(&mut self, new: &Snapshot, now: SystemTime) -> Vec<Change> {
        let mut status = Vec::new();
        let mut blamed = Vec::new();
        // Whether each check is where it was: then what was seen is updated in place.
        let mut same_places = self.checks.len() == new.checks.len();
        for (i, c) in new.checks.iter().enumerate() {
            let before = match self.checks.get(i) {
                Some(seen) if same_places && (seen.1, seen.2) == (c.status, c.blame) => continue,
                Some(seen) if same_places && seen.0 == c.name => Some(seen),
                _ => {
                    same_places = false;
                    self.checks.iter().find(|seen| seen.0 == c.name)
                }
            };
            let Some((_, was, blame_was)) = before else { continue };
            if *was != c.status {
                status.push((c, *was));
            }
            if c.blame.is_some() && *blame_was != c.blame {
                blamed.push(c);
            }
        }
        let time = crate::util::time::timestamp(now);
        let mut out: Vec<Change> = status
            .into_iter()
            .map(|(c, was)| Change::Status {
                check: c.name.clone(),
                from: was.as_str(),
                to: c.status.as_str(),
                message: c.message.clone(),
                time: time.clone(),
            })
            .collect();
        for c in blamed {
            let blame = c.blame.map_or("", |b| b.as_str());
            let accepted = if c.accepted { ", accepted" } else { "" };
            out.push(Change::Blame {
                check: c.name.clone(),
                blame,
                accepted: c.accepted,
                message: format!("{} failed the gate: {blame}{accepted}", c.name),
                time: time.clone(),
            });
        }
        if self.gate != new.gate {
            let message = match (&new.gate_reason, new.gate) {
                (Some(reason), GateState::Passed) => format!("gate {} ({reason})", new.gate_word()),
                _ => format!("gate {}", new.gate_word()),
            };
            out.push(Change::Gate { from: self.gate.as_str(), to: new.gate.as_str(), message, time });
        }
        self.remember(new);
        out
    }

    fn remember(&mut self, new: &Snapshot) {
        let same = self.checks.len() == new.checks.len()
            && self
                .checks
                .iter()
                .zip(&new.checks)
                .all(|(seen, c)| (seen.1, seen.2) == (c.status, c.blame) || seen.0 == c.name);
        if same {
            for (seen, c) in self.checks.iter_mut().zip(&new.checks) {
                (seen.1, seen.2) = (c.status, c.blame);
            }
        } else {
            *self = Seen::of(new);
        }
        self.gate = new.gate;
    }
}

/// Where the changes go: the live streams, and the last [`REPLAY`] for those that reconnect.
pub struct Feed {
    live: broadcast::Sender<Batch>,
    /// The last changes and the sequence number of the latest (0: none yet).
    kept: Mutex<(VecDeque<(u64, Change)>, u64)>,
    /// This daemon's start in milliseconds: ids start at 1 again after a restart.
    epoch: u64,
}

/// What a client that reconnects has missed.
#[derive(Debug, PartialEq)]
enum Missed {
    /// Nothing: it saw the latest change.
    Nothing,
    /// These, oldest first.
    Changes(Vec<(u64, Change)>),
    /// More than is kept, or the id is not this daemon's: it must read the state again.
    Resync(&'static str),
}

impl Feed {
    /// A feed without changes yet.
    pub fn new() -> Arc<Feed> {
        let epoch = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Arc::new(Feed { live: broadcast::channel(BUFFER).0, kept: Mutex::default(), epoch })
    }

    /// Numbers `changes`, keeps them for reconnects and sends them to the streams.
    pub fn publish(&self, changes: Vec<Change>) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let (ring, latest) = &mut *kept;
        let batch: Vec<(u64, Change)> = changes
            .into_iter()
            .map(|c| {
                *latest += 1;
                (*latest, c)
            })
            .collect();
        ring.extend(batch.iter().cloned());
        while ring.len() > REPLAY {
            ring.pop_front();
        }
        // Sent under the lock, so a stream that subscribes and reads `kept` sees each change once.
        let _ = self.live.send(Arc::new(batch));
    }

    /// The id of change `seq`.
    fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// A subscription to what comes next, and what a client last given `last_id` missed.
    fn resume(&self, last_id: Option<&str>) -> (broadcast::Receiver<Batch>, Missed, u64) {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let (ring, latest) = &*kept;
        let rx = self.live.subscribe();
        let missed = match last_id.map(|id| self.sequence(id)) {
            None => Missed::Nothing,
            Some(None) => Missed::Resync("the Last-Event-ID is not one of this daemon's (it restarted)"),
            Some(Some(seen)) if seen > *latest => {
                Missed::Resync("the Last-Event-ID is not one of this daemon's (it restarted)")
            }
            Some(Some(seen)) if seen == *latest => Missed::Nothing,
            Some(Some(seen)) => match ring.front() {
                Some((oldest, _)) if *oldest <= seen + 1 => {
                    Missed::Changes(ring.iter().filter(|(n, _)| *n > seen).cloned().collect())
                }
                _ => Missed::Resync("more changes were missed than are kept"),
            },
        };
        (rx, missed, *latest)
    }

    /// The sequence number of `id`, if it is one of this daemon's.
    fn sequence(&self, id: &str) -> Option<u64> {
        let (epoch, seq) = id.trim().split_once('-')?;
        (epoch.parse::<u64>().ok()? == self.epoch).then_some(())?;
        seq.parse().ok()
    }
}

/// Starts the feed over `snapshots`: logs each change and publishes each snapshot's
/// changes to the streams as one batch.
pub fn start(mut snapshots: watch::Receiver<Arc<Snapshot>>) -> Arc<Feed> {
    let feed = Feed::new();
    let publisher = Arc::clone(&feed);
    tokio::spawn(async move {
        let mut seen = Seen::of(&snapshots.borrow_and_update());
        while snapshots.changed().await.is_ok() {
            let batch = seen.changes(&snapshots.borrow_and_update(), SystemTime::now());
            batch.iter().for_each(log);
            if !batch.is_empty() {
                // No subscriber is no error: the journal entries are written either way.
                publisher.publish(batch);
            }
        }
    });
    feed
}

fn log(change: &Change) {
    match change {
        Change::Status { check, from, to, message, .. } => {
            tracing::info!(event = "status_changed", check = %check, from, to, "{check}: {from} → {to}: {message}")
        }
        Change::Gate { from, to, message, .. } => {
            tracing::info!(event = "gate_changed", from, to, "gate: {from} → {to}: {message}")
        }
        Change::Blame { check, blame, message, .. } => {
            tracing::info!(event = "check_blamed", check = %check, blame, "{message}")
        }
    }
}

/// `GET /api/v1/system/events`; `Last-Event-ID` resumes where a client left off.
pub(super) async fn stream(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let feed = Arc::clone(&state.events);
    let last_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let (rx, missed, latest) = feed.resume(last_id);
    let ends = Instant::now() + STREAM_LIFETIME;
    let stop = state.stop.clone();
    let mut hello = Event::default().retry(RETRY).comment("bootgate events");
    let mut first = Vec::new();
    match missed {
        // The id tells a client that reconnects after a quiet stream where it is.
        Missed::Nothing => hello = hello.id(feed.id(latest)),
        Missed::Changes(changes) => first.extend(changes.iter().map(|(n, c)| event(&feed, *n, c))),
        Missed::Resync(why) => {
            let data = serde_json::json!({"reason": why, "detail": "read /api/v1/system/health again; the changes since are streamed from here"});
            first.push(Event::default().event("resync").id(feed.id(latest)).data(data.to_string()));
        }
    }
    let opening =
        futures_util::stream::iter(std::iter::once(hello).chain(first).map(Ok::<_, Infallible>).collect::<Vec<_>>());
    // Everything up to `latest` was kept or sent above; the subscription may repeat some.
    let changes = futures_util::stream::unfold((rx, latest), move |(mut rx, seen)| {
        let stop = stop.clone();
        let feed = Arc::clone(&feed);
        async move {
            let next = async {
                match rx.recv().await {
                    Ok(batch) => {
                        // A change already sent from the kept ones is not sent twice.
                        let fresh: Vec<_> = batch.iter().filter(|(n, _)| *n > seen).collect();
                        let last = fresh.last().map_or(seen, |(n, _)| *n);
                        let events: Vec<_> = fresh.into_iter().map(|(n, c)| Ok(event(&feed, *n, c))).collect();
                        Some((futures_util::stream::iter(events), last))
                    }
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
                events = next => events.map(|(events, last)| (events, (rx, last))),
                () = tokio::time::sleep_until(ends) => None,
                () = stopped => None,
            }
        }
    });
    use futures_util::StreamExt as _;
    let changes = changes.flatten().map(|e: Result<Event, Infallible>| e);
    Sse::new(opening.chain(changes)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

fn event(feed: &Feed, seq: u64, change: &Change) -> Event {
    let data = serde_json::to_string(change).unwrap_or_else(|_| "{}".into());
    Event::default().event(change.name()).id(feed.id(seq)).data(data)
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
