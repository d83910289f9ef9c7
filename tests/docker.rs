//! The `docker` and `containers` kinds through the real binary against a private
//! Docker engine, a missing socket and a socket that accepts and never answers;
//! plus the verdict time of a default-like gate once every component is up.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::{Dockerd, HangingListener, Health, Launch, NotifySocket, Swtpm, check, free_port, message, result};

#[test]
fn docker_and_containers_against_a_real_engine() {
    let engine = Dockerd::start();
    engine.run_container("web", Health::Passing);
    engine.run_container("plain", Health::None);
    engine.run_container("sick", Health::Failing);
    engine.wait_health("web", "healthy", Duration::from_secs(20));
    engine.wait_health("sick", "unhealthy", Duration::from_secs(20));
    let sock = engine.socket_path();
    let sock = sock.display();
    let policy = format!(
        "version: 1
checks:
  - {{name: docker, kind: docker, socket: '{sock}'}}
  - {{name: healthy, kind: containers, socket: '{sock}', require_running: [web, plain], fail_on_unhealthy: false}}
  - {{name: missing, kind: containers, critical: false, retries: 0, socket: '{sock}', require_running: [web, ghost], fail_on_unhealthy: false}}
  - {{name: any-unhealthy, kind: containers, critical: false, retries: 0, socket: '{sock}'}}
  - {{name: required-unhealthy, kind: containers, critical: false, retries: 0, socket: '{sock}', require_running: [sick], fail_on_unhealthy: false}}
"
    );
    let (code, v, _) = check(&policy);
    assert_eq!(code, 1, "{v:#}");

    let docker = result(&v, "docker");
    assert_eq!(docker["result"], "pass", "{docker:#}");
    let server = engine.docker_ok(&["version", "--format", "{{.Server.Version}}|{{.Server.APIVersion}}"]);
    let (version, api) = server.split_once('|').unwrap();
    assert_eq!(docker["observed"]["version"], version, "{docker:#}");
    assert_eq!(docker["observed"]["api_version"], api, "{docker:#}");
    assert_eq!(docker["observed"]["containers_running"], 3, "{docker:#}");
    assert_eq!(docker["observed"]["engine"], "docker", "{docker:#}");
    assert!(message(&v, "docker").contains(&format!("engine {version}")), "{docker:#}");

    let healthy = result(&v, "healthy");
    assert_eq!(healthy["result"], "pass", "{healthy:#}");
    assert_eq!(healthy["observed"]["running"], 3);
    assert_eq!(healthy["observed"]["required_ready"], 2);

    assert_eq!(result(&v, "missing")["result"], "fail");
    assert_eq!(message(&v, "missing"), "required container `ghost` does not exist");

    assert_eq!(result(&v, "any-unhealthy")["result"], "fail");
    assert_eq!(message(&v, "any-unhealthy"), "unhealthy: `sick`");
    assert_eq!(result(&v, "any-unhealthy")["observed"]["unhealthy"], 1);

    assert_eq!(message(&v, "required-unhealthy"), "required container `sick` is unhealthy");
}

#[test]
fn a_starting_container_that_turns_healthy_in_time_passes_the_gate() {
    let engine = Dockerd::start();
    engine.run_container("slow", Health::PassingAfter(Duration::from_secs(3)));
    let policy = format!(
        "version: 1
gate: {{deadline: 30s}}
checks:
  - {{name: app, kind: containers, socket: '{}', require_running: [slow], timeout: 2s, retries: 10}}
",
        engine.socket_path().display()
    );
    let (code, v, took) = check(&policy);
    assert_eq!(code, 0, "{v:#}");
    let r = result(&v, "app");
    assert_eq!(r["result"], "pass", "{r:#}");
    assert!(r["attempts"].as_u64().unwrap() >= 2, "the first attempt should have seen it starting: {r:#}");
    println!("container healthy after ~3 s: gate passed after {took:?}, {} attempts", r["attempts"]);
}

