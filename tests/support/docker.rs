//! Images and containers on a private [`Dockerd`]: a registry-free busybox
//! image and long-running containers with a chosen healthcheck behaviour.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::dockerd::{CLI_TIMEOUT, Dockerd};
use super::procs::{find_binary, run_bounded};

/// The image [`Dockerd::run_container`] uses, imported on first use.
pub const BUSYBOX_IMAGE: &str = "bootgate-test/busybox:1";

/// Shell applets the containers' commands and healthchecks rely on.
const APPLETS: [&str; 9] = ["sh", "sleep", "true", "false", "touch", "test", "[", "cat", "ls"];

/// A container's long-lived command. PID 1 ignores SIGTERM unless it traps it:
/// without the trap every stop or engine shutdown would wait for the stop timeout.
pub(super) const KEEP_ALIVE: &str = "trap 'exit 0' TERM; sleep 86400 & wait";

/// How a container's healthcheck behaves (interval 1 s, one retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No healthcheck: `docker inspect` has no health state.
    None,
    /// `true`: healthy after the first check (~1 s).
    Passing,
    /// `false`: unhealthy after the first check (~1 s).
    Failing,
    /// Fails (staying `starting`) until the delay has passed, then passes.
    PassingAfter(Duration),
}

impl Dockerd {
    /// Imports a busybox-only image as `name_tag` from Debian's busybox-static.
    pub fn import_busybox(&self, name_tag: &str) {
        let work = tempfile::Builder::new()
            .prefix("img")
            .tempdir_in(self.dir())
            .unwrap_or_else(|e| panic!("cannot create an image dir in {}: {e}", self.dir().display()));
        let tar_path = busybox_rootfs_tar(work.path());
        let tar_arg = tar_path.to_str().expect("temp paths are UTF-8");
        self.docker_ok(&["import", tar_arg, name_tag]);
    }

    /// Runs a long-lived container of [`BUSYBOX_IMAGE`] (imported on first
    /// use) with `--network none`; returns its id. Removed on drop.
    pub fn run_container(&self, name: &str, health: Health) -> String {
        {
            // Held during the import so parallel callers wait for the image.
            let mut imported = self.busybox_imported.lock().expect("image flag poisoned");
            if !*imported {
                self.import_busybox(BUSYBOX_IMAGE);
                *imported = true;
            }
        }
        self.run_container_image(BUSYBOX_IMAGE, name, health)
    }

    /// Like [`Dockerd::run_container`] for an image that has busybox's `sh`.
    pub fn run_container_image(&self, image: &str, name: &str, health: Health) -> String {
        let keep_alive = KEEP_ALIVE;
        let (health_args, script) = match health {
            Health::None => (vec!["--no-healthcheck".to_string()], keep_alive.to_string()),
            Health::Passing => (checks("true"), keep_alive.to_string()),
            Health::Failing => (checks("false"), keep_alive.to_string()),
            Health::PassingAfter(delay) => {
                let mut args = checks("test -f /tmp/ready");
                // Failures inside the start period leave the state `starting`.
                args.push(format!("--health-start-period={}s", delay.as_secs() + 30));
                let script = format!(
                    "trap 'exit 0' TERM; sleep {:.3} & wait; touch /tmp/ready; sleep 86400 & wait",
                    delay.as_secs_f64()
                );
                (args, script)
            }
        };
        let mut args: Vec<String> =
            ["run", "-d", "--name", name, "--network", "none"].iter().map(|s| s.to_string()).collect();
        args.extend(["--restart=unless-stopped".to_string(), "--stop-timeout=5".to_string()]);
        args.extend(health_args);
        args.extend([image.to_string(), "sh".to_string(), "-c".to_string(), script]);
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        // Recorded first so drop removes it even if `run` fails half-way.
        self.containers.lock().expect("container list poisoned").push(name.to_string());
        self.docker_ok(&arg_refs)
    }

