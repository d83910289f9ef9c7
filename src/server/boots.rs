//! `GET /api/v1/system/boots?limit=N`: the boot history, newest first, from the copy the
//! daemon keeps in memory (read at start and after each record), so a request never
//! waits on the disk.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::problem::problem;
use crate::record::history;

/// `GET /api/v1/system/boots`: `{"boots": [...]}`, at most `limit` (default all kept).
pub(super) async fn boots(State(state): State<AppState>, Query(query): Query<Vec<(String, String)>>) -> Response {
    let mut limit = history::KEEP;
    for (key, value) in &query {
        // A whole number past what fits asks for everything there is: saturate.
        let whole = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        match (key.as_str(), value.parse::<usize>()) {
            ("limit", Ok(n)) => limit = n,
            ("limit", Err(_)) if whole => limit = usize::MAX,
            ("limit", Err(_)) => {
                let detail = format!("limit must be a whole number, not `{value}`; leave it out for every boot kept");
                return problem(StatusCode::BAD_REQUEST, detail, Default::default());
            }
            _ => {}
        }
    }
    let all = state.history.borrow().clone();
    Json(json!({ "boots": history::newest(&all, limit) })).into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use serde_json::Value;
    use tokio::sync::watch;
    use tower::ServiceExt as _;

    use crate::engine::Snapshot;
    use crate::metrics::Metrics;
    use crate::process::Heartbeat;
    use crate::record::history::PastBoot;
    use crate::server::{AppState, app};

    async fn get(history: &watch::Receiver<Arc<Vec<PastBoot>>>, uri: &str) -> (u16, String) {
        let s = Snapshot::new(&[]);
        let metrics = Arc::new(Metrics::new(&s).unwrap());
        let state =
            AppState::new(watch::channel(Arc::new(s)).1, metrics, Heartbeat::new()).with_history(history.clone());
        let res = app(state).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status().as_u16();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn boots_are_newest_first_limited_and_follow_the_published_history() {
        let boot = |id: &str| PastBoot { boot_id: Some(id.into()), ..PastBoot::default() };
        let (tx, rx) = watch::channel(Arc::new(vec![boot("b1"), boot("b2"), boot("b3")]));
        let ids = |body: &str| -> Vec<String> {
            let v: Value = serde_json::from_str(body).unwrap();
            v["boots"].as_array().unwrap().iter().map(|b| b["boot_id"].as_str().unwrap().to_string()).collect()
        };
        let (status, body) = get(&rx, "/api/v1/system/boots").await;
        assert_eq!((status, ids(&body)), (200, vec!["b3".into(), "b2".into(), "b1".into()]));
        let (_, body) = get(&rx, "/api/v1/system/boots?limit=2").await;
        assert_eq!(ids(&body), ["b3", "b2"]);
        let (_, body) = get(&rx, "/api/v1/system/boots?limit=0").await;
        assert!(ids(&body).is_empty());
        tx.send_replace(Arc::new(vec![boot("b4")]));
        let (_, body) = get(&rx, "/api/v1/system/boots?limit=9").await;
        assert_eq!(ids(&body), ["b4"]);
        let (status, body) = get(&rx, "/api/v1/system/boots?limit=99999999999999999999999999").await;
        assert_eq!((status, ids(&body)), (200, vec!["b4".to_string()]), "a limit past u64 saturates");
        let (status, body) = get(&rx, "/api/v1/system/boots?limit=-1").await;
        assert_eq!(status, 400);
        assert!(body.contains("whole number"), "{body}");
    }
}
