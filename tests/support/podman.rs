//! A private podman API service: `podman system service` on its own socket, with
//! its own storage, run state, locks, network config and containers.conf, all under
//! one short temp dir; its containers removed and every process of it stopped on drop.
//!
//! Rootful podman on this machine needs what the containers.conf below says: lower
//! rlimits (runc cannot raise them here), cgroupfs (no systemd as PID 1), events in a
//! file. The rest keeps it off the machine's own paths: file locks in the temp dir
//! instead of `/dev/shm/libpod_lock`, which every rootful podman on the machine would
//! share (its allocations with them), its own network config dir, and containers
//! run from a busybox root directory (`--rootfs`) instead of an imported image, since
//! podman 4.3 keeps an image import's blob cache in `/var/lib/containers/cache`
//! whatever its `--root`.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::docker::{Health, KEEP_ALIVE, busybox_rootfs};
use super::leftovers;
use super::procs::{self, find_binary, run_bounded, run_with_deadline};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
const DROP_GRACE: Duration = Duration::from_secs(10);

/// A running private podman API service; see [`Podman::start`].
pub struct Podman {
    child: Option<Child>,
    /// The containers' root directory.
    rootfs: PathBuf,
    dir: TempDir,
}

impl Podman {
    /// Starts a service under a fresh `/tmp/bgpXXXXXX` and waits until its API answers.
    pub fn start() -> Podman {
        find_binary("podman", "podman");
        find_binary("conmon", "conmon (a dependency of podman)");
        find_binary("runc", "runc (a dependency of podman)");
        // Unix socket paths are limited to 107 bytes: keep the base short.
        let dir = tempfile::Builder::new()
            .prefix("bgp")
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("cannot create a temp dir for podman under /tmp: {e}"));
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nlock_type = \"file\"\n\
             [network]\nnetwork_config_dir = \"{}\"\n",
            dir.path().join("net").display()
        );
        for sub in ["net", "tmp"] {
            fs::create_dir(dir.path().join(sub)).expect("cannot create the podman dirs");
        }
        fs::write(dir.path().join("containers.conf"), conf).expect("cannot write containers.conf");
        let rootfs = busybox_rootfs(dir.path());
        let mut podman = Podman { child: None, rootfs, dir };
        podman.spawn();
        podman
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `podman` with this service's storage, run state and configuration.
    fn command(&self) -> Command {
        let mut cmd = Command::new(find_binary("podman", "podman"));
        cmd.env("CONTAINERS_CONF", self.path("containers.conf"))
            .env_remove("CONTAINER_HOST")
            .env_remove("CONTAINER_CONNECTION")
            .arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("run"))
            .arg("--tmpdir")
            .arg(self.path("tmp"))
            .args(["--storage-driver", "vfs"]);
        cmd
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log_path().display()));
        let mut cmd = self.command();
        cmd.args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", self.socket_path().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot duplicate the podman log handle"))
            .stderr(log)
            .process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start `{}`: {e}", procs::describe(&cmd)));
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        while self.get("/_ping").is_none_or(|(status, _)| status != 200) {
            let child = self.child.as_mut().expect("podman was just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("podman system service exited during startup ({status}); log tail:\n{}", self.log_tail(40));
            }
            assert!(
                Instant::now() < deadline,
                "podman did not answer on {} within {READY_TIMEOUT:?}; log tail:\n{}",
                self.socket_path().display(),
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET path` on the API socket (2 s bound): the status code and the body.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = UnixStream::connect(self.socket_path()).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: podman\r\n\r\n").as_bytes()).ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).ok()?;
        let status = reply.split_whitespace().nth(1)?.parse().ok()?;
        let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Some((status, body.to_string()))
    }

    /// `GET /version` of the Docker-compatible API as JSON.
    pub fn version(&self) -> Value {
        let (status, body) = self.get("/version").expect("podman did not answer GET /version");
        assert_eq!(status, 200, "GET /version: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET /version is not JSON ({e}): {body}"))
    }

    /// The API's unix socket.
    pub fn socket_path(&self) -> PathBuf {
        self.path("podman.sock")
    }

    /// The base dir holding storage, run state, configuration, socket and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The service's output.
    pub fn log_path(&self) -> PathBuf {
        self.path("log")
    }

    /// The last `lines` lines of the service's output.
    pub fn log_tail(&self, lines: usize) -> String {
        procs::tail(&self.log_path(), lines)
    }

    /// Runs the podman CLI on this service's storage (`podman … ARGS`), bounded to 60 s.
    pub fn podman(&self, args: &[&str]) -> Output {
        run_bounded(self.command().args(args), CLI_TIMEOUT)
    }

    /// Like [`Podman::podman`], but panics on failure and returns trimmed stdout.
    pub fn podman_ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(
            out.status.success(),
            "`podman {}` failed ({}):\n{}\nservice log tail:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log_tail(20)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts a long-lived busybox container with `--network none` (the default
    /// network would create a bridge and firewall rules); returns its id.
    ///
    /// Nothing runs a healthcheck here: podman schedules them with systemd timers and
    /// there is no systemd as PID 1, so the state stays `starting` until the test calls
    /// [`Podman::healthcheck`]. [`Health::PassingAfter`] needs a scheduler and is refused.
    pub fn run_container(&self, name: &str, health: Health) -> String {
        let mut args: Vec<String> =
            ["run", "-d", "--name", name, "--network", "none", "--stop-timeout=5"].map(String::from).to_vec();
        match health {
            Health::None => args.push("--no-healthcheck".into()),
            Health::Passing => args.extend(checks("true")),
            Health::Failing => args.extend(checks("false")),
            Health::PassingAfter(_) => panic!("podman runs no healthcheck on its own here: use Health::Passing"),
        }
        args.extend(["--rootfs".into(), self.rootfs_arg().into()]);
        args.extend(["sh", "-c", KEEP_ALIVE].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.podman_ok(&args)
    }

    /// Creates a container that is never started (`created`).
    pub fn create_container(&self, name: &str) -> String {
        self.podman_ok(&[
            "create",
            "--name",
            name,
            "--network",
            "none",
            "--rootfs",
            self.rootfs_arg(),
            "sh",
            "-c",
            KEEP_ALIVE,
        ])
    }

    fn rootfs_arg(&self) -> &str {
        self.rootfs.to_str().expect("temp paths are UTF-8")
    }

    /// Runs the container's healthcheck once, as podman's systemd timer would;
    /// returns whether it passed.
    pub fn healthcheck(&self, name: &str) -> bool {
        self.podman(&["healthcheck", "run", name]).status.success()
    }

    /// `State` of a container, as the Docker-compatible API reports it to clients.
    pub fn state(&self, name: &str) -> Value {
        let (status, body) = self
            .get(&format!("/v1.41/containers/{name}/json"))
            .unwrap_or_else(|| panic!("no answer inspecting {name}"));
        assert_eq!(status, 200, "inspect {name}: {body}");
        let all: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("inspect {name}: not JSON ({e}): {body}"));
        all["State"].clone()
    }
}

fn checks(cmd: &str) -> Vec<String> {
    // One failing run is enough to turn a container unhealthy.
    [format!("--health-cmd={cmd}"), "--health-retries=1".into(), "--health-timeout=5s".into()].to_vec()
}

impl Drop for Podman {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Containers first, through podman itself, so their conmons exit on their own.
            let _ = run_with_deadline(self.command().args(["rm", "-f", "-a", "-t", "0"]), Duration::from_secs(20));
            procs::stop_group(&mut child, DROP_GRACE);
        }
        // conmon leaves the service's process group (it daemonizes): whatever
        // survived, conmons and containers, is found by the base dir it names.
        leftovers::clean(self.dir.path());
    }
}
