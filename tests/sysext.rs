//! The Flatcar sysext image survives OS updates: it carries every shared library its
//! binary needs beyond glibc, proven by running it, against a software TPM, in a root
//! that holds glibc and nothing else. The roots need namespaces, so these tests run as root,
//! as `make test` does; nothing here skips.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::sysext::{self, GLIBC, LIBDIR};
use support::{BIN, Swtpm, find_binary, message, result, run_bounded};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The dlopened modules that must come from the image: no NEEDED entry names them.
const TCTIS: [&str; 3] = ["libtss2-tcti-device.so.0", "libtss2-tcti-swtpm.so.0", "libtss2-tcti-mssim.so.0"];
const TOOL_TIMEOUT: Duration = Duration::from_secs(300);

fn sha256(path: &Path) -> String {
    let out = run_bounded(Command::new(find_binary("sha256sum", "coreutils")).arg(path), TOOL_TIMEOUT);
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
    assert!(needed.contains("libtss2-esys.so.0"), "{needed:?}");
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
        run_bounded(Command::new(patchelf).args(["--add-needed", "libbootgate-absent.so.9"]).arg(&bin), TOOL_TIMEOUT);
    assert!(out.status.success(), "patchelf: {}", sysext::text(&out));

    let outdir = dir.path().join("out");
    let out = sysext::build(&outdir, &bin);
    let text = sysext::text(&out);
    assert!(!out.status.success(), "the build passed without libbootgate-absent.so.9:\n{text}");
    assert!(text.contains("needs libbootgate-absent.so.9, which is not installed here"), "{text}");
    assert!(!outdir.join(format!("bootgate-{VERSION}-x86-64.raw")).exists(), "an image was written anyway");
}
