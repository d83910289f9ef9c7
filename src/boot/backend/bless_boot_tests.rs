//! bless-boot against entries on a temporary ESP and EFI variables in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::boot::backend::{RevertError, Reverted};

/// An EFI variable file as the kernel shows it: attributes (non-volatile, boot and
/// runtime access), then the UTF-16LE string and its NUL.
fn efivar(dir: &Path, name: &str, value: &str) {
    let mut raw = vec![0x07, 0, 0, 0];
    for unit in value.encode_utf16().chain([0]) {
        raw.extend_from_slice(&unit.to_le_bytes());
    }
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(format!("{name}-{LOADER_GUID}")), raw).unwrap();
}

fn touch(root: &Path, path: &str) {
    let file = root.join(path);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(file, "title test\n").unwrap();
}

/// A machine booted by systemd-boot from `counted` (an entry file name) on an ESP that
/// also holds `others`; systemd-bless-boot is not installed in it.
fn machine(counted: Option<&str>, others: &[&str]) -> (tempfile::TempDir, BlessBoot) {
    let dir = tempfile::tempdir().unwrap();
    let efivars = dir.path().join("efivars");
    let esp = dir.path().join("efi");
    fs::create_dir_all(&efivars).unwrap();
    if let Some(file) = counted {
        efivar(&efivars, "LoaderBootCountPath", &format!("\\loader\\entries\\{file}"));
        touch(&esp, &format!("loader/entries/{file}"));
    }
    for file in others {
        touch(&esp, file);
    }
    let mut b = BlessBoot::detect(&efivars, vec![dir.path().join("boot"), esp]).unwrap();
    b.tools = vec![dir.path().join("no-such-systemd-bless-boot")];
    (dir, b)
}

#[test]
fn entry_names_split_like_systemd_boot() {
    let e = |name: &str, left, done| Entry { name: name.into(), left, done };
    let cases = [
        ("a+3.conf", e("a.conf", Some(3), None)),
        ("a+2-1.conf", e("a.conf", Some(2), Some(1))),
        ("a+0-3.conf", e("a.conf", Some(0), Some(3))),
        ("a.conf", e("a.conf", None, None)),
        ("fedora+6.1+1-2.conf", e("fedora+6.1.conf", Some(1), Some(2))),
        ("linux+3-0.efi", e("linux.efi", Some(3), Some(0))),
        // Not a counter: the name is the whole file name.
        ("a+x.conf", e("a+x.conf", None, None)),
        ("a+1-.conf", e("a+1-.conf", None, None)),
        ("a+-1.conf", e("a+-1.conf", None, None)),
        ("a+.conf", e("a+.conf", None, None)),
    ];
    for (file, want) in cases {
        assert_eq!(Entry::parse(file), want, "{file}");
    }
    assert!(!Entry::parse("a+0-3.conf").bootable());
    assert!(Entry::parse("a+1-2.conf").bootable());
    assert!(Entry::parse("a.conf").bootable());
}

#[test]
fn efi_strings_are_utf16_after_the_attributes() {
    let mut raw = vec![0x06, 0, 0, 0];
    raw.extend("\\loader\\entries\\é+1.conf".encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
    assert_eq!(efi_string(&raw).as_deref(), Some("\\loader\\entries\\é+1.conf"));
    assert_eq!(efi_string(&[7, 0, 0]), None, "shorter than its header");
    assert_eq!(efi_string(&[7, 0, 0, 0, b'a']), None, "an odd number of bytes");
    assert_eq!(efi_string(&[7, 0, 0, 0, 0x00, 0xd8]).as_deref(), None, "an unpaired surrogate");
}

#[tokio::test]
async fn a_counted_boot_shows_its_entry_and_tries() {
    let (dir, b) = machine(Some("bootgate-2+2-1.conf"), &["loader/entries/bootgate-1.conf"]);
    assert!(b.counting());
    let facts = serde_json::to_value(b.facts().await).unwrap();
    assert_eq!(facts["backend"], "bless-boot");
    assert_eq!(facts["esp"], dir.path().join("efi").display().to_string(), "the root holding the entry: {facts}");
    assert_eq!(facts["entry"], "bootgate-2.conf");
    assert_eq!(facts["boot_count_path"], "/loader/entries/bootgate-2+2-1.conf");
    assert_eq!((facts["tries_left"].as_u64(), facts["tries_done"].as_u64()), (Some(2), Some(1)));
    assert!(facts.get("error").is_none(), "{facts}");
    let pass = b.on_pass().await.unwrap();
    assert!(pass.contains("bootgate-2.conf") && pass.contains("boot-complete.target"), "{pass}");
}

#[tokio::test]
async fn a_counted_entry_on_no_esp_is_an_error_in_the_facts() {
    let dir = tempfile::tempdir().unwrap();
    efivar(&dir.path().join("efivars"), "LoaderBootCountPath", "\\loader\\entries\\a+1.conf");
    let b = BlessBoot::detect(&dir.path().join("efivars"), vec![dir.path().join("efi")]).unwrap();
    let facts = serde_json::to_value(b.facts().await).unwrap();
    assert!(facts["error"].as_str().unwrap().contains("none of"), "{facts}");
    assert_eq!(facts["entry"], "a.conf");
}

#[test]
fn a_count_path_climbing_out_of_the_esp_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    efivar(&dir.path().join("efivars"), "LoaderBootCountPath", "\\..\\..\\etc\\passwd");
    let b = BlessBoot::detect(&dir.path().join("efivars"), vec![dir.path().to_path_buf()]).unwrap();
    assert!(!b.counting());
}

