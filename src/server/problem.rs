//! Every error of every route as an RFC 9457 problem (`application/problem+json`): a
//! `title` from the status, and a `detail` that says what to do, with extension members
//! where a route has more to say (the known names, a retry time).
//!
//! Routes build theirs with [`problem`]. What axum answers by itself (an unknown route, a
//! method a route does not answer, a path or query it cannot read) becomes one in
//! [`as_problems`], its text as the detail. The health document and the probes answer
//! 503 as their document, not as an error: they mark those answers with [`Report`].

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The media type of a problem.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// The most of a body axum wrote that becomes a problem's detail.
const MAX_DETAIL: usize = 1024;

/// Put on an answer whose error status is its document (the health document's 503, a
/// failing probe), so [`as_problems`] leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct Report;

/// A problem answer: `status`, `detail` (what to do), and `extra` members beside them.
pub fn problem(status: StatusCode, detail: impl Into<String>, extra: Map<String, Value>) -> Response {
    let mut doc = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail.into(),
    });
    if let Value::Object(members) = &mut doc {
        members.extend(extra);
    }
    let mut body = doc.to_string();
    body.push('\n');
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], body).into_response()
}

/// `extra` with one member.
pub fn member(name: &str, value: impl Into<Value>) -> Map<String, Value> {
    Map::from_iter([(name.to_string(), value.into())])
}

/// The router's last layer: any 4xx or 5xx that is neither a problem nor a [`Report`]
/// becomes a problem.
pub async fn as_problems(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let res = next.run(request).await;
    let status = res.status();
    let is_problem =
        res.headers().get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(CONTENT_TYPE.as_bytes()));
    if !(status.is_client_error() || status.is_server_error())
        || is_problem
        || res.extensions().get::<Report>().is_some()
    {
        return res;
    }
    let allow = res.headers().get(header::ALLOW).cloned();
    let text = match to_bytes(res.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_DETAIL)]).trim().to_string(),
        Err(_) => String::new(),
    };
    let mut answer = problem(status, detail(status, &method, &path, allow.as_ref(), text), Map::new());
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}

/// What to do about an error axum answered by itself.
fn detail(status: StatusCode, method: &Method, path: &str, allow: Option<&HeaderValue>, text: String) -> String {
    match status {
        StatusCode::NOT_FOUND if text.is_empty() => {
            format!("no route {path}; the status page at / lists every route the endpoint serves")
        }
        StatusCode::METHOD_NOT_ALLOWED => match allow.and_then(|a| a.to_str().ok()) {
            Some(allowed) => format!("{path} does not answer {method}; send {allowed}"),
            None => format!("{path} does not answer {method}; the status page at / lists each route with its method"),
        },
        _ if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("Error").to_string(),
    }
}

/// A body for tests: whether `res` is a problem with `status`, and its detail.
#[cfg(test)]
pub async fn read(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    assert_eq!(res.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    async fn call(router: Router, method: Method, uri: &str) -> (StatusCode, Value) {
        let request = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
        read(router.oneshot(request).await.unwrap()).await
    }

    #[tokio::test]
    async fn axums_own_errors_become_problems_that_say_what_to_do() {
        let router = || {
            Router::new()
                .route("/n/{n}", get(|axum::extract::Path(n): axum::extract::Path<u32>| async move { n.to_string() }))
                .layer(axum::middleware::from_fn(as_problems))
        };
        let (status, doc) = call(router(), Method::GET, "/nowhere").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(doc["status"], 404);
        assert_eq!(doc["title"], "Not Found");
        assert!(doc["detail"].as_str().unwrap().contains("no route /nowhere"), "{doc}");
        let (status, doc) = call(router(), Method::DELETE, "/n/1").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(doc["detail"].as_str().unwrap().contains("/n/1 does not answer DELETE; "), "{doc}");
        let (status, doc) = call(router(), Method::GET, "/n/x").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(doc["detail"].as_str().unwrap().contains("Cannot parse"), "{doc}");
    }

    #[tokio::test]
    async fn a_report_and_a_problem_are_left_as_they_are() {
        let router = Router::new()
            .route(
                "/r",
                get(|| async {
                    let mut res = (StatusCode::SERVICE_UNAVAILABLE, "document").into_response();
                    res.extensions_mut().insert(Report);
                    res
                }),
            )
            .route("/p", get(|| async { problem(StatusCode::CONFLICT, "do this", member("known", vec!["a"])) }))
            .layer(axum::middleware::from_fn(as_problems));
        let res = router.clone().oneshot(Request::get("/r").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(to_bytes(res.into_body(), 100).await.unwrap(), "document");
        let (status, doc) = call(router, Method::GET, "/p").await;
        assert_eq!(
            (status, doc["detail"].as_str(), doc["known"][0].as_str()),
            (StatusCode::CONFLICT, Some("do this"), Some("a"))
        );
    }
}
