//! A private Docker engine: its own dockerd, managed containerd, data, exec
//! state and socket, all under one short temp dir; stopped and cleaned on drop.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::leftovers;
use super::procs::{self, find_binary, run_bounded};
use super::sys;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const DROP_GRACE: Duration = Duration::from_secs(10);
pub(super) const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// A running private dockerd; see [`Dockerd::start`].
pub struct Dockerd {
    child: Option<Child>,
    containerd_pid: Option<u32>,
    /// Names of containers started through this handle, removed on drop.
    pub(super) containers: Mutex<Vec<String>>,
    /// Whether [`super::BUSYBOX_IMAGE`] has been imported into this engine.
    pub(super) busybox_imported: Mutex<bool>,
    dir: TempDir,
}

impl Dockerd {
    /// Starts an engine under a fresh `/tmp/bgdXXXXXX` and waits until its API answers.
    pub fn start() -> Dockerd {
        find_binary("dockerd", "docker.io");
        find_binary("docker", "docker.io");
        find_binary("containerd", "containerd (a dependency of docker.io)");
        find_binary("runc", "runc (a dependency of docker.io)");
        // Unix socket paths are limited to 107 bytes: keep the base short.
        let dir = tempfile::Builder::new()
            .prefix("bgd")
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("cannot create a temp dir for dockerd under /tmp: {e}"));
        // Our own config so /etc/docker/daemon.json never applies. The trust
        // key moves here, else dockerd 20.10 creates /etc/docker/key.json
        // (Debian's build has this setting in the file only, not as a flag).
        let key = dir.path().join("key.json");
        let config = serde_json::json!({ "deprecated-key-path": key });
        write(&dir.path().join("daemon.json"), &config.to_string());
        // The CLI's own config (auth, contexts) is kept out of ~/.docker.
        fs::create_dir(dir.path().join("cli")).expect("cannot create the docker CLI config dir");
        let mut engine = Dockerd {
            child: None,
            containerd_pid: None,
            containers: Mutex::new(Vec::new()),
            busybox_imported: Mutex::new(false),
            dir,
        };
        engine.spawn();
        engine
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log_path().display()));
        let mut cmd = Command::new(find_binary("dockerd", "docker.io"));
        cmd.arg("--config-file")
            .arg(self.path("daemon.json"))
            .arg("--data-root")
            .arg(self.path("data"))
            .arg("--exec-root")
            .arg(self.path("exec"))
            .arg("--pidfile")
            .arg(self.path("pid"))
            .arg("-H")
            .arg(self.host())
            // Leave the host's network alone: no bridge, no firewall rules,
            // no sysctl change, no proxy processes.
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .args(["--ip-forward=false", "--ip-masq=false", "--userland-proxy=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot duplicate the dockerd log handle"))
            .stderr(log)
            .process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start `{}`: {e}", procs::describe(&cmd)));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.ping() {
            let child = self.child.as_mut().expect("dockerd was just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("dockerd exited during startup ({status}); log tail:\n{}", self.log_tail(40));
            }
            if Instant::now() >= deadline {
                panic!(
                    "dockerd did not answer on {} within {READY_TIMEOUT:?}; log tail:\n{}",
                    self.host(),
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid_file = self.path("exec/containerd/containerd.pid");
        self.containerd_pid = fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse().ok());
    }

    /// Whether the engine answers `GET /_ping` right now (2 s bound).
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = UnixStream::connect(self.socket_path()) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        if stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").is_err() {
            return false;
        }
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply.starts_with("HTTP/1.") && reply.lines().next().is_some_and(|l| l.contains(" 200 "))
    }

    /// The engine address for clients: `unix:///tmp/bgdXXXXXX/sock`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket_path().display())
    }

    /// The engine's unix socket.
    pub fn socket_path(&self) -> PathBuf {
        self.path("sock")
    }

    /// The base dir holding data, exec state, socket and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// dockerd's (and its containerd's) combined output, kept across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.path("log")
    }

    /// The last `lines` lines of the engine log.
    pub fn log_tail(&self, lines: usize) -> String {
        procs::tail(&self.log_path(), lines)
    }

    /// The dockerd pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The pid of the containerd this dockerd started, while the engine runs.
    pub fn containerd_pid(&self) -> Option<u32> {
        self.child.as_ref().and(self.containerd_pid)
    }

    /// Runs the docker CLI against this engine (`docker -H … ARGS`), bounded to 60 s.
    pub fn docker(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(find_binary("docker", "docker.io"));
        cmd.arg("-H").arg(self.host()).args(args);
        isolate_cli(&mut cmd, &self.path("cli"));
        run_bounded(&mut cmd, CLI_TIMEOUT)
    }

    /// Like [`Dockerd::docker`], but panics on failure and returns trimmed stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        if !out.status.success() {
            panic!(
                "`docker {}` failed ({}):\n{}\nengine log tail:\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.log_tail(20)
            );
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the engine as a service manager would (SIGTERM, wait for exit);
    /// the dirs, images and containers stay for [`Dockerd::restart`].
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("stop(): dockerd is not running");
        let pid = child.id();
        let _ = sys::signal(pid, sys::SIGTERM);
        let exited =
            procs::wait_until(STOP_TIMEOUT, Duration::from_millis(20), || matches!(child.try_wait(), Ok(Some(_))));
        if !exited {
            procs::stop_group(&mut child, Duration::ZERO);
            panic!(
                "dockerd (pid {pid}) did not exit within {STOP_TIMEOUT:?} of SIGTERM; log tail:\n{}",
                self.log_tail(40)
            );
        }
        if let Some(containerd) = self.containerd_pid.take() {
            let gone =
                procs::wait_until(Duration::from_secs(10), Duration::from_millis(20), || !procs::alive(containerd));
            assert!(gone, "containerd (pid {containerd}) outlived its dockerd by 10 s");
        }
    }

    /// Starts the engine again on the same dirs and socket (stopping it first
    /// if it runs) and waits until it answers. Containers started by
    /// [`Dockerd::run_container`] come back (restart policy unless-stopped).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let names = self.containers.lock().map(|c| c.clone()).unwrap_or_default();
            if !names.is_empty() {
                let mut cmd = Command::new(find_binary("docker", "docker.io"));
                cmd.arg("-H").arg(self.host()).args(["rm", "-f"]).args(&names);
                isolate_cli(&mut cmd, &self.path("cli"));
                let _ = procs::run_with_deadline(&mut cmd, Duration::from_secs(10));
            }
            procs::stop_group(&mut child, DROP_GRACE);
        }
        leftovers::clean(self.dir.path());
    }
}

/// Keeps the CLI from reading the user's docker config and environment.
fn isolate_cli(cmd: &mut Command, config_dir: &Path) {
    cmd.env("DOCKER_CONFIG", config_dir);
    for var in ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"] {
        cmd.env_remove(var);
    }
}

fn write(path: &Path, text: &str) {
    File::create(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
