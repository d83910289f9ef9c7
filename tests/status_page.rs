//! The status page at `/` and `/status`: HTML from the same snapshot, boot facts and
//! history as the JSON routes, every outside text escaped, self-contained and small;
//! then the page of a real daemon in headless Chromium.

mod support;

use std::fs;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use bootgate::checks::Status;
use bootgate::engine::{GateState, Snapshot};
use bootgate::record::history::{Decision, Failing, PastBoot, SeenFallback, Slot};
use bootgate::server::{ROUTES, app};
use serde_json::{Value, json};
use tokio::sync::watch;

use support::browser::{dom, screenshots};
use support::router::{check, get, healthy, router, snapshot, state, status};
use support::{ClosedPort, Daemon, Launch};

const HOSTILE: &str = "<script>alert(1)</script>";

/// The router over `s`, with boot facts and a history as `run` publishes them.
fn router_with(s: Snapshot, boot: Option<Value>, history: Vec<PastBoot>) -> Router {
    let boot = boot.map(|v| Arc::new(serde_json::from_value(v).expect("boot facts")));
    app(state(s).with_boot(watch::channel(boot).1).with_history(watch::channel(Arc::new(history)).1))
}

fn slot(label: &str, index: u32) -> Slot {
    Slot { label: label.into(), index, uuid: format!("uuid-{}", label.to_lowercase()) }
}

/// A boot on USR-B that failed and rebooted, then the fallback boot on USR-A.
fn fallen_back_history(message: &str) -> Vec<PastBoot> {
    let failing = vec![Failing { name: "api".into(), message: message.into() }];
    vec![
        PastBoot {
            timestamp: Some("2026-12-01T10:00:00Z".into()),
            boot_id: Some("b-left".into()),
            partition: Some(slot("USR-B", 4)),
            version: Some("4230.0.0".into()),
            gate: Some("failed".into()),
            status: Some("unhealthy".into()),
            failing,
            decision: Some(Decision::Reboot),
            ..PastBoot::default()
        },
        PastBoot {
            timestamp: Some("2026-12-01T10:02:00Z".into()),
            boot_id: Some("b-back".into()),
            partition: Some(slot("USR-A", 3)),
            version: Some("4152.2.0".into()),
            gate: Some("passed".into()),
            status: Some("healthy".into()),
            fallback: Some(SeenFallback {
                from_uuid: "uuid-usr-b".into(),
                reason: bootgate::record::boot::Reason::GateFailed.into(),
            }),
            ..PastBoot::default()
        },
    ]
}

fn fallen_back_boot(from_partition: &str, message: &str) -> Value {
    json!({"partition": "USR-A", "index": 3, "uuid": "uuid-usr-a", "disk": "/dev/vda", "priority": 1,
        "tries": 0, "successful": true, "version": "4152.2.0",
        "fallback": {"from_partition": from_partition, "from_version": "4230.0.0", "reason": "gate_failed",
            "at": "2026-12-01T10:00:00Z", "failing": [{"name": "api", "message": message}]}})
}

/// Every value of `attr="…"` in `html`.
fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').expect("attribute closes")]
        })
        .collect()
}

