//! The binary under test, started in one place: [`Launch`] builds every start, a
//! one-shot command such as `bootgate check` ([`bootgate`], [`check`]) or a `run` or
//! `serve` daemon ([`Launch::start`]), with the same clean environment.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, setrlimit};
use serde_json::Value;
use tempfile::TempDir;

use super::daemon::Daemon;
use super::notify::NotifySocket;

/// The binary cargo built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_bootgate");

/// Inherited variables that would change what the binary does: which policy or Docker
/// engine it sees, where it listens, every runtime schedule, a textfile every daemon
/// writes, the bus it asks, the log level, whether a terminal gets colours, and (as if systemd had started it) the service manager it
/// reports to, a watchdog naming another process, and logging to the journal.
const INHERITED: [&str; 12] = [
    "NO_COLOR",
    "BOOTGATE_POLICY",
    "BOOTGATE_LISTEN",
    "BOOTGATE_INTERVAL",
    "BOOTGATE_TEXTFILE",
    "BOOTGATE_LOG",
    "DOCKER_HOST",
    "DBUS_SYSTEM_BUS_ADDRESS",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "JOURNAL_STREAM",
];

/// The policy a daemon is started on.
enum Policy {
    /// The file as given.
    Text(String),
    /// `version: 1` and a `server:` listening on the daemon's port, then the rest.
    Listening { rest: String, allow_run: bool },
    /// The file already in its directory (a second daemon on the same one).
    Kept,
}

/// How the binary is started: a one-shot command ([`Launch::command`], then
/// [`Launch::output`]) or a daemon ([`Launch::run`], [`Launch::listening`],
/// [`Launch::gate`], or `serve` after it with [`Daemon::then`]; then [`Launch::start`]).
/// Every test starts it through here; a daemon is stopped when its [`Daemon`] drops.
pub struct Launch {
    /// The command line after the binary; for a daemon, what follows its dirs.
    args: Vec<OsString>,
    /// `run` or `serve`, for a daemon.
    daemon: Option<&'static str>,
    policy: Policy,
    /// Holds `policy.yaml`, the run and state dirs `run` and `state`, and the logs;
    /// a fresh temp dir unless the test names one.
    dir: Option<(PathBuf, Option<Arc<TempDir>>)>,
    /// Where the daemon's endpoint listens, for the HTTP helpers of [`Daemon`].
    port: Option<u16>,
    notify: Option<PathBuf>,
    watchdog: Option<Duration>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Stdio>,
    stderr: Option<Stdio>,
    fd_limit: Option<u64>,
    through: Option<Box<dyn FnOnce(Vec<OsString>) -> Command>>,
}

impl Launch {
    /// `bootgate ARGS`, to run to completion.
    pub fn command(args: &[&str]) -> Launch {
        Launch::new(None, Policy::Kept, args.iter().map(OsString::from).collect())
    }

    /// `bootgate run` on `policy` (the whole file).
    pub fn run(policy: impl Into<String>) -> Launch {
        Launch::new(Some("run"), Policy::Text(policy.into()), Vec::new())
    }

    /// `bootgate run` serving on a free port: its policy is `version: 1`, a `server:`
    /// listening there, then `rest` (any other sections and the checks).
    pub fn listening(rest: impl Into<String>) -> Launch {
        let policy = Policy::Listening { rest: rest.into(), allow_run: false };
        Launch { port: Some(super::free_port()), ..Launch::new(Some("run"), policy, Vec::new()) }
    }

    /// [`Launch::listening`] with the `gate` settings (a YAML flow mapping) and `checks`
    /// (a YAML block list), checked again every second after the gate.
    pub fn gate(gate: &str, checks: &str) -> Launch {
        Launch::listening(format!("gate: {gate}\nruntime: {{interval: 1s}}\nchecks:\n{checks}"))
    }

    fn new(daemon: Option<&'static str>, policy: Policy, args: Vec<OsString>) -> Launch {
        Launch {
            args,
            daemon,
            policy,
            dir: None,
            port: None,
            notify: None,
            watchdog: None,
            env: Vec::new(),
            stdin: None,
            stderr: None,
            fd_limit: None,
            through: None,
        }
    }

    /// A daemon sharing `dir`, `port` and the policy already there (see [`Daemon::then`]).
    pub(super) fn again(command: &'static str, dir: (PathBuf, Option<Arc<TempDir>>), port: Option<u16>) -> Launch {
        Launch { dir: Some(dir), port, ..Launch::new(Some(command), Policy::Kept, Vec::new()) }
    }

