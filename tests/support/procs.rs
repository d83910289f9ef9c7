//! Processes: finding binaries, running commands with a deadline, waiting for a
//! condition, stopping a child or its process group, and reading /proc to find
//! what a daemon left behind.

use std::env;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::sys;

/// Where Debian packages put binaries; searched before PATH so the tests use
/// what `build/deps.sh` installed even when a different build is on PATH.
const DEBIAN_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// The path of executable `name`, or a panic naming the Debian `package` to install.
pub fn find_binary(name: &str, package: &str) -> PathBuf {
    let path_dirs = env::var_os("PATH").map(|p| env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    let dirs = DEBIAN_DIRS.iter().map(PathBuf::from).chain(path_dirs);
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not installed: install the Debian package `{package}` \
         (build/deps.sh installs every package the tests need)"
    );
}

/// Polls `done` every `step` until it returns true or `timeout` passes;
/// returns whether it became true.
pub fn wait_until(timeout: Duration, step: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(step);
    }
}

/// Polls `probe` every 50 ms until it gives a value; fails the test naming `what` after `timeout`.
#[track_caller]
pub fn wait<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {timeout:?} waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The command line of `cmd` as one string, for panic messages.
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs `cmd` to completion with stdin closed and its output captured;
/// kills it and panics if it is still running after `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    run_with_deadline(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// [`run_bounded`] without panicking, for cleanup code in `Drop`.
pub fn run_with_deadline(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let line = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{line}`: {e}"))?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let mut status = None;
    wait_until(timeout, Duration::from_millis(10), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("`{line}` did not finish within {timeout:?}"));
    };
    Ok(Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Sends `sig` to the single process `pid`; one that is gone already is no error.
pub fn signal(pid: u32, sig: i32) {
    let _ = sys::signal(pid, sig);
}

/// Stops `child`: SIGTERM by pid, up to `grace` to exit, then SIGKILL; always reaps.
pub fn stop(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        // Already reaped: its pid may belong to someone else now.
        return;
    }
    signal(child.id(), sys::SIGTERM);
    if !wait_until(grace, Duration::from_millis(20), || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Stops `child`, which leads its own process group: SIGTERM to the group,
/// up to `grace` to exit, then SIGKILL to the group; always reaps the child.
/// Returns whether it exited within the grace period.
pub fn stop_group(child: &mut Child, grace: Duration) -> bool {
    if let Ok(Some(_)) = child.try_wait() {
        // Already reaped: its pid may belong to someone else now.
        return true;
    }
    let pgid = child.id();
    let _ = sys::signal_group(pgid, sys::SIGTERM);
    let graceful = wait_until(grace, Duration::from_millis(20), || matches!(child.try_wait(), Ok(Some(_))));
    // The leader may be gone while others in its group are not.
    let _ = sys::signal_group(pgid, sys::SIGKILL);
    let _ = child.wait();
    graceful
}

/// One entry of the process table.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// Arguments joined by spaces.
    pub cmdline: String,
    /// The one-letter state from /proc/PID/stat (`Z` for a zombie).
    pub state: char,
}

/// A snapshot of all processes (races with exiting processes are skipped).
pub fn processes() -> Vec<Proc> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).filter_map(read_proc).collect()
}

fn read_proc(pid: u32) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Some(Proc { pid, ppid, cmdline, state })
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    read_proc(pid).is_some_and(|p| p.state != 'Z')
}

/// Live processes whose command line contains `needle` (never this process).
pub fn mentioning(needle: &str) -> Vec<Proc> {
    let me = std::process::id();
    processes().into_iter().filter(|p| p.pid != me && p.state != 'Z' && p.cmdline.contains(needle)).collect()
}

/// `roots` and all their live descendants, found through parent pids.
pub fn with_descendants(roots: &[u32]) -> Vec<u32> {
    let table = processes();
    let mut found: Vec<u32> = roots.to_vec();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for p in &table {
            if p.ppid == parent && p.state != 'Z' && !found.contains(&p.pid) {
                found.push(p.pid);
            }
        }
        i += 1;
    }
    found
}

/// SIGKILLs each pid (never this process or init) and waits up to `timeout`
/// for them to be gone; returns those still alive.
pub fn kill_and_wait(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let me = std::process::id();
    let targets: Vec<u32> = pids.iter().copied().filter(|p| *p > 1 && *p != me).collect();
    for pid in &targets {
        let _ = sys::signal(*pid, sys::SIGKILL);
    }
    wait_until(timeout, Duration::from_millis(20), || targets.iter().all(|p| !alive(*p)));
    targets.into_iter().filter(|p| alive(*p)).collect()
}

/// The last `lines` lines of a log file, for panic messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
