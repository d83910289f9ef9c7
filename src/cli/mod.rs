//! Command line: parses arguments, sets up logging, dispatches, picks the exit code.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::daemon::{self, Dirs};
use crate::engine::{Health, Snapshot};
use crate::exit;
use crate::policy::{self, PolicyError};
use crate::report;

/// Boot health gate for A/B-partitioned immutable operating systems.
#[derive(Debug, Parser)]
#[command(name = "bootgate", version, about)]
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
}

impl DirArgs {
    fn dirs(self) -> Dirs {
        Dirs { run: self.run_dir, state: self.state_dir, textfile: self.textfile }
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
    },
    /// Serve the endpoint for a boot whose gate `run` already decided (bootgate-report.service).
    Serve {
        #[command(flatten)]
        policy: PolicyArg,
        #[command(flatten)]
        dirs: DirArgs,
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
        #[arg(long, value_name = "N", default_value_t = crate::history::KEEP)]
        limit: usize,
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

impl Command {
    /// The subcommand's own `--policy`, or `None` for one that reads no policy.
    fn policy_arg(&mut self) -> Option<&mut PolicyArg> {
        match self {
            Command::Run { policy, .. }
            | Command::Serve { policy, .. }
            | Command::Check { policy, .. }
            | Command::Validate { policy, .. } => Some(policy),
            Command::Schema | Command::BootStatus { .. } | Command::History { .. } => None,
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
enum Format {
    Text,
    Json,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { exit::OK };
        }
    };
    if let Err(why) = place_policy(&mut cli) {
        eprintln!("bootgate: {why}");
        return exit::USAGE;
    }
    let verbose = matches!(cli.command, Command::Run { .. } | Command::Serve { .. });
    crate::logging::init(verbose);
    match cli.command {
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&policy::schema::policy_schema()).expect("schema is JSON"));
            exit::OK
        }
        Command::Validate { policy, files } => validate(policy.policy, files),
        Command::BootStatus { disk, format } => boot_status(disk, format),
        Command::History { state_dir, format, limit } => history(&state_dir, format, limit),
        Command::Check { policy: PolicyArg { policy: path }, format } => with_runtime(async move {
            let loaded = match policy::load(path.as_deref()) {
                Ok(l) => l,
                Err(e) => return bad_policy(&e),
            };
            check(loaded, format).await
        }),
        Command::Run { policy: PolicyArg { policy: path }, dirs } => with_runtime(async move {
            let loaded = match policy::load(path.as_deref()) {
                Ok(l) => l,
                Err(e) => {
                    // Fail closed: no READY, the reason in STATUS and the journal.
                    crate::notify::Notifier::from_env()
                        .status(&format!("bad policy, gate failed closed: {}", first_line(&e)));
                    return bad_policy(&e);
                }
            };
            let code = daemon::run(loaded, reloader(path), dirs.dirs()).await;
            crate::reaper::finish(std::time::Duration::from_secs(1));
            code
        }),
        Command::Serve { policy: PolicyArg { policy: path }, dirs } => with_runtime(async move {
            let loaded = match policy::load(path.as_deref()) {
                Ok(l) => l,
                Err(e) => return bad_policy(&e),
            };
            let code = crate::serve::serve(loaded, reloader(path), dirs.dirs()).await;
            crate::reaper::finish(std::time::Duration::from_secs(1));
            code
        }),
    }
}

/// SIGHUP re-reads the policy by the same lookup order the daemon started with.
fn reloader(explicit: Option<PathBuf>) -> daemon::Reloader {
    Box::new(move || policy::load(explicit.as_deref()))
}

fn with_runtime(fut: impl std::future::Future<Output = i32>) -> i32 {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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

/// Validates each file on its own (or the policy the lookup order finds when none is
/// named), so one invalid file does not hide the verdict on the others.
fn validate(policy: Option<PathBuf>, files: Vec<PathBuf>) -> i32 {
    let targets: Vec<Option<PathBuf>> =
        if files.is_empty() { vec![policy] } else { files.into_iter().map(Some).collect() };
    let mut code = exit::OK;
    for target in targets {
        match policy::load(target.as_deref()) {
            Ok(loaded) => println!("{}: ok ({} checks)", loaded.source, loaded.policy.checks.len()),
            Err(e) => code = bad_policy(&e),
        }
    }
    code
}

fn boot_status(disk: Option<PathBuf>, format: Format) -> i32 {
    let status = match &disk {
        Some(path) => match crate::boot::read_image(path) {
            Ok(status) => status,
            Err(e) => {
                eprintln!("bootgate: {}: {e}", path.display());
                return exit::NO_INPUT;
            }
        },
        None => crate::boot::detect(),
    };
    match format {
        Format::Text => print!("{}", status.text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&status).expect("boot status is JSON")),
    }
    exit::OK
}

fn history(dir: &std::path::Path, format: Format, limit: usize) -> i32 {
    match crate::history::render(dir, format == Format::Json, limit) {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("bootgate: cannot read {}: {e}", crate::history::path(dir).display());
            return exit::NO_INPUT;
        }
    }
    exit::OK
}

fn bad_policy(e: &PolicyError) -> i32 {
    eprintln!("bootgate: {e}");
    exit::CONFIG
}