    /// Lets anyone who reaches the endpoint run a check now (`server.allow_run`).
    pub fn allow_run(mut self) -> Launch {
        match &mut self.policy {
            Policy::Listening { allow_run, .. } => *allow_run = true,
            _ => panic!("allow_run needs the server line of Launch::listening"),
        }
        self
    }

    /// Works in `dir`, which the caller keeps, instead of a temp dir of its own.
    pub fn in_dir(mut self, dir: &Path) -> Launch {
        self.dir = Some((dir.to_path_buf(), None));
        self
    }

    /// Reports to `socket` as systemd's NOTIFY_SOCKET.
    pub fn notify(mut self, socket: &NotifySocket) -> Launch {
        self.notify = Some(socket.path().to_path_buf());
        self
    }

    /// Has systemd's watchdog expect a ping within `every`.
    pub fn watchdog(mut self, every: Duration) -> Launch {
        self.watchdog = Some(every);
        self
    }

    /// Sets `key` to `value` in its environment.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Launch {
        self.env.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Serves on 127.0.0.1:`port` whatever its policy says: through `--listen` when
    /// `flag`, else through `$BOOTGATE_LISTEN`.
    pub fn listen_over_policy(mut self, port: u16, flag: bool) -> Launch {
        let addr = format!("127.0.0.1:{port}");
        self.port = Some(port);
        if flag {
            self.args.extend([OsString::from("--listen"), addr.into()]);
            self
        } else {
            self.env("BOOTGATE_LISTEN", addr)
        }
    }

    /// Keeps a metrics textfile at `path` (`--textfile`).
    pub fn textfile(mut self, path: &Path) -> Launch {
        self.args.extend([OsString::from("--textfile"), path.into()]);
        self
    }

    /// Reads its stdin from `file` (closed otherwise).
    pub fn stdin(mut self, file: File) -> Launch {
        self.stdin = Some(file.into());
        self
    }

    /// Writes its stderr into `file` instead of the captured output or log.
    pub fn stderr(mut self, file: File) -> Launch {
        self.stderr = Some(file.into());
        self
    }

    /// Runs under an open-file limit of `n`, soft and hard, so it cannot raise it.
    pub fn fd_limit(mut self, n: u64) -> Launch {
        self.fd_limit = Some(n);
        self
    }

    /// Starts it through the command `wrap` makes of its command line (the binary and
    /// its arguments), such as a namespace or a pty that then runs it; the environment
    /// and output set here apply to that command.
    pub fn through(mut self, wrap: impl FnOnce(Vec<OsString>) -> Command + 'static) -> Launch {
        self.through = Some(Box::new(wrap));
        self
    }

    /// Points the system D-Bus at a socket nobody listens on, in its dir: a reboot request
    /// fails at once (said as "manual intervention needed"), and the machine never reboots.
    pub fn without_system_bus(mut self) -> Launch {
        let socket = self.dir().join("no-bus");
        self.env("DBUS_SYSTEM_BUS_ADDRESS", format!("unix:path={}", socket.display()))
    }

    /// The directory it works in (made now if it is to be a temp dir of its own).
    pub fn dir(&mut self) -> &Path {
        let (path, _) = self.dir.get_or_insert_with(|| {
            let dir = Arc::new(tempfile::tempdir().expect("cannot create a temp dir"));
            (dir.path().to_path_buf(), Some(dir))
        });
        path
    }

    /// Runs the one-shot command to completion; stdin closed, output captured.
    pub fn output(self) -> Output {
        assert!(self.daemon.is_none(), "a daemon is started with Launch::start");
        let mut cmd = self.into_command();
        cmd.output().unwrap_or_else(|e| panic!("cannot run bootgate: {e}"))
    }

    /// [`Launch::output`] of a command that must end by itself: killed, and the test
    /// failed, when it still runs after `timeout`.
    pub fn output_within(self, timeout: Duration) -> Output {
        assert!(self.daemon.is_none(), "a daemon is started with Launch::start");
        super::run_bounded(&mut self.into_command(), timeout)
    }

