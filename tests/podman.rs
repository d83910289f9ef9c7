//! The `docker` and `containers` kinds through the real binary against podman's
//! Docker-compatible API (`podman system service`, as `podman.socket` starts it on
//! Fedora IoT and bootc hosts), on a private service of the machine's podman.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{Health, Launch, Podman, check, check_with, find_binary, message, result};

/// Every standing the `containers` check tells apart, on one podman service.
#[test]
fn docker_and_containers_against_a_real_podman_service() {
    let podman = Podman::start();
    podman.run_container("web", Health::Passing);
    podman.run_container("plain", Health::None);
    podman.run_container("sick", Health::Failing);
    podman.run_container("waiting", Health::Passing);
    podman.run_container("stopped", Health::None);
    podman.podman_ok(&["stop", "stopped"]);
    podman.create_container("fresh");
    // Without systemd nothing schedules podman's healthchecks: run them as its timer would.
    assert!(podman.healthcheck("web"), "the passing healthcheck failed");
    assert!(!podman.healthcheck("sick"), "the failing healthcheck passed");
    assert_eq!(podman.state("web")["Health"]["Status"], "healthy");
    assert_eq!(podman.state("sick")["Health"]["Status"], "unhealthy");
    assert_eq!(podman.state("waiting")["Health"]["Status"], "starting");

    let sock = podman.socket_path();
    let sock = sock.display();
    let policy = format!(
        "version: 1
checks:
  - {{name: docker, kind: docker, socket: '{sock}'}}
  - {{name: from-env, kind: docker}}
  - {{name: healthy, kind: containers, socket: '{sock}', require_running: [web, plain], fail_on_unhealthy: false}}
  - {{name: missing, kind: containers, critical: false, retries: 0, socket: '{sock}', require_running: [web, ghost], fail_on_unhealthy: false}}
  - {{name: stopped, kind: containers, critical: false, retries: 0, socket: '{sock}', require_running: [stopped, fresh], fail_on_unhealthy: false}}
  - {{name: any-unhealthy, kind: containers, critical: false, retries: 0, socket: '{sock}'}}
  - {{name: required-unhealthy, kind: containers, critical: false, retries: 0, socket: '{sock}', require_running: [sick], fail_on_unhealthy: false}}
  - {{name: starting, kind: containers, critical: false, retries: 0, socket: '{sock}', require_running: [waiting], fail_on_unhealthy: false}}
"
    );
    let host = format!("unix://{sock}");
    let (code, v, _, _) = check_with(&policy, &[("DOCKER_HOST", &host)]);
    assert_eq!(code, 1, "{v:#}");

    let version = podman.version();
    let (engine, api) = (version["Version"].as_str().unwrap(), version["ApiVersion"].as_str().unwrap());
    for name in ["docker", "from-env"] {
        let docker = result(&v, name);
        assert_eq!(docker["result"], "pass", "{docker:#}");
        assert_eq!(docker["observed"]["engine"], "podman", "{docker:#}");
        assert_eq!(docker["observed"]["version"], engine, "{docker:#}");
        assert_eq!(docker["observed"]["api_version"], api, "{docker:#}");
        assert_eq!(docker["observed"]["containers_running"], 4, "{docker:#}");
        assert_eq!(message(&v, name), format!("podman {engine} (API {api}), 4 containers running"));
    }

    let healthy = result(&v, "healthy");
    assert_eq!(healthy["result"], "pass", "{healthy:#}");
    assert_eq!(healthy["observed"]["running"], 4, "{healthy:#}");
    assert_eq!(healthy["observed"]["required_ready"], 2, "{healthy:#}");

    assert_eq!(result(&v, "missing")["result"], "fail");
    assert_eq!(message(&v, "missing"), "required container `ghost` does not exist");

    assert_eq!(result(&v, "stopped")["result"], "fail");
    assert_eq!(
        message(&v, "stopped"),
        "required container `stopped` is exited, not running; required container `fresh` is created, not running"
    );

    assert_eq!(result(&v, "any-unhealthy")["result"], "fail");
    assert_eq!(message(&v, "any-unhealthy"), "unhealthy: `sick`");
    assert_eq!(result(&v, "any-unhealthy")["observed"]["unhealthy_names"], serde_json::json!(["sick"]));

    assert_eq!(message(&v, "required-unhealthy"), "required container `sick` is unhealthy");
    assert_eq!(message(&v, "starting"), "still starting (health check not passed yet): `waiting`");
}

