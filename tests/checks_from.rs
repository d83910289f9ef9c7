//! `checks_from:`: greenboot's check directories as exec checks, on real scripts.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use support::{bootgate, check};

fn script(dir: &Path, name: &str, body: &str, mode: u32) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The literal check of the greenboot migration: a policy of `checks_from` alone, two
/// required scripts (one failing with a message), a wanted one and a file that is neither
/// executable nor `*.sh`, exits 2 in under 2.5 s naming all three and the message.
#[test]
fn a_checks_from_policy_alone_fails_the_gate_naming_the_failure_and_the_file_that_cannot_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (required, wanted) = (tmp.path().join("required.d"), tmp.path().join("wanted.d"));
    std::fs::create_dir_all(&required).unwrap();
    std::fs::create_dir_all(&wanted).unwrap();
    // Mode 644 as greenboot ships them: `*.sh` runs through bash whatever its mode.
    script(&required, "00_ok.sh", "sleep 1; for m in /proc/mounts /proc/self/status; do test -r \"$m\"; done", 0o644);
    script(
        &required,
        "10_repo.sh",
        "sleep 1; n=0; for r in a b c; do n=$((n + 1)); done; echo \"repository unreachable after $n tries\" >&2; exit 1",
        0o755,
    );
    script(&required, "README", "exit 0", 0o644);
    script(&wanted, "50_extra.sh", "sleep 1; echo extra-ok", 0o600);
    let policy = format!(
        "version: 1
checks_from:
  - {{dir: {}}}
  - {{dir: {}, critical: false}}
",
        required.display(),
        wanted.display()
    );
    let (code, v, took) = check(&policy);
    assert_eq!(code, 2, "{v:#}");
    // Generous for a busy machine, yet below the three 1 s scripts run one after another.
    assert!(took < Duration::from_millis(2500), "three 1 s scripts ran one after another: {took:?}");
    let names: Vec<&str> = v["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["00_ok.sh", "10_repo.sh", "README", "50_extra.sh"], "{v:#}");
    let by = |n: &str| v["checks"].as_array().unwrap().iter().find(|c| c["name"] == n).unwrap().clone();
    let ok = by("00_ok.sh");
    assert_eq!((ok["result"].as_str(), ok["critical"].as_bool()), (Some("pass"), Some(true)), "{ok:#}");
    assert_eq!(ok["observed"]["command"], format!("bash {}", required.join("00_ok.sh").display()));
    let extra = by("50_extra.sh");
    assert_eq!((extra["result"].as_str(), extra["critical"].as_bool()), (Some("pass"), Some(false)), "{extra:#}");
    assert_eq!(extra["message"], "exit 0: extra-ok");
    let repo = by("10_repo.sh");
    assert_eq!((repo["result"].as_str(), repo["attempts"].as_u64()), (Some("fail"), Some(1)), "{repo:#}");
    assert_eq!(repo["message"], "exit 1: repository unreachable after 3 tries");
    let readme = by("README");
    assert_eq!((readme["result"].as_str(), readme["critical"].as_bool()), (Some("fail"), Some(true)));
    let why = readme["message"].as_str().unwrap();
    assert!(why.contains("README cannot run: not executable, and not a `*.sh` script"), "{why}");
    assert_eq!(v["failing"], serde_json::json!(["10_repo.sh", "README"]));

    // The table a person reads names the same three things.
    let path = tmp.path().join("policy.yaml");
    std::fs::write(&path, &policy).unwrap();
    let out = bootgate(&["check", "--policy", &path.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    for said in ["10_repo.sh", "repository unreachable after 3 tries", "README", "not executable"] {
        assert!(text.contains(said), "`{said}` missing from:\n{text}");
    }
}

/// Directories that hold nothing give a gate that would pass anything: refused, by
/// `validate` and by `check`, with the place in the policy.
#[test]
fn a_checks_from_policy_whose_directories_are_empty_fails_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let (required, wanted) = (tmp.path().join("required.d"), tmp.path().join("wanted.d"));
    std::fs::create_dir_all(&required).unwrap();
    std::fs::create_dir_all(&wanted).unwrap();
    let path = tmp.path().join("policy.yaml");
    let policy = format!(
        "version: 1\nchecks_from:\n  - {{dir: {}}}\n  - {{dir: {}, critical: false}}\n",
        required.display(),
        wanted.display()
    );
    for text in [policy.clone(), format!("{policy}checks: []\n")] {
        std::fs::write(&path, &text).unwrap();
        for command in ["validate", "check"] {
            let out = bootgate(&[command, "--policy", &path.to_string_lossy()]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(78), "{command}: {stderr}");
            assert!(
                stderr.contains("policy.yaml:3:") && stderr.contains("no checks: an empty gate would pass anything"),
                "{command}: {stderr}"
            );
        }
    }
    // One file in a directory is enough.
    script(&wanted, "50_extra.sh", "exit 0", 0o644);
    std::fs::write(&path, &policy).unwrap();
    let out = bootgate(&["validate", &path.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_missing_directory_or_a_clashing_name_is_a_located_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("required.d");
    std::fs::create_dir_all(&dir).unwrap();
    script(&dir, "root", "exit 0", 0o755);
    script(&dir, "bad name.sh", "exit 0", 0o755);
    let path = tmp.path().join("policy.yaml");
    let missing = tmp.path().join("gone.d");
    std::fs::write(
        &path,
        format!(
            "version: 1\nchecks:\n  - {{name: root, kind: disk, path: /}}\nchecks_from:\n  - dir: {}\n  - dir: {}\n",
            dir.display(),
            missing.display()
        ),
    )
    .unwrap();
    let out = bootgate(&["validate", &path.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(":5:") && stderr.contains("`bad name.sh`") && stderr.contains("cannot be a check name"),
        "{stderr}"
    );
    assert!(stderr.contains("`root`") && stderr.contains("has the name of another check"), "{stderr}");
    assert!(stderr.contains(":6:") && stderr.contains("checks_from[1].dir: cannot read the directory"), "{stderr}");
}
