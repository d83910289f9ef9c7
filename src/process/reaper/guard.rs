//! The guard: a small process forked when the first exec check starts, which SIGKILLs
//! the process groups of the checks still running once bootgate is gone, even when it
//! was killed by SIGKILL and could clean up nothing itself.
//!
//! It stands in for a parent-death signal set in each check's child between fork and
//! exec: such a hook makes the standard library fork the whole (multi-MiB, multi-thread)
//! process for every check, where without one it uses `posix_spawn` (vfork + exec).
//!
//! bootgate writes `+pgid` and `-pgid` records (4 bytes, so each write is atomic) into
//! a pipe whose only read end the guard holds; end of file means bootgate died.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::libc;

/// Process groups the guard can track at once; a check beyond them is only killed by
/// the daemon itself (at its timeout, or when the daemon exits).
const CAPACITY: usize = 4096;

/// The write end of the pipe to a running guard, and the guard's pid.
pub struct Guard {
    pipe: OwnedFd,
    pub pid: i32,
}

impl Guard {
    /// Forks the guard. The caller must hold no lock the child could need: the child
    /// runs only async-signal-safe calls (it is forked from a multi-thread process).
    pub fn start() -> io::Result<Guard> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        // A stuck guard must never block a check from starting: a full pipe drops a record.
        nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        // Found before the fork: the child may not allocate to find it.
        let args = arg_area();
        // SAFETY: the child calls only async-signal-safe functions, then `_exit`s.
        match unsafe { nix::unistd::fork() }? {
            nix::unistd::ForkResult::Child => guard_main(read.as_raw_fd(), args),
            nix::unistd::ForkResult::Parent { child } => {
                drop(read);
                Ok(Guard { pipe: write, pid: child.as_raw() })
            }
        }
    }

    /// Asks the guard to kill `pgid` should bootgate die; false when the guard is gone.
    pub fn watch(&self, pgid: i32) -> bool {
        self.send(pgid)
    }

    /// The group has been killed and reaped: the guard forgets it (its id may be reused).
    pub fn unwatch(&self, pgid: i32) -> bool {
        self.send(-pgid)
    }

    fn send(&self, record: i32) -> bool {
        let bytes = record.to_ne_bytes();
        match nix::unistd::write(&self.pipe, &bytes) {
            Ok(_) => true,
            // Full: this record is lost, the guard itself is alive.
            Err(nix::errno::Errno::EAGAIN) => true,
            Err(_) => false,
        }
    }
}

/// What the guard calls itself in `ps` and `top`, so no one mistakes it for the daemon.
pub const NAME: &[u8] = b"bootgate-guard";

/// Where this process's command line lives (`arg_start`, `arg_end` of `/proc/self/stat`),
/// the memory `ps` shows; `None` when it cannot be told.
fn arg_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may hold spaces: the 3rd field is the first.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let (start, end) = (fields.get(48 - 3)?.parse().ok()?, fields.get(49 - 3)?.parse().ok()?);
    (end > start).then_some((start, end))
}

/// The guard's whole life, in the forked child. No allocation, no locks: only raw
/// system calls, as after a fork of a multi-thread process nothing else is safe.
fn guard_main(read: i32, args: Option<(usize, usize)>) -> ! {
    // SAFETY: plain system calls on values owned by this fresh process; the command line
    // is this process's own copy of the parent's memory, written within its bounds.
    unsafe {
        // Its own name, in `comm` and in the command line `ps` shows.
        let mut comm = [0u8; 16];
        comm[..NAME.len()].copy_from_slice(NAME);
        libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0);
        if let Some((start, end)) = args {
            let area = std::slice::from_raw_parts_mut(start as *mut u8, end - start);
            let n = NAME.len().min(area.len() - 1);
            area[..n].copy_from_slice(&NAME[..n]);
            area[n..].fill(0);
        }
        // Keep only the pipe (as fd 3) and stdio: sockets and listeners of the daemon
        // must close when the daemon dies, not live on in the guard.
        if read != 3 && libc::dup2(read, 3) < 0 {
            libc::_exit(1);
        }
        if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
            for fd in 4..1024 {
                libc::close(fd);
            }
        }
        // Inherited handlers write into the daemon's (now closed) signal pipes: back to
        // the defaults, so a SIGTERM ends the guard. Its own group keeps a Ctrl-C meant
        // for the terminal's foreground job from ending it before bootgate.
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::setpgid(0, 0);

        let mut groups = [0i32; CAPACITY];
        let mut len = 0usize;
        let mut buf = [0u8; 4 * 256];
        loop {
            let n = libc::read(3, buf.as_mut_ptr().cast(), buf.len());
            if n == 0 {
                break;
            }
            if n < 0 {
                if *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                break;
            }
            // Every write is one whole 4-byte record, so reads hold whole records.
            for record in buf[..n as usize].chunks_exact(4) {
                let pgid = i32::from_ne_bytes([record[0], record[1], record[2], record[3]]);
                if pgid > 0 && len < CAPACITY {
                    groups[len] = pgid;
                    len += 1;
                } else if let Some(i) = groups[..len].iter().position(|&g| g == -pgid) {
                    len -= 1;
                    groups[i] = groups[len];
                }
            }
        }
        for &pgid in &groups[..len] {
            libc::kill(-pgid, libc::SIGKILL);
        }
        libc::_exit(0)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use nix::sys::wait::waitpid;
    use nix::unistd::Pid;

    use super::*;

    fn sleeper() -> Child {
        Command::new("sleep").arg("30").process_group(0).spawn().unwrap()
    }

    /// The child's exit status once it is gone, or `None` after `limit`.
    fn gone_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    #[test]
    fn the_guard_goes_by_its_own_name() {
        let guard = Guard::start().unwrap();
        let pid = guard.pid;
        // The child names itself as it starts: wait for it (wide margin, a busy machine).
        let end = Instant::now() + Duration::from_secs(10);
        let comm = loop {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
            if comm.trim_end() == "bootgate-guard" || Instant::now() > end {
                break comm;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        drop(guard);
        waitpid(Pid::from_raw(pid), None).unwrap();
        assert_eq!(comm.trim_end(), "bootgate-guard");
        let shown: Vec<&[u8]> = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
        assert_eq!(shown, [NAME], "ps shows {:?}", String::from_utf8_lossy(&cmdline));
    }

    #[test]
    fn the_guard_kills_watched_groups_when_its_pipe_closes_and_spares_forgotten_ones() {
        let guard = Guard::start().unwrap();
        let (mut watched, mut forgotten) = (sleeper(), sleeper());
        assert!(guard.watch(watched.id() as i32));
        assert!(guard.watch(forgotten.id() as i32));
        assert!(guard.unwatch(forgotten.id() as i32));
        let pid = guard.pid;
        // What bootgate's death looks like to the guard: the write end closes.
        drop(guard);
        let status = gone_within(&mut watched, Duration::from_secs(3)).expect("the watched group outlived bootgate");
        assert_eq!(status.signal(), Some(9), "{status:?}");
        waitpid(Pid::from_raw(pid), None).unwrap();
        assert!(gone_within(&mut forgotten, Duration::from_millis(200)).is_none(), "a forgotten group was killed");
        forgotten.kill().unwrap();
        forgotten.wait().unwrap();
    }
}