#[tokio::test]
async fn the_page_is_html_with_every_check_the_verdict_and_links() {
    let mut s = snapshot(
        GateState::Passed,
        vec![
            check("storage", "disk", true, Status::Pass),
            check("network", "tcp", false, Status::Fail),
            check("api", "http", true, Status::Warn),
        ],
    );
    s.checks[1].message = "127.0.0.1:9: Connection refused".into();
    let app = router_with(s, None, Vec::new());
    let a = get(&app, "/").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type(), "text/html; charset=utf-8");
    let csp = a.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(a.headers["cache-control"], "no-store");
    let html = &a.body;
    assert!(html.starts_with("<!doctype html>\n<html lang=en>"), "{html}");
    let verdict = html.lines().find(|l| l.contains("id=verdict")).unwrap();
    assert!(verdict.contains("<strong>Degraded</strong> · gate passed · degraded: network, api"), "{verdict}");
    assert!(html.contains("<title>Degraded, gate passed · bootgate</title>"), "{html}");
    for (name, word, role) in
        [("storage", "healthy", "critical"), ("network", "degraded", "optional"), ("api", "degraded", "critical")]
    {
        let row =
            html.lines().find(|l| l.contains(&format!(">{name}</a>"))).unwrap_or_else(|| panic!("{name}: {html}"));
        assert!(row.contains(&format!("<td>{word}<td>{role}<td>")), "{row}");
        assert!(row.contains("1.5 ms") && row.contains("just now"), "{row}");
        assert!(row.contains(&format!("href=\"/api/v1/system/health/{name}\"")), "{row}");
    }
    assert!(html.contains("127.0.0.1:9: Connection refused"));
    assert!(html.contains("<caption>3 checks: 1 healthy, 2 degraded</caption>"), "{html}");
    assert!(html.contains("<th scope=col>Check<th scope=col>Status"), "a real table head: {html}");
    assert!(html.contains("<h2 id=checks-h>Checks</h2>") && html.contains("<h2 id=boots-h>Last boots</h2>"));
    assert!(html.contains("No A/B slot"), "no boot facts off A/B: {html}");
    assert!(html.contains("No boot recorded yet"), "{html}");
    assert!(html.contains("<meta http-equiv=refresh content=15>"), "a decided gate reloads every 15 s");
    assert_eq!(get(&app, "/status").await.body.len(), html.len(), "/status is the same page");
}

#[tokio::test]
async fn each_verdict_reads_in_words() {
    let bad = {
        let mut s = snapshot(GateState::Failed, vec![check("tpm", "tpm", true, Status::Fail)]);
        s.gate_failing = vec![Failing { name: "tpm".into(), message: "no /dev/tpmrm0".into() }];
        s
    };
    let running = snapshot(GateState::Running, vec![check("tpm", "tpm", true, Status::Pending)]);
    for (s, line, class) in [
        (healthy(), "<strong>Healthy</strong> · gate passed · all 2 checks pass", "ok"),
        (bad, "<strong>Unhealthy</strong> · gate failed · failing: tpm", "bad"),
        (running, "<strong>Unhealthy</strong> · gate running · pending: tpm", "bad"),
    ] {
        let running = s.gate == GateState::Running;
        let failed = s.gate == GateState::Failed;
        let html = get(&router_with(s, None, Vec::new()), "/").await.body;
        let verdict = html.lines().find(|l| l.contains("id=verdict")).unwrap();
        assert!(verdict.starts_with(&format!("<p class=\"verdict {class}\" id=verdict>")), "{verdict}");
        assert!(verdict.contains(line), "{verdict}");
        assert_eq!(html.contains("<meta http-equiv=refresh content=5>"), running, "a running gate reloads every 5 s");
        assert_eq!(html.contains("The gate failed on <strong>tpm</strong>: no /dev/tpmrm0"), failed, "{html}");
        if running {
            assert!(
                html.contains("<tr class=wait><th><a href=\"/api/v1/system/health/tpm\">tpm</a><td>pending"),
                "{html}"
            );
            assert!(html.contains("<td>–<td>not yet"), "{html}");
        }
    }
}

