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
