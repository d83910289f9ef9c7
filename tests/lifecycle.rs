//! The daemon's life around the verdict: the endpoint never decides the boot, a boot is
//! judged once (restart after a pass or a fail, an unreadable verdict), `bootgate serve`
//! keeps a failed boot observable, SIGHUP reloads the policy, and nothing a check starts
//! outlives it (detached children, a killed daemon), all against the real binary.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use support::{ClosedPort, Daemon, Launch, NotifySocket, Proc, bootgate, free_port, mentioning, wait, wait_until};

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn passing(listen: u16) -> String {
    format!(
        "version: 1\nruntime: {{interval: 1s}}\nserver: {{listen: '127.0.0.1:{listen}'}}\nchecks:\n  - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n"
    )
}

/// `bootgate run` on `policy` in `dir`, reporting to `notify`.
fn start(dir: &std::path::Path, policy: &str, notify: &NotifySocket) -> Daemon {
    Launch::run(policy).in_dir(dir).notify(notify).start()
}

#[test]
fn a_taken_address_never_blocks_a_passing_gate() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut daemon = start(dir.path(), &passing(port), &notify);
    notify.wait_for("READY=1", Instant::now(), Duration::from_secs(10), |m| m.contains("READY=1"));
    let msgs = notify.texts();
    let ready = notify.ready_status();
    assert!(ready.contains("gate passed"), "{ready}");
    assert!(
        msgs.iter().any(|m| m.contains(&format!("health endpoint down: cannot listen on 127.0.0.1:{port}"))),
        "STATUS must say the endpoint is down and where: {msgs:#?}"
    );
    assert_eq!(read_json(&dir.path().join("run/verdict.json"))["gate"], "passed");

    // Once the port is free the endpoint comes up by itself (retried every 5 s).
    drop(taken);
    assert!(
        wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
            support::http::get(([127, 0, 0, 1], port).into(), "/readyz").is_ok_and(|r| r.status == 200)
        }),
        "the endpoint never came up after its port was freed"
    );
    assert!(daemon.is_running());
}

#[test]
fn serve_keeps_a_failed_gate_observable_and_never_decides_again() {
    let closed = ClosedPort::new();
    let checks = format!(
        "  - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n  - {{name: api, kind: tcp, timeout: 500ms, retries: 0, targets: ['127.0.0.1:{closed}']}}\n"
    );
    let mut run = Launch::gate("{deadline: 5s, on_failure: stay}", &checks).start();
    assert_eq!(run.wait_exit(Duration::from_secs(10)).code(), Some(2), "{}", run.stderr());
    let verdict_path = run.run_dir().join("verdict.json");
    let verdict = std::fs::read(&verdict_path).unwrap();

    let started = Instant::now();
    let mut serve = run.then("serve").start();
    let health = serve.wait_status("/api/v1/system/health", 503, Duration::from_secs(10));
    let took = started.elapsed();
    let doc = health.json();
    assert_eq!(doc["startup_health_check"], "failed", "{doc:#}");
    assert_eq!(doc["status"], "unhealthy", "{doc:#}");
    assert_eq!(doc["startup_failing"][0]["name"], "api", "{doc:#}");
    let message = doc["startup_failing"][0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("127.0.0.1:{closed}")), "{message}");
    assert_eq!(doc["components"]["api"]["message"], message, "{doc:#}");
    let readyz = serve.get("/readyz?verbose");
    assert_eq!(readyz.status, 503);
    assert!(readyz.body.contains("[-]gate failed: boot gate failed"), "{}", readyz.body);
    assert!(readyz.body.contains("[-]api failed:"), "{}", readyz.body);
    let metrics = serve.get("/metrics").body;
    assert!(metrics.lines().any(|l| l == "bootgate_gate_passed 0"), "{metrics}");
    eprintln!("serve answered the failed gate {took:?} after it started");

    // It re-checks (interval 1s) but never runs a gate: the verdict stays as recorded.
    let first = doc["components"]["api"]["last_check"].clone();
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
            serve.get("/api/v1/system/health").json()["components"]["api"]["last_check"] != first
        }),
        "serve did not re-run the checks"
    );
    let later = serve.get("/api/v1/system/health");
    assert_eq!(later.status, 503);
    assert_eq!(later.json()["startup_health_check"], "failed");
    assert_eq!(std::fs::read(&verdict_path).unwrap(), verdict, "serve must not touch the verdict");
    let history = std::fs::read_to_string(run.state_dir().join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 1, "{history}");

    // A second `run` in the same boot still exits 2 at once, whatever serve does.
    let t = Instant::now();
    let mut again = run.then("run").start();
    assert_eq!(again.wait_exit(Duration::from_secs(5)).code(), Some(2), "{}", again.stderr());
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
    assert!(again.stderr().contains("not run again"), "{}", again.stderr());

    serve.terminate();
    assert_eq!(serve.wait_exit(Duration::from_secs(5)).code(), Some(0), "{}", serve.stderr());
}

