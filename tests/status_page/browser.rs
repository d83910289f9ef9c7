//! The page in a real browser: Debian's headless Chromium loads it from a real `bootgate
//! run`; the DOM must show every check's name and the health word, and screenshots at
//! phone (390x844) and desktop (1280x800) size go to `target/status-page/`.
//!
//! Each browser gets its own profile dir and process group, is killed whole at a
//! timeout, resolves no name and reaches nothing but loopback (every other address goes
//! to a proxy on a closed loopback port).

use std::fs;
use std::io::Read as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use crate::endpoint::Bootgate;
use crate::support::{find_binary, free_port};

/// Chromium starts in about 2 s here; a loaded machine gets ample room.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one headless browser on `url` and returns its stdout.
fn browse(binary: &str, args: &[&str], url: &str) -> String {
    let path = find_binary(binary, binary);
    let profile = tempfile::tempdir().expect("cannot create a browser profile dir");
    let closed = free_port();
    let mut cmd = Command::new(&path);
    cmd.args(["--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--no-default-browser-check"])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{closed}"))
        .arg("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Full of harmless D-Bus noise on a machine without a session bus.
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
    let mut stdout = child.stdout.take().expect("piped");
    let reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32"));
    let end = Instant::now() + BROWSER_TIMEOUT;
    // Waited for without reaping, so the group id stays ours until the group is killed.
    let exited = loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT) {
            Ok(WaitStatus::StillAlive) if Instant::now() < end => thread::sleep(Duration::from_millis(50)),
            Ok(WaitStatus::StillAlive) => break false,
            _ => break true,
        }
    };
    // Its helpers (zygote, renderer, GPU process) share the group and go with it.
    let _ = killpg(pid, Signal::SIGKILL);
    let status = child.wait().expect("cannot reap the browser");
    let out = reader.join().unwrap_or_default();
    assert!(exited, "{binary} did not finish {url} within {BROWSER_TIMEOUT:?}");
    assert!(status.success(), "{binary} on {url} ended {status}");
    out
}

/// The DOM after load, as `chromium --dump-dom` serializes it.
fn dom(url: &str) -> String {
    browse("chromium", &["--headless=new", "--dump-dom"], url)
}

/// Screenshots of `url` at phone and desktop size into `target/status-page/NAME-WxH.png`.
/// `chromium --headless=new` never lays out below 500 px, so the phone is headless-shell.
fn screenshots(url: &str, name: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/status-page");
    fs::create_dir_all(&dir).unwrap();
    let shots = [("chromium-headless-shell", None, 390, 844), ("chromium", Some("--headless=new"), 1280, 800)];
    shots
        .into_iter()
        .map(|(binary, mode, w, h)| {
            let path = dir.join(format!("{name}-{w}x{h}.png"));
            let _ = fs::remove_file(&path);
            let shot = format!("--screenshot={}", path.display());
            let size = format!("--window-size={w},{h}");
            let mut args: Vec<&str> = mode.into_iter().collect();
            args.extend([shot.as_str(), size.as_str()]);
            browse(binary, &args, url);
            let png = fs::read(&path).unwrap_or_else(|e| panic!("{binary} wrote no {}: {e}", path.display()));
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5000, "{} is no real PNG", path.display());
            let dim = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
            assert_eq!((dim(16), dim(20)), (w, h), "{}", path.display());
            path
        })
        .collect()
}

/// Root disk, a loopback service that accepts, and a command that succeeds: all critical.
fn healthy_checks(service: &TcpListener) -> String {
    let port = service.local_addr().unwrap().port();
    format!(
        "  - {{name: root-disk, kind: disk, path: /, min_free_percent: 0}}\n  - {{name: local-api, kind: tcp, targets: ['127.0.0.1:{port}']}}\n  - {{name: self-test, kind: exec, command: ['true']}}\n"
    )
}

/// [`healthy_checks`] plus two optional checks that fail, one printing markup.
fn degraded_checks(service: &TcpListener) -> String {
    let closed = free_port();
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
fn daemon(checks: &str, history: Option<&'static str>) -> Bootgate {
    let mut b = Bootgate::start_with(free_port(), "{deadline: 20s}", checks, move |cmd| {
        let Some(history) = history else { return };
        let args: Vec<_> = cmd.get_args().collect();
        let at = args.iter().position(|a| *a == "--state-dir").expect("the launcher passes --state-dir");
        let state = PathBuf::from(args[at + 1]);
        fs::create_dir_all(&state).unwrap();
        fs::write(state.join("history.jsonl"), history).unwrap();
    });
    b.wait_status("/api/v1/system/health", 200, Duration::from_secs(30));
    b
}

/// Loads the page of `b`, checks its DOM for every check and `verdict`, and takes the screenshots.
fn look(b: &Bootgate, name: &str, checks: &[&str], verdict: &str) -> String {
    let url = format!("http://{}/status", b.addr);
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
    let b = daemon(&degraded_checks(&service), None);
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
    use std::sync::Arc;

    use bootgate::boot::decide::FLATCAR_USR_TYPE;
    use bootgate::boot::decide::fallback;
    use bootgate::boot::{BootStatus, PartitionInfo};
    use bootgate::checks::Status;
    use bootgate::daemon::facts::ThisBoot;
    use bootgate::engine::GateState;
    use tokio::sync::watch;

    let state_dir = tempfile::tempdir().unwrap();
    fs::write(state_dir.path().join("history.jsonl"), FAILED_UPDATE_HISTORY).unwrap();
    let boots = bootgate::record::history::read(state_dir.path()).unwrap();
    let part = |index, label: &str, uuid: &str, priority, successful| PartitionInfo {
        index,
        label: label.into(),
        uuid: uuid.into(),
        type_guid: FLATCAR_USR_TYPE.into(),
        priority,
        tries: 0,
        successful,
    };
    let partitions = vec![
        part(3, "USR-A", "e03dd35c-7c2d-4a47-b3fe-27f15780a57c", 1, true),
        part(4, "USR-B", "7130c94a-213a-4e5a-8e26-6cce9662f132", 2, false),
    ];
    let this_boot = bootgate::boot::identity::boot_id().unwrap_or_default();
    let found = fallback::detect(&boots, &partitions, Some(&partitions[0]), &this_boot);
    assert!(found.is_some(), "the history shows a fallback from USR-B");
    let status = BootStatus { booted: Some(3), disk: Some("/dev/vda".into()), partitions, note: None };
    let boot = ThisBoot { status: Some(status), version: Some("4152.2.0".into()), fallback: found };
    let checks = ["root-disk", "local-api", "self-test"].map(|n| crate::routes::check(n, "disk", true, Status::Pass));
    let snapshot = crate::routes::snapshot(GateState::Passed, checks.into());
    let metrics = Arc::new(bootgate::metrics::Metrics::new(&snapshot).unwrap());
    let state = bootgate::server::AppState::new(
        watch::channel(Arc::new(snapshot)).1,
        metrics,
        bootgate::process::Heartbeat::new(),
    )
    .with_boot(watch::channel(boot.facts().map(Arc::new)).1)
    .with_history(watch::channel(Arc::new(boots)).1);
    let listener = bootgate::server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bootgate::server::serve(listener, state, async {
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
