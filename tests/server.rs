//! The HTTP endpoint: every route, status code and content type through the router
//! (`tower::ServiceExt::oneshot`, no socket), then a real `bootgate run`: 503 while
//! its gate runs, answers that stay fast while a check hangs, and a graceful stop on
//! SIGTERM.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::http::{Method, StatusCode, header};
use bootgate::checks::Status;
use bootgate::engine::GateState;
use bootgate::metrics::Metrics;
use bootgate::process::Heartbeat;
use bootgate::server::app;
use serde_json::json;
use tokio::sync::watch;

use support::router::{VERSION, call, check, get, healthy, router, snapshot, state, state_with};
use support::{HangingListener, Launch};

#[tokio::test]
async fn healthy_document_has_the_seed_shape() {
    let (app, _tx) = router(healthy());
    let a = get(&app, "/api/v1/system/health").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type(), "application/json");
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
    let doc = a.json();
    assert_eq!(doc["status"], "healthy");
    assert_eq!(doc["version"], VERSION);
    assert_eq!(doc["startup_health_check"], "passed");
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(doc["boot_id"], boot_id.trim());
    let uptime: f64 = std::fs::read_to_string("/proc/uptime").unwrap().split(' ').next().unwrap().parse().unwrap();
    let reported = doc["uptime_seconds"].as_u64().expect("uptime_seconds is a whole number");
    assert!((reported as f64 - uptime).abs() < 5.0, "uptime {reported} vs /proc/uptime {uptime}");
    let ts = doc["timestamp"].as_str().unwrap();
    let when = humantime::parse_rfc3339(ts).unwrap_or_else(|e| panic!("timestamp {ts}: {e}"));
    assert!(SystemTime::now().duration_since(when).unwrap() < Duration::from_secs(5));
    assert!(doc.get("boot").is_none(), "no boot facts were published");

    let storage = &doc["components"]["storage"];
    assert_eq!(storage["status"], "healthy");
    assert_eq!(storage["critical"], true);
    assert_eq!(storage["observed"]["free_space_percent"], 65.2, "observed values are in one place");
    assert_eq!(storage["observed"]["io_errors"], 0);
    assert!(storage.get("free_space_percent").is_none(), "observed values are not flattened in");
    assert_eq!(storage["name"], "storage");
    assert_eq!(storage["duration_ms"], 1.5);
    assert_eq!(storage["attempts"], 1);
    assert_eq!(storage["message"], "storage: pass");
    assert!(humantime::parse_rfc3339(storage["last_check"].as_str().unwrap()).is_ok());
    assert_eq!(doc["components"]["api"]["critical"], false);
    assert_eq!(doc["components"].as_object().unwrap().len(), 2);
}

#[tokio::test]
async fn gate_running_answers_503_with_pending_components() {
    let s = snapshot(
        GateState::Running,
        vec![check("storage", "disk", true, Status::Pass), check("tpm", "tpm", true, Status::Pending)],
    );
    let (app, _tx) = router(s);
    let a = get(&app, "/api/v1/system/health").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.content_type(), "application/json");
    let doc = a.json();
    assert_eq!(doc["startup_health_check"], "running");
    assert_eq!(doc["components"]["tpm"]["status"], "pending");
    assert!(doc["components"]["tpm"].get("last_check").is_none());
    assert_eq!(doc["components"]["storage"]["status"], "healthy");

    let ietf = call(&app, Method::GET, "/api/v1/system/health", Some("application/health+json")).await;
    assert_eq!(ietf.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ietf.json()["status"], "fail");
    assert!(ietf.json()["output"].as_str().unwrap().contains("gate running"));
}

#[tokio::test]
async fn statuses_and_http_codes() {
    use GateState::*;
    use Status::*;
    // (gate, critical storage, optional docker) → overall status, HTTP code, startup_health_check
    let cases = [
        (Passed, Pass, Pass, "healthy", 200),
        (Passed, Warn, Pass, "degraded", 200),
        (Passed, Pass, Fail, "degraded", 200),
        (Passed, Pass, Skipped, "degraded", 200),
        (Passed, Fail, Pass, "unhealthy", 503),
        (Failed, Fail, Pass, "unhealthy", 503),
        (Failed, Skipped, Fail, "unhealthy", 503),
        (Running, Pending, Pass, "unhealthy", 503),
    ];
    for (gate, storage, docker, status, code) in cases {
        let s = snapshot(gate, vec![check("storage", "disk", true, storage), check("docker", "docker", false, docker)]);
        let (app, _tx) = router(s);
        let a = get(&app, "/api/v1/system/health").await;
        let doc = a.json();
        assert_eq!(a.status.as_u16(), code, "{gate:?} {storage:?} {docker:?}: {doc}");
        assert_eq!(doc["status"], status, "{gate:?} {storage:?} {docker:?}");
        assert_eq!(doc["startup_health_check"], gate.as_str());
    }
}

