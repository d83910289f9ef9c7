//! `build/deps.sh`: the package sets of `make build`, `make run` and `make test` as a
//! user who cannot install anything sees them. It runs as `nobody` (setpriv) against an
//! empty dpkg database (`DPKG_ADMINDIR`, which dpkg-query reads), so every package of
//! a set is missing and the listing shows the whole set.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

/// Packages only the tests need: a build or a run must never ask for them.
const TEST_ONLY: [&str; 5] = ["chromium", "qemu-system-x86", "prometheus", "swtpm", "mmdebstrap"];
const BUILD: [&str; 3] = ["build-essential", "pkg-config", "libtss2-dev"];

fn script() -> String {
    format!("{}/build/deps.sh", env!("CARGO_MANIFEST_DIR"))
}

/// A directory `nobody` can read.
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// An empty dpkg database: nothing is installed there.
fn empty_dpkg() -> tempfile::TempDir {
    let dir = open_dir();
    std::fs::create_dir(dir.path().join("info")).unwrap();
    std::fs::write(dir.path().join("status"), "").unwrap();
    dir
}

/// `build/deps.sh ARGS` as `nobody`, with a PATH that holds no cargo, on `admindir`.
fn as_nobody(args: &[&str], admindir: &Path) -> (Option<i32>, String) {
    let setpriv = support::find_binary("setpriv", "util-linux");
    let out = Command::new(setpriv)
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(script())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DPKG_ADMINDIR", admindir)
        .output()
        .unwrap();
    said(out)
}

fn said(out: Output) -> (Option<i32>, String) {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// The packages the listing says are missing, from its apt command line.
fn listed(text: &str) -> Vec<String> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("apt-get install --no-install-recommends "))
        .unwrap_or_else(|| panic!("no apt command in:\n{text}"));
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn a_user_who_cannot_install_gets_the_build_set_alone_and_how_to_install_it() {
    let dpkg = empty_dpkg();
    for args in [&["build"][..], &["--check", "build"], &["--check", "run"]] {
        let (code, text) = as_nobody(args, dpkg.path());
        assert_eq!(code, Some(1), "{args:?}: {text}");
        assert_eq!(listed(&text), BUILD, "{args:?}: {text}");
        for p in TEST_ONLY {
            assert!(!text.contains(p), "{args:?} mentions {p}:\n{text}");
        }
        assert!(!text.contains("installing"), "{args:?} tried to install as nobody:\n{text}");
        // nobody's PATH has no cargo: the way to Rust is named.
        assert!(text.contains("cargo not found") && text.contains("https://rustup.rs"), "{args:?}: {text}");
    }
    let (_, run) = as_nobody(&["run"], dpkg.path());
    assert!(run.contains("optional for make run: docker.io"), "{run}");
}

#[test]
fn the_test_set_holds_everything_the_tests_start() {
    let dpkg = empty_dpkg();
    let (code, text) = as_nobody(&["--check", "test"], dpkg.path());
    assert_eq!(code, Some(1), "{text}");
    let listed = listed(&text);
    for p in TEST_ONLY.iter().chain(BUILD.iter()) {
        assert!(listed.iter().any(|l| l == p), "the test set lacks {p}: {listed:?}");
    }
    // The default set is the test set, as `make deps` has always installed it.
    let (_, default) = as_nobody(&["--check"], dpkg.path());
    assert_eq!(self::listed(&default), listed);
}

/// Rust comes from rustup: a cargo older than the crate's rust-version is refused.
/// The old toolchain is a stand-in (a script printing Debian 12's version), since only
/// one toolchain is installed here.
#[test]
fn rust_older_than_the_crate_needs_is_refused_with_the_way_to_rustup() {
    let bin = open_dir();
    let cargo = bin.path().join("cargo");
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.path().display());
    let check = |version: &str| {
        std::fs::write(&cargo, format!("#!/bin/sh\necho 'cargo {version} (stand-in)'\n")).unwrap();
        std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
        said(Command::new(script()).args(["--check", "build"]).env("PATH", &path).output().unwrap())
    };
    let needed = env!("CARGO_PKG_RUST_VERSION");
    let (code, text) = check("1.63.0");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("cargo 1.63.0 is older than {needed}")) && text.contains("https://rustup.rs"),
        "{text}"
    );
    // This machine has the build set: with a new enough cargo nothing is missing.
    let (code, text) = check(&format!("{needed}.0"));
    assert_eq!((code, text.as_str()), (Some(0), ""));
}