#[test]
fn no_efivars_is_not_a_uefi_boot() {
    let dir = tempfile::tempdir().unwrap();
    let e = BlessBoot::detect(&dir.path().join("missing"), vec![]).err().unwrap();
    assert!(e.contains("did not boot through UEFI"), "{e}");
}

#[test]
fn the_fallbacks_are_the_other_entries_systemd_boot_would_still_boot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    touch(&root, "loader/entries/bootgate-2+0-1.conf");
    touch(&root, "loader/entries/old+0-3.conf");
    touch(&root, "loader/entries/notes.txt");
    let all = entries(std::slice::from_ref(&root));
    assert_eq!(all.len(), 2, "only .conf files count: {all:?}");
    assert!(fallbacks(&all, "bootgate-2.conf").is_empty(), "every other entry is bad");

    touch(&root, "EFI/Linux/uki+1-2.efi");
    let all = entries(&[root.clone(), PathBuf::from("/nonexistent")]);
    assert_eq!(fallbacks(&all, "bootgate-2.conf"), ["uki.efi"]);
    // The booted entry itself, even with tries left, is never its own fallback.
    touch(&root, "loader/entries/bootgate-2+1-1.conf");
    assert_eq!(fallbacks(&entries(std::slice::from_ref(&root)), "bootgate-2.conf"), ["uki.efi"]);
    touch(&root, "loader/entries/bootgate-1.conf");
    assert_eq!(
        fallbacks(&entries(std::slice::from_ref(&root)), "bootgate-2.conf"),
        ["uki.efi", "bootgate-1.conf"],
        "in path order"
    );
    let xbootldr = dir.path().join("xbootldr");
    touch(&root, "loader/entries/zz.conf");
    touch(&xbootldr, "loader/entries/bootgate-1.conf");
    assert_eq!(
        fallbacks(&entries(&[root, xbootldr]), "bootgate-2.conf"),
        ["uki.efi", "bootgate-1.conf", "zz.conf"],
        "one name, one entry"
    );
}

#[tokio::test]
async fn a_failed_gate_reboots_only_while_another_entry_can_boot() {
    let (_dir, b) = machine(Some("bootgate-2+2-1.conf"), &["loader/entries/bootgate-1.conf"]);
    assert_eq!(
        b.on_failure().await,
        RebootDecision::RebootToEntry { bad: "bootgate-2.conf".into(), next: "bootgate-1.conf".into() }
    );
    let (_dir, b) =
        machine(Some("bootgate-2+2-1.conf"), &["loader/entries/bootgate-1.conf", "loader/entries/old+1.conf"]);
    assert_eq!(
        b.on_failure().await,
        RebootDecision::RebootToEntry { bad: "bootgate-2.conf".into(), next: "bootgate-1.conf or old.conf".into() },
        "systemd-boot chooses among them"
    );
    let (_dir, b) = machine(Some("bootgate-2+2-1.conf"), &["loader/entries/bootgate-1+0-3.conf"]);
    assert_eq!(b.on_failure().await, RebootDecision::StayNoFallback);
    let (_dir, b) = machine(Some("bootgate-2+0-3.conf"), &[]);
    assert_eq!(b.on_failure().await, RebootDecision::StayNoFallback, "alone on the ESP");
}