    /// `docker inspect` of one container as JSON (the first array element).
    pub fn inspect(&self, name: &str) -> Value {
        let text = self.docker_ok(&["inspect", "--type", "container", name]);
        let mut all: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("docker inspect {name} printed invalid JSON ({e}):\n{text}"));
        all.get_mut(0).map(Value::take).unwrap_or_else(|| panic!("docker inspect {name} returned no object"))
    }

    /// `State.Health.Status` (`starting`, `healthy`, `unhealthy`), or `none`.
    pub fn health_status(&self, name: &str) -> String {
        self.inspect(name)["State"]["Health"]["Status"].as_str().unwrap_or("none").to_string()
    }

    /// `State.Status` (`running`, `exited`, …).
    pub fn container_state(&self, name: &str) -> String {
        self.inspect(name)["State"]["Status"].as_str().unwrap_or("unknown").to_string()
    }

    /// Waits until the container's health is `want`; returns how long that
    /// took, or panics with the health log after `timeout`.
    pub fn wait_health(&self, name: &str, want: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let state = self.inspect(name);
            if state["State"]["Health"]["Status"].as_str() == Some(want) {
                return start.elapsed();
            }
            if start.elapsed() >= timeout {
                panic!(
                    "container {name} did not become {want} within {timeout:?}; state:\n{}",
                    serde_json::to_string_pretty(&state["State"]).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `docker rm -f NAME`, panicking on failure.
    pub fn remove_container(&self, name: &str) {
        self.docker_ok(&["rm", "-f", name]);
        self.containers.lock().expect("container list poisoned").retain(|n| n != name);
    }
}

/// Builds `work/root`: Debian's busybox-static and the applets the containers
/// use, the whole of a registry-free image; returns its path.
pub(super) fn busybox_rootfs(work: &Path) -> PathBuf {
    let busybox = find_binary("busybox", "busybox-static");
    assert!(
        is_static_elf(&busybox),
        "{} is dynamically linked and cannot run alone in an image: \
         install the Debian package `busybox-static` instead of `busybox`",
        busybox.display()
    );
    let root = work.join("root");
    for sub in ["bin", "etc"] {
        fs::create_dir_all(root.join(sub)).expect("cannot create the image tree");
    }
    // /tmp must exist for the PassingAfter marker file; sticky like a real /tmp.
    fs::create_dir(root.join("tmp")).expect("cannot create the image /tmp");
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("cannot chmod the image /tmp");
    fs::copy(&busybox, root.join("bin/busybox")).unwrap_or_else(|e| panic!("cannot copy {}: {e}", busybox.display()));
    for applet in APPLETS {
        symlink("busybox", root.join("bin").join(applet)).expect("cannot create an applet symlink");
    }
    root
}

/// [`busybox_rootfs`] as `work/rootfs.tar`, for `docker import`.
fn busybox_rootfs_tar(work: &Path) -> PathBuf {
    let root = busybox_rootfs(work);
    let tar_path = work.join("rootfs.tar");
    let mut tar = Command::new(find_binary("tar", "tar"));
    tar.arg("-C").arg(&root).arg("-cf").arg(&tar_path).arg(".");
    let out = run_bounded(&mut tar, CLI_TIMEOUT);
    assert!(out.status.success(), "tar of the busybox image failed: {}", String::from_utf8_lossy(&out.stderr));
    tar_path
}

fn checks(cmd: &str) -> Vec<String> {
    vec![
        format!("--health-cmd={cmd}"),
        "--health-interval=1s".to_string(),
        "--health-timeout=5s".to_string(),
        "--health-retries=1".to_string(),
    ]
}

/// Whether `path` is an ELF64 executable without a program interpreter
/// (PT_INTERP), i.e. one that runs in an image holding nothing else.
fn is_static_elf(path: &Path) -> bool {
    let Ok(elf) = fs::read(path) else {
        return false;
    };
    let u16_at = |at: usize| elf.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |at: usize| elf.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize);
    const PT_INTERP: u32 = 3;
    if !elf.starts_with(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        elf.get(at..at + 4).is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != PT_INTERP)
    })
}