#[tokio::test]
async fn hostile_text_from_checks_history_and_boot_facts_is_escaped() {
    let mut s = healthy();
    s.checks[0].message = HOSTILE.into();
    s.checks[1].name = "api\"onmouseover=\"alert(2)".into();
    s.checks[1].message = "it's <b>bold</b> & \"quoted\"".into();
    let boot = fallen_back_boot("\"><script>alert(3)</script>", "<img src=x onerror=alert(4)>");
    let app = router_with(s, Some(boot), fallen_back_history("<iframe src=//evil>"));
    let html = get(&app, "/").await.body;
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(html.contains("it&#39;s &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;"), "{html}");
    assert!(html.contains(">api&quot;onmouseover=&quot;alert(2)</a>"), "{html}");
    assert!(html.contains("href=\"/api/v1/system/health/api%22onmouseover%3D%22alert%282%29\""), "{html}");
    assert!(html.contains("Fell back from &quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(4)&gt;"), "{html}");
    assert!(html.contains("&lt;iframe src=//evil&gt;"), "{html}");
    for raw in ["<script", "<img", "<iframe", "<b>", "onmouseover=\"", "alert(2)\""] {
        assert!(!html.contains(raw), "`{raw}` reached the page unescaped: {html}");
    }
    // A name's quote cannot close the link it is in: links hold only URL-safe characters.
    for href in attribute_values(&html, "href") {
        let safe = |c: char| c.is_ascii_alphanumeric() || "/%-._~?=".contains(c);
        assert!(href.chars().all(safe), "{href}");
    }
}

#[tokio::test]
async fn the_page_loads_nothing_from_anywhere() {
    let boot = fallen_back_boot("USR-B", "refused");
    let app = router_with(healthy(), Some(boot), fallen_back_history("refused"));
    let html = get(&app, "/").await.body;
    for tag in ["<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url(", "src="] {
        assert!(!html.contains(tag), "`{tag}` in the page: {html}");
    }
    let links = attribute_values(&html, "href");
    assert!(links.len() >= 8, "{links:?}");
    for href in links {
        assert!(href.starts_with('/') && !href.starts_with("//"), "a link off the device: {href}");
    }
}

#[tokio::test]
async fn a_thousand_checks_with_long_messages_stay_under_100_kb() {
    let checks = (0..1000)
        .map(|i| {
            let status = [Status::Pass, Status::Warn, Status::Fail, Status::Pending][i % 4];
            check(&format!("check-{i:04}"), "exec", i % 2 == 0, status)
                .with_message(format!("{HOSTILE} {}", "<&>\"".repeat(500)))
        })
        .collect();
    let boot = fallen_back_boot("USR-B", &"x".repeat(4000));
    let history = (0..50).flat_map(|_| fallen_back_history(&"<".repeat(2000))).collect();
    let app = router_with(snapshot(GateState::Failed, checks), Some(boot), history);
    let html = get(&app, "/").await.body;
    assert!(html.len() < 100 * 1024, "{} bytes", html.len());
    for i in 0..1000 {
        assert!(html.contains(&format!("<th>check-{i:04}<td>")), "check-{i:04} missing");
    }
    assert!(html.contains("Long messages are cut (…); the health document has them whole."));
    assert!(html.contains("<caption>The 10 newest of 100 recorded, newest first"), "{html}");
    assert!(!html.contains("<script"));
}

#[tokio::test]
async fn a_fallback_is_a_banner_a_slot_row_and_marked_boots() {
    let boot = fallen_back_boot("USR-B", "127.0.0.1:8443: Connection refused");
    let mut history = fallen_back_history("127.0.0.1:8443: Connection refused");
    history[1].boot_id = bootgate::boot::identity::boot_id();
    let app = router_with(healthy(), Some(boot), history);
    let html = get(&app, "/").await.body;
    let banner = &html[html.find("<section class=\"alert bad\"").expect("a banner")..];
    let banner = &banner[..banner.find("</section>").unwrap()];
    assert!(banner.contains("<h2 id=fallback-h>Fell back from USR-B</h2>"), "{banner}");
    assert!(banner.contains("USR-B (version 4230.0.0) failed its boot gate (reason <code>gate_failed</code>) at 2026-12-01 10:00:00 UTC; the machine runs on USR-A again."), "{banner}");
    assert!(banner.contains("<li><strong>api</strong>: 127.0.0.1:8443: Connection refused"), "{banner}");
    assert!(html.find("fallback-h").unwrap() < html.find("checks-h").unwrap(), "the banner comes before the checks");
    assert!(
        html.contains("<tr class=ok><th>USR-A (#3)<td class=st>booted<td><i>priority </i>1<td><i>tries left </i>0<td><i>successful: </i>yes<td><i>OS </i>4152.2.0"),
        "{html}"
    );
    assert!(html.contains("<tr class=bad><th>USR-B<td class=st>left: gate failed<td><i>priority </i>–"), "{html}");
    assert!(html.contains("disk /dev/vda · booted partition <code>uuid-usr-a</code>"), "{html}");
    let rows: Vec<&str> =
        html.lines().filter(|l| l.starts_with("<tr class=") && l.contains("<td>2026-12-01")).collect();
    assert_eq!(rows.len(), 2, "{html}");
    assert!(
        rows[0].starts_with(
            "<tr class=warn><td>2026-12-01 10:02:00 UTC (this boot)<td>USR-A<td>4152.2.0<td class=st>gate passed"
        ),
        "newest first: {}",
        rows[0]
    );
    assert!(rows[0].contains("<strong>fell back</strong> from USR-B (failed its boot gate)"), "{}", rows[0]);
    assert!(
        rows[1].starts_with("<tr class=bad><td>2026-12-01 10:00:00 UTC<td>USR-B<td>4230.0.0<td class=st>gate failed"),
        "{}",
        rows[1]
    );
    assert!(
        rows[1].contains(
            "<strong>rebooted into the other slot</strong><td class=msg><strong>api</strong>: 127.0.0.1:8443"
        ),
        "{}",
        rows[1]
    );
}

