//! What a private Docker engine leaves behind when it did not shut down
//! cleanly (a test crashed it, or it ignored SIGTERM): its containerd, the
//! shims and container processes, shim sockets and mounts under its base dir.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::procs;
use super::sys;

/// Kills every process whose command line names `base` (containerd, shims)
/// and their descendants (container processes), removes the shims' sockets
/// and detaches mounts under `base`, so the temp dir can be removed.
pub fn clean(base: &Path) {
    let needle = format!("{}/", base.display());
    let roots: Vec<u32> = procs::mentioning(&needle).iter().map(|p| p.pid).collect();
    if !roots.is_empty() {
        // Read before the kill: a killed shim cannot remove its socket.
        let sockets = shim_sockets(base);
        let stuck = procs::kill_and_wait(&procs::with_descendants(&roots), Duration::from_secs(5));
        if !stuck.is_empty() {
            eprintln!("warning: processes of the test engine in {needle} survived SIGKILL: {stuck:?}");
        }
        for socket in sockets {
            let _ = fs::remove_file(socket);
        }
    }
    unmount_under(base);
}

/// The sockets of this engine's containerd shims, which containerd 1.6 puts
/// in /run/containerd/s/ whatever its own root; each shim records its own
/// in an `address` file in its task dir.
fn shim_sockets(base: &Path) -> Vec<PathBuf> {
    let tasks = base.join("exec/containerd/daemon/io.containerd.runtime.v2.task");
    subdirs(&tasks)
        .iter()
        .flat_map(|namespace| subdirs(namespace))
        .filter_map(|task| fs::read_to_string(task.join("address")).ok())
        .filter_map(|a| a.trim().strip_prefix("unix://").map(PathBuf::from))
        .filter(|p| p.starts_with("/run/containerd/s/"))
        .collect()
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect()
}

/// Detaches every mount at or below `base`, deepest first.
pub fn unmount_under(base: &Path) {
    let mut mounts = mounts_under(base);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for mount in mounts {
        if let Err(e) = sys::detach_unmount(&mount) {
            eprintln!("warning: cannot unmount {}: {e}", mount.display());
        }
    }
}

/// Whether anything is mounted at or below `base`.
pub fn mounted_under(base: &Path) -> bool {
    !mounts_under(base).is_empty()
}

/// The mount points at or below `base`, as this process sees them.
fn mounts_under(base: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|escaped| PathBuf::from(unescape(escaped)))
        .filter(|p| p.starts_with(base))
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
