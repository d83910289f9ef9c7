//! The Flatcar sysext image survives OS updates: it carries every shared library its
//! binary needs beyond glibc (proven by running it, against a software TPM, in a root
//! that holds glibc and nothing else), and a release directory of it serves what
//! systemd-sysupdate fetches. The roots need namespaces, so these tests run as root,
//! as `make test` does; nothing here skips.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::sysext::{self, GLIBC, LIBDIR, Release};
use support::{BIN, Swtpm, find_binary, message, result, run_bounded};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The dlopened modules that must come from the image: no NEEDED entry names them.
const TCTIS: [&str; 3] = ["libtss2-tcti-device.so.0", "libtss2-tcti-swtpm.so.0", "libtss2-tcti-mssim.so.0"];
const PULL_TIMEOUT: Duration = Duration::from_secs(300);

fn sha256(path: &Path) -> String {
    let out = run_bounded(Command::new(find_binary("sha256sum", "coreutils")).arg(path), PULL_TIMEOUT);
    assert!(out.status.success(), "sha256sum {}: {}", path.display(), sysext::text(&out));
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// Every file name below `dir`, for proving what a root does not hold.
fn names_below(dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            names_below(&path, out);
        } else {
            out.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
}

#[test]
fn the_image_carries_every_library_beyond_glibc() {
    let before = sha256(Path::new(BIN));
    let (_, host_runpath) = sysext::dynamic(Path::new(BIN));
    let out = tempfile::tempdir().unwrap();
    let image = sysext::build_ok(out.path(), Path::new(BIN));
    assert_eq!(sha256(Path::new(BIN)), before, "build/sysext.sh modified its input binary");
    assert_eq!(host_runpath, None, "the input binary already had a run path");

    let root = tempfile::tempdir().unwrap();
    sysext::unpack(&image, root.path());
    let libdir = root.path().join(LIBDIR);
    let carried: BTreeSet<String> = fs::read_dir(&libdir)
        .unwrap_or_else(|e| panic!("the image has no {LIBDIR}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    println!("carried: {carried:?}");
    let glibc: BTreeSet<String> = GLIBC.iter().map(|s| s.to_string()).collect();
    assert!(carried.is_disjoint(&glibc), "glibc is the host's, yet the image carries {carried:?}");
    for name in TCTIS.iter().chain(&["libtss2-esys.so.0", "libtss2-tctildr.so.0", "libcrypto.so.3"]) {
        assert!(carried.contains(*name), "{name} missing from {LIBDIR}: {carried:?}");
    }

    let bin = root.path().join("usr/bin/bootgate");
    let (needed, runpath) = sysext::dynamic(&bin);
    assert_eq!(runpath.as_deref(), Some("$ORIGIN/../lib/bootgate"), "the image's binary");
    for name in &needed {
        assert!(glibc.contains(name) || carried.contains(name), "usr/bin/bootgate needs {name}, not in the image");
    }
    // The TSS libraries are opened when a TPM check runs, never at start.
    assert!(!needed.iter().any(|n| n.starts_with("libtss2") || n.starts_with("libcrypto")), "{needed:?}");
    // A dlopened TCTI resolves through the run path of libtss2-tctildr, so every
    // carried library points at its own directory, and needs nothing else either.
    for name in &carried {
        let (needed, runpath) = sysext::dynamic(&libdir.join(name));
        assert_eq!(runpath.as_deref(), Some("$ORIGIN"), "{name}");
        for dep in &needed {
            assert!(glibc.contains(dep) || carried.contains(dep), "{name} needs {dep}, not in the image");
        }
    }
}

#[test]
fn its_binary_reaches_a_tpm_in_a_root_without_tss_or_crypto_libraries() {
    let out = tempfile::tempdir().unwrap();
    let image = sysext::build_ok(out.path(), Path::new(BIN));
    let root = sysext::glibc_root();
    let mut names = Vec::new();
    names_below(root.path(), &mut names);
    let foreign: Vec<&String> =
        names.iter().filter(|n| ["libtss2", "libcrypto", "libgcc_s"].iter().any(|p| n.starts_with(p))).collect();
    assert!(foreign.is_empty(), "the glibc root holds {foreign:?}");
    sysext::unpack(&image, root.path());
    let r = root.path();

    let version = sysext::run_in(r, &["/usr/bin/bootgate", "--version"]);
    assert!(version.status.success(), "bootgate --version in the root: {}", sysext::text(&version));
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("bootgate {VERSION}"));

    let tpm = Swtpm::start();
    let policy = format!(
        "version: 1\nchecks:\n  - {{name: tpm, kind: tpm, tcti: '{}', retries: 0, pcrs: {{sha256: [0, 7]}}}}\n",
        tpm.tcti()
    );
    fs::write(r.join("policy.yaml"), policy).unwrap();
    let check = || -> (Output, Value) {
        let out = sysext::run_in(r, &["/usr/bin/bootgate", "check", "--policy", "/policy.yaml", "--format", "json"]);
        let verdict = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON verdict ({e}): {}", sysext::text(&out)));
        (out, verdict)
    };
    // libtss2-esys, libcrypto and the dlopened swtpm TCTI can only come from the image.
    let (out, v) = check();
    assert_eq!(out.status.code(), Some(0), "{v:#}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(result(&v, "tpm")["result"], "pass", "{v:#}");
    assert_eq!(result(&v, "tpm")["observed"]["manufacturer"], tpm.manufacturer().as_str(), "{v:#}");
    assert_eq!(result(&v, "tpm")["observed"]["pcr_sha256_7"], tpm.pcr_sha256(7).as_str(), "{v:#}");

    // Without the image's TCTI module the root has none: the same check fails.
    fs::remove_file(r.join(LIBDIR).join("libtss2-tcti-swtpm.so.0")).unwrap();
    let (out, v) = check();
    assert_eq!(out.status.code(), Some(2), "{v:#}");
    assert!(message(&v, "tpm").contains("TCTI not supported"), "{v:#}");

    // Without the TSS libraries (opened only for a TPM check) the binary still starts
    // and still judges; the TPM check says what is missing.
    fs::remove_file(r.join(LIBDIR).join("libtss2-tctildr.so.0")).unwrap();
    let version = sysext::run_in(r, &["/usr/bin/bootgate", "--version"]);
    assert!(version.status.success(), "bootgate --version without the TSS: {}", sysext::text(&version));
    let (out, v) = check();
    assert_eq!(out.status.code(), Some(2), "{v:#}");
    let msg = message(&v, "tpm");
    assert!(
        msg.contains("the TPM software stack (tpm2-tss) is not installed: cannot load libtss2-tctildr.so.0"),
        "{msg}"
    );

    // The input binary, which has no run path, cannot start there at all.
    fs::copy(BIN, r.join("usr/bin/bootgate-unpatched")).unwrap();
    let unpatched = sysext::run_in(r, &["/usr/bin/bootgate-unpatched", "--version"]);
    assert!(!unpatched.status.success(), "the unpatched binary started: {}", sysext::text(&unpatched));
    assert!(sysext::text(&unpatched).contains("error while loading shared libraries"), "{}", sysext::text(&unpatched));

    // Nor can the image's binary once its library directory is gone.
    fs::remove_dir_all(r.join(LIBDIR)).unwrap();
    let bare = sysext::run_in(r, &["/usr/bin/bootgate", "--version"]);
    assert!(!bare.status.success(), "bootgate started without {LIBDIR}: {}", sysext::text(&bare));
    assert!(sysext::text(&bare).contains("error while loading shared libraries"), "{}", sysext::text(&bare));
}

#[test]
fn a_library_that_cannot_be_found_fails_the_build_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bootgate");
    fs::copy(BIN, &bin).unwrap();
    let patchelf = find_binary("patchelf", "patchelf");
    let out =
        run_bounded(Command::new(patchelf).args(["--add-needed", "libbootgate-absent.so.9"]).arg(&bin), PULL_TIMEOUT);
    assert!(out.status.success(), "patchelf: {}", sysext::text(&out));

    let outdir = dir.path().join("out");
    let out = sysext::build(&outdir, &bin);
    let text = sysext::text(&out);
    assert!(!out.status.success(), "the build passed without libbootgate-absent.so.9:\n{text}");
    assert!(text.contains("needs libbootgate-absent.so.9, which is not installed here"), "{text}");
    assert!(!outdir.join(format!("bootgate-{VERSION}-x86-64.raw")).exists(), "an image was written anyway");
}

/// The `key=value` lines of one `[section]` of an INI file such as a transfer file.
fn section<'a>(ini: &'a str, name: &str) -> Vec<(&'a str, &'a str)> {
    let header = format!("[{name}]");
    ini.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect()
}

fn key<'a>(pairs: &[(&'a str, &'a str)], name: &str) -> &'a str {
    pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("no {name}= in {pairs:?}"))
}

fn systemd_pull() -> PathBuf {
    ["/usr/lib/systemd/systemd-pull", "/lib/systemd/systemd-pull"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("no systemd-pull: install the Debian package `systemd-container` (build/deps.sh does)")
}

/// `systemd-pull raw --direct --verify=HASH|no --sync=no URL PATH`: the call
/// systemd-sysupdate makes for a url-file source (the manifest with no
/// signature when Verify=false, each image with its SHA256SUMS hash).
fn pull(url: &str, verify: &str, to: &Path) -> Output {
    let mut cmd = Command::new(systemd_pull());
    cmd.args(["raw", "--direct", &format!("--verify={verify}"), "--sync=no", url]).arg(to);
    run_bounded(&mut cmd, PULL_TIMEOUT)
}

/// Debian 12's systemd (252) is built without systemd-sysupdate: no Debian package
/// ships the binary, so `list` and `update` cannot run here. What it does for this
/// transfer runs instead, with the real tool it delegates every download to:
/// systemd-pull fetches SHA256SUMS, the newest name matching the source's
/// MatchPattern is chosen (sysupdate's own step, done here), and systemd-pull
/// fetches that image with the hash SHA256SUMS gives, refusing a tampered one.
/// What it cannot show: sysupdate parsing the file and setting CurrentSymlink=.
#[test]
fn a_release_directory_serves_what_sysupdate_fetches() {
    let out = tempfile::tempdir().unwrap();
    let image = sysext::build_ok(out.path(), Path::new(BIN));
    let image_name = image.file_name().unwrap().to_string_lossy().into_owned();

    // The checksums cover the directory's files, as sha256sum itself checks them.
    let sums = fs::read_to_string(out.path().join("SHA256SUMS"))
        .unwrap_or_else(|e| panic!("no SHA256SUMS beside the image: {e}"));
    let check = run_bounded(
        Command::new(find_binary("sha256sum", "coreutils"))
            .args(["--check", "--strict", "SHA256SUMS"])
            .current_dir(out.path()),
        PULL_TIMEOUT,
    );
    assert!(check.status.success(), "sha256sum --check: {}", sysext::text(&check));
    let listed: BTreeSet<&str> = sums.lines().filter_map(|l| l.split_once("  ").map(|(_, n)| n)).collect();
    assert_eq!(listed, BTreeSet::from(["bootgate.conf", image_name.as_str()]), "{sums}");

    // The transfer file as shipped: the URL is a placeholder the operator must set.
    let transfer = fs::read_to_string(out.path().join("bootgate.conf"))
        .unwrap_or_else(|e| panic!("no transfer file beside the image: {e}"));
    assert_eq!(
        transfer,
        fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("build/flatcar/sysupdate.bootgate.d/bootgate.conf")
        )
        .unwrap()
    );
    let source = section(&transfer, "Source");
    let target = section(&transfer, "Target");
    assert_eq!(key(&section(&transfer, "Transfer"), "Verify"), "false");
    assert_eq!(key(&source, "Type"), "url-file");
    assert!(key(&source, "Path").contains(".invalid/"), "the release URL is no placeholder: {transfer}");
    assert_eq!(key(&target, "Type"), "regular-file");
    assert_eq!(key(&target, "Path"), "/opt/extensions/bootgate");
    assert_eq!(
        key(&target, "CurrentSymlink"),
        "/etc/extensions/bootgate.raw",
        "systemd-sysext names the extension by the link"
    );
    assert_eq!(key(&target, "MatchPattern"), key(&source, "MatchPattern"));
    let (prefix, suffix) = key(&source, "MatchPattern").split_once("@v").expect("MatchPattern= without @v");

    let release = Release::serve(out.path());
    let work = tempfile::tempdir().unwrap();
    let manifest = work.path().join("SHA256SUMS");
    let got = pull(&format!("{}SHA256SUMS", release.url()), "no", &manifest);
    assert!(got.status.success(), "systemd-pull SHA256SUMS: {}", sysext::text(&got));
    let manifest = fs::read_to_string(&manifest).unwrap();
    let offered: Vec<(&str, &str)> = manifest
        .lines()
        .filter_map(|l| l.split_once("  "))
        .filter_map(|(hash, name)| Some((hash, name.strip_prefix(prefix)?.strip_suffix(suffix)?)))
        .collect();
    assert_eq!(offered.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [VERSION], "versions offered:\n{manifest}");
    let (hash, version) = offered[0];

    let fetched = work.path().join(format!("{prefix}{version}{suffix}"));
    let got = pull(&format!("{}{prefix}{version}{suffix}", release.url()), hash, &fetched);
    assert!(got.status.success(), "systemd-pull of the image: {}", sysext::text(&got));
    assert!(fs::read(&fetched).unwrap() == fs::read(&image).unwrap(), "the fetched image differs");

    // A release whose image does not match its SHA256SUMS is refused.
    let tampered = tempfile::tempdir().unwrap();
    fs::copy(out.path().join("SHA256SUMS"), tampered.path().join("SHA256SUMS")).unwrap();
    let mut bytes = fs::read(&image).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(tampered.path().join(&image_name), bytes).unwrap();
    let bad = Release::serve(tampered.path());
    let got = pull(&format!("{}{image_name}", bad.url()), hash, &work.path().join("tampered.raw"));
    assert!(!got.status.success(), "systemd-pull accepted a tampered image: {}", sysext::text(&got));
    assert!(sysext::text(&got).contains("did not check out"), "{}", sysext::text(&got));
}