#[tokio::test]
async fn refresh_can_be_set_or_turned_off_and_bad_values_are_refused() {
    let app = router_with(healthy(), None, Vec::new());
    let html = get(&app, "/status?refresh=0").await.body;
    assert!(!html.contains("http-equiv=refresh"), "{html}");
    assert!(html.contains("not reloading (<a href=\"/status\">reload automatically</a>)"), "{html}");
    assert!(get(&app, "/?refresh=60").await.body.contains("<meta http-equiv=refresh content=60>"));
    for bad in ["x", "-1", "3601"] {
        let a = get(&app, &format!("/?refresh={bad}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(a.body.contains("refresh must be a whole number of seconds from 0 to 3600"), "{}", a.body);
    }
}

/// A request path for the route table's `path`, each parameter one that exists.
fn sample(path: &str) -> String {
    let probe = if path.starts_with("/livez") { "ping" } else { "gate" };
    path.replace("{check}", "storage").replace("{probe}", probe)
}

#[tokio::test]
async fn the_page_lists_every_route_and_every_route_is_served() {
    let app = router_with(healthy(), None, Vec::new());
    let html = get(&app, "/").await.body;
    let section = &html[html.find("<h2 id=routes-h>").expect("an endpoints section")..];
    let section = &section[..section.find("</section>").unwrap()];
    // `<li><code>METHOD PATH</code>: …`, or inside a link where the route takes no parameter.
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("<li>")?.split("<code>").nth(1)?.split("</code>").next())
        .collect();
    let table: Vec<String> = ROUTES.iter().map(|r| format!("{} {}", r.method.as_str(), r.path)).collect();
    assert_eq!(listed, table, "the page lists the route table, in its order:\n{section}");

    // The probe tells routes from the rest: no route answers 404, a route asked with
    // a method it lacks 405.
    assert_eq!(status(&app, Method::GET, "/api/v1/system/nope").await, StatusCode::NOT_FOUND);
    assert_eq!(status(&app, Method::DELETE, "/metrics").await, StatusCode::METHOD_NOT_ALLOWED);
    for route in ROUTES {
        let (method, uri) = (route.method.as_str(), sample(route.path));
        // POST …/run answers 403 here (allow_run is off): routed all the same.
        let answer = status(&app, Method::from_bytes(method.as_bytes()).unwrap(), &uri).await;
        assert!(
            ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&answer),
            "{method} {uri} is in the route table but answers {answer}"
        );
    }
    // Only the status: the events stream, linked too, would not end for 55 s.
    for href in attribute_values(&html, "href") {
        assert_ne!(status(&app, Method::GET, href).await, StatusCode::NOT_FOUND, "{href} is linked but not served");
    }
}

