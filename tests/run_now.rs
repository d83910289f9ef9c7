//! Runs on request (`POST /api/v1/system/health/{check}/run`) and the event stream
//! (`GET /api/v1/system/events`) of real daemons, over real HTTP.

mod support;

use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::http::next_event;
use support::{ClosedPort, Launch, disk, wait};

#[test]
fn run_now_is_forbidden_unless_the_policy_allows_it() {
    let mut d = Launch::listening(format!("checks:\n{}", disk("root", ""))).start();
    d.wait_passed(Duration::from_secs(15));
    let forbidden = d.post("/api/v1/system/health/root/run");
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert!(forbidden.body.contains("allow_run"), "{}", forbidden.body);
    assert_eq!(d.post("/api/v1/system/health/nope/run").status, 403, "no name is revealed either");
    assert_eq!(d.get("/api/v1/system/health/root/run").status, 405);
}

#[test]
fn run_now_runs_one_check_through_the_thresholds_once_at_a_time() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = service.local_addr().unwrap();
    let checks = format!(
        "runtime: {{interval: 1h, failure_threshold: 2}}\nchecks:\n  - {{name: api, kind: tcp, timeout: 1s, targets: ['{addr}']}}\n  - {{name: slow, kind: exec, critical: false, command: [sleep, '1']}}\n"
    );
    let mut d = Launch::listening(checks).allow_run().start();
    d.wait_passed(Duration::from_secs(15));
    let unknown = d.post("/api/v1/system/health/nope/run");
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    drop(service);
    let first = d.post("/api/v1/system/health/api/run");
    assert_eq!(first.status, 200, "{}", first.body);
    let one = first.json();
    assert_eq!((one["name"].as_str(), one["result"].as_str()), (Some("api"), Some("pass")), "held: {one:#}");
    assert!(one["message"].as_str().unwrap().contains("holding pass: 1/2 failures"), "{one:#}");
    let again = d.post("/api/v1/system/health/api/run");
    assert_eq!(again.status, 429, "a second run within a second: {}", again.body);
    assert_eq!(again.header("retry-after"), Some("1"), "{:?}", again.headers);
    thread::sleep(Duration::from_millis(1_100));
    let second = d.post("/api/v1/system/health/api/run");
    assert_eq!(second.status, 200, "{}", second.body);
    let two = second.json();
    assert_eq!((two["result"].as_str(), two["status"].as_str()), (Some("fail"), Some("unhealthy")), "{two:#}");
    assert_eq!(d.health()["components"]["api"]["result"], "fail", "the snapshot shows it too");

    // Two requests at once share one run.
    let runs = d.runs("slow");
    let answers: Vec<Value> = thread::scope(|scope| {
        let both: Vec<_> = (0..2).map(|_| scope.spawn(|| d.post("/api/v1/system/health/slow/run").json())).collect();
        both.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(answers[0]["result"], "pass", "{answers:#?}");
    assert_eq!(answers[0]["last_check"], answers[1]["last_check"], "one run, one result: {answers:#?}");
    assert_eq!(d.runs("slow") - runs, 1, "two requests at once start one run");
}

#[test]
fn run_now_works_in_serve_too() {
    let closed = ClosedPort::new();
    let checks = format!(
        "gate: {{deadline: 3s, on_failure: stay}}\nchecks:\n  - {{name: api, kind: tcp, timeout: 500ms, retries: 0, targets: ['127.0.0.1:{closed}']}}\n"
    );
    let mut d = Launch::listening(checks).allow_run().start();
    assert_eq!(d.wait_exit(Duration::from_secs(15)).code(), Some(2), "{}", d.stderr());
    let serve = d.then("serve").start();
    let answer = wait(Duration::from_secs(10), "serve to answer", || {
        serve.request("POST", "/api/v1/system/health/api/run", &[]).ok()
    });
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, serve.stderr());
    let doc = answer.json();
    assert_eq!(doc["result"], "fail", "{doc:#}");
    assert!(doc["message"].as_str().unwrap().contains(&closed.to_string()), "{doc:#}");
}

