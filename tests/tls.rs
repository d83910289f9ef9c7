//! The endpoint behind an exporter-toolkit web config: TLS with client certificates as
//! `client_auth_type` asks, made by openssl and spoken to by curl, basic auth with
//! htpasswd's bcrypt hashes; and a web config that cannot be used keeps the endpoint down
//! while the gate still passes.

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::prom::Prometheus;
use support::tls::{Fetched, Pki, bcrypt, curl};
use support::{Daemon, Launch, NotifySocket};

const WAIT: Duration = Duration::from_secs(60);

/// A policy body whose one check passes at once.
const CHECKS: &str = "checks:\n  - {name: root, kind: disk, path: /, min_free_percent: 0}\n";

/// Writes `text` as the web config beside the certificates and starts `run` with it
/// through `$BOOTGATE_WEB_CONFIG`.
fn start(pki: &Pki, text: &str, notify: Option<&NotifySocket>) -> Daemon {
    let web = pki.path("web.yml");
    std::fs::write(&web, text).unwrap();
    let mut launch = Launch::listening(CHECKS).env("BOOTGATE_WEB_CONFIG", &web);
    if let Some(socket) = notify {
        launch = launch.notify(socket);
    }
    launch.start()
}

/// `path` over TLS to `localhost` (the certificate's name) with curl's `args`.
fn fetch(pki: &Pki, daemon: &Daemon, path: &str, args: &[&str]) -> Fetched {
    let url = format!("https://localhost:{}{path}", daemon.port());
    let resolve = format!("localhost:{}:127.0.0.1", daemon.port());
    curl(&pki.path("ca.crt"), &url, &[&["--resolve", resolve.as_str()][..], args].concat())
}

