//! A real browser: Debian's headless Chromium loads a page and gives its DOM, or
//! screenshots of it at phone (390x844) and desktop (1280x800) size into `target/status-page/`.
//!
//! Each browser gets its own profile dir and process group, is killed whole at a
//! timeout, resolves no name and reaches nothing but loopback (every other address goes
//! to a proxy on a closed loopback port).

use std::fs;
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use super::ClosedPort;
use super::procs::find_binary;

/// Chromium starts in about 2 s here; a loaded machine gets ample room.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one headless browser on `url` and returns its stdout.
fn browse(binary: &str, args: &[&str], url: &str) -> String {
    let path = find_binary(binary, binary);
    let profile = tempfile::tempdir().expect("cannot create a browser profile dir");
    let closed = ClosedPort::new();
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
pub fn dom(url: &str) -> String {
    browse("chromium", &["--headless=new", "--dump-dom"], url)
}

/// Screenshots of `url` at phone and desktop size into `target/status-page/NAME-WxH.png`.
/// `chromium --headless=new` never lays out below 500 px, so the phone is headless-shell.
pub fn screenshots(url: &str, name: &str) -> Vec<PathBuf> {
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