#[test]
fn serve_without_a_verdict_says_so_and_runs_no_gate() {
    let bg = Launch::gate("{deadline: 5s}", "  - {name: root, kind: disk, path: /}\n").start();
    // The run above writes a verdict soon: ask another, empty run dir.
    let empty = tempfile::tempdir().unwrap();
    let state = empty.path().join("state");
    let out = bootgate(&[
        "--policy",
        bg.policy_path().to_str().unwrap(),
        "serve",
        "--run-dir",
        empty.path().to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(66));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no verdict for this boot") && err.contains("never runs one"), "{err}");
    assert!(!empty.path().join("verdict.json").exists());
    assert!(!empty.path().join("state").exists(), "serve must record nothing");
}

#[test]
fn a_restart_after_a_passed_gate_resumes_without_judging_again() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let notify = NotifySocket::bind(dir.path());
    let mut daemon = start(dir.path(), &passing(listen), &notify);
    notify.wait_for("READY=1", Instant::now(), Duration::from_secs(10), |m| m.contains("READY=1"));
    let verdict = std::fs::read(dir.path().join("run/verdict.json")).unwrap();
    daemon.kill();

    // The policy now fails: judging again would reboot a device whose update was accepted.
    let closed = ClosedPort::new();
    let failing = format!(
        "{}  - {{name: api, kind: tcp, timeout: 500ms, retries: 0, targets: ['127.0.0.1:{closed}']}}\n",
        passing(listen)
    );
    let again = NotifySocket::bind(&dir.path().join("run"));
    let t = Instant::now();
    let mut daemon = start(dir.path(), &failing, &again);
    let ready = again.wait_for("READY=1", t, Duration::from_secs(5), |m| m.contains("READY=1"));
    assert!(ready.duration_since(t) < Duration::from_secs(3), "READY after {:?}", ready.duration_since(t));
    let status = again.ready_status();
    assert!(status.contains("gate passed earlier in this boot"), "{status}");
    assert_eq!(std::fs::read(dir.path().join("run/verdict.json")).unwrap(), verdict);
    let history = std::fs::read_to_string(dir.path().join("state/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 1, "one boot, one record: {history}");
    assert!(daemon.is_running(), "the resumed daemon keeps running");
}

#[test]
fn an_unreadable_verdict_of_this_boot_fails_closed() {
    for (what, prepare) in [
        ("corrupt", (|p: &std::path::Path| std::fs::write(p, "{\"gate\": \"pas").unwrap()) as fn(&std::path::Path)),
        ("fifo", |p| nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap()),
        // Valid JSON, but no gate takes 1e300 ms: it once made the daemon panic (exit 101).
        ("huge duration", |p| std::fs::write(p, r#"{"gate": "passed", "gate_duration_ms": 1e300}"#).unwrap()),
        ("huge check duration", |p| {
            std::fs::write(p, r#"{"gate": "failed", "checks": [{"name": "root", "duration_ms": 1e300}]}"#).unwrap()
        }),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let notify = NotifySocket::bind(dir.path());
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        let verdict = dir.path().join("run/verdict.json");
        prepare(&verdict);
        let t = Instant::now();
        let mut daemon = start(dir.path(), &passing(free_port()), &notify);
        // Nothing here waits on a timeout, so any bound proves that a FIFO is never
        // opened for a blocking read; a wide one keeps a loaded machine from failing it.
        assert_eq!(daemon.wait_exit(Duration::from_secs(15)).code(), Some(2), "{what}: {}", daemon.stderr());
        assert!(t.elapsed() < Duration::from_secs(10), "{what}: took {:?}", t.elapsed());
        let msgs = notify.texts();
        assert!(!msgs.iter().any(|m| m.contains("READY=1")), "{what}: {msgs:#?}");
        assert!(
            msgs.iter().any(|m| m.contains("gate failed closed") && m.contains(&verdict.display().to_string())),
            "{what}: STATUS must name the file: {msgs:#?}"
        );
        // `serve` reports only a verdict it can read: it says why and exits, never panics.
        let mut serve = daemon.then("serve").start();
        assert_eq!(serve.wait_exit(Duration::from_secs(15)).code(), Some(66), "{what}: {}", serve.stderr());
    }
}

#[test]
fn a_fifo_as_history_never_holds_up_the_gate_or_its_stop() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let history = dir.path().join("state/history.jsonl");
    nix::unistd::mkfifo(&history, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut daemon = start(dir.path(), &passing(free_port()), &notify);
    notify.wait_for("READY=1", Instant::now(), Duration::from_secs(10), |m| m.contains("READY=1"));
    let t = Instant::now();
    daemon.terminate();
    assert_eq!(daemon.wait_exit(Duration::from_secs(5)).code(), Some(0), "{}", daemon.stderr());
    assert!(t.elapsed() < Duration::from_secs(3), "stop took {:?}", t.elapsed());
    // The FIFO was replaced by a real history with this boot's line.
    assert!(std::fs::metadata(&history).unwrap().is_file());
    assert_eq!(std::fs::read_to_string(&history).unwrap().lines().count(), 1);
}

#[test]
fn sighup_reloads_the_policy_and_keeps_it_when_the_new_one_is_invalid() {
    let mut bg = Launch::gate("{deadline: 5s}", "  - {name: root, kind: disk, path: /, min_free_percent: 0}\n").start();
    bg.wait_status("/readyz", 200, Duration::from_secs(10));
    let port = bg.port();
    let policy = |checks: &str| {
        format!("version: 1\nruntime: {{interval: 1s}}\nserver: {{listen: '127.0.0.1:{port}'}}\nchecks:\n{checks}")
    };
    let two = "  - {name: root, kind: disk, path: /, min_free_percent: 0}\n  - {name: tmp, kind: disk, path: /tmp, min_free_percent: 0}\n";
    std::fs::write(bg.policy_path(), policy(two)).unwrap();
    bg.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            bg.get("/api/v1/system/health").json()["components"]["tmp"]["status"] == "healthy"
        }),
        "the reloaded check never ran:\n{}",
        bg.stderr()
    );

    std::fs::write(bg.policy_path(), policy("  - {name: root, kind: nonsense}\n")).unwrap();
    bg.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || bg
            .stderr()
            .contains("policy reload failed; keeping the policy in force")),
        "{}",
        bg.stderr()
    );
    assert!(bg.stderr().contains("unknown check kind `nonsense`"), "{}", bg.stderr());
    let doc = bg.get("/api/v1/system/health").json();
    assert_eq!(doc["status"], "healthy", "{doc:#}");
    assert!(doc["components"]["tmp"].is_object(), "{doc:#}");
    bg.terminate();
    assert_eq!(bg.wait_exit(Duration::from_secs(5)).code(), Some(0), "{}", bg.stderr());
}