#[tokio::test]
async fn the_page_shows_the_latest_published_snapshot() {
    let (app, tx) = router(snapshot(GateState::Running, vec![check("api", "http", true, Status::Pending)]));
    assert!(get(&app, "/").await.body.contains("<strong>Unhealthy</strong> · gate running · pending: api"));
    tx.send_replace(Arc::new(snapshot(GateState::Passed, vec![check("api", "http", true, Status::Pass)])));
    let html = get(&app, "/").await.body;
    assert!(html.contains("<strong>Healthy</strong> · gate passed · the check passes"), "{html}");
    assert!(html.contains(">api</a><td>healthy<td>critical<td>api: pass<td>1.5 ms"), "{html}");
}

#[tokio::test]
async fn the_soak_and_the_rollback_window_are_in_the_verdict() {
    use bootgate::engine::{RollbackWindow, Soak};
    use std::time::SystemTime;

    let mut soaking = snapshot(GateState::Running, vec![check("api", "http", true, Status::Pass)]);
    soaking.soak = Some(Soak { total: Duration::from_secs(60), ends: SystemTime::now() + Duration::from_secs(40) });
    let html = get(&router_with(soaking, None, Vec::new()), "/").await.body;
    assert!(html.contains("<strong>Healthy</strong> · gate soaking"), "{html}");
    assert!(html.contains("they must keep passing for 40 s more (of 1 min)"), "{html}");

    let mut failed = snapshot(GateState::Failed, vec![check("api", "http", true, Status::Fail)]);
    failed.gate_reason = Some("failed during soak".into());
    failed.gate_failing = vec![Failing { name: "api".into(), message: "refused".into() }];
    let html = get(&router_with(failed, None, Vec::new()), "/").await.body;
    assert!(html.contains("· gate failed during soak ·"), "{html}");

    let ends = SystemTime::now() + Duration::from_secs(270);
    let mut armed = healthy();
    let note = "armed for 5m: a critical check failing for 20s without a pass reverts <this> update";
    armed.rollback = Some(RollbackWindow { ends, armed: true, note: note.into() });
    let html = get(&router_with(armed, None, Vec::new()), "/").await.body;
    assert!(html.contains("Rollback window open until "), "{html}");
    assert!(html.contains("(4 min 29 s left)") || html.contains("(4 min 30 s left)"), "{html}");
    assert!(html.contains("reverts &lt;this&gt; update."), "the note is escaped: {html}");

    let mut off = healthy();
    off.rollback =
        Some(RollbackWindow { ends, armed: false, note: "not armed: the booted slot was already good".into() });
    let html = get(&router_with(off, None, Vec::new()), "/").await.body;
    assert!(html.contains("): not armed: the booted slot was already good."), "{html}");
}

// ---- in a real browser ----

/// Root disk, a loopback service that accepts, and a command that succeeds: all critical.
fn healthy_checks(service: &TcpListener) -> String {
    let port = service.local_addr().unwrap().port();
    format!(
        "  - {{name: root-disk, kind: disk, path: /, min_free_percent: 0}}\n  - {{name: local-api, kind: tcp, targets: ['127.0.0.1:{port}']}}\n  - {{name: self-test, kind: exec, command: ['true']}}\n"
    )
}

/// [`healthy_checks`] plus two optional checks that fail, one on `closed`, one printing markup.
fn degraded_checks(service: &TcpListener, closed: &ClosedPort) -> String {
    healthy_checks(service)
        + &format!(
            "  - {{name: uplink, kind: tcp, critical: false, retries: 0, timeout: 500ms, targets: ['127.0.0.1:{closed}']}}\n"
        )
        + "  - name: banner\n    kind: exec\n    critical: false\n    retries: 0\n    command: [sh, -c, \"echo '<script>alert(1)</script> & \\\"q\\\"'; exit 1\"]\n"
}