/// [`fetch`] repeated until the gate has passed (200) or `WAIT` is over.
fn get_passed(pki: &Pki, daemon: &Daemon, path: &str, args: &[&str]) -> Fetched {
    let end = Instant::now() + WAIT;
    loop {
        let got = fetch(pki, daemon, path, args);
        if got.status == 200 || Instant::now() > end {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_required_client_certificate_is_checked_against_the_ca() {
    let pki = Pki::new();
    let mut daemon = start(
        &pki,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\n",
        None,
    );
    daemon.wait_listening(WAIT);
    let (cert, key) = (pki.path("client.crt"), pki.path("client.key"));
    let with = ["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()];
    let got = get_passed(&pki, &daemon, "/api/v1/system/health", &with);
    assert_eq!(got.status, 200, "{got:?}\n{}", daemon.stderr());
    let doc: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(doc["status"], "healthy", "{doc:#}");
    let metrics = get_passed(&pki, &daemon, "/metrics", &with);
    assert!(metrics.body.contains("bootgate_check_up") && metrics.body.contains("bootgate_http_up 1"), "{metrics:?}");

    // Without a certificate, or with one of another CA, the handshake fails: no HTTP at all.
    let url = format!("https://127.0.0.1:{}/api/v1/system/health", daemon.port());
    let without = curl(&pki.path("ca.crt"), &url, &[]);
    assert!(without.exit != 0 && without.status == 0 && without.body.is_empty(), "{without:?}");
    let (cert, key) = (pki.path("stranger.crt"), pki.path("stranger.key"));
    let stranger = curl(&pki.path("ca.crt"), &url, &["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    assert!(stranger.exit != 0 && stranger.status == 0 && stranger.body.is_empty(), "{stranger:?}");

    // Plain HTTP to the TLS port is never served.
    if let Ok(reply) = daemon.request("GET", "/api/v1/system/health", &[]) {
        assert_ne!(reply.status, 200, "served over plain HTTP: {reply:?}");
    }
    assert!(daemon.is_running(), "{}", daemon.stderr());
}

#[test]
fn tls_without_client_certificates_and_the_version_floor() {
    let pki = Pki::new();
    let daemon = start(
        &pki,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n",
        None,
    );
    let got = get_passed(&pki, &daemon, "/livez", &[]);
    assert_eq!(got.status, 200, "{got:?}\n{}", daemon.stderr());
    // TLS 1.2 is below min_version: refused in the handshake.
    let url = format!("https://127.0.0.1:{}/livez", daemon.port());
    let old = curl(&pki.path("ca.crt"), &url, &["--tls-max", "1.2"]);
    assert!(old.exit != 0 && old.status == 0, "{old:?}");
}

#[test]
fn an_expired_certificate_keeps_the_endpoint_down_the_gate_passes_and_sighup_brings_it_up() {
    let pki = Pki::new();
    pki.expired_server();
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let started = Instant::now();
    let web = pki.path("web.yml");
    std::fs::write(&web, "tls_server_config:\n  cert_file: expired.crt\n  key_file: expired.key\n").unwrap();
    let textfile = dir.path().join("bootgate.prom");
    let daemon = Launch::listening(CHECKS).env("BOOTGATE_WEB_CONFIG", &web).notify(&notify).textfile(&textfile).start();
    notify.wait_for("READY=1", started, WAIT, |m| m.contains("READY=1"));
    let metrics = textfile_once(&textfile, "bootgate_gate_passed 1");
    assert!(metrics.contains("bootgate_http_up 0"), "{metrics}");
    let texts = notify.texts().join("\n");
    assert!(texts.contains("health endpoint down: invalid web config"), "{texts}");
    assert!(daemon.stderr().contains("the certificate expired on 2020-01-02 00:00:00 UTC"), "{}", daemon.stderr());
    assert!(std::net::TcpStream::connect(daemon.addr()).is_err(), "the endpoint listens without its TLS");
    let key = std::fs::read_to_string(pki.path("expired.key")).unwrap();
    let line = key.lines().nth(1).unwrap();
    assert!(!daemon.stderr().contains(line) && !daemon.stdout().contains(line), "key material in the log");

    // A renewed certificate and a SIGHUP: the endpoint comes up, over TLS, without a restart.
    std::fs::write(&web, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n").unwrap();
    daemon.signal(Signal::SIGHUP);
    let got = get_passed(&pki, &daemon, "/api/v1/system/health", &[]);
    assert_eq!(got.status, 200, "{got:?}\n{}", daemon.stderr());
    assert!(textfile_once(&textfile, "bootgate_http_up 1").contains("bootgate_http_up 1"));
}

#[test]
fn sighup_rereads_the_client_ca_and_users_and_keeps_them_when_the_new_file_is_broken() {
    let pki = Pki::new();
    let hash = bcrypt("first");
    let web = |ca: &str, hash: &str| {
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca}\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        )
    };
    let daemon = start(&pki, &web("ca.crt", &hash), None);
    let ours = [pki.path("client.crt"), pki.path("client.key")];
    let theirs = [pki.path("stranger.crt"), pki.path("stranger.key")];
    let args = |pair: &[std::path::PathBuf; 2], password: &str| -> Vec<String> {
        let [cert, key] = pair.clone().map(|p| p.to_str().unwrap().to_string());
        vec!["--cert".into(), cert, "--key".into(), key, "-u".into(), format!("prometheus:{password}")]
    };
    let get = |pair, password| fetch(&pki, &daemon, "/livez", &strs(&args(pair, password)));
    assert_eq!(get_passed(&pki, &daemon, "/livez", &strs(&args(&ours, "first"))).status, 200, "{}", daemon.stderr());
    assert_eq!(get(&theirs, "first").status, 0, "a stranger's certificate before the reload");

    // The other CA and another password, put in force by SIGHUP.
    std::fs::write(pki.path("web.yml"), web("stranger-ca.crt", &bcrypt("second"))).unwrap();
    daemon.signal(Signal::SIGHUP);
    let end = Instant::now() + WAIT;
    while get(&theirs, "second").status != 200 {
        assert!(Instant::now() < end, "the reloaded web config was not used: {}", daemon.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get(&ours, "second").status, 0, "the old CA still verifies after the reload");
    assert_eq!(get(&theirs, "first").status, 401, "the old password still works after the reload");

    // A broken file on the next SIGHUP: logged, and the web config in force stays.
    std::fs::write(pki.path("web.yml"), "tls_server_config:\n  cert_file: server.crt\n  key_file: nowhere.key\n")
        .unwrap();
    daemon.signal(Signal::SIGHUP);
    let end = Instant::now() + WAIT;
    while !daemon.stderr().contains("cannot use the reloaded web config") {
        assert!(Instant::now() < end, "the broken reload was not reported: {}", daemon.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(&theirs, "second").status, 200, "{}", daemon.stderr());
}

#[test]
fn client_allowed_sans_match_a_dns_name_ip_or_uri_of_the_certificate_exactly() {
    let pki = Pki::new();
    let web = |sans: &str| {
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: {sans}\n"
        )
    };
    let daemon = start(&pki, &web("[scraper.example]"), None);
    let pair = |name: &str| {
        let [cert, key] = [pki.path(&format!("{name}.crt")), pki.path(&format!("{name}.key"))];
        vec!["--cert".to_string(), cert.to_str().unwrap().into(), "--key".into(), key.to_str().unwrap().into()]
    };
    let ours = pair("client");
    assert_eq!(get_passed(&pki, &daemon, "/livez", &strs(&ours)).status, 200, "{}", daemon.stderr());
    // The right SAN from a CA that is not trusted still fails; no certificate fails.
    assert_eq!(fetch(&pki, &daemon, "/livez", &strs(&pair("stranger"))).status, 0);
    assert_eq!(fetch(&pki, &daemon, "/livez", &[]).status, 0);
    // Each list put in force by SIGHUP; the answer alternates so each change is seen.
    for (sans, expected) in [
        ("[other.example, scraper]", 0),
        ("['spiffe://fleet/prometheus']", 200),
        ("['127.0.0.9', 'spiffe://fleet']", 0),
        ("['127.0.0.2']", 200),
    ] {
        std::fs::write(pki.path("web.yml"), web(sans)).unwrap();
        daemon.signal(Signal::SIGHUP);
        let end = Instant::now() + WAIT;
        loop {
            let got = fetch(&pki, &daemon, "/livez", &strs(&ours));
            if got.status == expected {
                break;
            }
            assert!(Instant::now() < end, "{sans}: {got:?}\n{}", daemon.stderr());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `args` as curl takes them.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The textfile once it holds `wanted`, or as it is when `WAIT` is over.
fn textfile_once(path: &std::path::Path, wanted: &str) -> String {
    let end = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(wanted) || Instant::now() > end {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn client_certificate_and_password_are_both_required() {
    let pki = Pki::new();
    let hash = bcrypt("s3cret pass");
    let daemon = start(
        &pki,
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        ),
        None,
    );
    let (cert, key) = (pki.path("client.crt"), pki.path("client.key"));
    let cert = ["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()];
    let with = |user: &[&'static str]| -> Vec<&str> { [&cert[..], user].concat() };
    let got = get_passed(&pki, &daemon, "/api/v1/system/health", &with(&["-u", "prometheus:s3cret pass"]));
    assert_eq!(got.status, 200, "{got:?}\n{}", daemon.stderr());
    assert!(got.body.contains("\"healthy\""), "{got:?}");

    // Every route is behind it, the run route and the page included; nothing of them leaks.
    for (path, user) in [
        ("/api/v1/system/health", &["-u", "prometheus:wrong"][..]),
        ("/metrics", &["-u", "nobody:s3cret pass"][..]),
        ("/", &[][..]),
        ("/livez", &["-u", "prometheus:"][..]),
    ] {
        let got = fetch(&pki, &daemon, path, &with(user));
        assert_eq!(got.status, 401, "{path} {user:?}: {got:?}");
        assert!(got.headers.to_ascii_lowercase().contains("www-authenticate: basic realm=\"bootgate\""), "{got:?}");
        assert!(got.headers.to_ascii_lowercase().contains("content-type: application/problem+json"), "{got:?}");
        let problem: serde_json::Value = serde_json::from_str(&got.body).unwrap();
        assert_eq!(problem["status"], 401, "{path}");
        // What to send, and nothing of the route, the user or why.
        let mut keys: Vec<&str> = problem.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["detail", "status", "title", "type"], "{path}");
        assert!(problem["detail"].as_str().unwrap().contains("basic_auth_users"), "{path}");
    }
    let run = fetch(&pki, &daemon, "/api/v1/system/health/root/run", &[&with(&[])[..], &["-X", "POST"]].concat());
    assert_eq!(run.status, 401, "{run:?}");

    // The password and its hash never reach the log.
    for out in [daemon.stderr(), daemon.stdout()] {
        assert!(!out.contains("s3cret") && !out.contains(&hash), "{out}");
    }
}

#[test]
fn require_any_client_cert_takes_a_certificate_of_any_issuer_but_not_none() {
    let pki = Pki::new();
    let daemon = start(
        &pki,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAnyClientCert\n",
        None,
    );
    let (cert, key) = (pki.path("stranger.crt"), pki.path("stranger.key"));
    let got = get_passed(&pki, &daemon, "/livez", &["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    assert_eq!(got.status, 200, "{got:?}\n{}", daemon.stderr());
    let without = fetch(&pki, &daemon, "/livez", &[]);
    assert!(without.exit != 0 && without.status == 0, "{without:?}");
    // A certificate whose key the client does not hold fails: it must sign the handshake.
    let wrong_key = pki.path("client.key");
    let forged =
        fetch(&pki, &daemon, "/livez", &["--cert", cert.to_str().unwrap(), "--key", wrong_key.to_str().unwrap()]);
    assert!(forged.status == 0, "{forged:?}");
}

#[test]
fn a_certificate_renewed_on_disk_is_used_without_a_restart() {
    let pki = Pki::new();
    let daemon = start(&pki, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n", None);
    assert_eq!(get_passed(&pki, &daemon, "/livez", &[]).status, 200, "{}", daemon.stderr());
    // Renewed by another CA, so which one a handshake presents is plain to see.
    pki.reissue_server("stranger-ca");
    let url = format!("https://localhost:{}/livez", daemon.port());
    let resolve = format!("localhost:{}:127.0.0.1", daemon.port());
    let end = Instant::now() + WAIT;
    loop {
        let got = curl(&pki.path("stranger-ca.crt"), &url, &["--resolve", &resolve]);
        if got.status == 200 {
            break;
        }
        assert!(
            Instant::now() < end,
            "the renewed certificate was not used within {WAIT:?}: {got:?}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let old = fetch(&pki, &daemon, "/livez", &[]);
    assert!(old.status == 0 && old.exit != 0, "still the old certificate: {old:?}");
    assert!(daemon.stderr().contains("changed on disk"), "{}", daemon.stderr());
}

#[test]
fn prometheus_scrapes_over_mutual_tls_with_basic_auth() {
    let pki = Pki::new();
    let hash = bcrypt("scrape pass");
    let daemon = start(
        &pki,
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        ),
        None,
    );
    std::fs::write(pki.path("password"), "scrape pass").unwrap();
    let file = |name: &str| pki.path(name).display().to_string();
    let mut prom = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: bootgate\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    scheme: https\n\
         \x20   tls_config: {{ca_file: '{}', cert_file: '{}', key_file: '{}', server_name: localhost}}\n\
         \x20   basic_auth: {{username: prometheus, password_file: '{}'}}\n\
         \x20   static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        file("ca.crt"),
        file("client.crt"),
        file("client.key"),
        file("password"),
        daemon.port()
    ));
    let end = Instant::now() + WAIT;
    loop {
        prom.assert_running();
        let up = prom.query("up{job=\"bootgate\"}").unwrap_or_default();
        let passed = prom.query("bootgate_gate_passed").unwrap_or_default();
        if up.iter().any(|s| s["value"][1] == "1") && passed.iter().any(|s| s["value"][1] == "1") {
            break;
        }
        assert!(
            Instant::now() < end,
            "within {WAIT:?} Prometheus did not scrape bootgate: up {up:?}, bootgate_gate_passed {passed:?}\n{}\n{}",
            prom.log(),
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_shipped_example_passes_promtool_and_validate() {
    let pki = Pki::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy/web-config.example.yml");
    let web = pki.path("web.yml");
    std::fs::copy(&example, &web).unwrap();
    let mut promtool = std::process::Command::new(support::find_binary("promtool", "prometheus"));
    promtool.arg("check").arg("web-config").arg(&web);
    let out = support::run_bounded(&mut promtool, WAIT);
    assert!(
        out.status.success(),
        "promtool check web-config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let policy = pki.path("policy.yaml");
    std::fs::write(&policy, format!("version: 1\nserver: {{web_config: '{}'}}\n{CHECKS}", web.display())).unwrap();
    let out = support::bootgate(&["validate", policy.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("ok (TLS, client certificates: RequireAndVerifyClientCert, basic auth: 1 user)"), "{text}");
}
