//! The Flatcar provisioning files: `build/flatcar/bootgate.ign` is the same config as
//! `build/flatcar/bootgate.bu` in Ignition JSON (with the default policy inline), and
//! Debian's `ignition-validate` accepts it. (tests/readme.rs checks that the docs show
//! the Butane config word for word.)

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ignition_validate(path: &Path) -> std::process::Output {
    Command::new("ignition-validate").arg(path).output().unwrap_or_else(|e| {
        panic!("cannot run ignition-validate ({e}): install the Debian package `ignition` (build/deps.sh does)")
    })
}

#[test]
fn the_ignition_config_validates_and_matches_the_butane_one() {
    let ign_path = repo().join("build/flatcar/bootgate.ign");
    let out = ignition_validate(&ign_path);
    assert!(
        out.status.success(),
        "ignition-validate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The validator really looks: a mode given as text is refused.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&ign_path).unwrap();
    let broken: PathBuf = dir.path().join("broken.ign");
    std::fs::write(&broken, text.replacen("\"mode\": 420", "\"mode\": \"0644\"", 1)).unwrap();
    assert!(!ignition_validate(&broken).status.success(), "ignition-validate accepted a broken config");

    let ign: Value = serde_json::from_str(&text).unwrap();
    let bu: Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("build/flatcar/bootgate.bu")).unwrap()).unwrap();
    assert_eq!(bu["variant"], "flatcar");
    assert_eq!(bu["version"], "1.0.0");
    // Butane's flatcar 1.0.0 variant produces Ignition 3.3.0.
    assert_eq!(ign["ignition"]["version"], "3.3.0");
    assert_eq!(ign["systemd"], bu["systemd"]);
    assert_eq!(ign["storage"]["links"], bu["storage"]["links"]);
    let (ign_files, bu_files) =
        (ign["storage"]["files"].as_array().unwrap(), bu["storage"]["files"].as_array().unwrap());
    assert_eq!(ign_files.len(), bu_files.len());
    for (i, b) in ign_files.iter().zip(bu_files) {
        assert_eq!(i["path"], b["path"]);
        // Butane reads `0644` as octal (YAML 1.1); Ignition takes the decimal 420.
        let octal = match &b["mode"] {
            Value::String(s) => i64::from_str_radix(s, 8).unwrap(),
            other => panic!("{}: mode {other} is not written in octal", b["path"]),
        };
        assert_eq!(i["mode"], octal, "{}", b["path"]);
        match b["contents"].get("local") {
            // Butane inlines the operator's policy; the Ignition example inlines the default one.
            Some(_) => {
                let source = i["contents"]["source"].as_str().unwrap();
                let data = source.strip_prefix("data:,").expect("the policy is inline");
                let default = std::fs::read_to_string(repo().join("policy/default.yaml")).unwrap();
                assert_eq!(percent_decode(data), default);
            }
            None => assert_eq!(i["contents"], b["contents"]),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
