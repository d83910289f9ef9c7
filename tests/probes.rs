//! Kubernetes-style probes the way kube-apiserver lists them (`[+]x excluded: ok`),
//! and one probe by name (`/readyz/{check}`, `/livez/{probe}`). The routes listed at `/` are
//! tested with the status page (`tests/status_page.rs`).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bootgate::checks::Status;
use bootgate::engine::GateState;
use bootgate::metrics::Metrics;
use bootgate::process::Heartbeat;

use support::router::{check, get, healthy, router, snapshot, state_with};

fn failing() -> bootgate::engine::Snapshot {
    snapshot(
        GateState::Passed,
        vec![
            check("storage", "disk", true, Status::Pass),
            check("docker", "docker", false, Status::Fail),
            check("api", "http", true, Status::Fail),
        ],
    )
}

#[tokio::test]
async fn excluded_probes_are_listed_in_place() {
    let (app, _tx) = router(failing());
    // Still failing (api), so the listing shows the exclusion where docker stood.
    let a = get(&app, "/readyz?exclude=docker").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        a.body,
        "[+]gate ok\n[+]storage ok\n[+]docker excluded: ok\n[-]api failed: api: fail\nreadyz check failed\n"
    );
    let a = get(&app, "/readyz?exclude=api").await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "ok\n"), "quiet when it passes");
    let a = get(&app, "/readyz?exclude=api&verbose").await;
    assert!(a.body.contains("[+]api excluded: ok\n"), "{}", a.body);
}

#[tokio::test]
async fn one_readiness_probe_by_name() {
    let (app, _tx) = router(failing());
    let ok = get(&app, "/readyz/storage").await;
    assert_eq!((ok.status, ok.body.as_str()), (StatusCode::OK, "ok\n"));
    assert_eq!(ok.content_type(), "text/plain; charset=utf-8");
    assert_eq!(get(&app, "/readyz/gate").await.body, "ok\n");

    let bad = get(&app, "/readyz/api").await;
    assert_eq!((bad.status, bad.body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "[-]api failed: api: fail\n"));
    // An optional check never fails readiness, alone or in the list.
    let optional = get(&app, "/readyz/docker").await;
    assert_eq!(
        (optional.status, optional.body.as_str()),
        (StatusCode::OK, "[-]docker failed: docker: fail (optional)\n")
    );

    let unknown = get(&app, "/readyz/nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.content_type(), "application/problem+json");
    let problem = unknown.json();
    assert_eq!(problem["status"], 404);
    assert!(
        problem["detail"].as_str().unwrap().starts_with("no probe named `nope`; ask for one of `probes`"),
        "{problem}"
    );
    assert_eq!(problem["probes"], serde_json::json!(["gate", "storage", "docker", "api"]));

    let (running, _tx) = router(snapshot(GateState::Running, vec![check("tpm", "tpm", true, Status::Pending)]));
    let gate = get(&running, "/readyz/gate").await;
    assert_eq!(
        (gate.status, gate.body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "[-]gate pending: boot gate running, not decided yet\n")
    );
    assert_eq!(get(&running, "/readyz/tpm").await.body, "[-]tpm pending: not run yet\n");

    // A skipped check's message names its state already: said once, not `skipped: skipped:`.
    let apps = check("apps", "containers", true, Status::Skipped).with_message("skipped: `docker` did not pass");
    let (skipped, _tx) = router(snapshot(GateState::Failed, vec![apps]));
    assert_eq!(get(&skipped, "/readyz/apps").await.body, "[-]apps failed: skipped: `docker` did not pass\n");
}

#[tokio::test]
async fn one_liveness_probe_by_name() {
    let (app, _tx) = router(healthy());
    assert_eq!(get(&app, "/livez/ping").await.body, "ok\n");
    assert_eq!(get(&app, "/livez/heartbeat").await.body, "ok\n");
    assert_eq!(get(&app, "/livez/nope").await.status, StatusCode::NOT_FOUND);

    let s = healthy();
    let metrics = Arc::new(Metrics::new(&s).unwrap());
    let stuck = bootgate::server::app(state_with(
        s,
        metrics,
        Heartbeat::silent_since(Instant::now() - Duration::from_secs(30)),
    ));
    let a = get(&stuck, "/livez/heartbeat").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.body, "[-]heartbeat failed: main loop silent for 30s (limit 10s)\n");
    assert_eq!(get(&stuck, "/livez/ping").await.status, StatusCode::OK);
}
