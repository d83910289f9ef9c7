//! `bootgate boot-status --disk IMAGE` on disk images made with sgdisk and cgpt:
//! no root, no loop device.

mod support;

use std::path::Path;
use std::process::Command;

const USR: &str = "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6";

fn tool(name: &str, package: &str, args: &[&str]) {
    let bin = support::find_binary(name, package);
    let out = Command::new(&bin).args(args).output().unwrap();
    assert!(out.status.success(), "{name} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn ab_image(dir: &Path) -> String {
    let img = dir.join("disk.img");
    std::fs::File::create(&img).unwrap().set_len(8 << 20).unwrap();
    let img = img.to_str().unwrap().to_string();
    let usr_a = format!("1:{USR}");
    let usr_b = format!("2:{USR}");
    tool(
        "sgdisk",
        "gdisk",
        &[
            "-o",
            "-n",
            "1:2048:+2M",
            "-t",
            &usr_a,
            "-c",
            "1:USR-A",
            "-n",
            "2:0:+2M",
            "-t",
            &usr_b,
            "-c",
            "2:USR-B",
            &img,
        ],
    );
    tool("cgpt", "cgpt", &["add", "-i", "1", "-P", "1", "-T", "0", "-S", "1", &img]);
    tool("cgpt", "cgpt", &["add", "-i", "2", "-P", "2", "-T", "1", "-S", "0", &img]);
    img
}

fn boot_status(args: &[&str]) -> std::process::Output {
    support::bootgate(&[&["boot-status"], args].concat())
}

#[test]
fn reads_every_slot_of_an_image_file() {
    let dir = tempfile::tempdir().unwrap();
    let img = ab_image(dir.path());
    let out = boot_status(&["--disk", &img, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["booted"], serde_json::Value::Null);
    let parts = v["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    let want = [("USR-A", 1, 0, true), ("USR-B", 2, 1, false)];
    for (p, (label, priority, tries, successful)) in parts.iter().zip(want) {
        assert_eq!(p["label"], label);
        assert_eq!(p["type"], USR);
        assert_eq!(p["priority"], priority, "{p}");
        assert_eq!(p["tries"], tries, "{p}");
        assert_eq!(p["successful"], successful, "{p}");
        for key in ["index", "uuid"] {
            assert!(p.get(key).is_some(), "{key} missing in {p}");
        }
    }
    let text = boot_status(&["--disk", &img]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("USR-A") && text.contains("USR-B"), "{text}");
}

/// `next` and the text's `next boot:` line as gptprio (and cgpt) choose: the highest
/// priority with tries left or successful, a tie to the lower index, priority 0 never.
#[test]
fn says_which_slot_boots_next() {
    let dir = tempfile::tempdir().unwrap();
    let img = ab_image(dir.path());
    let next = || {
        let json = boot_status(&["--disk", &img, "--format", "json"]);
        assert_eq!(json.status.code(), Some(0), "{}", String::from_utf8_lossy(&json.stderr));
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let text = String::from_utf8_lossy(&boot_status(&["--disk", &img]).stdout).into_owned();
        let line = text.lines().find(|l| l.starts_with("next boot: ")).unwrap_or_else(|| panic!("{text}")).to_string();
        (v["next"].clone(), v["next_by"].as_str().unwrap_or_default().to_string(), line)
    };
    // USR-B was just updated: priority 2 with its one try.
    let (index, by, line) = next();
    assert_eq!(index, 2);
    assert!(by.starts_with("gptprio"), "{by}");
    assert!(line.starts_with("next boot: 2 (USR-B), by gptprio"), "{line}");
    // Its try used up without being marked: back to USR-A, which is successful.
    tool("cgpt", "cgpt", &["add", "-i", "2", "-T", "0", &img]);
    let (index, _, line) = next();
    assert_eq!(index, 1);
    assert!(line.starts_with("next boot: 1 (USR-A), by gptprio"), "{line}");
    // Both good at the same priority: the lower index.
    tool("cgpt", "cgpt", &["add", "-i", "2", "-P", "1", "-S", "1", &img]);
    assert_eq!(next().0, 1);
    // Priority 0 everywhere: nothing boots, and it says so.
    tool("cgpt", "cgpt", &["add", "-i", "1", "-P", "0", &img]);
    tool("cgpt", "cgpt", &["add", "-i", "2", "-P", "0", &img]);
    let (index, by, line) = next();
    assert_eq!(index, serde_json::Value::Null);
    assert!(by.starts_with("none") && line == format!("next boot: {by}"), "{by} / {line}");
}

#[test]
fn a_file_without_gpt_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.img");
    std::fs::write(&junk, vec![0x5a; 1 << 16]).unwrap();
    let out = boot_status(&["--disk", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(66));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a GPT disk"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