/// A container whose healthcheck had not run when the gate began passes once podman
/// runs it, within the same gate: `starting` is retried, not judged.
#[test]
fn a_healthcheck_that_passes_later_lets_the_gate_pass() {
    let podman = Podman::start();
    podman.run_container("app", Health::Passing);
    let policy = format!(
        "version: 1
gate: {{deadline: 60s}}
checks:
  - {{name: app, kind: containers, socket: '{}', require_running: [app], timeout: 2s, retries: 30}}
",
        podman.socket_path().display()
    );
    let (code, v, _) = std::thread::scope(|s| {
        let gate = s.spawn(|| check(&policy));
        // The healthcheck runs while the gate waits: the gate began with `starting`,
        // whether or not its first attempt came before this run.
        std::thread::sleep(Duration::from_secs(2));
        assert!(podman.healthcheck("app"), "the passing healthcheck failed");
        gate.join().expect("the gate thread panicked")
    });
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(result(&v, "app")["result"], "pass", "{v:#}");
    assert_eq!(message(&v, "app"), "1 running, 0 unhealthy, required app ready");
}

/// Mounts that make a private mount namespace look like a podman host under the unit's
/// sandbox: `/run` holds no dockerd socket, only podman's (the test service's dir bound
/// at `/run/podman`), and both are read-only, as `ProtectSystem=strict` makes them.
/// A stand-in for systemd, which cannot run the unit here; `$0` is the service's dir.
const PODMAN_HOST: &str = "mount -t tmpfs -o mode=0755 bootgate-test-run /run \
    && mkdir /run/podman && mount --bind \"$0\" /run/podman \
    && mount -o remount,bind,ro /run/podman && mount -o remount,ro /run \
    && exec \"$@\"";

/// `bootgate check` of `policy` in a namespace set up by [`PODMAN_HOST`] around `run_dir`.
fn check_on_a_podman_host(run_dir: &Path, policy: &str) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    let unshare = find_binary("unshare", "util-linux");
    let run_dir = run_dir.to_path_buf();
    let out = Launch::command(&["check", "--format", "json", "--policy", path.to_str().unwrap()])
        .through(move |bootgate| {
            let mut cmd = Command::new(unshare);
            cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c", PODMAN_HOST])
                .arg(run_dir)
                .args(bootgate);
            cmd
        })
        .output_within(Duration::from_secs(60));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON verdict ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), v)
}

/// With neither `socket:` nor `DOCKER_HOST` and no dockerd socket, both kinds find
/// podman's `/run/podman/podman.sock`, and connect to it on a read-only file system.
#[test]
fn without_a_socket_key_the_checks_find_podmans_socket_on_a_read_only_run() {
    let podman = Podman::start();
    podman.run_container("web", Health::None);
    let policy = "version: 1
checks:
  - {name: docker, kind: docker}
  - {name: containers, kind: containers, after: [docker], require_running: [web]}
";
    let (code, v) = check_on_a_podman_host(podman.dir(), policy);
    assert_eq!(code, Some(0), "{v:#}");
    let version = podman.version()["Version"].as_str().unwrap().to_string();
    assert!(message(&v, "docker").starts_with(&format!("podman {version} ")), "{v:#}");
    assert_eq!(message(&v, "containers"), "1 running, 0 unhealthy, required web ready");
}

/// With no socket at either default path the message names both.
#[test]
fn without_any_engine_the_message_names_both_default_sockets() {
    let empty = tempfile::tempdir().unwrap();
    let policy = "version: 1\nchecks:\n  - {name: docker, kind: docker, retries: 0}\n";
    let (code, v) = check_on_a_podman_host(empty.path(), policy);
    assert_eq!(code, Some(2), "{v:#}");
    assert_eq!(
        message(&v, "docker"),
        "docker socket not found: /var/run/docker.sock or /run/podman/podman.sock \
         (the defaults; set `socket:` or DOCKER_HOST for another)"
    );
}
