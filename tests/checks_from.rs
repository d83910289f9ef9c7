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

#[test]
fn greenboot_directories_run_concurrently_and_fail_the_gate_with_their_message() {
    let tmp = tempfile::tempdir().unwrap();
    let (required, wanted) = (tmp.path().join("required.d"), tmp.path().join("wanted.d"));
    std::fs::create_dir_all(&required).unwrap();
    std::fs::create_dir_all(&wanted).unwrap();
    script(&required, "00_ok.sh", "sleep 1", 0o755);
    script(&required, "10_repo.sh", "sleep 1; echo 'repository unreachable' >&2; exit 1", 0o755);
    script(&required, "README", "exit 1", 0o644);
    script(&wanted, "50_extra.sh", "sleep 1", 0o700);
    let policy = format!(
        "version: 1
checks:
  - {{name: root, kind: disk, path: /, min_free_percent: 0}}
checks_from:
  - {{dir: {}}}
  - {{dir: {}, critical: false}}
",
        required.display(),
        wanted.display()
    );
    let (code, v, took) = check(&policy);
    assert_eq!(code, 2, "{v:#}");
    assert!(took < Duration::from_millis(2500), "three 1 s scripts ran one after another: {took:?}");
    let names: Vec<&str> = v["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["root", "00_ok.sh", "10_repo.sh", "50_extra.sh"], "README is not executable: {v:#}");
    let by = |n: &str| v["checks"].as_array().unwrap().iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!((by("00_ok.sh")["result"].as_str(), by("00_ok.sh")["critical"].as_bool()), (Some("pass"), Some(true)));
    assert_eq!(by("50_extra.sh")["critical"], false);
    let repo = by("10_repo.sh");
    assert_eq!((repo["result"].as_str(), repo["attempts"].as_u64()), (Some("fail"), Some(1)), "{repo:#}");
    assert_eq!(repo["message"], "exit 1: repository unreachable");
    assert_eq!(v["failing"], serde_json::json!(["10_repo.sh"]));
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
