//! The few libc calls std does not wrap: signals by pid or process group,
//! changing a listener's backlog, a TCP socket bound but never listening, and
//! detaching a leftover mount.

use std::ffi::{CString, c_char, c_int};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub const SIGTERM: c_int = 15;
pub const SIGKILL: c_int = 9;
const MNT_DETACH: c_int = 2;

unsafe extern "C" {
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn listen(sockfd: c_int, backlog: c_int) -> c_int;
    fn umount2(target: *const c_char, flags: c_int) -> c_int;
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn bind(sockfd: c_int, addr: *const SockaddrIn, len: u32) -> c_int;
    fn getsockname(sockfd: c_int, addr: *mut SockaddrIn, len: *mut u32) -> c_int;
}

const AF_INET: c_int = 2;
const SOCK_STREAM: c_int = 1;
const SOCK_CLOEXEC: c_int = 0o2000000;

/// `struct sockaddr_in`, in network byte order.
#[repr(C)]
struct SockaddrIn {
    family: u16,
    port: u16,
    addr: u32,
    zero: [u8; 8],
}

/// A TCP socket bound to a free 127.0.0.1 port and never listening: connects to the
/// port are refused, and no other socket can bind it while this one is open.
pub fn bound_not_listening() -> io::Result<(std::os::fd::OwnedFd, u16)> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscalls on a descriptor this function owns; the address structs
    // are fully initialised and their sizes passed.
    unsafe {
        let fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = std::os::fd::OwnedFd::from_raw_fd(fd);
        let size = std::mem::size_of::<SockaddrIn>() as u32;
        let any = SockaddrIn {
            family: AF_INET as u16,
            port: 0,
            addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
            zero: [0; 8],
        };
        result(bind(fd.as_raw_fd(), &any, size))?;
        let mut got = SockaddrIn { family: 0, port: 0, addr: 0, zero: [0; 8] };
        let mut len = size;
        result(getsockname(fd.as_raw_fd(), &mut got, &mut len))?;
        Ok((fd, u16::from_be(got.port)))
    }
}

/// Refuses the pids that would make kill(2) hit more than one chosen process
/// or group: 0 (our own group), 1 (init) and anything that wraps negative.
fn checked(pid: u32) -> c_int {
    match c_int::try_from(pid) {
        Ok(p) if p > 1 => p,
        _ => panic!("refusing to signal pid {pid}"),
    }
}

fn result(rc: c_int) -> io::Result<()> {
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Sends `sig` to the single process `pid`.
pub fn signal(pid: u32, sig: c_int) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions; the pid is checked above.
    result(unsafe { kill(checked(pid), sig) })
}

/// Sends `sig` to every process in the process group `pgid`.
pub fn signal_group(pgid: u32, sig: c_int) -> io::Result<()> {
    // SAFETY: as above; the negative pid addresses exactly one group.
    result(unsafe { kill(-checked(pgid), sig) })
}

/// Calls listen(2) again on a listening socket: Linux then only changes the
/// accept-queue length, which std fixes at 128.
pub fn set_backlog(socket: &impl AsRawFd, backlog: c_int) -> io::Result<()> {
    // SAFETY: the fd is borrowed from a live socket for the duration of the call.
    result(unsafe { listen(socket.as_raw_fd(), backlog) })
}

/// Lazily unmounts `path` (MNT_DETACH), for mounts a killed daemon left behind.
pub fn detach_unmount(path: &Path) -> io::Result<()> {
    let c_path =
        CString::new(path.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: c_path is a valid NUL-terminated string that outlives the call.
    result(unsafe { umount2(c_path.as_ptr(), MNT_DETACH) })
}