/// A boot on USR-B whose gate failed and rebooted, then the boot that fell back to USR-A.
const FALLEN_BACK_HISTORY: &str = concat!(
    r#"{"timestamp":"2026-12-01T10:00:00Z","boot_id":"7c1e0a52f0b44b0c9a3f5e0c2d1b6a11","partition":{"label":"USR-B","index":4,"uuid":"7130c94a-213a-4e5a-8e26-6cce9662f132"},"version":"4230.0.0","gate":"failed","status":"unhealthy","failing":[{"name":"local-api","message":"127.0.0.1:8443: Connection refused (os error 111)"}],"decision":"reboot","gate_duration_ms":30012.5,"bootgate":"0.1.0"}"#,
    "\n",
    r#"{"timestamp":"2026-12-01T10:02:10Z","boot_id":"9d2f1b63a1c54d1d8b406f1d3e2c7b22","partition":{"label":"USR-A","index":3,"uuid":"e03dd35c-7c2d-4a47-b3fe-27f15780a57c"},"version":"4152.2.0","gate":"passed","status":"healthy","failing":[],"decision":null,"gate_duration_ms":812.4,"bootgate":"0.1.0","fallback":{"from_uuid":"7130c94a-213a-4e5a-8e26-6cce9662f132","reason":"gate_failed"}}"#,
    "\n"
);

/// Starts `bootgate run` with `checks`, first writing `history` (if any) into its state dir.
fn daemon(checks: &str, history: Option<&str>) -> Daemon {
    let mut launch = Launch::gate("{deadline: 20s}", checks);
    if let Some(history) = history {
        let state = launch.dir().join("state");
        fs::create_dir_all(&state).unwrap();
        fs::write(state.join("history.jsonl"), history).unwrap();
    }
    let mut b = launch.start();
    b.wait_status("/api/v1/system/health", 200, Duration::from_secs(30));
    b
}

/// Loads the page of `b`, checks its DOM for every check and `verdict`, and takes the screenshots.
fn look(b: &Daemon, name: &str, checks: &[&str], verdict: &str) -> String {
    let url = format!("http://{}/status", b.addr());
    let dom = dom(&url);
    let line = dom.lines().find(|l| l.contains("id=\"verdict\"")).unwrap_or_else(|| panic!("no verdict: {dom}"));
    assert!(line.contains(verdict), "{line}");
    for check in checks {
        assert!(dom.contains(&format!(">{check}</a></th>")), "no row for {check}: {dom}");
    }
    assert!(!dom.contains("<script"), "a script element in the DOM: {dom}");
    screenshots(&url, name);
    dom
}

#[test]
fn a_healthy_device_in_chromium() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = daemon(&healthy_checks(&service), None);
    let dom = look(&b, "healthy", &["root-disk", "local-api", "self-test"], "<strong>Healthy</strong> · gate passed");
    assert!(dom.contains("all 3 checks pass"), "{dom}");
}

#[test]
fn a_degraded_device_in_chromium() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = ClosedPort::new();
    let b = daemon(&degraded_checks(&service, &closed), None);
    let checks = ["root-disk", "local-api", "self-test", "uplink", "banner"];
    let dom = look(&b, "degraded", &checks, "<strong>Degraded</strong> · gate passed · degraded: uplink, banner");
    // The markup a check printed is text on the page, never an element.
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; \"q\""), "{dom}");
}

#[test]
fn a_fallback_in_the_history_in_chromium() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = daemon(&healthy_checks(&service), Some(FALLEN_BACK_HISTORY));
    let dom = look(&b, "history-fallback", &["root-disk", "local-api", "self-test"], "<strong>Healthy</strong>");
    assert!(dom.contains("<strong>fell back</strong> from USR-B (failed its boot gate)"), "{dom}");
    assert!(dom.contains("<strong>rebooted into the other slot</strong>"), "{dom}");
    assert!(dom.contains("<strong>local-api</strong>: 127.0.0.1:8443: Connection refused"), "{dom}");
}