/// Exec checks that leave processes behind, each marked by a unique `sleep` argument.
#[test]
fn a_detached_child_is_killed_when_its_check_ends() {
    let marker = format!("{}.{}", 3000 + std::process::id() % 1000, 31415);
    let script = format!("setsid sleep {marker} & sleep 30");
    let policy = format!(
        "version: 1\ngate: {{deadline: 10s}}\nchecks:\n  - {{name: detach, kind: exec, timeout: 1s, retries: 0, command: [sh, -c, '{script}']}}\n"
    );
    let (code, verdict, took) = support::check(&policy);
    assert_eq!(code, 2, "{verdict:#}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let gone = wait_until(Duration::from_secs(3), Duration::from_millis(50), || mentioning(&marker).is_empty());
    assert!(gone, "the setsid child outlived its check: {:?}", mentioning(&marker));
}

#[test]
fn the_daemon_kills_orphans_of_its_checks_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let marker = format!("{}.{}", 3000 + std::process::id() % 1000, 27182);
    let born = dir.path().join("orphans");
    // Each run starts a `sleep` in a session of its own, out of reach of the kill of the
    // check's process group, which writes down its pid; once it has, the run ends and
    // leaves it an orphan of the daemon.
    let script = format!(
        "setsid sh -c 'echo $$ >> {born}; exec sleep {marker}' & while ! grep -qx $! {born}; do sleep 0.01; done",
        born = born.display()
    );
    let policy = format!(
        "{}  - {{name: fork, kind: exec, critical: false, timeout: 10s, command: [sh, -c, \"{script}\"]}}\n",
        passing(free_port())
    );
    let mut daemon = start(dir.path(), &policy, &notify);
    notify.wait_for("READY=1", Instant::now(), Duration::from_secs(10), |m| m.contains("READY=1"));
    // The gate ran it once, and runtime rounds (interval 1s) run it again and again.
    let orphans = wait(Duration::from_secs(20), "three runs of the check, each leaving an orphan", || {
        let text = std::fs::read_to_string(&born).unwrap_or_default();
        let pids: Vec<u32> = text.lines().map(|l| l.parse().expect("a pid")).collect();
        (pids.len() >= 3).then_some(pids)
    });
    let outliving = || -> Vec<Proc> { mentioning(&marker).into_iter().filter(|p| orphans.contains(&p.pid)).collect() };
    // A sleep of an hour or so ends this early only when it is killed: the daemon killed each.
    let gone = wait_until(Duration::from_secs(5), Duration::from_millis(50), || outliving().is_empty());
    assert!(gone, "orphans of the check outlived it: {:?} of {orphans:?}", outliving());
    assert!(daemon.is_running(), "the daemon stopped:\n{}", daemon.stderr());
}

#[test]
fn exec_children_die_with_a_killed_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let marker = format!("{}.{}", 3000 + std::process::id() % 1000, 16180);
    let policy = format!(
        "version: 1\ngate: {{deadline: 60s}}\nserver: {{listen: '127.0.0.1:{}'}}\nchecks:\n  - {{name: slow, kind: exec, timeout: 30s, command: [sleep, '{marker}']}}\n",
        free_port()
    );
    let mut daemon = start(dir.path(), &policy, &notify);
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || !mentioning(&marker).is_empty()),
        "the check never started"
    );
    daemon.kill();
    let gone = wait_until(Duration::from_secs(3), Duration::from_millis(50), || mentioning(&marker).is_empty());
    assert!(gone, "the check's process outlived the daemon: {:?}", mentioning(&marker));
}