#[test]
fn a_missing_socket_fails_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker.sock");
    let (code, v, took) = check(&format!(
        "version: 1\nchecks:\n  - {{name: docker, kind: docker, retries: 0, socket: '{}'}}\n",
        sock.display()
    ));
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(message(&v, "docker"), format!("docker socket not found: {}", sock.display()));
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_socket_that_never_answers_fails_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let hang = HangingListener::unix(dir.path().join("docker.sock"));
    let sock = hang.path().display();
    let (code, v, took) = check(&format!(
        "version: 1
checks:
  - {{name: docker, kind: docker, timeout: 1s, retries: 0, socket: '{sock}'}}
  - {{name: containers, kind: containers, timeout: 1s, retries: 0, socket: '{sock}', require_running: [web]}}
"
    ));
    assert_eq!(code, 2, "{v:#}");
    for name in ["docker", "containers"] {
        let msg = message(&v, name);
        assert!(msg.contains("timed out after 1s"), "{name}: {msg}");
    }
    println!("hung docker socket, timeout 1 s: verdict after {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(took >= Duration::from_millis(900), "took {took:?}: it cannot have waited for the timeout");
}

#[test]
fn a_stopped_engine_turns_the_check_failed_after_the_threshold_and_back_after_restart() {
    let mut engine = Dockerd::start();
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let policy = format!(
        "version: 1
runtime: {{interval: 1s, failure_threshold: 2, success_threshold: 1}}
server: {{listen: '127.0.0.1:{}'}}
checks:
  - {{name: docker, kind: docker, timeout: 900ms, socket: '{}'}}
",
        free_port(),
        engine.socket_path().display()
    );
    let _daemon = Launch::run(policy).in_dir(dir.path()).notify(&notify).start();
    let start = Instant::now();
    notify.wait_for("READY=1", start, Duration::from_secs(15), |m| m.contains("READY=1"));

    // Measured from before the stop: the socket may vanish while stop() waits for exit.
    let stopping = Instant::now();
    engine.stop();
    let failed = notify.wait_for("the check turning failed", stopping, Duration::from_secs(15), |m| {
        m.contains("now unhealthy") && m.contains("docker failed")
    });
    let held = failed.duration_since(stopping);
    println!("engine stopped: check failed after {held:?} (interval 1 s, failure_threshold 2)");
    assert!(held >= Duration::from_millis(900), "turned failed after {held:?}: one failing round must not flip it");

    engine.restart();
    let restarted = Instant::now();
    let back = notify.wait_for("recovery", restarted, Duration::from_secs(15), |m| m.contains("now healthy"));
    println!("engine restarted: check passed again after {:?}", back.duration_since(restarted));
}

/// A one-thread HTTP server on loopback answering every request with 200 and a status body.
fn api_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "{\"status\":\"ok\"}";
            let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = s.write_all(reply.as_bytes());
        }
    });
    port
}

#[test]
fn a_default_like_gate_reaches_its_verdict_fast() {
    let tpm = Swtpm::start();
    let engine = Dockerd::start();
    engine.run_container("web", Health::Passing);
    engine.wait_health("web", "healthy", Duration::from_secs(20));
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = api_server();
    let sock = engine.socket_path();
    let policy = format!(
        "version: 1
checks:
  - {{name: tpm, kind: tpm, tcti: '{tcti}'}}
  - {{name: storage, kind: disk, path: /, min_free_percent: 0}}
  - {{name: docker, kind: docker, socket: '{sock}'}}
  - {{name: containers, kind: containers, critical: false, after: [docker], socket: '{sock}', require_running: [web]}}
  - {{name: network, kind: tcp, critical: false, targets: ['{service}']}}
  - {{name: api, kind: http, url: 'http://127.0.0.1:{api}/api/v1/status', expect_status: 200-299}}
",
        tcti = tpm.tcti(),
        sock = sock.display(),
        service = service.local_addr().unwrap(),
    );
    // The first run warms caches (binary, TCTI library); the figure is the best of five.
    let mut best = f64::MAX;
    for _ in 0..6 {
        let (code, v, _) = check(&policy);
        assert_eq!(code, 0, "{v:#}");
        assert_eq!(v["status"], "healthy", "{v:#}");
        best = best.min(v["gate_duration_ms"].as_f64().unwrap());
    }
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("default-like gate (tpm, disk, docker, containers, tcp, http): verdict in {best:.1} ms ({build} build)");
    assert!(best < 1000.0, "the gate took {best} ms");
}