#[tokio::test]
async fn component_statuses_follow_criticality() {
    use Status::*;
    let s = snapshot(
        GateState::Passed,
        vec![
            check("a", "disk", true, Pass),
            check("b", "disk", true, Warn),
            check("c", "docker", false, Fail),
            check("d", "docker", false, Skipped),
            check("e", "disk", true, Fail),
            check("f", "disk", true, Skipped),
        ],
    );
    let (app, _tx) = router(s);
    let doc = get(&app, "/api/v1/system/health").await.json();
    let got: Vec<&str> =
        ["a", "b", "c", "d", "e", "f"].iter().map(|n| doc["components"][*n]["status"].as_str().unwrap()).collect();
    assert_eq!(got, ["healthy", "degraded", "degraded", "degraded", "unhealthy", "unhealthy"]);
}

#[tokio::test]
async fn health_json_follows_the_ietf_draft() {
    let s = snapshot(
        GateState::Passed,
        vec![
            check("storage", "disk", true, Status::Pass),
            check("api", "http", false, Status::Fail),
            check("proc", "exec", false, Status::Pass),
        ],
    );
    let (app, _tx) = router(s);
    let a = call(&app, Method::GET, "/api/v1/system/health", Some("application/health+json")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.content_type(), "application/health+json");
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(a.headers[header::VARY], "Accept");
    let doc = a.json();
    assert_eq!(doc["status"], "warn", "an optional failure is a warning");
    assert_eq!(doc["version"], "1", "the draft's `version` is the public API version");
    assert_eq!(doc["releaseId"], VERSION);
    assert_eq!(doc["serviceId"], "bootgate");
    let keys: Vec<&String> = doc["checks"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["api:responseTime", "proc:exitCode", "storage:utilization"]);

    let storage = &doc["checks"]["storage:utilization"][0];
    assert_eq!(storage["componentId"], "storage");
    assert_eq!(storage["componentType"], "system");
    assert_eq!(storage["status"], "pass");
    assert_eq!(storage["observedValue"], 34.8, "utilization is the used share: 100 - 65.2 free");
    assert_eq!(storage["observedUnit"], "percent");
    assert!(humantime::parse_rfc3339(storage["time"].as_str().unwrap()).is_ok());
    assert!(storage.get("output").is_none(), "no output on pass");

    let api = &doc["checks"]["api:responseTime"][0];
    assert_eq!(api["componentType"], "component");
    assert_eq!(api["status"], "warn");
    assert_eq!(api["observedValue"], 12.5);
    assert_eq!(api["observedUnit"], "ms");
    assert_eq!(api["output"], "api: fail");

    let healthy = router(healthy()).0;
    let doc = call(&healthy, Method::GET, "/api/v1/system/health", Some("application/health+json")).await.json();
    assert_eq!(doc["status"], "pass");
    assert!(doc.get("output").is_none());

    let plain = call(&healthy, Method::GET, "/api/v1/system/health", Some("application/json")).await;
    assert_eq!(plain.content_type(), "application/json");
    assert_eq!(plain.json()["status"], "healthy");
}

#[tokio::test]
async fn critical_failure_is_fail_in_health_json() {
    let s = snapshot(GateState::Passed, vec![check("storage", "disk", true, Status::Fail)]);
    let (app, _tx) = router(s);
    let a = call(&app, Method::GET, "/api/v1/system/health", Some("application/health+json")).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    let doc = a.json();
    assert_eq!(doc["status"], "fail");
    assert_eq!(doc["checks"]["storage:utilization"][0]["status"], "fail");
    assert_eq!(doc["checks"]["storage:utilization"][0]["output"], "storage: fail");
}

