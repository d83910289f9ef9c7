//! Command line: parses arguments, sets up logging, dispatches, picks the exit code.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};

use crate::daemon::{self, Dirs};
use crate::exit;
use crate::policy::{self, PolicyError};
use crate::process::{Notifier, reaper};

mod check;
mod generate;
mod inspect;
mod migrate;
mod release;
mod wait;

/// What `--help` says after the options: the environment read and the exit codes.
const AFTER_HELP: &str = "\
Environment:
  BOOTGATE_POLICY          policy file when --policy is not given
  BOOTGATE_LISTEN          run, serve: the endpoint's ADDR:PORT (as --listen)
  BOOTGATE_WEB_CONFIG      run, serve: the endpoint's TLS and basic auth file (as --web-config)
  BOOTGATE_RUN_DIR         run, serve, status, wait, release: directory of verdict.json (as --run-dir)
  BOOTGATE_STATE_DIR       run, serve, history, release: directory of the boot history (as --state-dir)
  BOOTGATE_TEXTFILE        run, serve: the metrics textfile (as --textfile)
  BOOTGATE_MOTD            run, serve: the verdict's two lines for logins (as --motd)
  BOOTGATE_INTERVAL        run, serve: re-check interval over the policy's runtime.interval
  BOOTGATE_LOG             log filter (error, warn, info, debug, or per-module directives)
  NO_COLOR                 when set and not empty: no colours or other escape codes
  COLUMNS                  the terminal width of check's progress line
  DOCKER_HOST              the Docker engine of docker and containers checks
  DBUS_SYSTEM_BUS_ADDRESS  the system bus of systemd checks and the rauc backend
  PATH                     where bootc and rpm-ostree (a GRUB fallback made permanent) and
                           mount (a read-only /boot remounted for the grubenv mark) are found
  SYSTEMD_ESP_PATH, SYSTEMD_XBOOTLDR_PATH
                           where the bless-boot backend finds the boot entries
  NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID
                           set by systemd: where READY=1 and STATUS= go, the watchdog
  JOURNAL_STREAM           set by systemd: log to the journal natively

Exit codes:
  0   healthy, gate passed, or done
  1   degraded (check, status)
  2   unhealthy, or the gate failed (wait: also a verdict file that cannot be used)
  64  usage error
  66  input missing or unreadable (boot-status --disk, history)
  70  internal error
  73  an output file could not be created
  75  no verdict yet: the gate is still running (status; wait when its --timeout ran out)
  78  invalid policy (EX_CONFIG)";

