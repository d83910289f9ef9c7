//! The runtime after the gate, through real daemons and real HTTP (curl): each check on its
//! own interval, `BOOTGATE_INTERVAL`, `max_concurrent`, `start_period`, runs on request and
//! the event stream.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Daemon, Launch, check, free_port};

/// A `bootgate run` (or `serve`) on a free port, logging to its temp dir.
struct Running {
    dir: tempfile::TempDir,
    port: u16,
    daemon: Daemon,
}

impl Running {
    /// Starts `command` on `policy`, whose `server:` line is added here (`server` is extra keys).
    fn start(command: &str, policy: &str, server: &str, env: &[(&str, &str)]) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let text = format!("version: 1\nserver: {{listen: '127.0.0.1:{port}'{server}}}\n{policy}");
        std::fs::write(dir.path().join("policy.yaml"), text).unwrap();
        Self::spawn(dir, port, command, env)
    }

    fn spawn(dir: tempfile::TempDir, port: u16, command: &str, env: &[(&str, &str)]) -> Running {
        let log = std::fs::File::create(dir.path().join(format!("{command}.log"))).unwrap();
        let launch = Launch {
            command,
            dir: dir.path(),
            notify: None,
            watchdog_usec: None,
            stdout: Stdio::null(),
            stderr: log.into(),
        };
        let child = launch.spawn(|cmd| {
            for (k, v) in env {
                cmd.env(k, v);
            }
        });
        Running { dir, port, daemon: Daemon(child) }
    }

    fn log(&self, command: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{command}.log"))).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `curl -X METHOD`: status, body and headers.
    fn curl(&self, method: &str, path: &str) -> (u16, String, String) {
        let head = self.dir.path().join("headers.txt");
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "-X", method, "-D"])
            .arg(&head)
            .args(["-w", "\n%{http_code}", &self.url(path)])
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string(), std::fs::read_to_string(head).unwrap_or_default())
    }

    fn health(&self) -> Value {
        let (_, body, _) = self.curl("GET", "/api/v1/system/health");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// Waits until the gate has passed (the endpoint says so).
    fn wait_passed(&self, timeout: Duration) -> Value {
        wait(timeout, "the gate to pass", || Some(self.health()).filter(|h| h["startup_health_check"] == "passed"))
    }

    /// `bootgate_check_runs_total` of `check`, over every result.
    fn runs(&self, check: &str) -> u64 {
        let (_, body, _) = self.curl("GET", "/metrics");
        let prefix = format!("bootgate_check_runs_total{{check=\"{check}\"");
        body.lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, n)| n.parse::<f64>().ok()))
            .sum::<f64>() as u64
    }
}

/// Polls `probe` every 50 ms until it gives a value; panics after `timeout` naming `what`.
fn wait<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {timeout:?} waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn disk(name: &str, extra: &str) -> String {
    format!("  - {{name: {name}, kind: disk, path: /, min_free_percent: 0{extra}}}\n")
}

#[test]
fn each_check_keeps_its_own_interval_and_a_slow_one_delays_nobody() {
    let checks = format!(
        "runtime: {{interval: 30s}}\nchecks:\n{}{}  - {{name: sleepy, kind: exec, critical: false, interval: 1s, timeout: 5s, command: [sleep, '3']}}\n",
        disk("fast", ", interval: 1s"),
        disk("slow", ", interval: 5s"),
    );
    let d = Running::start("run", &checks, "", &[]);
    d.wait_passed(Duration::from_secs(15));
    let (fast, slow) = (d.runs("fast"), d.runs("slow"));
    thread::sleep(Duration::from_millis(10_500));
    let (fast, slow) = (d.runs("fast") - fast, d.runs("slow") - slow);
    eprintln!("runs in 10.5 s: fast (1s) {fast}, slow (5s) {slow}");
    assert!((7..=12).contains(&fast), "fast ran {fast} times in 10.5 s");
    assert!((1..=3).contains(&slow), "slow ran {slow} times in 10.5 s");
    assert!(fast >= 3 * slow, "fast {fast} vs slow {slow}");
}

#[test]
fn bootgate_interval_sets_the_checks_without_their_own() {
    let checks =
        format!("runtime: {{interval: 30s}}\nchecks:\n{}{}", disk("shared", ""), disk("own", ", interval: 30s"));
    let d = Running::start("run", &checks, "", &[("BOOTGATE_INTERVAL", "1s")]);
    d.wait_passed(Duration::from_secs(15));
    let (shared, own) = (d.runs("shared"), d.runs("own"));
    thread::sleep(Duration::from_millis(4_500));
    let (shared, own) = (d.runs("shared") - shared, d.runs("own") - own);
    assert!(shared >= 3, "BOOTGATE_INTERVAL=1s: shared ran only {shared} times in 4.5 s");
    assert_eq!(own, 0, "the check's own 30s interval must win over BOOTGATE_INTERVAL");
}

