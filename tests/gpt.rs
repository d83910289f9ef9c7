//! The GPT reader and boot detection against disk images made by sgdisk and cgpt.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use bootgate::boot::{self, decide, decide::RebootDecision, gpt};

const USR: &str = decide::FLATCAR_USR_TYPE;
const ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
const LINUX: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";

/// Runs a tool the test depends on; a missing tool fails the test, it never skips it.
fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{tool}` ({e}): these tests need sgdisk (gdisk) and cgpt installed"));
    let what = format!("`{tool} {}`", args.join(" "));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs `tool ARGS IMG`, with ARGS split on spaces.
fn on(img: &Path, tool: &str, args: &str) -> String {
    let mut argv: Vec<&str> = args.split_whitespace().collect();
    argv.push(img.to_str().expect("utf-8 temp path"));
    run(tool, &argv)
}

/// An 8 MiB image laid out like Flatcar: EFI-SYSTEM 1, USR-A 3, USR-B 4, ROOT 9.
fn image(dir: &Path) -> PathBuf {
    let img = dir.join("disk.img");
    fs::File::create(&img).unwrap().set_len(8 << 20).unwrap();
    let mut args = String::from("-o");
    for (i, ty, label) in [(1, ESP, "EFI-SYSTEM"), (3, USR, "USR-A"), (4, USR, "USR-B"), (9, LINUX, "ROOT")] {
        let start = if i == 1 { 2048 } else { 0 };
        args += &format!(" -n {i}:{start}:+1M -t {i}:{ty} -c {i}:{label}");
    }
    on(&img, "sgdisk", &args);
    img
}

fn cgpt_show(img: &Path, index: u32, field: &str) -> String {
    on(img, "cgpt", &format!("show -i {index} {field}"))
}

fn cgpt_set(img: &Path, index: u32, p: u8, t: u8, s: u8) {
    on(img, "cgpt", &format!("add -i {index} -P {p} -T {t} -S {s}"));
}

fn part(table: &gpt::Gpt, index: u32) -> &gpt::Partition {
    table.partitions.iter().find(|p| p.index == index).expect("partition present")
}

fn patch(img: &Path, offset: usize, bytes: &[u8]) {
    let mut data = fs::read(img).unwrap();
    data[offset..offset + bytes.len()].copy_from_slice(bytes);
    fs::write(img, data).unwrap();
}

#[test]
fn every_attribute_combination_decodes_like_cgpt() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let values = [0u8, 1, 2, 4, 8, 15];
    for p in values {
        for t in values {
            for s in [0u8, 1] {
                // The neighbour gets the complement, so a bit leaking across entries shows.
                cgpt_set(&img, 4, p, t, s);
                cgpt_set(&img, 3, 15 - p, 15 - t, 1 - s);
                let table = gpt::read_path(&img).unwrap();
                assert!(!table.used_backup);
                for (index, want) in [(4, (p, t, s == 1)), (3, (15 - p, 15 - t, s == 0))] {
                    let got = part(&table, index);
                    assert_eq!((got.priority, got.tries, got.successful), want, "{index}");
                    assert_eq!(got.priority.to_string(), cgpt_show(&img, index, "-P"));
                    assert_eq!(got.tries.to_string(), cgpt_show(&img, index, "-T"));
                    assert_eq!(u8::from(got.successful).to_string(), cgpt_show(&img, index, "-S"));
                }
            }
        }
    }
}

#[test]
fn each_raw_attribute_bit_decodes_like_cgpt() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let raws = (0..16).map(|bit| 1u16 << bit).chain([0xffff, 0xfe00, 0]);
    for raw in raws {
        on(&img, "cgpt", &format!("add -i 4 -A {raw}"));
        let shown = cgpt_show(&img, 4, "-A");
        let shown = u16::from_str_radix(shown.trim_start_matches("0x"), 16).unwrap();
        let got = part(&gpt::read_path(&img).unwrap(), 4).clone();
        assert_eq!((got.attributes >> 48) as u16, shown, "raw {raw:#x}");
        assert_eq!(u64::from(got.priority), u64::from(raw) & 0xf, "raw {raw:#x}");
        assert_eq!(u64::from(got.tries), u64::from(raw >> 4) & 0xf, "raw {raw:#x}");
        assert_eq!(got.successful, raw & 0x100 != 0, "raw {raw:#x}");
    }
}

#[test]
fn identity_fields_match_cgpt() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let table = gpt::read_path(&img).unwrap();
    assert_eq!(table.sector_size, 512);
    let indices: Vec<u32> = table.partitions.iter().map(|p| p.index).collect();
    assert_eq!(indices, [1, 3, 4, 9]);
    for p in &table.partitions {
        assert_eq!(p.name, cgpt_show(&img, p.index, "-l"));
        assert_eq!(p.type_guid, cgpt_show(&img, p.index, "-t").to_lowercase());
        assert_eq!(p.unique_guid, cgpt_show(&img, p.index, "-u").to_lowercase());
        assert_eq!(p.first_lba.to_string(), cgpt_show(&img, p.index, "-b"));
        let size: u64 = cgpt_show(&img, p.index, "-s").parse().unwrap();
        assert_eq!(p.last_lba, p.first_lba + size - 1);
    }
    assert_eq!(part(&table, 3).type_guid, USR);
    assert_eq!(part(&table, 9).type_guid, LINUX);
    let disk = on(&img, "sgdisk", "-p");
    assert!(disk.to_lowercase().contains(&table.disk_guid), "{disk}");
}

#[test]
fn corrupt_primary_falls_back_to_backup() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    cgpt_set(&img, 4, 2, 1, 0);
    let pristine = fs::read(&img).unwrap();
    let expected = gpt::read_path(&img).unwrap().partitions;
    // Header field bytes, a zeroed signature sector, and a byte of the entry array.
    let damage: [(usize, Vec<u8>); 3] = [(512 + 40, vec![0xff; 8]), (512, vec![0; 512]), (1024 + 60, vec![0x41])];
    for (offset, bytes) in damage {
        fs::write(&img, &pristine).unwrap();
        patch(&img, offset, &bytes);
        let table = gpt::read_path(&img).unwrap();
        assert!(table.used_backup, "damage at {offset}");
        assert_eq!(table.partitions, expected, "damage at {offset}");
        let status = boot::read_image(&img).unwrap();
        assert!(status.note.unwrap().contains("backup"));
    }
}

/// A primary header whose entry array starts at LBA 0 or 1 (MBR or the header itself),
/// with every CRC valid, is refused; the backup is used instead.
#[test]
fn an_entry_array_over_the_headers_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for lba in [0u64, 1] {
        let img = image(dir.path());
        let good = gpt::read_path(&img).unwrap();
        let mut data = fs::read(&img).unwrap();
        let (count, size) = (u32::from_le_bytes(data[512 + 80..512 + 84].try_into().unwrap()), 128usize);
        data[512 + 72..512 + 80].copy_from_slice(&lba.to_le_bytes());
        let start = lba as usize * 512;
        let array_crc = crc32fast::hash(&data[start..start + count as usize * size]);
        data[512 + 88..512 + 92].copy_from_slice(&array_crc.to_le_bytes());
        data[512 + 16..512 + 20].fill(0);
        let crc = crc32fast::hash(&data[512..512 + 92]);
        data[512 + 16..512 + 20].copy_from_slice(&crc.to_le_bytes());
        fs::write(&img, &data).unwrap();
        let table = gpt::read_path(&img).unwrap();
        assert!(table.used_backup, "entry array at LBA {lba} accepted");
        assert_eq!(table.partitions, good.partitions);
        let last = data.len() - 512;
        patch(&img, last + 30, &[0xee]);
        let err = gpt::read_path(&img).unwrap_err().to_string();
        assert!(err.contains(&format!("entry array at LBA {lba} overlaps the GPT headers")), "{err}");
    }
}

#[test]
fn oversized_entry_array_is_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let mut data = fs::read(&img).unwrap();
    data[512 + 80..512 + 84].copy_from_slice(&u32::MAX.to_le_bytes());
    data[512 + 16..512 + 20].fill(0);
    let crc = crc32fast::hash(&data[512..512 + 92]);
    data[512 + 16..512 + 20].copy_from_slice(&crc.to_le_bytes());
    fs::write(&img, &data).unwrap();
    assert!(gpt::read_path(&img).unwrap().used_backup);
    let last = data.len() - 512;
    patch(&img, last + 30, &[0xee]);
    let err = gpt::read_path(&img).unwrap_err().to_string();
    assert!(err.starts_with("primary and backup GPT headers both corrupt"), "{err}");
    assert!(err.contains("too large"), "{err}");
}

#[test]
fn random_bytes_are_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("noise.img");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..(1 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(&img, &noise).unwrap();
    let err = gpt::read_path(&img).unwrap_err();
    assert!(matches!(err, gpt::GptError::NotGpt), "{err}");
    assert_eq!(err.to_string(), "not a GPT disk: no EFI PART signature at LBA 1 or backup");
    // A planted signature over noise is corrupt, not a panic.
    patch(&img, 512, b"EFI PART");
    let err = boot::read_image(&img).unwrap_err().to_string();
    assert!(err.starts_with("primary and backup GPT headers both corrupt"), "{err}");
    let missing = gpt::read_path(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(missing, gpt::GptError::Open { .. }), "{missing}");
}

#[test]
fn four_k_sector_disks_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    cgpt_set(&img, 3, 1, 0, 1);
    let small = fs::read(&img).unwrap();
    let expected = gpt::read_path(&img).unwrap().partitions;
    // Re-lay the same 128 x 128-byte entry array out on 4096-byte sectors.
    let (ss, len) = (4096usize, small.len());
    let array = &small[1024..1024 + 128 * 128];
    let last = (len / ss - 1) as u64;
    let mut big = vec![0u8; len];
    for (hdr_lba, alt, entries_lba) in [(1, last, 2u64), (last, 1, last - 4)] {
        let at = entries_lba as usize * ss;
        big[at..at + array.len()].copy_from_slice(array);
        let mut h = small[512..512 + 92].to_vec();
        for (off, v) in [(24, hdr_lba), (32, alt), (40, 6), (48, last - 5), (72, entries_lba)] {
            h[off..off + 8].copy_from_slice(&v.to_le_bytes());
        }
        h[16..20].fill(0);
        let crc = crc32fast::hash(&h);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        let at = hdr_lba as usize * ss;
        big[at..at + 92].copy_from_slice(&h);
    }
    let big_img = dir.path().join("4k.img");
    fs::write(&big_img, &big).unwrap();
    let table = gpt::read_path(&big_img).unwrap();
    assert_eq!((table.sector_size, table.used_backup), (4096, false));
    assert_eq!(table.partitions, expected);
    patch(&big_img, ss, &[0; 4096]);
    let table = gpt::read_path(&big_img).unwrap();
    assert_eq!((table.sector_size, table.used_backup), (4096, true));
    assert_eq!(table.partitions, expected);
}

#[test]
fn read_image_reports_slots_and_no_booted() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    cgpt_set(&img, 4, 2, 1, 0);
    let status = boot::read_image(&img).unwrap();
    assert_eq!((status.booted, status.note.as_deref()), (None, None));
    assert_eq!(status.disk.as_deref(), img.to_str());
    let json = serde_json::to_value(&status).unwrap();
    let b = &json["partitions"][2];
    assert_eq!((b["index"].as_u64(), b["label"].as_str()), (Some(4), Some("USR-B")));
    assert_eq!((b["type"].as_str(), b["priority"].as_u64()), (Some(USR), Some(2)));
    assert_eq!((b["tries"].as_u64(), b["successful"].as_bool()), (Some(1), Some(false)));
    assert!(json["booted"].is_null());
    let mut keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let documented = ["index", "label", "priority", "successful", "tries", "type", "uuid"];
    assert_eq!(keys, documented);
    assert!(status.text().contains("USR-B"));
}

/// A fake sysfs and /dev: disk vda (252:0) with partitions 3 and 4, dm-0 (253:0) on vda4.
fn fake_system(dir: &Path, disk_image: &Path) -> (PathBuf, PathBuf) {
    let devices = dir.join("sys/devices");
    let class = dir.join("sys/class/block");
    fs::create_dir_all(&class).unwrap();
    let nodes = [("vda", "vda", "252:0", None), ("vda/vda3", "vda3", "252:3", Some("3"))];
    let nodes =
        nodes.into_iter().chain([("vda/vda4", "vda4", "252:4", Some("4")), ("virtual/dm-0", "dm-0", "253:0", None)]);
    for (path, name, dev, partition) in nodes {
        let node = devices.join(path);
        fs::create_dir_all(&node).unwrap();
        fs::write(node.join("dev"), format!("{dev}\n")).unwrap();
        if let Some(n) = partition {
            fs::write(node.join("partition"), format!("{n}\n")).unwrap();
        }
        symlink(&node, class.join(name)).unwrap();
    }
    fs::create_dir(devices.join("virtual/dm-0/slaves")).unwrap();
    symlink(devices.join("vda/vda4"), devices.join("virtual/dm-0/slaves/vda4")).unwrap();
    let dev = dir.join("dev");
    fs::create_dir(&dev).unwrap();
    symlink(disk_image, dev.join("vda")).unwrap();
    (class, dev)
}

fn detect_with(dir: &Path, class: &Path, dev: &Path, mountinfo: &str) -> boot::BootStatus {
    let path = dir.join("mountinfo");
    fs::write(&path, mountinfo).unwrap();
    boot::detect_at(&path, class, dev)
}

#[test]
fn detect_finds_the_booted_partition_and_decides() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    // After a failed update: A confirmed, B got its one try and GRUB used it up.
    cgpt_set(&img, 3, 1, 0, 1);
    cgpt_set(&img, 4, 2, 0, 0);
    let (class, dev) = fake_system(dir.path(), &img);
    let root_only = "20 1 252:3 / / rw - ext4 /dev/vda3 rw\n";
    let status = detect_with(dir.path(), &class, &dev, root_only);
    assert_eq!((status.booted, status.note.as_deref()), (Some(3), None));
    assert_eq!(status.disk, Some(dev.join("vda").display().to_string()));
    assert_eq!(status.reboot_decision(), RebootDecision::StayConfirmed);
    // Flatcar mounts /usr from dm-verity over the USR partition.
    let verity = format!("{root_only}21 20 253:0 / /usr ro - ext4 /dev/mapper/usr ro\n");
    let status = detect_with(dir.path(), &class, &dev, &verity);
    assert_eq!(status.booted, Some(4), "{:?}", status.note);
    assert_eq!(status.booted_partition().unwrap().label, "USR-B");
    assert_eq!(status.reboot_decision(), RebootDecision::Reboot { fallback: 3 });
    let text = status.text();
    assert!(text.contains("booted: 4 (USR-B)") && text.contains("*  4 USR-B"), "{text}");
}

#[test]
fn detect_reports_non_ab_roots_without_error() {
    let dir = tempfile::tempdir().unwrap();
    let noise = dir.path().join("noise.img");
    fs::write(&noise, vec![0x5a; 1 << 20]).unwrap();
    let (class, dev) = fake_system(dir.path(), &noise);
    let cases = [
        ("1 0 0:30 / / rw - overlay overlay rw\n", "/ is overlay from overlay"),
        ("1 0 252:0 / / rw - ext4 /dev/vda rw\n", "/ is on vda, not a partition"),
        ("1 0 8:1 / / rw - ext4 /dev/sdz1 rw\n", "/ is on device 8:1 missing"),
        ("1 0 252:3 / / rw - ext4 /dev/vda3 rw\n", "vda has no GPT"),
        ("", "no / in mountinfo"),
    ];
    for (mountinfo, reason) in cases {
        let status = detect_with(dir.path(), &class, &dev, mountinfo);
        let note = status.note.clone().unwrap_or_default();
        assert!(note.starts_with("not an A/B system: "), "{note}");
        assert!(note.contains(reason), "{note}");
        assert_eq!(status.booted, None);
        assert_eq!(status.reboot_decision(), RebootDecision::NotAbSystem);
    }
    let missing = boot::detect_at(&dir.path().join("nope"), &class, &dev);
    assert!(missing.note.unwrap().starts_with("cannot read"));
}