    /// Starts the daemon: `bootgate --policy DIR/policy.yaml COMMAND --run-dir DIR/run
    /// --state-dir DIR/state`, logging its stdout and stderr into files in DIR.
    pub fn start(mut self) -> Daemon {
        let command = self.daemon.expect("a one-shot command is run with Launch::output");
        let dir = self.dir().to_path_buf();
        let policy = dir.join("policy.yaml");
        let text = match std::mem::replace(&mut self.policy, Policy::Kept) {
            Policy::Text(text) => Some(text),
            Policy::Listening { rest, allow_run } => {
                let port = self.port.expect("a listening daemon has a port");
                let allow = if allow_run { ", allow_run: true" } else { "" };
                Some(format!("version: 1\nserver: {{listen: '127.0.0.1:{port}'{allow}}}\n{rest}"))
            }
            Policy::Kept => None,
        };
        if let Some(text) = text {
            std::fs::write(&policy, text).expect("cannot write the policy");
        }
        let mut args: Vec<OsString> = vec!["--policy".into(), policy.into(), command.into()];
        args.extend(["--run-dir".into(), dir.join("run").into(), "--state-dir".into(), dir.join("state").into()]);
        args.append(&mut self.args);
        self.args = args;

        // Numbered, so a second daemon in the same dir keeps the first one's logs.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = |stream: &str| dir.join(format!("{command}-{n}.{stream}.log"));
        let (stdout, stderr) = (log("stdout"), log("stderr"));
        let file = |path: &Path| File::create(path).expect("cannot create a log file");
        let stderr_to = self.stderr.take().unwrap_or_else(|| file(&stderr).into());
        let (dir_parts, port) = (self.dir.clone().expect("set above"), self.port);
        let mut cmd = self.into_command();
        cmd.stdout(file(&stdout)).stderr(stderr_to);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start bootgate {command}: {e}"));
        Daemon::new(child, dir_parts, port, stdout, stderr)
    }

    fn into_command(self) -> Command {
        let mut argv = vec![OsString::from(BIN)];
        argv.extend(self.args);
        let mut cmd = match self.through {
            Some(wrap) => wrap(argv),
            None => {
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                cmd
            }
        };
        for key in INHERITED {
            cmd.env_remove(key);
        }
        if self.daemon.is_some() {
            cmd.env("BOOTGATE_LOG", "info");
        }
        if let Some(path) = &self.notify {
            cmd.env("NOTIFY_SOCKET", path);
        }
        if let Some(every) = self.watchdog {
            cmd.env("WATCHDOG_USEC", every.as_micros().to_string());
        }
        cmd.envs(self.env);
        cmd.stdin(self.stdin.unwrap_or_else(Stdio::null));
        if let Some(stderr) = self.stderr {
            cmd.stderr(stderr);
        }
        if let Some(limit) = self.fd_limit {
            // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent's.
            unsafe {
                cmd.pre_exec(move || setrlimit(Resource::RLIMIT_NOFILE, limit, limit).map_err(std::io::Error::from));
            }
        }
        cmd
    }
}

/// Runs `bootgate ARGS` to completion, in the clean environment of [`Launch`].
pub fn bootgate(args: &[&str]) -> Output {
    Launch::command(args).output()
}

/// Runs `bootgate check --format json` on `policy`; returns exit code, verdict, wall time.
pub fn check(policy: &str) -> (i32, Value, Duration) {
    let (code, verdict, took, _) = check_with(policy, &[]);
    (code, verdict, took)
}

/// [`check`] with `env` added to the binary's environment, plus everything it printed.
pub fn check_with(policy: &str, env: &[(&str, &str)]) -> (i32, Value, Duration, Output) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    let launch = Launch::command(&["check", "--format", "json", "--policy", path.to_str().unwrap()]);
    let launch = env.iter().fold(launch, |launch, (key, value)| launch.env(key, value));
    let started = Instant::now();
    let out = launch.output();
    let took = started.elapsed();
    let verdict: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON verdict ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), verdict, took, out)
}

/// The entry for check `name` in a JSON verdict; panics with the verdict if there is none.
pub fn result<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {v:#}"))
}

/// The message of check `name` in a JSON verdict, empty if it has none.
pub fn message(v: &Value, name: &str) -> String {
    result(v, name)["message"].as_str().unwrap_or_default().to_string()
}

/// A policy's line for a `disk` check of `/` named `name` that always has room,
/// with `extra` keys (`, interval: 1s`).
pub fn disk(name: &str, extra: &str) -> String {
    format!("  - {{name: {name}, kind: disk, path: /, min_free_percent: 0{extra}}}\n")
}