#[tokio::test]
async fn boot_facts_appear_when_published() {
    let (boot_tx, boot_rx) = watch::channel(None);
    let app = app(state(healthy()).with_boot(boot_rx));
    assert!(get(&app, "/api/v1/system/health").await.json().get("boot").is_none());
    assert!(!get(&app, "/metrics").await.body.contains("bootgate_boot_partition"));

    let boot = json!({"partition": "USR-B", "index": 4, "uuid": "u4", "disk": "/dev/vda", "priority": 2, "tries": 0,
        "successful": false, "version": "4230.0.0", "backend": "flatcar"});
    boot_tx.send(Some(Arc::new(serde_json::from_value(boot.clone()).expect("boot facts")))).unwrap();
    assert_eq!(get(&app, "/api/v1/system/health").await.json()["boot"], boot);
    let metrics = get(&app, "/metrics").await.body;
    assert!(metrics.contains("\nbootgate_boot_partition_successful 0\n"), "{metrics}");
    assert!(metrics.contains("\nbootgate_boot_partition_tries 0\n"), "{metrics}");
    assert!(metrics.contains("\nbootgate_boot_partition_priority 2\n"), "{metrics}");
}

#[tokio::test]
async fn answers_follow_new_snapshots() {
    let (app, tx) = router(snapshot(GateState::Running, vec![check("storage", "disk", true, Status::Pending)]));
    assert_eq!(get(&app, "/api/v1/system/health").await.status, StatusCode::SERVICE_UNAVAILABLE);
    tx.send(Arc::new(snapshot(GateState::Passed, vec![check("storage", "disk", true, Status::Pass)]))).unwrap();
    let a = get(&app, "/api/v1/system/health").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["components"]["storage"]["status"], "healthy");
    let ietf = call(&app, Method::GET, "/api/v1/system/health", Some("application/health+json")).await;
    assert_eq!(ietf.json()["status"], "pass");
}

#[tokio::test]
async fn one_component_by_name() {
    let s = snapshot(
        GateState::Passed,
        vec![check("storage", "disk", true, Status::Pass), check("data", "disk", true, Status::Fail)],
    );
    let (app, _tx) = router(s);
    let a = get(&app, "/api/v1/system/health/storage").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type(), "application/json");
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
    let doc = a.json();
    assert_eq!(doc["name"], "storage");
    assert_eq!(doc["status"], "healthy");
    assert_eq!(doc["observed"]["free_space_percent"], 65.2);

    let failing = get(&app, "/api/v1/system/health/data").await;
    assert_eq!(failing.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failing.json()["status"], "unhealthy");

    let unknown = get(&app, "/api/v1/system/health/nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.content_type(), "application/problem+json");
    let doc = unknown.json();
    assert_eq!(doc["status"], 404);
    assert_eq!(doc["detail"], "no check named `nope`; ask for one of `checks`");
    assert_eq!(doc["checks"], json!(["storage", "data"]));
}

#[tokio::test]
async fn livez_reports_the_main_loop() {
    let (app, _tx) = router(healthy());
    let a = get(&app, "/livez").await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "ok\n"));
    assert_eq!(a.content_type(), "text/plain; charset=utf-8");
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
    let v = get(&app, "/livez?verbose").await;
    assert_eq!(v.body, "[+]ping ok\n[+]heartbeat ok\nlivez check passed\n");

    // A main loop that stopped beating 30 s ago.
    let s = healthy();
    let metrics = Arc::new(Metrics::new(&s).unwrap());
    let silent = Heartbeat::silent_since(Instant::now() - Duration::from_secs(30));
    let stuck = bootgate::server::app(state_with(s, metrics, silent));
    let a = get(&stuck, "/livez").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        a.body.starts_with("[+]ping ok\n[-]heartbeat failed: main loop silent for 30s (limit 10s)\n"),
        "{}",
        a.body
    );
    assert!(a.body.ends_with("livez check failed\n"), "{}", a.body);
    let excluded = get(&stuck, "/livez?exclude=heartbeat").await;
    assert_eq!((excluded.status, excluded.body.as_str()), (StatusCode::OK, "ok\n"));
}

#[tokio::test]
async fn readyz_needs_the_gate_and_critical_checks() {
    let (app, _tx) = router(healthy());
    let a = get(&app, "/readyz").await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "ok\n"));
    assert_eq!(a.content_type(), "text/plain; charset=utf-8");
    let v = get(&app, "/readyz?verbose").await;
    assert_eq!(v.body, "[+]gate ok\n[+]storage ok\n[+]api ok\nreadyz check passed\n");

    let running = snapshot(
        GateState::Running,
        vec![check("tpm", "tpm", true, Status::Pending), check("storage", "disk", true, Status::Pass)],
    );
    let (app, _tx) = router(running);
    let a = get(&app, "/readyz").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        a.body,
        "[-]gate pending: boot gate running, not decided yet\n[-]tpm pending: not run yet\n[+]storage ok\nreadyz check failed\n"
    );
}

