//! The `bless-boot` backend in a real `bootgate run`: this host did not boot through
//! systemd-boot, so each daemon runs in its own mount namespace whose /sys/firmware is a
//! tmpfs holding the EFI variables systemd-boot would have set (the kernel's efivarfs
//! file format), and `SYSTEMD_ESP_PATH` names a directory standing in for the ESP, as
//! systemd's own tools allow for testing. `systemd-bless-boot` itself refuses to run in
//! a container, so marking an entry bad is proven in the UEFI VM scenarios
//! (vm-tests/scenarios/bless-boot-*.sh), where real systemd-boot counts the boots.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bootgate::boot::backend::bless_boot::LOADER_GUID;
use support::{Daemon, Launch, NotifySocket, find_binary};

/// `name` as an efivarfs file: attributes, then UTF-16LE with its NUL.
fn efivar(dir: &Path, name: &str, value: &str) {
    let mut raw = vec![0x06, 0, 0, 0];
    raw.extend(value.encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(format!("{name}-{LOADER_GUID}")), raw).unwrap();
}

/// A `bootgate run` with boot `backend` and a disk check, serving on a free port, in a
/// mount namespace whose /sys/firmware is `firmware` (copied into a tmpfs), with `esp`
/// as `SYSTEMD_ESP_PATH`.
fn start_booted(dir: &Path, backend: &str, notify: &NotifySocket, firmware: &Path, esp: &Path) -> Daemon {
    let unshare = find_binary("unshare", "util-linux");
    let firmware = firmware.to_path_buf();
    Launch::listening(format!("boot: {{backend: {backend}}}\nchecks:\n  - {{name: root, kind: disk, path: /}}\n"))
        .in_dir(dir)
        .notify(notify)
        .env("SYSTEMD_ESP_PATH", esp)
        .through(move |bootgate| {
            let mut cmd = Command::new(unshare);
            cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg("mount -t tmpfs firmware /sys/firmware && cp -a \"$0\"/. /sys/firmware/ && exec \"$@\"")
                .arg(firmware)
                .args(bootgate);
            cmd
        })
        .start()
}

#[test]
fn a_counted_boot_passes_and_leaves_the_blessing_to_systemd() {
    for backend in ["bless-boot", "auto"] {
        let dir = tempfile::tempdir().unwrap();
        let firmware = dir.path().join("firmware");
        efivar(&firmware.join("efi/efivars"), "LoaderBootCountPath", "\\loader\\entries\\bootgate-2+2-1.conf");
        efivar(&firmware.join("efi/efivars"), "LoaderEntrySelected", "bootgate-2.conf");
        let esp = dir.path().join("esp");
        fs::create_dir_all(esp.join("loader/entries")).unwrap();
        for entry in ["bootgate-2+2-1.conf", "bootgate-1.conf"] {
            fs::write(esp.join("loader/entries").join(entry), "title t\n").unwrap();
        }
        let notify = NotifySocket::bind(dir.path());
        let start = Instant::now();
        let mut daemon = start_booted(dir.path(), backend, &notify, &firmware, &esp);
        notify.wait_for("READY=1", start, Duration::from_secs(20), |m| m.contains("READY=1"));

        let doc = daemon.health();
        let boot = &doc["boot"];
        assert_eq!(boot["backend"], "bless-boot", "{backend}: {doc:#}");
        assert_eq!(boot["entry"], "bootgate-2.conf", "{doc:#}");
        assert_eq!((boot["tries_left"].as_u64(), boot["tries_done"].as_u64()), (Some(2), Some(1)), "{doc:#}");
        assert_eq!(boot["esp"], esp.display().to_string(), "{doc:#}");
        let mut left: Vec<String> = fs::read_dir(esp.join("loader/entries"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["bootgate-1.conf", "bootgate-2+2-1.conf"], "bootgate renames nothing on a pass");
        let log = daemon.stderr();
        let why = if backend == "auto" { "auto: systemd-boot counts this boot" } else { "boot.backend is bless-boot" };
        assert!(log.contains(&format!("boot backend bless-boot: {why}")), "{log}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(daemon.is_running(), "still running after READY=1");
    }
}

#[test]
fn bless_boot_without_uefi_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let firmware = dir.path().join("firmware");
    fs::create_dir_all(firmware.join("acpi")).unwrap();
    let notify = NotifySocket::bind(dir.path());
    let mut daemon = start_booted(dir.path(), "bless-boot", &notify, &firmware, &dir.path().join("esp"));
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).code(), Some(78), "{}", daemon.stderr());
    let msgs = notify.messages();
    assert!(
        msgs.iter().any(|(_, m)| m.contains("boot.backend is bless-boot, but this machine did not boot through UEFI")),
        "{msgs:#?}"
    );
    assert!(!msgs.iter().any(|(_, m)| m.contains("READY=1")), "{msgs:#?}");
}
