//! The real RAUC service on a private system bus: a `dbus-daemon` of type `system`
//! listening in a temp dir, and `rauc service` with two slots (`rootfs.0` = A,
//! `rootfs.1` = B) whose boot loader is a custom backend script keeping its state in
//! files beside it. Both are stopped by pid on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::procs::{find_binary, mentioning, run_bounded, wait_until};

const BUS_CONF: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=SOCKET</listen>
  <servicedir>SERVICES</servicedir>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#;

/// RAUC 1.8 calls this as `get-primary`, `set-primary SLOT`, `get-state SLOT`, `set-state SLOT good|bad`.
const BACKEND: &str = r#"#!/bin/sh
dir="$(dirname "$0")"
echo "$*" >> "$dir/calls"
case "$1" in
  get-primary) cat "$dir/primary" ;;
  set-primary) echo "$2" > "$dir/primary" ;;
  get-state) cat "$dir/state.$2" ;;
  set-state) echo "$3" > "$dir/state.$2" ;;
  *) exit 1 ;;
esac
"#;

/// A private system bus, with RAUC on it once [`RaucBus::start_rauc`] ran.
pub struct RaucBus {
    dir: tempfile::TempDir,
    bus: Child,
    rauc: Option<Child>,
    /// `unix:path=…` in the temp dir: what `DBUS_SYSTEM_BUS_ADDRESS` is set to.
    pub address: String,
}

impl RaucBus {
    /// RAUC booted from `booted` (A or B), with A's and B's boot states and the primary bootname.
    pub fn start(booted: &str, a: &str, b: &str, primary: &str) -> RaucBus {
        let mut bus = RaucBus::bus_only();
        bus.start_rauc(booted, a, b, primary);
        bus
    }

    /// Only the bus: nothing owns `de.pengutronix.rauc`, nor can the bus start it.
    pub fn bus_only() -> RaucBus {
        RaucBus::bus_in(tempfile::tempdir().unwrap())
    }

    /// The bus, able to start RAUC on the first call to its name (D-Bus activation, as
    /// Debian's `rauc-service` has it), which nothing has made yet.
    pub fn activatable(booted: &str, a: &str, b: &str, primary: &str) -> RaucBus {
        let dir = tempfile::tempdir().unwrap();
        write_rauc_files(dir.path(), a, b, primary);
        let services = dir.path().join("services");
        std::fs::create_dir(&services).unwrap();
        let rauc = find_binary("rauc", "rauc");
        let d = dir.path().display();
        let unit = format!(
            "[D-BUS Service]\nName=de.pengutronix.rauc\nExec={} service --conf={d}/system.conf --override-boot-slot={booted}\n",
            rauc.display()
        );
        std::fs::write(services.join("de.pengutronix.rauc.service"), unit).unwrap();
        RaucBus::bus_in(dir)
    }

    fn bus_in(dir: tempfile::TempDir) -> RaucBus {
        let socket = dir.path().join("bus.sock");
        let conf = dir.path().join("bus.conf");
        let services = dir.path().join("services");
        let text = BUS_CONF.replace("SOCKET", socket.to_str().unwrap()).replace("SERVICES", services.to_str().unwrap());
        std::fs::write(&conf, text).unwrap();
        let address = format!("unix:path={}", socket.display());
        // A RAUC the bus starts inherits this, and so reaches the private bus, not the machine's.
        let bus = Command::new(find_binary("dbus-daemon", "dbus-daemon"))
            .arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start dbus-daemon");
        let this = RaucBus { dir, bus, rauc: None, address };
        assert!(
            wait_until(Duration::from_secs(10), Duration::from_millis(20), || this.busctl_ok(&["list"])),
            "the private dbus-daemon did not answer within 10s"
        );
        this
    }

