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
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bootgate::boot::backend::bless_boot::LOADER_GUID;
use support::{Daemon, Launch, NotifySocket, find_binary, free_port, health_at};

/// `name` as an efivarfs file: attributes, then UTF-16LE with its NUL.
fn efivar(dir: &Path, name: &str, value: &str) {
    let mut raw = vec![0x06, 0, 0, 0];
    raw.extend(value.encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(format!("{name}-{LOADER_GUID}")), raw).unwrap();
}

/// A `bootgate run` on `policy` in a mount namespace whose /sys/firmware is `firmware`
/// (copied into a tmpfs), with `esp` as `SYSTEMD_ESP_PATH`.
fn start_booted(dir: &Path, policy: &str, notify: &NotifySocket, firmware: &Path, esp: &Path) -> Daemon {
    fs::write(dir.join("policy.yaml"), policy).unwrap();
    let inner = Launch {
        command: "run",
        dir,
        notify: Some(notify.path()),
        watchdog_usec: None,
        stdout: Stdio::null(),
        stderr: Stdio::null(),
    }
    .command();
    let mut cmd = Command::new(find_binary("unshare", "util-linux"));
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg("mount -t tmpfs firmware /sys/firmware && cp -a \"$0\"/. /sys/firmware/ && exec \"$@\"")
        .arg(firmware)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    let log = fs::File::create(dir.join("stderr.log")).unwrap();
    cmd.env("SYSTEMD_ESP_PATH", esp).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    Daemon(cmd.spawn().expect("cannot start bootgate in a mount namespace (unshare needs root)"))
}

fn policy(backend: &str, port: u16) -> String {
    format!(
        "version: 1\nboot: {{backend: {backend}}}\nserver: {{listen: '127.0.0.1:{port}'}}\nchecks:\n  - {{name: root, kind: disk, path: /}}\n"
    )
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
        let port = free_port();
        let start = Instant::now();
        let mut daemon = start_booted(dir.path(), &policy(backend, port), &notify, &firmware, &esp);
        notify.wait_for("READY=1", start, Duration::from_secs(20), |m| m.contains("READY=1"));

        let doc = health_at(port);
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
        let log = fs::read_to_string(dir.path().join("stderr.log")).unwrap();
        let why = if backend == "auto" { "auto: systemd-boot counts this boot" } else { "boot.backend is bless-boot" };
        assert!(log.contains(&format!("boot backend bless-boot: {why}")), "{log}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(daemon.0.try_wait().unwrap().is_none(), "still running after READY=1");
    }
}

#[test]
fn bless_boot_without_uefi_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let firmware = dir.path().join("firmware");
    fs::create_dir_all(firmware.join("acpi")).unwrap();
    let notify = NotifySocket::bind(dir.path());
    let mut daemon =
        start_booted(dir.path(), &policy("bless-boot", free_port()), &notify, &firmware, &dir.path().join("esp"));
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), 78);
    let msgs = notify.messages();
    assert!(
        msgs.iter().any(|(_, m)| m.contains("boot.backend is bless-boot, but this machine did not boot through UEFI")),
        "{msgs:#?}"
    );
    assert!(!msgs.iter().any(|(_, m)| m.contains("READY=1")), "{msgs:#?}");
}
