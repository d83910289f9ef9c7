//! A software TPM (swtpm) on loopback TCP, plus tpm2-tools helpers to read
//! and change it from outside the code under test.

use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::free_port_pair;
use super::procs::{self, find_binary, run_bounded};

const READY_TIMEOUT: Duration = Duration::from_secs(5);
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// Ports are only free "a moment ago"; a lost race is retried on new ones.
const START_ATTEMPTS: usize = 5;

/// A running swtpm, stopped (process group) and its state removed on drop.
pub struct Swtpm {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Swtpm {
    /// Starts a fresh TPM 2.0 (already initialised and started up) on free ports.
    pub fn start() -> Swtpm {
        let bin = find_binary("swtpm", "swtpm");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&bin) {
                Ok(tpm) => return tpm,
                Err(log) if log.contains("in use") => last_log = log,
                Err(log) => panic!("swtpm exited during startup:\n{log}"),
            }
        }
        panic!("swtpm found its ports taken {START_ATTEMPTS} times; last log:\n{last_log}");
    }

    fn try_start(bin: &Path) -> Result<Swtpm, String> {
        let dir = tempfile::Builder::new()
            .prefix("bgtpm")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for swtpm: {e}"));
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap_or_else(|e| panic!("cannot create {}: {e}", state.display()));
        let log_path = dir.path().join("swtpm.log");
        let log = File::create(&log_path).unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let port = free_port_pair();
        let mut cmd = Command::new(bin);
        cmd.arg("socket")
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(format!("dir={}", state.display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .arg("--flags")
            .arg("not-need-init,startup-clear")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot duplicate the swtpm log handle"))
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start `{}`: {e}", procs::describe(&cmd)));
        let mut tpm = Swtpm { child, port, dir };

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(tpm);
            }
            if let Ok(Some(status)) = tpm.child.try_wait() {
                return Err(format!("{status}\n{}", procs::tail(&log_path, 40)));
            }
            if Instant::now() >= deadline {
                panic!(
                    "swtpm did not accept connections on 127.0.0.1:{port} within {READY_TIMEOUT:?}; log:\n{}",
                    procs::tail(&log_path, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The TCTI string for tss-esapi and tpm2-tools: `swtpm:host=127.0.0.1,port=P`.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// The TPM command port (the control channel is `port() + 1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The swtpm process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding the TPM state and `swtpm.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs a tpm2-tools command against this TPM: `args[0]` is the tool
    /// (`tpm2_pcrread` or `pcrread`), `-T <tcti>` is inserted right after it.
    pub fn tpm2(&self, args: &[&str]) -> Output {
        let (tool, rest) = args.split_first().expect("tpm2() needs at least the tool name");
        let tool = if tool.starts_with("tpm2_") { tool.to_string() } else { format!("tpm2_{tool}") };
        let mut cmd = Command::new(find_binary(&tool, "tpm2-tools"));
        cmd.arg("-T").arg(self.tcti()).args(rest).env_remove("TPM2TOOLS_TCTI");
        run_bounded(&mut cmd, TOOL_TIMEOUT)
    }

    /// Like [`Swtpm::tpm2`], but panics on failure and returns stdout.
    pub fn tpm2_ok(&self, args: &[&str]) -> String {
        let out = self.tpm2(args);
        if !out.status.success() {
            panic!(
                "`{}` against {} failed ({}):\n{}",
                args.join(" "),
                self.tcti(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// TPM2_PT_MANUFACTURER as text (`IBM` for swtpm).
    pub fn manufacturer(&self) -> String {
        let out = self.tpm2_ok(&["tpm2_getcap", "properties-fixed"]);
        parse_manufacturer(&out)
            .unwrap_or_else(|| panic!("no TPM2_PT_MANUFACTURER value in tpm2_getcap output:\n{out}"))
    }

    /// The sha256 bank value of PCR `index`, as 64 lowercase hex digits.
    pub fn pcr_sha256(&self, index: u32) -> String {
        let out = self.tpm2_ok(&["tpm2_pcrread", &format!("sha256:{index}")]);
        parse_pcr(&out, index).unwrap_or_else(|| panic!("no sha256 PCR {index} in tpm2_pcrread output:\n{out}"))
    }

    /// Extends PCR `index` (sha256 bank) with a fixed digest; returns the new value.
    pub fn extend_pcr(&self, index: u32) -> String {
        let digest = "42".repeat(32);
        self.tpm2_ok(&["tpm2_pcrextend", &format!("{index}:sha256={digest}")]);
        self.pcr_sha256(index)
    }

    /// The path of swtpm's own log, for diagnosing a test.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("swtpm.log")
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        procs::stop_group(&mut self.child, Duration::from_secs(2));
    }
}

/// Reads `value: "IBM"` in the block after `TPM2_PT_MANUFACTURER:`.
fn parse_manufacturer(getcap: &str) -> Option<String> {
    let lines = getcap.lines().skip_while(|l| l.trim() != "TPM2_PT_MANUFACTURER:").skip(1);
    lines
        .take_while(|l| l.starts_with(' '))
        .find_map(|l| l.trim().strip_prefix("value:"))
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// Reads `  0 : 0xABCD…` for `index` from tpm2_pcrread output.
fn parse_pcr(pcrread: &str, index: u32) -> Option<String> {
    pcrread.lines().find_map(|line| {
        let (idx, value) = line.split_once(':')?;
        if idx.trim().parse::<u32>().ok()? != index {
            return None;
        }
        let hex = value.trim().strip_prefix("0x")?;
        (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| hex.to_ascii_lowercase())
    })
}
