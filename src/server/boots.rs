//! `GET /api/v1/system/boots?limit=N`: the boot history, newest first, from the copy the
//! daemon keeps in memory (read at start and after each record), so a request never
//! waits on the disk.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::history;

/// `GET /api/v1/system/boots`: `{"boots": [...]}`, at most `limit` (default all kept).
pub(super) async fn boots(State(state): State<AppState>, Query(query): Query<Vec<(String, String)>>) -> Response {
    let mut limit = history::KEEP;
    for (key, value) in &query {
        match (key.as_str(), value.parse::<usize>()) {
            ("limit", Ok(n)) => limit = n,
            ("limit", Err(_)) => {
                let text = format!("limit must be a whole number, not `{value}`\n");
                return (StatusCode::BAD_REQUEST, text).into_response();
            }
            _ => {}
        }
    }
    let all = state.history.borrow().clone();
    Json(json!({ "boots": history::newest(&all, limit) })).into_response()
}
