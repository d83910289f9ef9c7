//! Nothing a check starts outlives it. Each exec check runs in its own process group,
//! killed whole when the attempt ends (see `checks::exec`); a command that leaves its
//! group (`setsid`) escapes that. bootgate is therefore a child subreaper: an orphan of
//! a check is reparented to bootgate, which kills and reaps every child it did not
//! start itself, on each SIGCHLD and when a one-shot command ends. Should bootgate die
//! without a word (SIGKILL), a guard process kills the groups of the checks still
//! running (see `guard`).

use std::collections::BTreeSet;
use std::io;
use std::sync::{Mutex, RwLock};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use self::guard::Guard;

mod guard;

/// bootgate's own children: those of checks while they run, and the guard.
struct Registry {
    ours: BTreeSet<i32>,
    guard: Option<Guard>,
    /// Guards that ended, until reaped: bootgate's own, never a check's leftover.
    old_guards: BTreeSet<i32>,
}

/// Held shared by each spawn until its child is registered, exclusively by a sweep.
static SPAWNING: RwLock<()> = RwLock::new(());

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { ours: BTreeSet::new(), guard: None, old_guards: BTreeSet::new() });

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// The running guard, started on first use; `None` when it cannot be.
    fn guard(&mut self) -> Option<&Guard> {
        if self.guard.is_none() {
            match Guard::start() {
                Ok(guard) => {
                    self.ours.insert(guard.pid);
                    self.guard = Some(guard);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the guard ({e}); exec checks may outlive a killed bootgate")
                }
            }
        }
        self.guard.as_ref()
    }

    /// A guard that no longer reads is dropped (the sweep reaps it quietly: it is
    /// bootgate's own, not a check's); the next spawn starts another.
    fn lost_guard(&mut self) {
        if let Some(guard) = self.guard.take() {
            self.ours.remove(&guard.pid);
            self.old_guards.insert(guard.pid);
        }
    }
}

/// Makes this process the reaper of its descendants' orphans.
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "cannot become a child subreaper ({e}); a check's detached processes may outlive it");
    }
}

/// Spawns `cmd` as a known child: the sweep leaves it alone until [`forget`] is called.
/// `cmd` must put the child in a process group of its own (`process_group(0)`).
///
/// A sweep waits for spawns in flight, so it never sees a new child before it is
/// registered; spawns do not wait for each other. The guard kills the child's group if
/// bootgate dies. No hook runs between fork and exec, so the standard library can use
/// `posix_spawn`, whose parent waits until the child has exec'd: spawns from two
/// threads overlap those waits.
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    let _spawning = SPAWNING.read().unwrap_or_else(|e| e.into_inner());
    let watched = registry().guard().is_some();
    let child = cmd.spawn()?;
    if let Some(pid) = child.id() {
        let pid = pid as i32;
        let mut reg = registry();
        reg.ours.insert(pid);
        if watched && !reg.guard.as_ref().is_some_and(|g| g.watch(pid)) {
            reg.lost_guard();
        }
    }
    Ok(child)
}

/// Ends the protection of a child started with [`spawn`] once it has been waited for
/// and its group killed.
pub fn forget(pid: u32) {
    let mut reg = registry();
    let pid = pid as i32;
    reg.ours.remove(&pid);
    if reg.guard.as_ref().is_some_and(|g| !g.unwatch(pid)) {
        reg.lost_guard();
    }
}

/// Runs a platform tool ([`crate::util::tool`]) as one of bootgate's own children: the
/// sweep on SIGCHLD would otherwise take it for a check's orphan, kill it and reap it
/// before its exit status is read. Its group is killed when the wait ends.
pub async fn run_tool(
    mut cmd: Command,
    shown: String,
    limit: std::time::Duration,
) -> Result<std::process::Output, crate::util::tool::ToolError> {
    use crate::util::tool::{self, ToolError};
    tool::prepare(&mut cmd);
    cmd.process_group(0);
    let child = spawn(&mut cmd).map_err(|source| ToolError::Spawn { command: shown.clone(), source })?;
    let pid = child.id();
    let done = tool::wait(child, shown, limit).await;
    if let Some(pid) = pid {
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        forget(pid);
    }
    done
}