#[test]
fn the_event_stream_tells_gate_transitions_and_status_changes() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = service.local_addr().unwrap();
    let checks = format!(
        "gate: {{settle: 2s}}\nruntime: {{interval: 1s, failure_threshold: 1}}\nchecks:\n  - {{name: api, kind: tcp, timeout: 500ms, targets: ['{addr}']}}\n"
    );
    let mut d = Launch::listening(checks).start();
    // Connected while the gate settles, so its transition is heard.
    let rx = wait(Duration::from_secs(10), "the endpoint", || TcpStream::connect(d.addr()).ok().map(|_| d.events()));
    let (_, gate) = next_event(&rx, "gate_changed", Duration::from_secs(15), |v| v["to"] == "passed");
    assert_eq!(gate["from"], "running", "{gate}");

    drop(service);
    let gone = Instant::now();
    let (at, change) = next_event(&rx, "status_changed", Duration::from_secs(10), |v| v["check"] == "api");
    let latency = at.duration_since(gone);
    eprintln!("pass→fail seen on the event stream {latency:?} after the target went away");
    assert_eq!((change["from"].as_str(), change["to"].as_str()), (Some("pass"), Some("fail")), "{change}");
    assert!(change["message"].as_str().unwrap().contains(&addr.to_string()), "{change}");
    assert!(change["time"].as_str().unwrap().ends_with('Z'), "{change}");
    assert!(latency < Duration::from_secs(3), "one interval is 1s; took {latency:?}");
    let log = d.stderr();
    assert!(log.contains("event=\"status_changed\"") && log.contains("api: pass → fail"), "{log}");

    // An open stream never holds up a stop.
    let stopping = Instant::now();
    d.terminate();
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0), "{}", d.stderr());
    assert!(stopping.elapsed() < Duration::from_secs(3), "stopped after {:?}", stopping.elapsed());
}

#[test]
fn a_quiet_event_stream_gets_a_keep_alive_comment() {
    let mut d = Launch::listening(format!("runtime: {{interval: 1h}}\nchecks:\n{}", disk("root", ""))).start();
    d.wait_passed(Duration::from_secs(15));
    let rx = d.events();
    let opened = Instant::now();
    let (_, hello) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(hello.starts_with("HTTP/1.1 200"), "{hello}");
    let end = Instant::now() + Duration::from_secs(15);
    let mut lines = Vec::new();
    let at = loop {
        let (at, line) = rx
            .recv_timeout(end.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no keep-alive in 15 s: {lines:#?}"));
        if line.starts_with(':') && line != ": bootgate events" {
            break at;
        }
        lines.push(line);
    };
    assert!(lines.iter().any(|l| l.eq_ignore_ascii_case("content-type: text/event-stream")), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "retry: 1000"), "{lines:#?}");
    let after = at.duration_since(opened);
    assert!(after >= Duration::from_secs(8), "keep-alive after {after:?}, every 10 s");
}

/// The next event block named `name` on `rx`: its `id:` and its data.
fn next_with_id(rx: &std::sync::mpsc::Receiver<(Instant, String)>, name: &str, timeout: Duration) -> (String, Value) {
    let end = Instant::now() + timeout;
    let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let (_, line) = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no `{name}` event within {timeout:?}"));
        if line.is_empty() {
            if event == name && !data.is_empty() {
                return (id, serde_json::from_str(&data).unwrap());
            }
            (event, id, data) = (String::new(), String::new(), String::new());
        } else if let Some(v) = line.strip_prefix("event: ") {
            event = v.into();
        } else if let Some(v) = line.strip_prefix("id: ") {
            id = v.into();
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = v.into();
        }
    }
}

#[test]
fn a_client_that_reconnects_with_last_event_id_gets_the_change_it_missed() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = service.local_addr().unwrap();
    let checks = format!(
        "runtime: {{interval: 1s, failure_threshold: 1}}\nchecks:\n  - {{name: api, kind: tcp, timeout: 500ms, targets: ['{addr}']}}\n"
    );
    let mut d = Launch::listening(checks).start();
    d.wait_passed(Duration::from_secs(15));
    let first = d.events();
    drop(service);
    let (failed_id, failed) = next_with_id(&first, "status_changed", Duration::from_secs(15));
    assert_eq!((failed["from"].as_str(), failed["to"].as_str()), (Some("pass"), Some("fail")), "{failed}");
    assert!(!failed_id.is_empty(), "a change without an id: {failed}");
    drop(first);

    // The target comes back while no stream is open.
    let _back = TcpListener::bind(addr).unwrap();
    wait(Duration::from_secs(15), "api to pass again", || {
        (d.health()["components"]["api"]["result"] == "pass").then_some(())
    });
    let resumed = support::http::lines(
        d.addr(),
        "/api/v1/system/events",
        &[("Accept", "text/event-stream"), ("Last-Event-ID", &failed_id)],
    );
    let (missed_id, missed) = next_with_id(&resumed, "status_changed", Duration::from_secs(5));
    assert_eq!((missed["from"].as_str(), missed["to"].as_str()), (Some("fail"), Some("pass")), "{missed}");
    assert_ne!(missed_id, failed_id);

    // An id of no daemon's: one resync, pointing at the state to read again.
    let stale = support::http::lines(
        d.addr(),
        "/api/v1/system/events",
        &[("Accept", "text/event-stream"), ("Last-Event-ID", "1-1")],
    );
    let (resync_id, resync) = next_with_id(&stale, "resync", Duration::from_secs(5));
    assert_eq!(resync_id, missed_id, "the resync names the latest change");
    assert!(resync["detail"].as_str().unwrap().contains("/api/v1/system/health"), "{resync}");
}
