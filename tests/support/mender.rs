//! The real Mender client (Debian `mender-client` 3.4) in standalone mode, and
//! `mender-artifact` to build the Artifacts it installs, in a directory of the test's own.
//!
//! Mender reads two fixed paths: `/etc/mender/artifact_info` (the installed Artifact's
//! name before the first update) and `/usr/share/mender/modules/v3/TYPE` (the update
//! module). Each `mender` command therefore runs in a private mount namespace
//! (`unshare -m`, whose mounts propagate nowhere) with the test's own directories bound
//! over those two: the host's files are never read or written, and tests in parallel
//! each see their own. Everything else has a flag: `-c` the configuration, `-d` the
//! data dir (Artifact database, the scripts of the installed Artifact, the module's
//! work dirs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::procs::{find_binary, run_bounded};

/// The update module's type, and the device type of the device and the Artifacts.
pub const MODULE: &str = "bootgate-test";
const DEVICE: &str = "bootgate-test-device";

/// A Mender client's own files in a temp dir: `etc/` (bound over `/etc/mender`),
/// `modules/` (over `/usr/share/mender/modules/v3`), `data/` and `mender.conf`. A clone
/// shares them (to run a command from another thread).
#[derive(Clone)]
pub struct Mender {
    dir: std::sync::Arc<tempfile::TempDir>,
    mender: PathBuf,
    env: Vec<(String, String)>,
}

impl Mender {
    /// A device that runs the factory Artifact, whose Mender retries a state script
    /// that exits 21 every `retry_interval` seconds for up to `retry_timeout` seconds.
    ///
    /// Its update module installs nothing, answers that it needs no reboot and can roll
    /// back, and appends every state it is called in to `states.log`.
    pub fn new(retry_interval: u32, retry_timeout: u32) -> Mender {
        let mender = find_binary("mender", "mender-client");
        find_binary("unshare", "util-linux");
        assert!(
            Path::new("/etc/mender").is_dir() && Path::new("/usr/share/mender/modules/v3").is_dir(),
            "the mount points /etc/mender and /usr/share/mender/modules/v3 come with the Debian package mender-client"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for sub in ["etc", "modules", "data"] {
            std::fs::create_dir(p.join(sub)).unwrap();
        }
        std::fs::write(p.join("etc/artifact_info"), "artifact_name=factory\n").unwrap();
        std::fs::write(p.join("data/device_type"), format!("device_type={DEVICE}\n")).unwrap();
        let conf = format!(
            "{{\"StateScriptRetryIntervalSeconds\": {retry_interval}, \"StateScriptRetryTimeoutSeconds\": {retry_timeout}, \"StateScriptTimeoutSeconds\": 60}}\n"
        );
        std::fs::write(p.join("mender.conf"), conf).unwrap();
        let module = format!(
            "#!/bin/sh\necho \"$1\" >> '{log}'\ncase \"$1\" in\n  NeedsArtifactReboot) echo No ;;\n  SupportsRollback) echo Yes ;;\nesac\nexit 0\n",
            log = p.join("states.log").display()
        );
        write_executable(&p.join("modules").join(MODULE), &module);
        Mender { dir: std::sync::Arc::new(dir), mender, env: Vec::new() }
    }

    /// The test's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sets `key` in the environment of every later `mender` command (and so of the
    /// state scripts it runs).
    pub fn env(&mut self, key: &str, value: impl AsRef<Path>) {
        self.env.push((key.into(), value.as_ref().display().to_string()));
    }

    /// Builds Artifact `name` of the test's module type, with these state scripts (each
    /// file's name is its state), into the test's directory.
    pub fn artifact(&self, name: &str, scripts: &[&Path]) -> PathBuf {
        let payload = self.dir().join("payload");
        std::fs::write(&payload, "payload\n").unwrap();
        let out = self.dir().join(format!("{name}.mender"));
        let tool = find_binary("mender-artifact", "mender-artifact");
        let mut cmd = Command::new(tool);
        cmd.args(["write", "module-image", "-T", MODULE, "-n", name, "-t", DEVICE, "-f"]).arg(&payload);
        for script in scripts {
            cmd.arg("-s").arg(script);
        }
        cmd.arg("-o").arg(&out);
        let done = run_bounded(&mut cmd, Duration::from_secs(60));
        assert!(done.status.success(), "mender-artifact write: {}", String::from_utf8_lossy(&done.stderr));
        out
    }

    /// `mender ARGS` (after its configuration, data dir and `--no-syslog`) in a mount
    /// namespace of its own with the test's files over Mender's fixed paths.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Output {
        let p = self.dir();
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "mount --bind \"$1/etc\" /etc/mender && mount --bind \"$1/modules\" /usr/share/mender/modules/v3 \
                 && shift && exec \"$@\"",
            )
            .arg("sh")
            .arg(p)
            .arg(&self.mender)
            .arg("-c")
            .arg(p.join("mender.conf"))
            .arg("-d")
            .arg(p.join("data"))
            .arg("--no-syslog")
            .args(args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        run_bounded(&mut cmd, timeout)
    }

    /// The name of the installed Artifact (`mender show-artifact`).
    pub fn artifact_name(&self) -> String {
        let out = self.run(&["show-artifact"], Duration::from_secs(30));
        assert!(out.status.success(), "show-artifact: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The update module's states so far, in order.
    pub fn states(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir().join("states.log")).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }
}

/// Writes `text` to `path`, executable.
pub fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