/// Kills and reaps every direct child that bootgate did not start itself: orphans of
/// checks, reparented here. Returns how many it found.
pub fn sweep() -> usize {
    let _no_spawn = SPAWNING.write().unwrap_or_else(|e| e.into_inner());
    let mut reg = registry();
    let children = children();
    let old_guards: Vec<i32> = reg.old_guards.iter().copied().filter(|pid| children.contains(pid)).collect();
    reg.old_guards.retain(|pid| old_guards.contains(pid));
    for &pid in &old_guards {
        kill_and_reap(pid);
    }
    let strays: Vec<i32> =
        children.into_iter().filter(|pid| !reg.ours.contains(pid) && !old_guards.contains(pid)).collect();
    for &pid in &strays {
        kill_and_reap(pid);
    }
    if !strays.is_empty() {
        tracing::info!(pids = ?strays, "killed processes a check left behind: {strays:?}");
    }
    strays.len()
}

/// Before a one-shot command exits: kills and reaps every child left, until none is.
///
/// A check cut off at its timeout has had SIGKILL sent to its group, but its leader may
/// not have died yet; only once it has are its detached descendants reparented here.
/// So this waits (at most `limit`) for the last child to go, killing each as it appears.
pub fn finish(limit: std::time::Duration) {
    let end = std::time::Instant::now() + limit;
    stop_guard();
    loop {
        let left = children();
        if left.is_empty() {
            return;
        }
        for &pid in &left {
            kill_and_reap(pid);
        }
        if std::time::Instant::now() >= end {
            tracing::warn!(pids = ?left, "processes of checks still there at exit: {left:?}");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Ends the guard the way bootgate's death would (end of file: it kills the groups
/// still watched, then exits) and reaps it, so the loop of [`finish`] does not poll for it.
fn stop_guard() {
    // Its pid stays among bootgate's own until it is reaped: a sweep on its SIGCHLD
    // must not take it for a check's leftover.
    let guard = registry().guard.take();
    if let Some(guard) = guard {
        let pid = guard.pid;
        drop(guard);
        // It only has kill(2) calls left.
        let _ = waitpid(Pid::from_raw(pid), None);
        registry().ours.remove(&pid);
    }
}

/// Sweeps on every SIGCHLD for as long as the runtime runs.
pub fn watch() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::child()) {
        Ok(mut sigchld) => {
            tokio::spawn(async move {
                while sigchld.recv().await.is_some() {
                    sweep();
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot watch SIGCHLD ({e}); orphans of checks are killed only at exit"),
    }
}

/// SIGKILLs a child and its group, and reaps it if it is already gone (otherwise its
/// SIGCHLD brings another sweep).
fn kill_and_reap(pid: i32) {
    let p = Pid::from_raw(pid);
    // A detached orphan leads its own group (setsid): take its descendants too.
    let _ = killpg(p, Signal::SIGKILL);
    let _ = kill(p, Signal::SIGKILL);
    let _ = waitpid(p, Some(WaitPidFlag::WNOHANG));
}

/// The pids of this process's direct children (from every thread's `children` list).
fn children() -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return pids };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// The guard's end at `finish` is bootgate's own doing: a sweep running beside it
    /// (as one does on every SIGCHLD) never reports it as a process a check left behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_guard_ending_is_no_leftover_of_a_check() {
        let done = Arc::new(AtomicBool::new(false));
        let found = Arc::new(AtomicUsize::new(0));
        let sweeper = {
            let (done, found) = (Arc::clone(&done), Arc::clone(&found));
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    found.fetch_add(sweep(), Ordering::Relaxed);
                }
            })
        };
        for _ in 0..20 {
            let mut cmd = Command::new("/bin/true");
            cmd.process_group(0);
            let mut child = spawn(&mut cmd).unwrap();
            let pid = child.id().unwrap();
            child.wait().await.unwrap();
            forget(pid);
            finish(std::time::Duration::from_secs(5));
        }
        done.store(true, Ordering::Relaxed);
        sweeper.join().unwrap();
        assert_eq!(found.load(Ordering::Relaxed), 0, "a sweep took bootgate's own guard for a check's leftover");
    }
}
