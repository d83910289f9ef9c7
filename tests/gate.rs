//! The engine through the real binary: concurrency, timeouts, retries inside the
//! deadline, ordering, process-group cleanup and the local check kinds.

mod support;

use std::net::TcpListener;
use std::time::Duration;

use support::{BlackholePort, ClosedPort, check, check_with, free_port, processes, result};

#[test]
fn fifty_slow_checks_run_concurrently() {
    let mut policy = String::from("version: 1\nchecks:\n");
    for i in 0..50 {
        policy.push_str(&format!("  - {{name: sleep{i}, kind: exec, command: [sleep, \"0.2\"], retries: 0}}\n"));
    }
    let (code, v, took) = check(&policy);
    assert_eq!(code, 0, "{v:#}");
    let gate_ms = v["gate_duration_ms"].as_f64().unwrap();
    println!("50 × sleep 0.2: gate {gate_ms:.0} ms, process {took:?} (serial would be 10 s)");
    // Serial execution would need 10 s; anything near 0.2 s proves concurrency.
    assert!(gate_ms < 2500.0, "gate took {gate_ms} ms");
}

#[test]
fn a_connect_that_never_answers_is_cut_at_the_timeout() {
    let hole = BlackholePort::new();
    let policy = format!(
        "version: 1\nchecks:\n  - {{name: hang, kind: tcp, timeout: 1s, retries: 0, targets: [\"{}\"]}}\n",
        hole.addr()
    );
    let (code, v, took) = check(&policy);
    assert_eq!(code, 2, "{v:#}");
    let r = result(&v, "hang");
    assert_eq!(r["result"], "fail");
    assert!(r["message"].as_str().unwrap().contains("timed out after 1s"), "{r:#}");
    println!("blackholed connect with a 1 s timeout: verdict after {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(took >= Duration::from_millis(900), "took {took:?}: it cannot have waited for the timeout");
}

#[test]
fn a_command_ignoring_sigterm_leaves_no_process_behind() {
    // A unique duration lets the test find exactly this command's sleep in /proc.
    let marker = format!("60.{}", std::process::id());
    let policy = format!(
        "version: 1\nchecks:\n  - name: stubborn\n    kind: exec\n    timeout: 1s\n    retries: 0\n    command: [sh, -c, 'trap \"\" TERM; sleep {marker} & sleep {marker}; wait']\n"
    );
    let (code, v, took) = check(&policy);
    assert_eq!(code, 2, "{v:#}");
    assert!(result(&v, "stubborn")["message"].as_str().unwrap().contains("timed out"), "{v:#}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let survivors: Vec<_> = processes().into_iter().filter(|p| p.state != 'Z' && p.cmdline.contains(&marker)).collect();
    assert!(survivors.is_empty(), "left behind: {survivors:?}");
}

#[test]
fn a_check_that_fails_twice_then_passes_passes_the_gate() {
    let port = free_port();
    let appear_after = Duration::from_millis(2200);
    let server = std::thread::spawn(move || {
        std::thread::sleep(appear_after);
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        // Accept the check's connection, then leave.
        let _ = l.accept();
    });
    let policy = format!(
        "version: 1\ngate:\n  deadline: 20s\nchecks:\n  - {{name: late, kind: tcp, timeout: 1s, retries: 5, targets: [\"127.0.0.1:{port}\"]}}\n"
    );
    let (code, v, took) = check(&policy);
    server.join().unwrap();
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["gate"], "passed");
    let r = result(&v, "late");
    // Attempts at 0 s and 1 s fail, the one after the 2 s backoff (3 s) passes.
    assert_eq!(r["attempts"], 3, "{r:#}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_check_that_never_passes_fails_the_gate_by_its_deadline() {
    let port = free_port(); // nobody listens: connection refused at once
    let policy = format!(
        "version: 1\ngate:\n  deadline: 4s\nchecks:\n  - {{name: never, kind: tcp, timeout: 1s, retries: 100, targets: [\"127.0.0.1:{port}\"]}}\n"
    );
    let (code, v, took) = check(&policy);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["gate"], "failed");
    let r = result(&v, "never");
    assert!(r["attempts"].as_u64().unwrap() >= 2, "{r:#}");
    assert!(r["message"].as_str().unwrap().contains("deadline"), "{r:#}");
    println!("never-passing check with deadline 4 s: verdict after {took:?}");
    assert!(took < Duration::from_secs(5), "the verdict came after the deadline: {took:?}");
}

#[test]
fn a_critical_check_after_a_failed_optional_one_is_skipped_and_blocks() {
    let port = free_port();
    let policy = format!(
        "version: 1\nchecks:\n  - {{name: opt, kind: tcp, critical: false, retries: 0, targets: [\"127.0.0.1:{port}\"]}}\n  - {{name: crit, kind: disk, after: [opt]}}\n"
    );
    let (code, v, _) = check(&policy);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(result(&v, "crit")["result"], "skipped");
    assert_eq!(v["gate"], "failed");
    assert_eq!(v["failing"], serde_json::json!(["crit"]));
}

#[test]
fn exec_warn_codes_and_output_tail() {
    let policy = "version: 1\nchecks:\n  - {name: w, kind: exec, critical: false, retries: 0, warn_exit_codes: [3], command: [sh, -c, 'echo almost full; exit 3']}\n  - {name: f, kind: exec, critical: false, retries: 0, command: [sh, -c, 'echo broken >&2; exit 4']}\n  - {name: missing, kind: exec, critical: false, retries: 0, command: [/nonexistent/probe]}\n";
    let (code, v, _) = check(policy);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(result(&v, "w")["result"], "warn");
    assert_eq!(result(&v, "w")["message"], "exit 3: almost full");
    assert_eq!(result(&v, "f")["message"], "exit 4: broken");
    assert!(result(&v, "missing")["message"].as_str().unwrap().contains("cannot start `/nonexistent/probe`"), "{v:#}");
}

#[test]
fn dns_resolves_localhost_and_checks_the_expected_address() {
    let policy = "version: 1\nchecks:\n  - {name: ok, kind: dns, host: localhost, expect: 127.0.0.1}\n  - {name: wrong, kind: dns, critical: false, retries: 0, host: localhost, expect: 127.0.0.2}\n";
    let (code, v, _) = check(policy);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(result(&v, "ok")["result"], "pass");
    assert!(result(&v, "wrong")["message"].as_str().unwrap().contains("not 127.0.0.2"), "{v:#}");
}

#[test]
fn disk_reports_observed_free_space() {
    let (code, v, _) = check("version: 1\nchecks:\n  - {name: root, kind: disk, path: /, min_free_percent: 0}\n");
    assert_eq!(code, 0, "{v:#}");
    let free = result(&v, "root")["observed"]["free_space_percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&free));
    let (code, v, _) = check("version: 1\nchecks:\n  - {name: gone, kind: disk, path: /nonexistent/dir, retries: 0}\n");
    assert_eq!(code, 2);
    assert!(result(&v, "gone")["message"].as_str().unwrap().contains("/nonexistent/dir"), "{v:#}");
}

/// A one-thread HTTP server on loopback answering every request with `respond`.
fn http_server(respond: fn(&str) -> String) -> u16 {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let _ = s.write_all(respond(&request).as_bytes());
        }
    });
    port
}

