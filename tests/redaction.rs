//! A password in an http check's URL, and a token in its query, reach the server
//! and nowhere else: not `bootgate check` (text or JSON), not `bootgate validate`,
//! not the daemon's logs, files or any route of its endpoint.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use support::{ClosedPort, Launch, bootgate};

const USER: &str = "gatekeeper";
const PASSWORD: &str = "pw-Zq8vK3hunter2";
const TOKEN: &str = "tok-9XlQ2sekrit";

/// Every secret the policy holds (plain characters: written and encoded alike).
const SECRETS: [&str; 2] = [PASSWORD, TOKEN];

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A loopback HTTP server that answers 200 only to the right basic-auth credentials
/// (401 otherwise); counts the requests it accepted. It lives as long as the test.
fn auth_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let want = format!("authorization: basic {}", base64(format!("{USER}:{PASSWORD}").as_bytes())).to_lowercase();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(&stream);
            let mut authorized = false;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                authorized |= line.trim().to_lowercase() == want;
                line.clear();
            }
            let reply = if authorized {
                count.fetch_add(1, Ordering::SeqCst);
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            } else {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            };
            let _ = (&stream).write_all(reply.as_bytes());
        }
    });
    (port, accepted)
}

fn url(port: impl std::fmt::Display) -> String {
    format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}/health?api_key={TOKEN}&x=1")
}

/// The check that passes with the credentials, and one whose request fails (a closed
/// port), so reqwest's own error, which names the URL, is shown too.
fn checks(port: u16, closed: u16) -> String {
    format!(
        "  - {{name: web, kind: http, url: '{}', timeout: 5s}}\n  - {{name: down, kind: http, critical: false, retries: 0, timeout: 2s, url: '{}'}}\n",
        url(port),
        url(closed)
    )
}

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows the secret `{secret}`:\n{text}");
    }
}

/// Every file under `dir` except the policy itself, which holds the secrets by design.
fn assert_files_clean(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_files_clean(&path);
        } else if path.file_name().is_some_and(|n| n != "policy.yaml") {
            assert_clean(&path.display().to_string(), &String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
}

fn output(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn url_secrets_are_shown_nowhere() {
    let (port, accepted) = auth_server();
    let closed = ClosedPort::new();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, format!("version: 1\ngate: {{deadline: 20s}}\nchecks:\n{}", checks(port, closed.port())))
        .unwrap();
    let policy = policy.to_str().unwrap();

    let text = bootgate(&["check", "--format", "text", "--policy", policy]);
    assert_eq!(text.status.code(), Some(1), "degraded: web passes, down fails: {}", output(&text));
    assert_clean("bootgate check --format text", &output(&text));
    assert!(
        output(&text).contains(&format!("http://{USER}:***@127.0.0.1:{port}/health?api_key=***&x=1")),
        "{}",
        output(&text)
    );

    let json = bootgate(&["check", "--format", "json", "--policy", policy]);
    assert_clean("bootgate check --format json", &output(&json));
    let verdict: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(support::result(&verdict, "web")["result"], "pass", "{verdict:#}");
    assert!(support::message(&verdict, "web").contains("answered 200"), "{verdict:#}");
    let down = support::message(&verdict, "down");
    assert!(
        down.contains(&format!("{USER}:***@127.0.0.1:{closed}")) && down.contains("error sending request"),
        "{down}"
    );
    assert!(accepted.load(Ordering::SeqCst) >= 2, "the server never saw the credentials");

    // Invalid elsewhere in the same check, and invalid in the URL itself.
    for (bad, key) in [
        (format!("  - {{name: web, kind: http, url: '{}', expect_status: 700}}\n", url(port)), "expect_status"),
        (format!("  - {{name: web, kind: http, url: '{}'}}\n", url("99999")), "url"),
        (format!("  - {{name: web, kind: http, url: ' {}'}}\n", url(port)), "url"),
    ] {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, format!("version: 1\nchecks:\n{bad}")).unwrap();
        let out = bootgate(&["validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(78), "{}", output(&out));
        assert!(output(&out).contains(&format!("checks[0].{key}: ")), "{}", output(&out));
        assert_clean("bootgate validate", &output(&out));
    }

    let mut bg = Launch::gate("{deadline: 20s, on_failure: stay}", &checks(port, closed.port())).start();
    bg.wait_status("/readyz", 200, Duration::from_secs(20));
    let mut shown = Vec::new();
    for (path, accept) in [
        ("/api/v1/system/health", None),
        ("/api/v1/system/health", Some("application/health+json")),
        ("/api/v1/system/health", Some("application/json")),
        ("/api/v1/system/health/web", None),
        ("/api/v1/system/health/down", None),
        ("/readyz?verbose", None),
        ("/livez?verbose", None),
        ("/metrics", None),
    ] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let reply = bg.get_with(path, &headers);
        assert_clean(&format!("GET {path} ({accept:?})"), &format!("{:?}\n{}", reply.headers, reply.body));
        shown.push(reply.body);
    }
    let health = shown[0].clone();
    assert!(health.contains(&format!("{USER}:***@127.0.0.1:{port}")), "the health document shows the check: {health}");
    bg.terminate();
    bg.wait_exit(Duration::from_secs(10));
    assert_clean("the daemon's log", &bg.stderr());
    let root = bg.dir().to_path_buf();
    for file in ["run/verdict.json", "state/history.jsonl"] {
        assert!(root.join(file).exists(), "{file} was not written");
    }
    assert!(!bg.stdout().is_empty(), "the daemon printed no verdict table");
    assert_files_clean(&root);
}
