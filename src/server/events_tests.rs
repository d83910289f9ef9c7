//! The event feed's changes, its batches and the streams' resumption.

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

#[test]
fn a_blame_is_an_event_once_and_an_accepting_gate_says_why_it_passed() {
    let old = snap(GateState::Running, &[("api", Status::Fail)]);
    let mut new = old.clone();
    new.checks[0].blame = Some(crate::engine::Blame::Preexisting);
    new.checks[0].accepted = true;
    new.gate = GateState::Passed;
    new.gate_reason = Some("accepted: preexisting failure of api".into());
    let got = changes(&old, &new, SystemTime::UNIX_EPOCH);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        matches!(&got[0], Change::Blame { check, blame: "preexisting", accepted: true, message, .. }
            if check == "api" && message == "api failed the gate: preexisting, accepted"),
        "{got:?}"
    );
    assert_eq!(got[0].name(), "check_blamed");
    assert!(
        matches!(&got[1], Change::Gate { message, .. } if message == "gate passed (accepted: preexisting failure of api)"),
        "{got:?}"
    );
    assert!(changes(&new, &new, SystemTime::UNIX_EPOCH).is_empty(), "a blame kept is no new event");
}

#[tokio::test]
async fn a_burst_of_changes_in_one_round_drops_no_reader() {
    let mut s = snap(GateState::Passed, &[]);
    s.checks = (0..500).map(|i| CheckResult::finished(&format!("c{i}"), true, Status::Pass)).collect();
    let (board, rx) = watch::channel(Arc::new(s.clone()));
    let feed = start(rx);
    let mut reader = feed.live.subscribe();
    // The feed takes its first snapshot before the round changes it (one thread here).
    tokio::task::yield_now().await;
    let mut failed = s.clone();
    failed.checks.iter_mut().for_each(|c| c.status = Status::Fail);
    board.send(Arc::new(failed)).unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(10), reader.recv()).await.unwrap().expect("not dropped");
    assert_eq!(batch.len(), 500, "every change of the round, in one step");
}

fn gate(n: usize) -> Change {
    Change::Gate { from: "running", to: "passed", message: format!("{n}"), time: String::new() }
}

/// The opening of the stream a client gets with `last_id`, and whether it ends by itself.
async fn open(feed: &Arc<Feed>, last_id: Option<&str>) -> String {
    use tower::ServiceExt as _;
    let (_tx, rx) = watch::channel(Arc::new(Snapshot::new(&[])));
    let metrics = Arc::new(crate::metrics::Metrics::new(&rx.borrow()).unwrap());
    let (trigger, stop) = crate::process::Shutdown::manual();
    let state = AppState::new(rx, metrics, crate::process::Heartbeat::new()).with_events(Arc::clone(feed), stop);
    let mut request = axum::http::Request::get("/api/v1/system/events");
    if let Some(id) = last_id {
        request = request.header("Last-Event-ID", id);
    }
    let res = super::super::app(state).oneshot(request.body(axum::body::Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    // Stopping ends the stream after what it had to send at once.
    trigger.trigger();
    let body = tokio::time::timeout(Duration::from_secs(5), axum::body::to_bytes(res.into_body(), 1 << 20))
        .await
        .expect("the stream ends at the stop")
        .unwrap();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn a_client_that_falls_behind_is_dropped_not_waited_for() {
    use tower::ServiceExt as _;
    let (_tx, rx) = watch::channel(Arc::new(Snapshot::new(&[])));
    let metrics = Arc::new(crate::metrics::Metrics::new(&rx.borrow()).unwrap());
    let feed = Feed::new();
    let (_trigger, stop) = crate::process::Shutdown::manual();
    let state = AppState::new(rx, metrics, crate::process::Heartbeat::new()).with_events(Arc::clone(&feed), stop);
    let request = axum::http::Request::get("/api/v1/system/events").body(axum::body::Body::empty()).unwrap();
    let res = super::super::app(state).oneshot(request).await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    // The client reads nothing while more batches than its buffer holds arrive.
    for n in 0..=BUFFER {
        feed.publish(vec![gate(n)]);
    }
    let body = tokio::time::timeout(Duration::from_secs(5), axum::body::to_bytes(res.into_body(), 1 << 20))
        .await
        .expect("a lagging stream ends instead of waiting")
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("retry: 1000\n"), "{text}");
    assert!(text.contains(": bootgate events\n"), "{text}");
    assert!(text.contains(&format!("id: {}-0\n", feed.epoch)), "a fresh stream says where it starts: {text}");
    assert!(!text.contains("gate_changed"), "{text}");
}

#[tokio::test]
async fn a_client_that_reconnects_with_last_event_id_gets_what_it_missed() {
    let feed = Feed::new();
    for n in 1..=3 {
        feed.publish(vec![gate(n)]);
    }
    let text = open(&feed, Some(&feed.id(1))).await;
    let ids: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("id: ")).collect();
    assert_eq!(ids, [feed.id(2), feed.id(3)], "{text}");
    assert_eq!(text.matches("event: gate_changed").count(), 2, "{text}");
    // Up to date: nothing replayed, and the opening names the latest id.
    let text = open(&feed, Some(&feed.id(3))).await;
    assert!(!text.contains("event:"), "{text}");
    assert!(text.contains(&format!("id: {}\n", feed.id(3))), "{text}");
}

#[tokio::test]
async fn a_gap_older_than_what_is_kept_or_another_daemons_id_gets_a_resync() {
    let feed = Feed::new();
    for n in 0..REPLAY + 5 {
        feed.publish(vec![gate(n)]);
    }
    let latest = (REPLAY + 5) as u64;
    assert_eq!(feed.resume(Some(&feed.id(latest - 2))).1, Missed::Changes(feed_tail(&feed, 2)));
    for stale in [feed.id(1), feed.id(latest + 1), format!("{}-3", feed.epoch + 1), "garbage".into()] {
        let text = open(&feed, Some(&stale)).await;
        assert!(text.contains("event: resync\n"), "{stale}: {text}");
        assert!(text.contains(&format!("id: {}\n", feed.id(latest))), "{stale}: {text}");
        assert!(text.contains("read /api/v1/system/health again"), "{text}");
        assert!(!text.contains("gate_changed"), "{text}");
    }
}

fn feed_tail(feed: &Feed, n: usize) -> Vec<(u64, Change)> {
    let kept = feed.kept.lock().unwrap();
    kept.0.iter().skip(kept.0.len() - n).cloned().collect()
}