fn reply(status: &str, body: &str) -> String {
    format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
}

#[test]
fn http_status_body_headers_and_basic_auth() {
    let port = http_server(|req| {
        let line = req.lines().next().unwrap_or_default().to_string();
        // "user:s3cr3t-value" in base64.
        let authorized = req.contains("authorization: Basic dXNlcjpzM2NyM3QtdmFsdWU=")
            || req.contains("Authorization: Basic dXNlcjpzM2NyM3QtdmFsdWU=");
        let tagged = req.to_ascii_lowercase().contains("x-probe: boot");
        match line.as_str() {
            l if l.starts_with("GET /ok ") && tagged => reply("200 OK", "{\"state\":\"ready\"}"),
            l if l.starts_with("GET /ok ") => reply("400 Bad Request", "missing header"),
            l if l.starts_with("GET /down ") => reply("503 Service Unavailable", "down"),
            l if l.starts_with("GET /secret ") && authorized => reply("200 OK", "welcome"),
            l if l.starts_with("GET /secret ") => reply("401 Unauthorized", "no"),
            _ => reply("404 Not Found", ""),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::write(&good, "s3cr3t-value\n").unwrap();
    std::fs::write(&bad, "wrong-s3cr3t\n").unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let policy = format!(
        "version: 1
checks:
  - {{name: ok, kind: http, url: '{base}/ok', expect_body: ready, headers: {{X-Probe: boot}}}}
  - {{name: body, kind: http, critical: false, retries: 0, url: '{base}/ok', expect_body: absent-word, headers: {{X-Probe: boot}}}}
  - {{name: down, kind: http, critical: false, retries: 0, url: '{base}/down'}}
  - {{name: down-ok, kind: http, url: '{base}/down', expect_status: 500-599}}
  - {{name: auth, kind: http, url: '{base}/secret', basic_auth: {{user: user, password_file: '{}'}}}}
  - {{name: noauth, kind: http, critical: false, retries: 0, url: '{base}/secret', basic_auth: {{user: user, password_file: '{}'}}}}
  - {{name: nofile, kind: http, critical: false, retries: 0, url: '{base}/secret', basic_auth: {{user: user, password_file: /nonexistent/pw}}}}
",
        good.display(),
        bad.display()
    );
    let (code, v, _, out) = check_with(&policy, &[]);
    assert_eq!(code, 1, "{v:#}");
    for (name, want) in [
        ("ok", "pass"),
        ("body", "fail"),
        ("down", "fail"),
        ("down-ok", "pass"),
        ("auth", "pass"),
        ("noauth", "fail"),
        ("nofile", "fail"),
    ] {
        assert_eq!(result(&v, name)["result"], want, "{name}: {:#}", result(&v, name));
    }
    assert!(result(&v, "down")["message"].as_str().unwrap().contains("503"), "{v:#}");
    assert!(result(&v, "body")["message"].as_str().unwrap().contains("lacks `absent-word`"), "{v:#}");
    assert!(result(&v, "nofile")["message"].as_str().unwrap().contains("/nonexistent/pw"), "{v:#}");
    let everything = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!everything.contains("s3cr3t"), "a password leaked into the output");
}

#[test]
fn a_closed_loopback_port_fails_fast_with_a_reason() {
    let closed = ClosedPort::new();
    let (code, v, took) = check(&format!(
        "version: 1\nchecks:\n  - {{name: web, kind: tcp, retries: 0, targets: [\"127.0.0.1:{closed}\"]}}\n"
    ));
    assert_eq!(code, 2, "{v:#}");
    assert_eq!((v["gate"].as_str(), v["failing"].clone()), (Some("failed"), serde_json::json!(["web"])), "{v:#}");
    let web = result(&v, "web");
    // One refused connect, no retry: failed at once, saying where and why.
    assert_eq!((web["result"].as_str(), web["attempts"].as_u64()), (Some("fail"), Some(1)), "{web:#}");
    let message = web["message"].as_str().unwrap();
    assert!(message.contains(&format!("127.0.0.1:{closed}")) && message.contains("refused"), "{message}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}