/// An older boot on USR-A, then an update on USR-B whose gate failed and rebooted.
const FAILED_UPDATE_HISTORY: &str = concat!(
    r#"{"timestamp":"2026-11-20T08:00:00Z","boot_id":"4a0c2e11b9d84f6e8c1a2b3c4d5e6f70","partition":{"label":"USR-A","index":3,"uuid":"e03dd35c-7c2d-4a47-b3fe-27f15780a57c"},"version":"4152.2.0","gate":"passed","status":"healthy","failing":[],"decision":null,"gate_duration_ms":790.2,"bootgate":"0.1.0"}"#,
    "\n",
    r#"{"timestamp":"2026-12-01T10:00:00Z","boot_id":"7c1e0a52f0b44b0c9a3f5e0c2d1b6a11","partition":{"label":"USR-B","index":4,"uuid":"7130c94a-213a-4e5a-8e26-6cce9662f132"},"version":"4230.0.0","gate":"failed","status":"unhealthy","failing":[{"name":"local-api","message":"127.0.0.1:8443: Connection refused (os error 111)"}],"decision":"reboot","gate_duration_ms":30012.5,"bootgate":"0.1.0"}"#,
    "\n"
);

/// The build host is not booted from a GPT slot, so no daemon here can find itself in a
/// fallback. This serves the real router on a real socket with what `run` publishes on a
/// machine that fell back: the history is read from its file and the fallback found by
/// the real detection; only the partition table (what the GPT read would give) and the
/// check results (as the health route tests build them) are written here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallen_back_device_in_chromium() {
    use bootgate::boot::decide::fallback;
    use bootgate::boot::{BootStatus, PartitionInfo};
    use bootgate::daemon::facts::ThisBoot;

    let state_dir = tempfile::tempdir().unwrap();
    fs::write(state_dir.path().join("history.jsonl"), FAILED_UPDATE_HISTORY).unwrap();
    let boots = bootgate::record::history::read(state_dir.path()).unwrap();
    let part = |index, label: &str, uuid: &str, priority, successful| {
        PartitionInfo::usr(index, priority, 0, successful).with_label(label).with_uuid(uuid)
    };
    let partitions = vec![
        part(3, "USR-A", "e03dd35c-7c2d-4a47-b3fe-27f15780a57c", 1, true),
        part(4, "USR-B", "7130c94a-213a-4e5a-8e26-6cce9662f132", 2, false),
    ];
    let this_boot = bootgate::boot::identity::boot_id().unwrap_or_default();
    let found = fallback::detect(&boots, &partitions, Some(&partitions[0]), &this_boot);
    assert!(found.is_some(), "the history shows a fallback from USR-B");
    let status = BootStatus { booted: Some(3), disk: Some("/dev/vda".into()), partitions, note: None };
    let boot = ThisBoot { status: Some(status), os_id: None, os_version: Some("4152.2.0".into()), fallback: found };
    let checks = ["root-disk", "local-api", "self-test"].map(|n| check(n, "disk", true, Status::Pass));
    let state = state(snapshot(GateState::Passed, checks.into()))
        .with_boot(watch::channel(boot.facts().map(Arc::new)).1)
        .with_history(watch::channel(Arc::new(boots)).1);
    let listener = bootgate::server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(bootgate::server::serve(listener, state, bootgate::server::Secured::default().fixed(), async {
            let _ = stopped.await;
        }));
    let (dom, _) = tokio::task::spawn_blocking(move || (dom(&url), screenshots(&url, "fallen-back"))).await.unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let line = dom.lines().find(|l| l.contains("id=\"verdict\"")).unwrap_or_else(|| panic!("no verdict: {dom}"));
    assert!(line.contains("<strong>Healthy</strong> · gate passed · all 3 checks pass · <strong class=\"bad\">fell back</strong> from USR-B"), "{line}");
    assert!(dom.contains("<h2 id=\"fallback-h\">Fell back from USR-B</h2>"), "{dom}");
    assert!(dom.contains("<li><strong>local-api</strong>: 127.0.0.1:8443: Connection refused"), "{dom}");
    assert!(dom.contains("<td class=\"st\">left: gate failed</td>"), "{dom}");
}
