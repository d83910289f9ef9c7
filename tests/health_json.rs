//! The IETF health-check draft document (`application/health+json`): one test per
//! check kind with the observed keys that kind really reports (the `.with(…)` calls
//! in `src/checks/`), the one-check route under that media type, and both uptimes.

mod support;

use axum::http::{Method, StatusCode};
use bootgate::checks::Status;
use bootgate::engine::GateState;
use serde_json::{Value, json};

use support::router::{VERSION, call, check, get, healthy, router, snapshot};

const HEALTH_JSON: &str = "application/health+json";

/// The IETF entry of a passing check of `kind` named `name` that observed `observed`.
async fn entry(name: &str, kind: &'static str, observed: Value) -> (String, Value) {
    let mut c = check(name, kind, true, Status::Pass);
    c.observed = observed.as_object().unwrap().clone();
    let (app, _tx) = router(snapshot(GateState::Passed, vec![c]));
    let a = call(&app, Method::GET, "/api/v1/system/health", Some(HEALTH_JSON)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let checks = a.json()["checks"].as_object().unwrap().clone();
    assert_eq!(checks.len(), 1, "{checks:?}");
    let (key, value) = checks.into_iter().next().unwrap();
    assert_eq!(value.as_array().unwrap().len(), 1, "one node per check");
    let entry = value[0].clone();
    assert_eq!(entry["componentId"], name);
    assert_eq!(entry["status"], "pass");
    (key, entry)
}

fn assert_observed(entry: &Value, value: Value, unit: Option<&str>) {
    assert_eq!(entry["observedValue"], value, "{entry}");
    assert_eq!(entry.get("observedUnit").and_then(Value::as_str), unit, "{entry}");
}

#[tokio::test]
async fn disk_reports_used_space_as_utilization() {
    let observed = json!({"free_space_percent": 65.2, "free_bytes": 652, "total_bytes": 1000,
        "free_inodes_percent": 90.0, "io_errors": 0});
    let (key, e) = entry("root", "disk", observed).await;
    assert_eq!(key, "root:utilization");
    assert_eq!(e["componentType"], "system");
    assert_observed(&e, json!(34.8), Some("percent"));
}

#[tokio::test]
async fn http_reports_its_response_time() {
    let (key, e) = entry("api", "http", json!({"status_code": 200, "response_ms": 12.5})).await;
    assert_eq!(key, "api:responseTime");
    assert_eq!(e["componentType"], "component");
    assert_observed(&e, json!(12.5), Some("ms"));
}

#[tokio::test]
async fn tcp_reports_reachable_targets() {
    let (key, e) = entry("net", "tcp", json!({"reachable": 2, "targets": 3})).await;
    assert_eq!(key, "net:reachable");
    assert_observed(&e, json!(2), Some("targets"));
}

#[tokio::test]
async fn containers_report_running_containers() {
    let observed = json!({"running": 4, "unhealthy": 0, "unhealthy_names": [], "required": 1,
        "required_ready": 1, "starting": 0});
    let (key, e) = entry("apps", "containers", observed).await;
    assert_eq!(key, "apps:running");
    assert_eq!(e["componentType"], "component");
    assert_observed(&e, json!(4), Some("containers"));
}

#[tokio::test]
async fn docker_reports_running_containers() {
    let (key, e) =
        entry("engine", "docker", json!({"version": "26.1.5", "api_version": "1.45", "containers_running": 3})).await;
    assert_eq!(key, "engine:running");
    assert_observed(&e, json!(3), Some("containers"));
}

#[tokio::test]
async fn tpm_reports_whether_it_is_present() {
    let observed = json!({"present": true, "manufacturer": "IBM", "vendor": "SW   TPM", "firmware_version": "8217.4131",
        "version": "2.0", "family": "2.0", "pcr_sha256_0": "00ff"});
    let (key, e) = entry("tpm", "tpm", observed).await;
    assert_eq!(key, "tpm:present");
    assert_eq!(e["componentType"], "system");
    assert_observed(&e, json!(true), None);
    let (_, absent) = entry("tpm", "tpm", json!({"present": false})).await;
    assert_observed(&absent, json!(false), None);
}

#[tokio::test]
async fn dns_reports_its_addresses() {
    let (key, e) = entry("resolver", "dns", json!({"addresses": ["127.0.0.1", "::1"]})).await;
    assert_eq!(key, "resolver:addresses");
    assert_observed(&e, json!(["127.0.0.1", "::1"]), None);
}

#[tokio::test]
async fn systemd_reports_the_active_state() {
    let (key, e) = entry("online", "systemd", json!({"active_state": "active", "sub_state": "running"})).await;
    assert_eq!(key, "online:activeState");
    assert_observed(&e, json!("active"), None);
}

#[tokio::test]
async fn exec_reports_the_exit_code() {
    let (key, e) = entry("probe", "exec", json!({"exit_code": 0})).await;
    assert_eq!(key, "probe:exitCode");
    assert_observed(&e, json!(0), None);
}

#[tokio::test]
async fn a_check_without_its_value_has_no_observed_value() {
    let (key, e) = entry("root", "disk", json!({})).await;
    assert_eq!(key, "root:utilization", "the key does not depend on what was observed");
    assert!(e.get("observedValue").is_none() && e.get("observedUnit").is_none(), "{e}");
}

#[tokio::test]
async fn failing_entries_are_fail_when_critical_and_warn_when_optional() {
    let s = snapshot(
        GateState::Failed,
        vec![check("root", "disk", true, Status::Fail), check("api", "http", false, Status::Fail)],
    );
    let (app, _tx) = router(s);
    let doc = call(&app, Method::GET, "/api/v1/system/health", Some(HEALTH_JSON)).await.json();
    assert_eq!(doc["status"], "fail");
    assert_eq!(doc["checks"]["root:utilization"][0]["status"], "fail");
    assert_eq!(doc["checks"]["api:responseTime"][0]["status"], "warn");
}

#[tokio::test]
async fn one_check_answers_health_json_on_request() {
    let s = snapshot(
        GateState::Passed,
        vec![check("storage", "disk", true, Status::Pass), check("data", "disk", true, Status::Fail)],
    );
    let (app, _tx) = router(s);
    let a = call(&app, Method::GET, "/api/v1/system/health/storage", Some(HEALTH_JSON)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type(), HEALTH_JSON);
    let doc = a.json();
    assert_eq!(doc["status"], "pass");
    assert_eq!(doc["releaseId"], VERSION);
    assert_eq!(doc["checks"].as_object().unwrap().len(), 1);
    assert_eq!(doc["checks"]["storage:utilization"][0]["componentId"], "storage");
    assert_eq!(doc["checks"]["storage:utilization"][0]["observedValue"], 34.8);

    let failing = call(&app, Method::GET, "/api/v1/system/health/data", Some(HEALTH_JSON)).await;
    assert_eq!(failing.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failing.content_type(), HEALTH_JSON);
    assert_eq!(failing.json()["status"], "fail");
    assert_eq!(failing.json()["output"], "data: fail");

    // Without the media type the seed's component stays the answer.
    let plain = get(&app, "/api/v1/system/health/storage").await;
    assert_eq!(plain.content_type(), "application/json");
    assert_eq!(plain.json()["status"], "healthy");
}

#[tokio::test]
async fn the_document_has_the_machines_and_the_daemons_uptime() {
    let (app, _tx) = router(healthy());
    let doc = get(&app, "/api/v1/system/health").await.json();
    let machine = doc["uptime_seconds"].as_u64().expect("uptime_seconds");
    let process = doc["process_uptime_seconds"].as_u64().expect("process_uptime_seconds");
    assert!(process <= machine, "process {process}s, machine {machine}s");
    // The serving process is this test, started moments ago.
    assert!(process < 300, "process_uptime_seconds {process}");
}
