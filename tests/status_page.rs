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
use bootgate::boot::identity::{Device, OsRelease};
use bootgate::checks::Status;
use bootgate::engine::{GateState, Snapshot};
use bootgate::record::history::{Decision, Failing, PastBoot, SeenFallback, Slot};
use bootgate::server::{AppState, ROUTES, app};
use serde_json::{Value, json};
use tokio::sync::watch;

use support::browser::{dom, screenshots};
use support::router::{check, get, healthy, router, snapshot, state, status};
use support::{ClosedPort, Daemon, Launch};

const HOSTILE: &str = "<script>alert(1)</script>";

/// A Flatcar device as os-release, the kernel and `/etc/machine-id` would name it.
fn device() -> Device {
    let os = OsRelease::parse(
        "ID=flatcar\nPRETTY_NAME=\"Flatcar Container Linux by Kinvolk 4152.2.0 (Oklo)\"\nVERSION=4152.2.0\nVERSION_ID=4152.2.0\n",
    );
    Device { hostname: Some("edge-17".into()), machine_id: Some("0f3c9d2e7a1b4c5d8e9f0a1b2c3d4e5f".into()), os }
}

/// The state over `s` on [`device`], with boot facts and a history as `run` publishes them.
fn state_of(s: Snapshot, boot: Option<Value>, history: Vec<PastBoot>) -> AppState {
    let boot = boot.map(|v| Arc::new(serde_json::from_value(v).expect("boot facts")));
    state(s).with_device(device()).with_boot(watch::channel(boot).1).with_history(watch::channel(Arc::new(history)).1)
}

/// The router over [`state_of`].
fn router_with(s: Snapshot, boot: Option<Value>, history: Vec<PastBoot>) -> Router {
    app(state_of(s, boot, history))
}