#[tokio::test]
async fn readyz_optional_failures_and_exclusions() {
    let s = snapshot(
        GateState::Passed,
        vec![
            check("storage", "disk", true, Status::Pass),
            check("docker", "docker", false, Status::Fail),
            check("api", "http", true, Status::Pass),
        ],
    );
    let (app, tx) = router(s);
    // An optional failure is listed but does not make the machine unready.
    let a = get(&app, "/readyz?verbose").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body,
        "[+]gate ok\n[+]storage ok\n[-]docker failed: docker: fail (optional)\n[+]api ok\nreadyz check passed\n"
    );
    assert_eq!(get(&app, "/readyz").await.body, "ok\n");

    // A failing critical check fails readiness unless it is excluded.
    tx.send(Arc::new(snapshot(
        GateState::Passed,
        vec![check("storage", "disk", true, Status::Pass), check("api", "http", true, Status::Fail)],
    )))
    .unwrap();
    let a = get(&app, "/readyz").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.body.contains("[-]api failed: api: fail\n"), "{}", a.body);
    let a = get(&app, "/readyz?exclude=api&verbose").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, "[+]gate ok\n[+]storage ok\n[+]api excluded: ok\nreadyz check passed\n");
    let a = get(&app, "/readyz?exclude=api&exclude=storage&exclude=nope&verbose=1").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body,
        "[+]gate ok\n[+]storage excluded: ok\n[+]api excluded: ok\nwarn: some health checks cannot be excluded: no matches for \"nope\"\nreadyz check passed\n"
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let s = snapshot(
        GateState::Passed,
        vec![check("storage", "disk", true, Status::Pass), check("docker", "docker", false, Status::Fail)],
    );
    let metrics = Arc::new(Metrics::new(&s).unwrap());
    for c in &s.checks {
        metrics.observe(c);
    }
    let app = app(state_with(s, metrics, Heartbeat::new()));
    let a = get(&app, "/metrics").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type(), "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
    for line in [
        "bootgate_check_up{check=\"storage\",critical=\"true\"} 1",
        "bootgate_check_up{check=\"docker\",critical=\"false\"} 0",
        "bootgate_check_duration_seconds_bucket{check=\"storage\",le=\"0.001\"} 0",
        "bootgate_check_duration_seconds_bucket{check=\"storage\",le=\"0.0025\"} 1",
        "bootgate_check_duration_seconds_bucket{check=\"storage\",le=\"30\"} 1",
        "bootgate_check_duration_seconds_count{check=\"docker\"} 1",
        "bootgate_check_runs_total{check=\"docker\",result=\"fail\"} 1",
        "bootgate_check_runs_total{check=\"storage\",result=\"pass\"} 1",
        "bootgate_check_consecutive_failures{check=\"docker\"} 1",
        "bootgate_gate_passed 1",
        "bootgate_gate_duration_seconds 0.25",
        "bootgate_health_status{status=\"degraded\"} 1",
        "bootgate_health_status{status=\"healthy\"} 0",
        "bootgate_health_status{status=\"unhealthy\"} 0",
        &format!("bootgate_build_info{{version=\"{VERSION}\"}} 1"),
        "# TYPE bootgate_check_duration_seconds histogram",
        "# TYPE bootgate_check_runs_total counter",
    ] {
        assert!(a.body.lines().any(|l| l == line), "missing `{line}` in:\n{}", a.body);
    }
    for name in ["process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"] {
        assert!(a.body.contains(&format!("\n{name} ")), "missing {name}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let (app, _tx) = router(healthy());
    let nope = get(&app, "/nope").await;
    assert_eq!(nope.status, StatusCode::NOT_FOUND);
    assert_eq!(nope.content_type(), "application/problem+json");
    let problem = nope.json();
    assert_eq!((problem["status"].as_u64(), problem["title"].as_str()), (Some(404), Some("Not Found")));
    assert!(problem["detail"].as_str().unwrap().contains("no route /nope; the status page at / lists"), "{problem}");
    let post = call(&app, Method::POST, "/api/v1/system/health", None).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.content_type(), "application/problem+json");
    assert!(post.json()["detail"].as_str().unwrap().contains("does not answer POST"), "{}", post.body);
    // A path parameter that is not valid UTF-8 is axum's own 400, as a problem too.
    let bad = get(&app, "/api/v1/system/health/%FF").await;
    assert_eq!((bad.status, bad.content_type()), (StatusCode::BAD_REQUEST, "application/problem+json"));
    let head = call(&app, Method::HEAD, "/api/v1/system/health", None).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
}