#[tokio::test]
async fn an_uncounted_boot_stays_it_is_already_blessed() {
    let (_dir, b) = machine(None, &["loader/entries/bootgate-1.conf", "loader/entries/bootgate-2.conf"]);
    assert!(!b.counting());
    assert_eq!(b.on_failure().await, RebootDecision::StayConfirmed);
    assert!(b.on_pass().await.unwrap().contains("did not count"));
}

#[tokio::test]
async fn a_missing_systemd_bless_boot_is_a_reason_not_a_panic() {
    let (_dir, b) = machine(Some("a+1.conf"), &[]);
    let e = b.mark_bad().await.unwrap_err();
    assert!(e.contains("systemd-bless-boot is not installed"), "{e}");
}

fn listed(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join("efi/loader/entries"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn bad_names_are_systemd_bless_boots() {
    assert_eq!(bad_name(&Entry::parse("a+2-1.conf")), "a+0-1.conf");
    assert_eq!(bad_name(&Entry::parse("a+3.conf")), "a+0.conf");
    assert_eq!(bad_name(&Entry::parse("fedora+6.1+1-2.conf")), "fedora+6.1+0-2.conf");
    assert_eq!(bad_name(&Entry::parse("linux+1-2.efi")), "linux+0-2.efi");
}

#[tokio::test]
async fn a_blessed_entry_is_renamed_bad_and_the_next_one_named() {
    // systemd-boot counted bootgate-2 (+3 → +2-1) and systemd-bless-boot blessed it since.
    let (dir, b) = machine(Some("bootgate-2+2-1.conf"), &["loader/entries/bootgate-1.conf"]);
    let entries = dir.path().join("efi/loader/entries");
    fs::rename(entries.join("bootgate-2+2-1.conf"), entries.join("bootgate-2.conf")).unwrap();
    assert_eq!(b.revertible(), Ok(()));
    let done = b.revert().await.unwrap();
    assert_eq!(done, Reverted { booted: "boot entry bootgate-2.conf".into(), fallback: "bootgate-1.conf".into() });
    assert_eq!(listed(dir.path()), ["bootgate-1.conf", "bootgate-2+0-1.conf"]);
    // systemd-boot sorts it with the bad ones now: nothing else names it a fallback.
    let all = super::entries(&[dir.path().join("efi")]);
    assert_eq!(fallbacks(&all, "bootgate-1.conf"), Vec::<&str>::new());
    // Twice is once.
    assert!(b.revert().await.is_ok());
    assert_eq!(listed(dir.path()), ["bootgate-1.conf", "bootgate-2+0-1.conf"]);
}

#[tokio::test]
async fn an_entry_not_blessed_yet_is_renamed_bad_from_its_counted_name() {
    let (dir, b) = machine(Some("bootgate-2+2-1.conf"), &["loader/entries/bootgate-1+3.conf"]);
    let done = b.revert().await.unwrap();
    assert_eq!(done.fallback, "bootgate-1.conf");
    assert_eq!(listed(dir.path()), ["bootgate-1+3.conf", "bootgate-2+0-1.conf"]);
}

#[tokio::test]
async fn nothing_else_bootable_refuses_the_revert_and_renames_nothing() {
    let (dir, b) = machine(Some("bootgate-2+2-1.conf"), &["loader/entries/bootgate-1+0-3.conf"]);
    let why = b.revertible().unwrap_err();
    assert!(why.starts_with("not armed: no entry other than bootgate-2.conf"), "{why}");
    assert!(matches!(b.revert().await, Err(RevertError::NoFallback)));
    assert_eq!(listed(dir.path()), ["bootgate-1+0-3.conf", "bootgate-2+2-1.conf"]);
}

#[tokio::test]
async fn an_uncounted_boot_is_not_armed_and_a_vanished_entry_is_a_failure() {
    let (_dir, b) = machine(None, &["loader/entries/bootgate-1.conf", "loader/entries/bootgate-2.conf"]);
    assert!(b.revertible().unwrap_err().contains("did not count this boot"));
    assert!(matches!(b.revert().await, Err(RevertError::NoFallback)));

    let (dir, b) = machine(Some("bootgate-2+2-1.conf"), &["loader/entries/bootgate-1.conf"]);
    fs::remove_file(dir.path().join("efi/loader/entries/bootgate-2+2-1.conf")).unwrap();
    match b.revert().await {
        Err(RevertError::Failed { booted, why }) => {
            assert_eq!(booted, "boot entry bootgate-2.conf");
            assert!(why.starts_with("neither ") && why.contains("bootgate-2.conf nor "), "{why}");
        }
        other => panic!("{other:?}"),
    }
}