    /// Starts `rauc service` on the bus and waits until it owns its name.
    pub fn start_rauc(&mut self, booted: &str, a: &str, b: &str, primary: &str) {
        let dir = self.dir.path();
        write_rauc_files(dir, a, b, primary);
        let d = dir.display();
        let log = std::fs::File::create(dir.join("rauc.log")).unwrap();
        let rauc = Command::new(find_binary("rauc", "rauc"))
            .arg("service")
            .arg(format!("--conf={d}/system.conf"))
            .arg(format!("--override-boot-slot={booted}"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start rauc service");
        self.rauc = Some(rauc);
        assert!(
            wait_until(Duration::from_secs(10), Duration::from_millis(50), || self.owner().is_some()),
            "rauc did not take its bus name within 10s: {}",
            std::fs::read_to_string(dir.join("rauc.log")).unwrap_or_default()
        );
    }

    /// The pid owning `de.pengutronix.rauc` on the bus, if anything does.
    pub fn owner(&self) -> Option<u32> {
        let out = self.busctl(&[
            "call",
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "GetConnectionUnixProcessID",
            "s",
            "de.pengutronix.rauc",
        ])?;
        out.trim().strip_prefix("u ")?.parse().ok()
    }
    /// The custom backend's state of slot `bootname` (`good` or `bad`).
    pub fn state(&self, bootname: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("state.{bootname}"))).unwrap().trim().to_string()
    }

    /// Every call RAUC made to the boot loader backend, one a line.
    pub fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default()
    }

    /// The temp dir (for policies, run and state dirs of a bootgate under test).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Freezes RAUC (SIGSTOP): it keeps its name and never answers, a hung service.
    pub fn freeze(&self) {
        self.signal_rauc(Signal::SIGSTOP);
    }

    /// Freezes the bus itself (SIGSTOP): connections are accepted by the kernel and never answered.
    pub fn freeze_bus(&self) {
        kill(Pid::from_raw(self.bus.id() as i32), Signal::SIGSTOP).unwrap();
    }

    /// Lets a frozen bus go on (SIGCONT), so it can be stopped.
    pub fn thaw_bus(&self) {
        kill(Pid::from_raw(self.bus.id() as i32), Signal::SIGCONT).unwrap();
    }

    fn signal_rauc(&self, signal: Signal) {
        let rauc = self.rauc.as_ref().expect("rauc was started");
        kill(Pid::from_raw(rauc.id() as i32), signal).unwrap();
    }

    /// `busctl --address=… ARGS`; its stdout when it succeeded.
    pub fn busctl(&self, args: &[&str]) -> Option<String> {
        let out = run_bounded(
            Command::new(find_binary("busctl", "systemd")).arg(format!("--address={}", self.address)).args(args),
            Duration::from_secs(10),
        );
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn busctl_ok(&self, args: &[&str]) -> bool {
        self.busctl(args).is_some()
    }

    /// Where the bus socket is (always inside this bus's own temp dir).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("bus.sock")
    }
}

/// RAUC's config, the boot loader script and its state (A's, B's, the primary's bootname) in `dir`.
fn write_rauc_files(dir: &Path, a: &str, b: &str, primary: &str) {
    std::fs::write(dir.join("state.A"), format!("{a}\n")).unwrap();
    std::fs::write(dir.join("state.B"), format!("{b}\n")).unwrap();
    std::fs::write(dir.join("primary"), format!("{primary}\n")).unwrap();
    let script = dir.join("backend.sh");
    std::fs::write(&script, BACKEND).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for img in ["a.img", "b.img"] {
        std::fs::write(dir.join(img), b"").unwrap();
    }
    let d = dir.display();
    let conf = format!(
        "[system]\ncompatible=bootgate-test\nbootloader=custom\nstatusfile={d}/status.raucs\n\n\
         [handlers]\nbootloader-custom-backend={d}/backend.sh\n\n\
         [slot.rootfs.0]\ndevice={d}/a.img\ntype=raw\nbootname=A\n\n\
         [slot.rootfs.1]\ndevice={d}/b.img\ntype=raw\nbootname=B\n"
    );
    std::fs::write(dir.join("system.conf"), conf).unwrap();
}

impl Drop for RaucBus {
    fn drop(&mut self) {
        if let Some(mut rauc) = self.rauc.take() {
            if let Ok(None) = rauc.try_wait() {
                // A frozen RAUC would never act on SIGTERM; SIGKILL needs no cooperation.
                let _ = kill(Pid::from_raw(rauc.id() as i32), Signal::SIGKILL);
            }
            let _ = rauc.wait();
        } else if let Some(pid) = self.owner() {
            // Started by the bus: its pid comes from the bus, and it is ours only if it runs our config.
            let needle = self.dir.path().display().to_string();
            if mentioning(&needle).iter().any(|p| p.pid == pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
                    !mentioning(&needle).iter().any(|p| p.pid == pid)
                });
            }
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}