// ---- a real `bootgate run` ----

fn disk_check(dir: &str) -> String {
    format!("  - {{name: storage, kind: disk, critical: true, path: '{dir}', min_free_percent: 0}}\n")
}

#[test]
fn health_stays_fast_while_a_check_hangs() {
    let peer = HangingListener::tcp();
    let tmp = std::env::temp_dir();
    let checks = format!(
        "{}  - {{name: hung, kind: http, critical: true, url: 'http://{}/', timeout: 40s}}\n",
        disk_check(tmp.to_str().unwrap()),
        peer.addr()
    );
    let mut bg = Launch::gate("{deadline: 60s, on_failure: stay}", &checks).start();
    bg.wait_listening(Duration::from_secs(15));
    // The hung check has connected and is waiting for an answer that never comes.
    let end = Instant::now() + Duration::from_secs(10);
    while peer.accepted() == 0 {
        assert!(Instant::now() < end, "the http check never connected:\n{}", bg.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut slowest = Duration::ZERO;
    let watch_for = Duration::from_secs(4);
    let started = Instant::now();
    let mut answers = 0;
    while started.elapsed() < watch_for {
        let t = Instant::now();
        let a = bg.get("/api/v1/system/health");
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert!(took < Duration::from_millis(50), "answer {answers} took {took:?} while a check hangs");
        assert_eq!(a.status, 503, "the gate is still running: {}", a.body);
        let doc = a.json();
        assert_eq!(doc["startup_health_check"], "running");
        assert_eq!(doc["components"]["hung"]["status"], "pending");
        assert_eq!(doc["components"]["storage"]["status"], "healthy");
        answers += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(answers > 50, "only {answers} answers in {watch_for:?}");
    eprintln!("{answers} answers while the check hung; slowest {slowest:?}");

    // The probes answer as quickly and tell the same story.
    let t = Instant::now();
    let ready = bg.get("/readyz");
    assert!(t.elapsed() < Duration::from_millis(50));
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("[-]hung pending: attempt 1/"), "{}", ready.body);
    assert_eq!(bg.get("/livez").body, "ok\n", "the main loop beats while the gate waits");
    let metrics = bg.get("/metrics");
    assert!(metrics.body.contains("\nbootgate_gate_passed 0\n"), "{}", metrics.body);

    // A stop request ends the waiting gate promptly and cleanly.
    bg.terminate();
    let status = bg.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", bg.stderr());
    assert!(!bg.run_dir().join("verdict.json").exists(), "no verdict without a finished gate");
}

#[test]
fn the_endpoint_answers_503_then_200_and_stops_on_sigterm() {
    let tmp = std::env::temp_dir();
    // An exec check that takes a second keeps the gate running long enough to see it.
    let checks = format!(
        "{}  - {{name: slow, kind: exec, critical: true, command: [sleep, '2'], timeout: 10s}}\n",
        disk_check(tmp.to_str().unwrap())
    );
    let mut bg = Launch::gate("{deadline: 30s, on_failure: stay}", &checks).start();
    bg.wait_listening(Duration::from_secs(15));
    let first = bg.get("/api/v1/system/health");
    assert_eq!(first.status, 503, "{}", first.body);
    assert_eq!(first.json()["startup_health_check"], "running");
    let passed = bg.wait_status("/api/v1/system/health", 200, Duration::from_secs(15));
    assert_eq!(passed.json()["startup_health_check"], "passed");
    assert_eq!(passed.header("cache-control"), Some("no-store"));
    assert_eq!(bg.get("/readyz").body, "ok\n");

    let t = Instant::now();
    bg.terminate();
    let status = bg.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", bg.stderr());
    assert!(t.elapsed() < Duration::from_secs(3), "graceful stop took {:?}", t.elapsed());
}