/// The headline's line of a page.
fn verdict(html: &str) -> &str {
    html.lines().find(|l| l.contains("id=verdict")).unwrap_or_else(|| panic!("no verdict: {html}"))
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
                from_version: Some("4230.0.0".into()),
                blame: bootgate::record::boot::FallbackBlame::Image.into(),
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
    let line = verdict(html);
    assert!(line.contains("<strong>Degraded</strong> · gate passed · degraded: network, api"), "{line}");
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
    assert!(html.contains("No A/B slots"), "no boot facts off A/B: {html}");
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
        (bad, "<strong>Gate failed</strong> · failed on tpm", "bad"),
        (running, "<strong>Gate running</strong> · waiting for tpm (not run yet)", "wait"),
    ] {
        let running = s.gate == GateState::Running;
        let failed = s.gate == GateState::Failed;
        let html = get(&router_with(s, None, Vec::new()), "/").await.body;
        let verdict = verdict(&html);
        assert!(verdict.starts_with(&format!("<p class=\"verdict {class}\" id=verdict>")), "{verdict}");
        assert!(verdict.contains(line), "{verdict}");
        assert_eq!(html.contains("<meta http-equiv=refresh content=5>"), running, "a running gate reloads every 5 s");
        // The check says something else now: what failed the gate is shown beside it.
        assert_eq!(html.contains("At the gate: <strong>tpm</strong>: no /dev/tpmrm0"), failed, "{html}");
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
async fn the_second_verdict_the_retry_a_blamed_check_and_a_hold_are_on_the_page() {
    let mut boot = fallen_back_boot("USR-B", "refused");
    boot["fallback"]["blame"] = json!("environment");
    boot["fallback"]["retry"] = json!({"attempt": 1, "max": 1, "at": "2026-12-01T10:05:00Z", "done": true,
        "text": "retry 1 of 1 of the update to 4230.0.0: api passed here for 20s"});
    boot["hold"] = json!({"version": "4231.0.0", "until": "2026-12-02T10:00:00Z", "failures": 2,
        "text": "updates held until 2026-12-02 10:00:00 UTC: version 4231.0.0 failed 2 times by its own fault"});
    let mut s = healthy();
    s.checks[0].status = Status::Fail;
    s.checks[0].blame = Some(bootgate::engine::Blame::Preexisting);
    s.checks[0].accepted = true;
    (s.checks[1].status, s.checks[1].critical) = (Status::Fail, true);
    s.checks[1].blame = Some(bootgate::engine::Blame::Regression);
    let app = router_with(s, Some(boot), Vec::new());
    let html = get(&app, "/").await.body;
    assert!(html.contains("<p>Second verdict: blame <strong>environment</strong>: they fail here too, so the environment failed them, not the image.</p>"), "{html}");
    assert!(
        html.contains("<p>Retry 1 of 1: retry 1 of 1 of the update to 4230.0.0: api passed here for 20s</p>"),
        "{html}"
    );
    assert!(html.contains("<h2 id=hold-h>Updates held</h2>\n<p>updates held until 2026-12-02 10:00:00 UTC: version 4231.0.0 failed 2 times by its own fault</p>"), "{html}");
    assert!(html.contains("<td>critical · preexisting, accepted<td>"), "{html}");
    assert!(html.contains("<td>critical · regression<td>"), "{html}");
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
    assert!(get(&app, "/").await.body.contains("<strong>Gate running</strong> · waiting for api (not run yet)"));
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
    let line = verdict(&html);
    assert!(line.starts_with("<p class=\"verdict wait\" id=verdict><strong>Soaking</strong> · "), "not green: {line}");
    assert!(line.contains("they must keep passing for 40 s more (of 1 min)"), "{line}");

    let mut failed = snapshot(GateState::Failed, vec![check("api", "http", true, Status::Fail)]);
    failed.gate_reason = Some("failed during soak".into());
    failed.gate_failing = vec![Failing { name: "api".into(), message: "refused".into() }];
    let html = get(&router_with(failed, None, Vec::new()), "/").await.body;
    assert!(verdict(&html).contains("<strong>Gate failed</strong> · failed during soak on api"), "{html}");

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
    assert!(html.contains("Rollback window: not armed: the booted slot was already good."), "{html}");
    assert!(!html.contains("Rollback window (until"), "an unarmed window has no end: {html}");
}

#[tokio::test]
async fn the_device_is_named_in_the_title_the_heading_and_the_health_document() {
    let app = router_with(healthy(), None, Vec::new());
    let html = get(&app, "/").await.body;
    assert!(
        html.contains(
            "<title>edge-17 · Flatcar Container Linux by Kinvolk 4152.2.0 (Oklo) · Healthy · bootgate</title>"
        ),
        "{html}"
    );
    let h1 = html.lines().find(|l| l.starts_with("<h1")).unwrap();
    assert!(
        h1.starts_with(
            "<h1 id=device>edge-17 <span class=os>Flatcar Container Linux by Kinvolk 4152.2.0 (Oklo)</span>"
        ),
        "{h1}"
    );
    assert!(h1.contains("machine <code>0f3c9d2e7a1b</code>"), "the short machine id: {h1}");
    assert!(!html.contains("0f3c9d2e7a1b4c5d"), "never the whole machine id: {html}");
    let doc = get(&app, "/api/v1/system/health").await.json();
    assert_eq!(
        doc["device"],
        json!({"hostname": "edge-17", "machine_id": "0f3c9d2e7a1b", "os": {"id": "flatcar",
            "pretty_name": "Flatcar Container Linux by Kinvolk 4152.2.0 (Oklo)", "version": "4152.2.0",
            "version_id": "4152.2.0", "image_id": null, "image_version": null}})
    );
    assert_eq!(doc["components"]["storage"]["status"], "healthy", "the components are as they were");

    // An image-based OS: the image version, which its pretty name does not carry, is named beside it.
    let os = OsRelease::parse("ID=appliance\nPRETTY_NAME=Appliance\nVERSION_ID=2\nIMAGE_VERSION=2.4.1\n");
    let image = bootgate::server::app(state(healthy()).with_device(Device {
        hostname: Some("<b>x".into()),
        machine_id: None,
        os,
    }));
    let html = get(&image, "/").await.body;
    assert!(html.contains("<title>&lt;b&gt;x · Appliance 2.4.1 · Healthy · bootgate</title>"), "{html}");
    let doc = get(&image, "/api/v1/system/health").await.json();
    assert_eq!((doc["device"]["os"]["version"].as_str(), doc["device"]["machine_id"].as_str()), (Some("2.4.1"), None));
}

#[tokio::test]
async fn a_running_gate_names_what_it_waits_for_and_the_time_left() {
    use std::time::SystemTime;

    let mut api = check("api", "http", true, Status::Fail).with_message("retrying: 127.0.0.1:9: refused");
    api.timing.next_attempt = Some(SystemTime::now() + Duration::from_secs(2));
    let mut s = snapshot(
        GateState::Running,
        vec![api, check("tpm", "tpm", true, Status::Pending), check("disk", "disk", true, Status::Pass)],
    );
    s.gate_deadline = Some(SystemTime::now() + Duration::from_secs(100));
    let html = get(&router_with(s, None, Vec::new()), "/").await.body;
    let line = verdict(&html);
    assert!(line.starts_with("<p class=\"verdict wait\" id=verdict><strong>Gate running</strong>"), "{line}");
    assert!(line.contains("waiting for api (failed, retrying), tpm (not run yet) · "), "{line}");
    assert!(
        line.contains("1 min 40 s left until the deadline") || line.contains("1 min 39 s left until the deadline"),
        "{line}"
    );
    assert!(html.contains(
        "<title>edge-17 · Flatcar Container Linux by Kinvolk 4152.2.0 (Oklo) · Gate running · bootgate</title>"
    ));

    // A pending check that tried before shows no duration.
    let mut retried = check("api", "http", true, Status::Pending).with_attempts(2, Duration::ZERO);
    retried.message = "pending: running attempt 3".into();
    let html = get(&router_with(snapshot(GateState::Running, vec![retried]), None, Vec::new()), "/").await.body;
    assert!(html.contains("<td>pending: running attempt 3<td>–<td>not yet"), "{html}");
    assert!(!html.contains("0 µs"), "{html}");
}

/// A failed gate on USR-B whose decision is published as `run` publishes it.
fn failed_on_usr_b(on_failure: Value) -> (Snapshot, Value) {
    let mut s = snapshot(
        GateState::Failed,
        vec![check("api", "http", true, Status::Fail), check("disk", "disk", true, Status::Pass)],
    );
    s.checks[0].message = "GET http://127.0.0.1:8443/: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)".into();
    s.gate_failing = vec![Failing { name: "api".into(), message: s.checks[0].message.clone() }];
    let boot = json!({"partition": "USR-B", "index": 4, "uuid": "uuid-usr-b", "disk": "/dev/vda", "priority": 2,
        "tries": 0, "successful": false, "version": "4230.0.0", "backend": "flatcar",
        "gpt_slots": [{"partition": "USR-A", "index": 3, "priority": 1, "tries": 0, "successful": true},
                      {"partition": "USR-B", "index": 4, "priority": 2, "tries": 0, "successful": false}],
        "gpt_next": 3, "on_failure": on_failure});
    (s, boot)
}

#[tokio::test]
async fn a_failed_gate_says_where_it_reboots_and_when_or_why_it_stays() {
    use std::time::SystemTime;

    let at = bootgate::util::time::timestamp_seconds(SystemTime::now() + Duration::from_secs(9));
    let (s, boot) = failed_on_usr_b(json!({"decision": "reboot", "reboot_to": "USR-A (partition 3)", "reboot_at": at,
        "text": "gptprio boots it next: this slot was never marked good"}));
    let html = get(&router_with(s, Some(boot), Vec::new()), "/").await.body;
    let line = verdict(&html);
    assert!(
        line.starts_with("<p class=\"verdict bad\" id=verdict><strong>Gate failed</strong> · failed on api · "),
        "{line}"
    );
    assert!(
        line.contains("<strong>rebooting in 9 s to USR-A (partition 3)</strong>")
            || line.contains("<strong>rebooting in 8 s to USR-A (partition 3)</strong>"),
        "{line}"
    );
    // Each failure message once: the checks table has it, innermost cause first, the chain folded.
    assert_eq!(html.matches("Connection refused (os error 111)").count(), 2, "the cause and the folded chain: {html}");
    assert!(html.contains("<td>Connection refused (os error 111)<details><summary>whole message</summary>GET http://127.0.0.1:8443/: error sending"), "{html}");
    assert!(!html.contains("At the gate:"), "the table has the same message: {html}");
    // Both slots, which boots next, and the backend named.
    assert!(html.contains("Boot backend: <strong>flatcar</strong>"), "{html}");
    assert!(html.contains("<tr class=idle><th>USR-A (#3)<td class=st>boots next<td><i>priority </i>1"), "{html}");
    assert!(html.contains("<tr class=ok><th>USR-B (#4)<td class=st>booted<td><i>priority </i>2<td><i>tries left </i>0<td><i>successful: </i>no, not confirmed"), "{html}");

    let (s, boot) = failed_on_usr_b(json!({"decision": "stay_no_fallback",
        "text": "no other slot can boot. Manual intervention needed: fix the failing checks or reinstall a good image"}));
    let line = verdict(&get(&router_with(s, Some(boot), Vec::new()), "/").await.body).to_string();
    assert!(line.contains("· <strong>stayed</strong>: no other slot can boot. Manual intervention needed"), "{line}");
    assert!(!line.contains("rebooting"), "{line}");

    // `bootgate serve` after `run`: the decision comes from this boot's history line.
    let (s, mut boot) = failed_on_usr_b(Value::Null);
    boot.as_object_mut().unwrap().remove("on_failure");
    let line = PastBoot {
        boot_id: bootgate::boot::identity::boot_id(),
        gate: Some("failed".into()),
        decision: Some(Decision::StayPolicy),
        failing: vec![Failing { name: "api".into(), message: "refused".into() }],
        ..PastBoot::default()
    };
    let html = get(&router_with(s, Some(boot), vec![line]), "/").await.body;
    assert!(verdict(&html).contains("· <strong>stayed: the policy says on_failure: stay</strong>"), "{html}");
    assert!(
        html.contains("<td class=msg><strong>api</strong>\n</tr>")
            || html.contains("<td class=msg><strong>api</strong>\n"),
        "this boot's message is in the checks table only: {html}"
    );
}

#[tokio::test]
async fn a_passed_gate_says_who_marks_the_boot() {
    let waiting = json!({"partition": "USR-B", "index": 4, "uuid": "u4", "disk": "/dev/vda", "priority": 2, "tries": 0,
        "successful": false, "backend": "flatcar", "mark": {"done": true, "note": "READY=1: update_engine marks the slot"}});
    let html = get(&router_with(healthy(), Some(waiting), Vec::new()), "/").await.body;
    assert!(verdict(&html).contains("· waiting for update_engine to mark USR-B good"), "{html}");
    let rauc = json!({"backend": "rauc", "booted": "A", "primary": "A", "slots": null, "error": null,
        "mark": {"done": true, "note": "marked A good"}});
    let html = get(&router_with(healthy(), Some(rauc), Vec::new()), "/").await.body;
    assert!(verdict(&html).contains("· marked good by the rauc backend"), "{html}");
    let failed = json!({"backend": "grubenv", "grubenv": "/boot/grub/grubenv", "boot_counter": 2,
        "mark": {"done": false, "note": "grub-editenv: permission denied"}});
    let html = get(&router_with(healthy(), Some(failed), Vec::new()), "/").await.body;
    assert!(verdict(&html).contains("<strong class=bad>not marked good</strong>"), "{html}");
    assert!(html.contains("Marking this boot good failed: grub-editenv: permission denied"), "{html}");
}

#[tokio::test]
async fn every_backend_shows_its_slots() {
    let rauc = json!({"backend": "rauc", "booted": "A", "primary": "rootfs.1", "error": null, "slots": [
        {"name": "rootfs.0", "class": "rootfs", "bootname": "A", "state": "booted", "boot_status": "good"},
        {"name": "rootfs.1", "class": "rootfs", "bootname": "B", "state": "inactive", "boot_status": "good"},
        {"name": "appfs.0", "class": "appfs", "bootname": null, "state": "active", "boot_status": null}]});
    let html = get(&router_with(healthy(), Some(rauc), Vec::new()), "/").await.body;
    assert!(html.contains("Boot backend: <strong>rauc</strong>"), "{html}");
    assert!(html.contains("<tr class=ok><th>rootfs.0<td class=st>booted<td><i>boot name </i>A"), "{html}");
    assert!(
        html.contains("<tr class=idle><th>rootfs.1<td class=st>inactive · boots next (primary)<td><i>boot name </i>B"),
        "{html}"
    );
    assert!(html.contains("<th>appfs.0<td class=st>active<td><i>boot name </i>– (not bootable)"), "{html}");
    assert!(!html.contains("No A/B slots"), "{html}");

    let bless = json!({"backend": "bless-boot", "counting": true, "esp": "/efi", "entry": "fedora-42.conf",
        "boot_count_path": "/loader/entries/fedora-42+2-1.conf", "tries_left": 2, "tries_done": 1});
    let html = get(&router_with(healthy(), Some(bless), Vec::new()), "/").await.body;
    assert!(html.contains("Boot backend: <strong>bless-boot</strong>"), "{html}");
    assert!(html.contains("<tr class=wait><th>fedora-42.conf (booted)<td class=st>counted: not blessed yet<td><i>tries left </i>2<td><i>tries done </i>1"), "{html}");

    let ebg = json!({"backend": "efibootguard", "configs": [
        {"source": "config partition #0", "revision": 1, "ustate": "OK", "in_progress": false, "kernel": "L:BOOT0:vmlinuz", "booted": false},
        {"source": "config partition #1", "revision": 2, "ustate": "TESTING", "in_progress": false, "kernel": "L:<b>:x", "booted": true}]});
    let html = get(&router_with(healthy(), Some(ebg), Vec::new()), "/").await.body;
    assert!(html.contains("Boot backend: <strong>efibootguard</strong>"), "{html}");
    assert!(html.contains("<tr class=idle><th>config partition #0<td class=st>idle<td><i>revision </i>1<td><i>ustate </i>OK<td><i>kernel </i>L:BOOT0:vmlinuz"), "{html}");
    assert!(html.contains("<tr class=wait><th>config partition #1<td class=st>booted · under test: not confirmed yet<td><i>revision </i>2<td><i>ustate </i>TESTING<td><i>kernel </i>L:&lt;b&gt;:x"), "{html}");
    assert!(!html.contains("No A/B slots"), "{html}");
    let failed = json!({"backend": "efibootguard", "configs": null, "error": "`bg_printenv -p 0`: <no> partitions"});
    let html = get(&router_with(healthy(), Some(failed), Vec::new()), "/").await.body;
    assert!(html.contains("The backend could not be read: `bg_printenv -p 0`: &lt;no&gt; partitions"), "{html}");

    let grub =
        json!({"backend": "grubenv", "grubenv": "/boot/grub2/grubenv", "boot_counter": 1, "boot_success": false});
    let html = get(&router_with(healthy(), Some(grub), Vec::new()), "/").await.body;
    assert!(
        html.contains(
            "<code>boot_counter</code> 1, <code>boot_success</code> 0. If this boot fails: GRUB&#39;s boot_counter is 1"
        ),
        "{html}"
    );
    assert!(!html.contains("No A/B slots"), "{html}");

    let none = json!({"backend": "none"});
    let html = get(&router_with(healthy(), Some(none), Vec::new()), "/").await.body;
    assert!(html.contains("Boot backend: <strong>none</strong>") && html.contains("No A/B slots"), "{html}");
    assert!(verdict(&html).contains("accepted; no boot loader backend marks it"), "{html}");
    // No slot, no "kept the slot".
    let passed =
        PastBoot { gate: Some("passed".into()), timestamp: Some("2026-12-01T10:00:00Z".into()), ..PastBoot::default() };
    let html = get(&router_with(healthy(), None, vec![passed]), "/").await.body;
    assert!(html.contains("<td>accepted<td class=msg>") && !html.contains("kept the slot"), "{html}");
}

#[tokio::test]
async fn an_exec_check_shows_its_command() {
    let c = check("probe", "exec", true, Status::Fail)
        .with_message("exit 1")
        .with_observed("command", "/usr/libexec/probe --deep");
    let html = get(&router_with(snapshot(GateState::Passed, vec![c]), None, Vec::new()), "/").await.body;
    assert!(html.contains("<td><code class=cmd>$ /usr/libexec/probe --deep</code>exit 1<td>"), "{html}");
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
    let host = Device::read().hostname.expect("this machine has a hostname");
    assert!(dom.contains(&format!("<title>{host} · ")), "the title names the device: {dom}");
    screenshots(&url, name);
    dom
}

/// Waits up to 30 s for the health document of `b` to satisfy `done`.
fn wait_health(b: &Daemon, what: &str, done: impl Fn(&Value) -> bool) {
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !done(&b.health()) {
        assert!(std::time::Instant::now() < end, "no {what} within 30 s: {}\n{}", b.health(), b.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_running_gate_in_chromium() {
    let closed = ClosedPort::new();
    let checks = format!(
        "  - {{name: root-disk, kind: disk, path: /, min_free_percent: 0}}\n  - {{name: local-api, kind: tcp, retries: 100, timeout: 500ms, targets: ['127.0.0.1:{closed}']}}\n"
    );
    let mut b = Launch::gate("{deadline: 10m}", &checks).start();
    b.wait_listening(Duration::from_secs(30));
    wait_health(&b, "finished disk check", |d| d["components"]["root-disk"]["status"] == "healthy");
    let dom =
        look(&b, "running", &["root-disk", "local-api"], "<strong>Gate running</strong> · waiting for local-api (");
    let line = dom.lines().find(|l| l.contains("id=\"verdict\"")).unwrap();
    assert!(line.starts_with("<p class=\"verdict wait\""), "neutral while the gate runs: {line}");
    assert!(line.contains("left until the deadline"), "{line}");
    b.terminate();
    b.wait_exit(Duration::from_secs(30));
}

#[test]
fn a_soaking_gate_in_chromium() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut b = Launch::gate("{deadline: 20s, soak: 10m, soak_interval: 1s}", &healthy_checks(&service)).start();
    b.wait_listening(Duration::from_secs(30));
    wait_health(&b, "soak", |d| d.get("soak").is_some_and(|s| s.is_object()));
    let dom = look(
        &b,
        "soaking",
        &["root-disk", "local-api", "self-test"],
        "<strong>Soaking</strong> · every critical check passed",
    );
    let line = dom.lines().find(|l| l.contains("id=\"verdict\"")).unwrap();
    assert!(line.starts_with("<p class=\"verdict wait\""), "not green while soaking: {line}");
    assert_eq!(b.get("/readyz").status, 503, "the page matches /readyz");
    b.terminate();
    b.wait_exit(Duration::from_secs(30));
}

/// `bootgate run` fails its gate and stays (the policy says so); `bootgate serve` then
/// shows the boot, as `bootgate-report.service` does.
#[test]
fn a_failed_gate_that_stayed_in_chromium() {
    let closed = ClosedPort::new();
    let checks = format!(
        "  - {{name: root-disk, kind: disk, path: /, min_free_percent: 0}}\n  - {{name: local-api, kind: tcp, retries: 0, timeout: 500ms, targets: ['127.0.0.1:{closed}']}}\n  - name: self-test\n    kind: exec\n    critical: false\n    retries: 0\n    command: [sh, -c, 'exit 3']\n"
    );
    let mut run = Launch::gate("{deadline: 5s, on_failure: stay}", &checks).start();
    assert_eq!(run.wait_exit(Duration::from_secs(60)).code(), Some(2), "{}", run.stderr());
    let mut serve = run.then("serve").start();
    serve.wait_listening(Duration::from_secs(30));
    let dom = look(
        &serve,
        "failed-stayed",
        &["root-disk", "local-api", "self-test"],
        "<strong>Gate failed</strong> · failed on local-api",
    );
    assert!(
        dom.contains("<strong>stayed: the policy says on_failure: stay</strong>. Next: fix the failing checks"),
        "{dom}"
    );
    assert!(dom.contains("<code class=\"cmd\">$ sh -c exit 3</code>"), "the exec check's command: {dom}");
    assert!(dom.contains("No A/B slots"), "the build host has none: {dom}");
    serve.terminate();
    serve.wait_exit(Duration::from_secs(30));
}

/// Serves `state` with the real router on a real loopback socket, and returns the DOM
/// after taking the screenshots `name`. A stand-in for a daemon where the build host
/// cannot be the machine the page describes (it has no A/B slots and must not reboot).
async fn served(state: AppState, name: &'static str) -> String {
    let listener = bootgate::server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(bootgate::server::serve(listener, state, bootgate::server::Secured::default().fixed(), async {
            let _ = stopped.await;
        }));
    let (dom, _) = tokio::task::spawn_blocking(move || (dom(&url), screenshots(&url, name))).await.unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    dom
}

/// A failed gate on USR-B rebooting to USR-A in 10 min, as `run` publishes it before the reboot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gate_rebooting_in_chromium() {
    let at = bootgate::util::time::timestamp_seconds(std::time::SystemTime::now() + Duration::from_secs(600));
    let (s, boot) = failed_on_usr_b(json!({"decision": "reboot", "reboot_to": "USR-A (partition 3)", "reboot_at": at,
        "text": "gptprio boots it next: this slot was never marked good"}));
    let dom = served(state_of(s, Some(boot), Vec::new()), "failed-rebooting").await;
    let line = dom.lines().find(|l| l.contains("id=\"verdict\"")).unwrap_or_else(|| panic!("{dom}"));
    assert!(
        line.starts_with("<p class=\"verdict bad\" id=\"verdict\"><strong>Gate failed</strong> · failed on api"),
        "{line}"
    );
    assert!(line.contains("to USR-A (partition 3)</strong>"), "the headline names the slot: {line}");
    assert!(
        dom.contains(
            "<title>edge-17 · Flatcar Container Linux by Kinvolk 4152.2.0 (Oklo) · Gate failed · bootgate</title>"
        ),
        "{dom}"
    );
    assert!(dom.contains("<summary>whole message</summary>"), "{dom}");
}

/// A RAUC device whose gate passed and was marked good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rauc_device_in_chromium() {
    let rauc = json!({"backend": "rauc", "booted": "A", "primary": "rootfs.0", "error": null, "mark": {"done": true, "note": "marked A good"}, "slots": [
        {"name": "rootfs.0", "class": "rootfs", "bootname": "A", "state": "booted", "boot_status": "good"},
        {"name": "rootfs.1", "class": "rootfs", "bootname": "B", "state": "inactive", "boot_status": "bad"}]});
    let dom = served(state_of(healthy(), Some(rauc), Vec::new()), "rauc-passed").await;
    assert!(dom.contains("<th>rootfs.0</th><td class=\"st\">booted · boots next (primary)</td>"), "{dom}");
    assert!(dom.contains("<th>rootfs.1</th><td class=\"st\">inactive</td>"), "{dom}");
    let line = dom.lines().find(|l| l.contains("id=\"verdict\"")).unwrap();
    assert!(line.starts_with("<p class=\"verdict ok\""), "{line}");
    assert!(line.contains("marked good by the rauc backend"), "{line}");
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
    assert!(dom.contains("<th>USR-B (#4)</th><td class=\"st\">left: gate failed</td>"), "{dom}");
    assert!(
        dom.contains("<th>USR-A (#3)</th><td class=\"st\">booted · boots next</td>"),
        "both slots, and which boots next: {dom}"
    );
}

#[tokio::test]
async fn the_uboot_backend_shows_u_boots_count_escaped() {
    let uboot = json!({"backend": "uboot", "config": "/etc/<fw_env>.config", "upgrade_available": true,
        "bootcount": 2, "bootlimit": 3});
    let html = get(&router_with(healthy(), Some(uboot), Vec::new()), "/").await.body;
    assert!(html.contains("Boot backend: <strong>uboot</strong>"), "{html}");
    assert!(
        html.contains("<p id=uboot>U-Boot environment (<code>/etc/&lt;fw_env&gt;.config</code>): <code>upgrade_available</code> 1, <code>bootcount</code> 2, <code>bootlimit</code> 3: U-Boot counts this update&#39;s boots, this is try 2 of 3, then altbootcmd.</p>"),
        "{html}"
    );
    assert!(!html.contains("No A/B slots"), "{html}");
    let confirmed = json!({"backend": "uboot", "config": "/etc/fw_env.config", "upgrade_available": false,
        "bootcount": 0, "bootlimit": 3});
    let html = get(&router_with(healthy(), Some(confirmed), Vec::new()), "/").await.body;
    assert!(html.contains("bootlimit</code> 3: U-Boot does not count this boot, it is confirmed.</p>"), "{html}");
    let unread = json!({"backend": "uboot", "config": "/etc/fw_env.config", "upgrade_available": null,
        "bootcount": null, "bootlimit": null, "error": "fw_printenv <failed>"});
    let html = get(&router_with(healthy(), Some(unread), Vec::new()), "/").await.body;
    assert!(html.contains("<p id=uboot>U-Boot environment (<code>/etc/fw_env.config</code>): not read.</p>"), "{html}");
    assert!(html.contains("The backend could not be read: fw_printenv &lt;failed&gt;"), "{html}");
}
