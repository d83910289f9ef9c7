//! The sysext image from outside: building it with `build/sysext.sh`, unpacking it
//! into a root that holds only glibc, running its binary there, reading ELF dynamic
//! sections, and a loopback HTTP server publishing a release directory.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::free_port;
use super::procs::{self, find_binary, run_bounded};

/// A build squashes ~60 MB of debug binary; generous for a machine shared with others.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Ports are only free "a moment ago"; a lost race is retried on new ones.
const START_ATTEMPTS: usize = 5;

/// The sonames that stay the host's: glibc's, as `build/sysext.sh` lists them.
pub const GLIBC: [&str; 10] = [
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libmvec.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libanl.so.1",
];

/// Where the image keeps its libraries, relative to its root.
pub const LIBDIR: &str = "usr/lib/bootgate";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `build/sysext.sh OUTDIR` with `bin` as the binary; the caller judges the outcome.
pub fn build(out: &Path, bin: &Path) -> Output {
    find_binary("mksquashfs", "squashfs-tools");
    find_binary("patchelf", "patchelf");
    let mut cmd = Command::new(repo().join("build/sysext.sh"));
    cmd.arg(out).env("BOOTGATE_BIN", bin);
    run_bounded(&mut cmd, BUILD_TIMEOUT)
}

/// Builds the image into `out` or fails the test with the script's words; returns its path.
pub fn build_ok(out: &Path, bin: &Path) -> PathBuf {
    let output = build(out, bin);
    assert!(output.status.success(), "build/sysext.sh failed ({}):\n{}", output.status, text(&output));
    out.join(format!("bootgate-{}-x86-64.raw", env!("CARGO_PKG_VERSION")))
}

/// stdout and stderr of a finished command, for assertions and messages.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A root holding glibc's shared objects from the host, exactly the files Debian's
/// `libc6` package owns in the library directories, and nothing else; the
/// `/lib` and `/lib64` links as on the host, an empty `/proc` to mount on.
pub fn glibc_root() -> TempDir {
    let dpkg = find_binary("dpkg-query", "dpkg");
    let out = run_bounded(Command::new(dpkg).args(["-L", "libc6"]), RUN_TIMEOUT);
    assert!(out.status.success(), "dpkg-query -L libc6 failed:\n{}", text(&out));
    let root = tempfile::Builder::new().prefix("bgroot").tempdir().expect("cannot create a temp dir for the root");
    let mut copied = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = Path::new(line);
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { continue };
        if !name.to_string_lossy().contains(".so") {
            continue;
        }
        // Canonical directories: /lib is a link to usr/lib on Debian 12.
        let dir = fs::canonicalize(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        if !["/usr/lib/x86_64-linux-gnu", "/usr/lib64"].iter().any(|d| dir == Path::new(d)) {
            continue;
        }
        let dest = root.path().join(dir.strip_prefix("/").unwrap());
        fs::create_dir_all(&dest).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
        fs::copy(path, dest.join(name)).unwrap_or_else(|e| panic!("cannot copy {}: {e}", path.display()));
        copied += 1;
    }
    assert!(copied >= GLIBC.len(), "only {copied} files of libc6 copied");
    for link in ["lib", "lib64"] {
        let host = Path::new("/").join(link);
        if let Ok(target) = fs::read_link(&host) {
            std::os::unix::fs::symlink(target, root.path().join(link)).unwrap();
        }
    }
    fs::create_dir(root.path().join("proc")).unwrap();
    root
}

/// Unpacks `image` over `root` (the image holds only `usr/`).
pub fn unpack(image: &Path, root: &Path) {
    let unsquashfs = find_binary("unsquashfs", "squashfs-tools");
    let out = run_bounded(Command::new(unsquashfs).arg("-f").arg("-d").arg(root).arg(image), RUN_TIMEOUT);
    assert!(out.status.success(), "unsquashfs {} failed:\n{}", image.display(), text(&out));
}

/// Runs `args` (an absolute path in the root first) with `root` as `/`, in
/// private mount and pid namespaces with a fresh /proc: the loader reads
/// `$ORIGIN` from /proc/self/exe, as on every booted machine. Root only, as
/// `make test` runs; the environment is emptied so nothing of the host leaks in.
pub fn run_in(root: &Path, args: &[&str]) -> Output {
    let unshare = find_binary("unshare", "util-linux");
    let mut cmd = Command::new(unshare);
    cmd.args(["--mount", "--pid", "--fork", "--kill-child", "--mount-proc"])
        .arg(format!("--root={}", root.display()))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin");
    run_bounded(&mut cmd, RUN_TIMEOUT)
}

/// The `(NEEDED)` sonames and the `(RUNPATH)` of an ELF file, from `readelf -d`.
pub fn dynamic(elf: &Path) -> (BTreeSet<String>, Option<String>) {
    let readelf = find_binary("readelf", "binutils");
    let out = run_bounded(Command::new(readelf).arg("-d").arg(elf), RUN_TIMEOUT);
    assert!(out.status.success(), "readelf -d {} failed:\n{}", elf.display(), text(&out));
    let bracketed = |line: &str| line.split_once('[').and_then(|(_, rest)| rest.strip_suffix(']')).map(String::from);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let needed = text.lines().filter(|l| l.contains("(NEEDED)")).filter_map(bracketed).collect();
    let runpath = text.lines().find(|l| l.contains("(RUNPATH)")).and_then(bracketed);
    (needed, runpath)
}

/// `python3 -m http.server` serving one directory on 127.0.0.1, stopped (process
/// group) on drop.
pub struct Release {
    child: Child,
    port: u16,
    _log: TempDir,
}

impl Release {
    /// Serves `dir` on a free loopback port.
    pub fn serve(dir: &Path) -> Release {
        let python = find_binary("python3", "python3");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_serve(&python, dir) {
                Ok(server) => return server,
                Err(log) if log.contains("in use") => last_log = log,
                Err(log) => panic!("the HTTP server exited during startup:\n{log}"),
            }
        }
        panic!("the HTTP server found its port taken {START_ATTEMPTS} times; last log:\n{last_log}");
    }

    fn try_serve(python: &Path, dir: &Path) -> Result<Release, String> {
        let logs = tempfile::Builder::new().prefix("bghttp").tempdir().expect("cannot create a temp dir for a log");
        let log_path = logs.path().join("http.log");
        let log = File::create(&log_path).unwrap_or_else(|e| panic!("{}: {e}", log_path.display()));
        let port = free_port();
        let mut cmd = Command::new(python);
        cmd.args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot duplicate the log handle"))
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start `{}`: {e}", procs::describe(&cmd)));
        let mut server = Release { child, port, _log: logs };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{status}\n{}", procs::tail(&log_path, 40)));
            }
            assert!(
                Instant::now() < deadline,
                "the HTTP server did not listen on 127.0.0.1:{port} within {READY_TIMEOUT:?}:\n{}",
                procs::tail(&log_path, 40)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The directory's URL, with the trailing slash a sysupdate `Path=` carries.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        procs::stop_group(&mut self.child, Duration::from_secs(5));
    }
}