/// Six checks of one second each, two at a time, with a timeout shorter than the wait for a slot.
fn six_sleeps(gate: &str) -> String {
    let mut policy = format!("version: 1\ngate: {{deadline: 30s{gate}}}\nchecks:\n");
    for i in 0..6 {
        policy
            .push_str(&format!("  - {{name: s{i}, kind: exec, retries: 0, timeout: 1500ms, command: [sleep, '1']}}\n"));
    }
    policy
}

#[test]
fn gate_max_concurrent_runs_n_at_a_time_and_the_timeout_starts_with_the_slot() {
    let (code, verdict, took) = check(&six_sleeps(", max_concurrent: 2"));
    eprintln!("6 × 1 s, max_concurrent 2: {took:?}");
    assert_eq!(code, 0, "waiting for a slot must not count against the 1.5s timeout: {verdict:#}");
    assert!(took >= Duration::from_millis(2_800), "three waves of two take about 3 s, took {took:?}");
    assert!(took < Duration::from_secs(9), "took {took:?}");
    let (code, _, took) = check(&six_sleeps(""));
    eprintln!("6 × 1 s, no limit: {took:?}");
    assert_eq!(code, 0);
    assert!(took < Duration::from_millis(2_700), "without a limit all six run at once, took {took:?}");
}

#[test]
fn runtime_max_concurrent_spreads_the_checks_over_its_slots() {
    let mut checks = String::from("runtime: {interval: 4s, max_concurrent: 2}\nchecks:\n");
    for i in 0..6 {
        checks
            .push_str(&format!("  - {{name: s{i}, kind: exec, retries: 0, timeout: 1500ms, command: [sleep, '1']}}\n"));
    }
    let d = Running::start("run", &checks, "", &[]);
    let gate = d.wait_passed(Duration::from_secs(15));
    let stamp = |h: &Value, i: usize| h["components"][format!("s{i}")]["last_check"].as_str().unwrap_or("").to_string();
    let before: Vec<String> = (0..6).map(|i| stamp(&gate, i)).collect();
    let after = wait(Duration::from_secs(15), "one runtime run of all six", || {
        let h = d.health();
        (0..6).all(|i| stamp(&h, i) != before[i]).then_some(h)
    });
    let times: Vec<std::time::SystemTime> =
        (0..6).map(|i| humantime::parse_rfc3339(&stamp(&after, i)).unwrap()).collect();
    let spread = times.iter().max().unwrap().duration_since(*times.iter().min().unwrap()).unwrap();
    eprintln!("runtime, 6 × 1 s, max_concurrent 2: results spread over {spread:?}");
    assert!(spread >= Duration::from_millis(1_500), "two at a time finish in three waves; spread {spread:?}");
    assert!(spread < Duration::from_secs(5), "spread {spread:?}");
    for i in 0..6 {
        assert_eq!(after["components"][format!("s{i}")]["result"], "pass", "{after:#}");
    }
}

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
    let closed = free_port();
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
fn failures_in_the_start_period_do_not_count() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = service.local_addr().unwrap();
    let checks = format!(
        "runtime: {{interval: 2s, failure_threshold: 1}}\nchecks:\n  - {{name: api, kind: tcp, timeout: 500ms, start_period: 5s, targets: ['{addr}']}}\n"
    );
    let d = Running::start("run", &checks, "", &[]);
    d.wait_passed(Duration::from_secs(15));
    let passed = Instant::now();
    drop(service);
    let held = wait(Duration::from_secs(6), "a failure inside the start period", || {
        let c = d.health()["components"]["api"].clone();
        (c["start_period"] == true).then_some(c)
    });
    assert_eq!(held["result"], "pass", "{held:#}");
    assert_eq!(held["consecutive_failures"], 0, "{held:#}");
    assert!(held["message"].as_str().unwrap().starts_with("start period ("), "{held:#}");
    wait(Duration::from_secs(10), "the failure to count after the start period", || {
        (d.health()["components"]["api"]["result"] == "fail").then_some(())
    });
    let after = passed.elapsed();
    assert!(after >= Duration::from_millis(4_500), "failed {after:?} after the gate, inside the 5s start period");
}

/// Reads an SSE stream line by line on a thread; each line with its arrival time.
fn sse(port: u16) -> mpsc::Receiver<(Instant, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET /api/v1/system/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next `data:` line of an event named `name` whose data satisfies `pred`.
fn next_event(
    rx: &mpsc::Receiver<(Instant, String)>,
    name: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> (Instant, Value) {
    let end = Instant::now() + timeout;
    let mut current = String::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let (at, line) = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no `{name}` event within {timeout:?}"));
        if let Some(e) = line.strip_prefix("event: ") {
            current = e.to_string();
        } else if let Some(data) = line.strip_prefix("data: ")
            && current == name
        {
            let v: Value = serde_json::from_str(data).unwrap();
            if pred(&v) {
                return (at, v);
            }
        }
    }
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
