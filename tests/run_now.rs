//! Runs on request (`POST /api/v1/system/health/{check}/run`) and the event stream
//! (`GET /api/v1/system/events`) of real daemons, over real HTTP.

mod running;
mod support;

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use running::{Running, disk, next_event, sse, wait};
use serde_json::Value;
use support::ClosedPort;

#[test]
fn run_now_is_forbidden_unless_the_policy_allows_it() {
    let d = Running::start("run", &format!("checks:\n{}", disk("root", "")), "", &[]);
    d.wait_passed(Duration::from_secs(15));
    let (code, body, _) = d.curl("POST", "/api/v1/system/health/root/run");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("allow_run"), "{body}");
    assert_eq!(d.curl("POST", "/api/v1/system/health/nope/run").0, 403, "no name is revealed either");
    assert_eq!(d.curl("GET", "/api/v1/system/health/root/run").0, 405);
}

#[test]
fn run_now_runs_one_check_through_the_thresholds_once_at_a_time() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = service.local_addr().unwrap();
    let checks = format!(
        "runtime: {{interval: 1h, failure_threshold: 2}}\nchecks:\n  - {{name: api, kind: tcp, timeout: 1s, targets: ['{addr}']}}\n  - {{name: slow, kind: exec, critical: false, command: [sleep, '1']}}\n"
    );
    let d = Running::start("run", &checks, ", allow_run: true", &[]);
    d.wait_passed(Duration::from_secs(15));
    let (code, body, _) = d.curl("POST", "/api/v1/system/health/nope/run");
    assert_eq!(code, 404, "{body}");

    drop(service);
    let (code, body, _) = d.curl("POST", "/api/v1/system/health/api/run");
    assert_eq!(code, 200, "{body}");
    let one: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((one["name"].as_str(), one["result"].as_str()), (Some("api"), Some("pass")), "held: {one:#}");
    assert!(one["message"].as_str().unwrap().contains("holding pass: 1/2 failures"), "{one:#}");
    let (code, body, headers) = d.curl("POST", "/api/v1/system/health/api/run");
    assert_eq!(code, 429, "a second run within a second: {body}");
    assert!(headers.to_ascii_lowercase().contains("retry-after: 1"), "{headers}");
    thread::sleep(Duration::from_millis(1_100));
    let (code, body, _) = d.curl("POST", "/api/v1/system/health/api/run");
    assert_eq!(code, 200, "{body}");
    let two: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((two["result"].as_str(), two["status"].as_str()), (Some("fail"), Some("unhealthy")), "{two:#}");
    assert_eq!(d.health()["components"]["api"]["result"], "fail", "the snapshot shows it too");

    // Two requests at once share one run.
    let runs = d.runs("slow");
    let url = d.url("/api/v1/system/health/slow/run");
    let both: Vec<thread::JoinHandle<String>> = (0..2)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || {
                let out = Command::new("curl").args(["-s", "--max-time", "10", "-X", "POST", &url]).output().unwrap();
                String::from_utf8_lossy(&out.stdout).to_string()
            })
        })
        .collect();
    let answers: Vec<Value> = both.into_iter().map(|t| serde_json::from_str(&t.join().unwrap()).unwrap()).collect();
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
    let mut d = Running::start("run", &checks, ", allow_run: true", &[]);
    assert_eq!(d.daemon.wait_exit(Duration::from_secs(15)), 2, "{}", d.log("run"));
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    let serve = Running::spawn(dir, d.port, "serve", &[]);
    let (code, body, _) = wait(Duration::from_secs(10), "serve to answer", || {
        Some(serve.curl("POST", "/api/v1/system/health/api/run")).filter(|(code, _, _)| *code != 0)
    });
    assert_eq!(code, 200, "{body}\n{}", serve.log("serve"));
    let doc: Value = serde_json::from_str(&body).unwrap();
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
    let mut d = Running::start("run", &checks, "", &[]);
    // Connected while the gate settles, so its transition is heard.
    let rx = wait(Duration::from_secs(10), "the endpoint", || {
        TcpStream::connect(("127.0.0.1", d.port)).ok().map(|_| sse(d.port))
    });
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
    let log = d.log("run");
    assert!(log.contains("event=\"status_changed\"") && log.contains("api: pass → fail"), "{log}");

    // An open stream never holds up a stop.
    let pid = nix::unistd::Pid::from_raw(d.daemon.0.id() as i32);
    let stopping = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(d.daemon.wait_exit(Duration::from_secs(10)), 0);
    assert!(stopping.elapsed() < Duration::from_secs(3), "stopped after {:?}", stopping.elapsed());
}

#[test]
fn a_quiet_event_stream_gets_a_keep_alive_comment() {
    let d = Running::start("run", &format!("runtime: {{interval: 1h}}\nchecks:\n{}", disk("root", "")), "", &[]);
    d.wait_passed(Duration::from_secs(15));
    let rx = sse(d.port);
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