fn first_line(e: &PolicyError) -> String {
    match e {
        PolicyError::Invalid { problems, .. } => problems.first().map(ToString::to_string).unwrap_or_default(),
        other => other.to_string(),
    }
}

async fn check(loaded: policy::Loaded, format: Format) -> i32 {
    let (board, _) = tokio::sync::watch::channel(std::sync::Arc::new(Snapshot::new(&loaded.policy.checks)));
    let notifier = crate::notify::Notifier::from_env();
    crate::reaper::become_subreaper();
    crate::reaper::watch();
    // Progress only for a person watching: a pipe or a log file gets the verdict alone.
    let progress = std::io::stderr().is_terminal().then(|| {
        let of: Vec<u32> = loaded.policy.checks.iter().map(|c| c.retries.saturating_add(1)).collect();
        tokio::spawn(show_progress(board.subscribe(), of))
    });
    let snapshot = crate::gate::run_gate(&loaded.policy, &board, notifier, false).await;
    if let Some(task) = progress {
        task.abort();
        let _ = task.await;
        let mut err = std::io::stderr();
        let _ = write!(err, "\r{ERASE_LINE}");
        let _ = err.flush();
    }
    // Whatever a check detached from itself is reparented here: it must not outlive the verdict.
    crate::reaper::finish(std::time::Duration::from_secs(1));
    match format {
        Format::Text => print!("{}", report::table(&snapshot)),
        // Rendered first: stdout is line-buffered, streamed JSON would cost a write per line.
        Format::Json => {
            let doc = format!("{:#}\n", report::verdict_json(&snapshot, &loaded.source));
            print!("{doc}");
        }
    }
    match snapshot.verdict().health {
        Health::Healthy => exit::OK,
        Health::Degraded => exit::DEGRADED,
        Health::Unhealthy => exit::UNHEALTHY,
    }
}

/// Erases the terminal line the cursor is on (ECMA-48 EL 2).
const ERASE_LINE: &str = "\x1b[2K";

/// Redraws one progress line on stderr four times a second until aborted.
async fn show_progress(board: tokio::sync::watch::Receiver<std::sync::Arc<Snapshot>>, of: Vec<u32>) {
    let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(80usize);
    let mut every = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        every.tick().await;
        let line = progress_line(&board.borrow(), &of, std::time::SystemTime::now(), width);
        let mut err = std::io::stderr();
        // Back to column 0 after drawing: a log line (warnings reach stderr too)
        // then writes over the progress line instead of being glued to its end.
        let _ = write!(err, "\r{ERASE_LINE}{line}\r");
        let _ = err.flush();
    }
}

/// What the gate still waits for, in one line of at most `width - 1` characters:
/// `checking: 1/3 done; net attempt 2/7 failed, next in 1.5s; tpm attempt 1/1 running`.
fn progress_line(s: &Snapshot, of: &[u32], now: std::time::SystemTime, width: usize) -> String {
    let pending: Vec<String> = s
        .checks
        .iter()
        .zip(of.iter().copied().chain(std::iter::repeat(1)))
        .filter(|(c, _)| c.status == crate::checks::Status::Pending)
        .map(|(c, of)| match (c.attempts, c.timing.next_attempt) {
            (0, _) => format!("{} waiting", c.name),
            (n, Some(at)) => {
                let left = at.duration_since(now).unwrap_or_default().as_secs_f64();
                format!("{} attempt {n}/{of} failed, next in {left:.1}s", c.name)
            }
            (n, None) => format!("{} attempt {n}/{of} running", c.name),
        })
        .collect();
    let done = s.checks.len() - pending.len();
    let line = format!("checking: {done}/{} done; {}", s.checks.len(), pending.join("; "));
    let max = width.saturating_sub(1).max(10);
    if line.chars().count() <= max {
        line
    } else {
        let mut cut: String = line.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::checks::Status;
    use crate::engine::{CheckResult, GateState, Timing};

    fn result(name: &str, status: Status, attempts: u32, next: Option<SystemTime>) -> CheckResult {
        CheckResult {
            name: name.into(),
            kind: "tcp",
            critical: true,
            status,
            message: String::new(),
            observed: Default::default(),
            duration: Duration::ZERO,
            attempts,
            last_check: None,
            consecutive_failures: 0,
            consecutive_successes: 0,
            timing: Timing { next_attempt: next, ..Timing::default() },
        }
    }

    #[test]
    fn progress_names_each_pending_check_its_attempt_and_next_retry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let s = Snapshot {
            gate: GateState::Running,
            checks: vec![
                result("root", Status::Pass, 1, None),
                result("net", Status::Pending, 2, Some(now + Duration::from_millis(1500))),
                result("tpm", Status::Pending, 1, None),
                result("apps", Status::Pending, 0, None),
            ],
            gate_started: now,
            gate_duration: None,
            gate_failing: Vec::new(),
            ..Snapshot::new(&[])
        };
        let line = progress_line(&s, &[1, 7, 1, 3], now, 200);
        assert_eq!(
            line,
            "checking: 1/4 done; net attempt 2/7 failed, next in 1.5s; tpm attempt 1/1 running; apps waiting"
        );
        let narrow = progress_line(&s, &[1, 7, 1, 3], now, 30);
        assert_eq!(narrow.chars().count(), 29, "{narrow}");
        assert!(narrow.ends_with('…'), "{narrow}");
        assert!(!line.contains('\n') && !line.contains('\r'));
    }
}
