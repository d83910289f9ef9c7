//! A clean Debian bookworm root made by mmdebstrap, for installing and purging the
//! project's .deb. Every command in it runs through `unshare` in its own mount and pid
//! namespaces: /proc, /dev and the test's own directory (at /mnt) are mounted there
//! only, and the kernel tears the mounts and every process down when the command
//! ends, even when the test is killed. Dropping the root unmounts by path whatever
//! is still mounted under it before its files are removed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tempfile::TempDir;

use super::leftovers;
use super::procs::{describe, find_binary, run_bounded};

/// A Debian root in a temp dir, removed on drop.
pub struct DebianRoot {
    dir: Option<TempDir>,
    root: PathBuf,
    shared: PathBuf,
}

/// The namespaces and mounts of every command: the test's directory at /mnt, proc of
/// the new pid namespace, the host's devices. `--kill-child`: if unshare is killed (a
/// command's deadline), the namespace's first process and so all of it die too.
const ENTER: &str = r#"mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && mount --bind "$1" "$0/mnt" && root=$0 && shift && exec chroot "$root" "$@""#;

impl DebianRoot {
    /// mmdebstrap's `apt` variant of bookworm with `include` added, keeping the
    /// package lists so apt can install from them; `shared` appears as /mnt inside.
    pub fn create(include: &[&str], shared: &Path) -> DebianRoot {
        let mmdebstrap = find_binary("mmdebstrap", "mmdebstrap");
        find_binary("unshare", "util-linux");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let made = DebianRoot { dir: Some(dir), root: root.clone(), shared: shared.to_path_buf() };
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--"])
            .arg(mmdebstrap)
            .args(["--quiet", "--variant=apt", "--skip=cleanup/apt/lists"])
            .arg(format!("--include={}", include.join(",")))
            .arg("bookworm")
            .arg(&root);
        // About a minute here; five leave room for a busy machine and a slow mirror.
        expect_ok(&mut cmd, Duration::from_secs(300));
        made
    }

    /// The root's path on the host.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Runs `args` chrooted in the root; its output, whatever its exit code.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--", "sh", "-c", ENTER])
            .arg(&self.root)
            .arg(&self.shared)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LC_ALL", "C.UTF-8");
        run_bounded(&mut cmd, timeout)
    }

    /// [`DebianRoot::run`] that fails the test on a non-zero exit; stdout and stderr together.
    #[track_caller]
    pub fn ok(&self, args: &[&str], timeout: Duration) -> String {
        let out = self.run(args, timeout);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "`{}` in the root exited {}:\n{text}", args.join(" "), out.status);
        text
    }

    /// Every path in the root with its type and mode (`d 755`, `f 644`, `l`), skipping
    /// the `ignored` paths relative to the root and everything below them.
    pub fn listing(&self, ignored: &[&str]) -> BTreeMap<String, String> {
        let mut found = BTreeMap::new();
        walk(&self.root, &self.root, ignored, &mut found);
        found
    }
}

fn walk(root: &Path, dir: &Path, ignored: &[&str], found: &mut BTreeMap<String, String>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap();
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if ignored.iter().any(|i| rel == *i || rel.starts_with(&format!("{i}/"))) {
            continue;
        }
        let meta = fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        let mode = meta.permissions().mode() & 0o7777;
        let what = if kind.is_symlink() {
            "l".to_string()
        } else if kind.is_dir() {
            format!("d {mode:o}")
        } else if kind.is_file() {
            format!("f {mode:o}")
        } else if kind.is_socket() || kind.is_fifo() {
            format!("s {mode:o}")
        } else {
            format!("n {mode:o}")
        };
        found.insert(format!("/{rel}"), what);
        if kind.is_dir() {
            walk(root, &path, ignored, found);
        }
    }
}

#[track_caller]
fn expect_ok(cmd: &mut Command, timeout: Duration) {
    let out = run_bounded(cmd, timeout);
    assert!(
        out.status.success(),
        "`{}` exited {}:\n{}{}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for DebianRoot {
    fn drop(&mut self) {
        // Nothing should be mounted here (every mount lived in a command's namespace),
        // but a bind mount of /dev left behind would let the removal below reach the
        // host's devices: unmount by path first, and keep the tree if that fails.
        let Some(dir) = self.dir.take() else { return };
        leftovers::unmount_under(dir.path());
        if leftovers::mounted_under(dir.path()) {
            let kept = dir.keep();
            eprintln!("warning: mounts remain under {}; left in place", kept.display());
        }
    }
}