/// Boot health gate for A/B-partitioned immutable operating systems.
#[derive(Debug, Parser)]
#[command(name = "bootgate", version, about, after_long_help = AFTER_HELP)]
struct Cli {
    /// Policy file for run, serve, check and validate; may also follow the command.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The `--policy` of a command that reads one.
#[derive(Debug, Default, clap::Args)]
struct PolicyArg {
    /// Policy file (else $BOOTGATE_POLICY, /etc/bootgate/policy.yaml, /usr/share/bootgate/policy.yaml, the built-in default).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

/// Where `run` and `serve` keep their files.
#[derive(Debug, clap::Args)]
struct DirArgs {
    /// Directory of this boot's verdict.json.
    #[arg(long, env = "BOOTGATE_RUN_DIR", default_value = "/run/bootgate")]
    run_dir: PathBuf,
    /// Directory for the boot history.
    #[arg(long, env = "BOOTGATE_STATE_DIR", default_value = "/var/lib/bootgate")]
    state_dir: PathBuf,
    /// Also write the metrics to this file after every round (node_exporter's textfile collector).
    #[arg(long, value_name = "PATH", env = "BOOTGATE_TEXTFILE")]
    textfile: Option<PathBuf>,
    /// Write the verdict in two lines here for logins (default: motd.d/bootgate beside the
    /// run dir, /run/motd.d/bootgate for the default run dir).
    #[arg(long, value_name = "PATH", env = "BOOTGATE_MOTD")]
    motd: Option<PathBuf>,
}

/// Where and how `run` and `serve` serve the endpoint, over the policy's.
#[derive(Debug, Clone, clap::Args)]
struct ListenArg {
    /// Serve the endpoint on this address:port instead of the policy's server.listen.
    #[arg(long, value_name = "ADDR", env = "BOOTGATE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Serve it with the TLS and basic auth of this exporter-toolkit web config file
    /// instead of the policy's server.web_config.
    #[arg(long, value_name = "PATH", env = "BOOTGATE_WEB_CONFIG")]
    web_config: Option<PathBuf>,
}

impl DirArgs {
    fn dirs(self) -> Dirs {
        let motd = self.motd.unwrap_or_else(|| daemon::motd::beside(&self.run_dir));
        Dirs { run: self.run_dir, state: self.state_dir, textfile: self.textfile, motd }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the boot gate, then keep re-checking (the systemd service).
    Run {
        #[command(flatten)]
        policy: PolicyArg,
        #[command(flatten)]
        dirs: DirArgs,
        #[command(flatten)]
        listen: ListenArg,
    },
    /// Serve the endpoint for a boot whose gate `run` already decided (bootgate-report.service).
    Serve {
        #[command(flatten)]
        policy: PolicyArg,
        #[command(flatten)]
        dirs: DirArgs,
        #[command(flatten)]
        listen: ListenArg,
    },
    /// Run every check once and print the verdict (exit 0 healthy, 1 degraded, 2 unhealthy).
    Check {
        #[command(flatten)]
        policy: PolicyArg,
        /// What to print (text: a table; json: the verdict document).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Validate policy files, each on its own (exit 78 when any is invalid).
    Validate {
        #[command(flatten)]
        policy: PolicyArg,
        /// The files to validate (default: the policy `--policy` or the lookup order finds).
        #[arg(value_name = "FILE", conflicts_with = "policy")]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the policy.
    Schema,
    /// Print the boot history, newest first.
    History {
        /// Directory holding the boot history.
        #[arg(long, env = "BOOTGATE_STATE_DIR", default_value = "/var/lib/bootgate")]
        state_dir: PathBuf,
        /// What to print (text: a table; json: an array of boots).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Show at most this many boots.
        #[arg(long, value_name = "N", default_value_t = crate::record::history::KEEP)]
        limit: usize,
    },
    /// Print this boot's verdict in two lines (exit 0 healthy, 1 degraded, 2 unhealthy, 75 no verdict yet).
    Status {
        /// Directory of this boot's verdict.json.
        #[arg(long, env = "BOOTGATE_RUN_DIR", default_value = "/run/bootgate")]
        run_dir: PathBuf,
    },
    /// Wait until this boot's gate, soak included, is decided (exit 0 passed, 2 failed, 75 timed out).
    ///
    /// Prints one line: `passed: ...`, `failed: ... (failing: ...)`, or `still running after D: ...`.
    /// A verdict of an earlier boot is not this boot's; a missing run dir or verdict is
    /// waited for. A verdict file that cannot be used fails closed (exit 2), as `run`
    /// fails the boot closed on it. For update clients' hooks, which should give a
    /// --timeout shorter than their own time limit for the hook.
    Wait {
        /// Give up after this long (30s, 5m, a number of seconds, or infinity); 0 looks once.
        #[arg(long, value_name = "D", default_value = "infinity", value_parser = wait::parse_timeout)]
        timeout: std::time::Duration,
        /// Directory of this boot's verdict.json.
        #[arg(long, env = "BOOTGATE_RUN_DIR", default_value = "/run/bootgate")]
        run_dir: PathBuf,
    },
    /// Lift a hold on updates (exit 0; 64 when the hold is on another version).
    ///
    /// Removes the hold file update agents condition on (RUN_DIR/hold-updates) and records
    /// the release in the state dir, so the next boot does not hold the same failures
    /// again; only failures after the release count toward a new hold.
    Release {
        /// Lift the hold only when it is on this version (and record its release even without one).
        version: Option<String>,
        /// Directory of the hold file.
        #[arg(long, env = "BOOTGATE_RUN_DIR", default_value = "/run/bootgate")]
        run_dir: PathBuf,
        /// Directory of the boot history, where the release is recorded.
        #[arg(long, env = "BOOTGATE_STATE_DIR", default_value = "/var/lib/bootgate")]
        state_dir: PathBuf,
    },
    /// Print a policy equivalent to another boot checker's setup (changes nothing).
    Migrate {
        #[command(subcommand)]
        from: MigrateFrom,
    },
    /// Print the A/B partitions and their GPT boot attributes.
    BootStatus {
        /// Read this disk image (or block device) instead of the booted disk.
        #[arg(long, value_name = "IMAGE")]
        disk: Option<PathBuf>,
        /// What to print (text: one line a partition; json: the boot status document).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// What `migrate` reads.
#[derive(Debug, Subcommand)]
enum MigrateFrom {
    /// Print the policy for this host's greenboot scripts and greenboot.conf, and the
    /// greenboot units to disable and to keep (exit 0; 66 when there is no greenboot tree).
    Greenboot {
        /// Read the greenboot tree under this directory instead of `/`.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
    },
}

impl Command {
    /// The subcommand's own `--policy`, or `None` for one that reads no policy.
    fn policy_arg(&mut self) -> Option<&mut PolicyArg> {
        match self {
            Command::Run { policy, .. }
            | Command::Serve { policy, .. }
            | Command::Check { policy, .. }
            | Command::Validate { policy, .. } => Some(policy),
            Command::Schema
            | Command::BootStatus { .. }
            | Command::History { .. }
            | Command::Migrate { .. }
            | Command::Status { .. }
            | Command::Release { .. }
            | Command::Wait { .. } => None,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Command::Run { .. } => "run",
            Command::Serve { .. } => "serve",
            Command::Check { .. } => "check",
            Command::Validate { .. } => "validate",
            Command::Schema => "schema",
            Command::BootStatus { .. } => "boot-status",
            Command::History { .. } => "history",
            Command::Migrate { .. } => "migrate",
            Command::Status { .. } => "status",
            Command::Wait { .. } => "wait",
            Command::Release { .. } => "release",
        }
    }
}

/// Moves a `--policy` written before the command into the command; an error for a
/// command that reads no policy, or when it is given twice.
fn place_policy(cli: &mut Cli) -> Result<(), String> {
    let Some(top) = cli.policy.take() else { return Ok(()) };
    let name = cli.command.name();
    let Some(arg) = cli.command.policy_arg() else {
        return Err(format!("`--policy` is not used by `{name}`: it reads no policy"));
    };
    if arg.policy.is_some() {
        return Err("`--policy` is given twice".into());
    }
    if let Command::Validate { files, .. } = &cli.command
        && !files.is_empty()
    {
        return Err("`validate` takes FILE arguments or `--policy`, not both".into());
    }
    if let Some(arg) = cli.command.policy_arg() {
        arg.policy = Some(top);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Format {
    Text,
    Json,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let matches = match generate::with_hidden(Cli::command()).try_get_matches() {
        Ok(matches) => matches,
        Err(e) => return parse_error(&e),
    };
    if let Some((generate::NAME, sub)) = matches.subcommand() {
        if matches.contains_id("policy") {
            eprintln!("bootgate: `--policy` is not used by `generate`: it reads no policy");
            return exit::USAGE;
        }
        return generate::main(sub);
    }
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return parse_error(&e),
    };
    if let Err(why) = place_policy(&mut cli) {
        eprintln!("bootgate: {why}");
        return exit::USAGE;
    }
    let verbose = matches!(cli.command, Command::Run { .. } | Command::Serve { .. });
    crate::process::logging::init(verbose);
    match cli.command {
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&policy::schema::policy_schema()).expect("schema is JSON"));
            exit::OK
        }
        Command::Validate { policy, files } => inspect::validate(policy.policy, files),
        Command::BootStatus { disk, format } => inspect::boot_status(disk, format),
        Command::Migrate { from: MigrateFrom::Greenboot { root } } => migrate::greenboot(&root),
        Command::History { state_dir, format, limit } => inspect::history(&state_dir, format, limit),
        Command::Status { run_dir } => inspect::status(&run_dir),
        Command::Wait { timeout, run_dir } => wait::wait(&run_dir, timeout),
        Command::Release { version, run_dir, state_dir } => release::release(version.as_deref(), &run_dir, &state_dir),
        Command::Check { policy: PolicyArg { policy: path }, format } => {
            let loaded = match policy::load(path.as_deref()) {
                Ok(l) => l,
                Err(e) => return bad_policy(&e),
            };
            // One check round on the calling thread: the checks still run at once (their
            // waits on I/O and timers interleave, blocking calls go to the blocking pool),
            // and the command does not pay for worker threads it would start and join.
            with_runtime(Flavour::OneThread, loaded.policy.blocking_threads(), check::check(loaded, format))
        }
        Command::Run { policy: PolicyArg { policy: path }, dirs, listen } => {
            let loaded = match load_serving(path.as_deref(), &listen) {
                Ok(l) => l,
                Err(e) => {
                    // Fail closed: no READY, the reason in STATUS and the journal.
                    Notifier::from_env().status(&format!("bad policy, gate failed closed: {}", first_line(&e)));
                    return bad_policy(&e);
                }
            };
            with_runtime(Flavour::Workers, loaded.policy.blocking_threads(), async move {
                let code = daemon::run(loaded, reloader(path, listen), dirs.dirs()).await;
                reaper::finish(std::time::Duration::from_secs(1));
                code
            })
        }
        Command::Serve { policy: PolicyArg { policy: path }, dirs, listen } => {
            let loaded = match load_serving(path.as_deref(), &listen) {
                Ok(l) => l,
                Err(e) => return bad_policy(&e),
            };
            with_runtime(Flavour::Workers, loaded.policy.blocking_threads(), async move {
                let code = daemon::serve(loaded, reloader(path, listen), dirs.dirs()).await;
                reaper::finish(std::time::Duration::from_secs(1));
                code
            })
        }
    }
}

/// Prints a parse error (or the help and version it carries) and returns the exit code.
fn parse_error(e: &clap::Error) -> i32 {
    let _ = e.print();
    if e.use_stderr() { exit::USAGE } else { exit::OK }
}

/// SIGHUP re-reads the policy by the same lookup order the daemon started with, and
/// `--listen` and `--web-config` still win over its `server` section.
fn reloader(explicit: Option<PathBuf>, endpoint: ListenArg) -> daemon::Reloader {
    Box::new(move || load_serving(explicit.as_deref(), &endpoint))
}

/// The policy of `run` or `serve`, its `server.listen` and `server.web_config` replaced by
/// `--listen` and `--web-config` when given.
fn load_serving(explicit: Option<&std::path::Path>, endpoint: &ListenArg) -> Result<policy::Loaded, PolicyError> {
    let mut loaded = policy::load(explicit)?;
    if let Some(addr) = endpoint.listen {
        loaded.policy.listen = addr;
    }
    if let Some(path) = &endpoint.web_config {
        loaded.policy.web_config = Some(path.clone());
    }
    Ok(loaded)
}

/// Which threads drive a command's tasks.
#[derive(Debug, Clone, Copy)]
enum Flavour {
    /// The daemons: worker threads, so the endpoint answers while the checks run.
    Workers,
    /// A one-shot command: the calling thread alone.
    OneThread,
}

/// Runs `fut` on a runtime whose blocking pool holds at most `blocking` threads (see
/// [`policy::Policy::blocking_threads`]); the policy is read before, so its size is the
/// policy's at start (a reload keeps it).
fn with_runtime(flavour: Flavour, blocking: usize, fut: impl std::future::Future<Output = i32>) -> i32 {
    let mut builder = match flavour {
        Flavour::Workers => tokio::runtime::Builder::new_multi_thread(),
        Flavour::OneThread => tokio::runtime::Builder::new_current_thread(),
    };
    match builder.max_blocking_threads(blocking).enable_all().build() {
        Ok(rt) => {
            let code = rt.block_on(fut);
            // A check cut off at its timeout may leave a blocking call behind (a hung
            // resolver, a stuck device): the verdict is given, so do not wait for it.
            rt.shutdown_timeout(std::time::Duration::from_millis(100));
            code
        }
        Err(e) => {
            eprintln!("bootgate: cannot start the async runtime: {e}");
            exit::SOFTWARE
        }
    }
}

pub(super) fn bad_policy(e: &PolicyError) -> i32 {
    eprintln!("bootgate: {e}");
    exit::CONFIG
}

fn first_line(e: &PolicyError) -> String {
    match e {
        PolicyError::Invalid { problems, .. } => problems.first().map(ToString::to_string).unwrap_or_default(),
        other => other.to_string(),
    }
}
