//! What `run` and `serve` do first: the signal handlers and the orphan sweep, then the
//! endpoint (bound in the background); then, beside the gate, the boot facts and the
//! textfile writer.

use std::path::PathBuf;
use std::sync::Arc;

use tracing::Level;

use super::facts::{self, ThisBoot};
use crate::engine::Board;
use crate::metrics::textfile;
use crate::policy::Policy;
use crate::process::{Heartbeat, Notifier, Signals, reaper};
use crate::server::Endpoint;

/// Where the daemon keeps its files.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// Holds `verdict.json` (default `/run/bootgate`).
    pub run: PathBuf,
    /// Holds `history.jsonl` (default `/var/lib/bootgate`).
    pub state: PathBuf,
    /// Where `--textfile` writes the metrics after every round, if anywhere.
    pub textfile: Option<PathBuf>,
    /// The verdict in two lines for logins (default `/run/motd.d/bootgate`).
    pub motd: PathBuf,
}

/// Installs the stop/reload handlers and the orphan sweep; `None` (already said) when it cannot.
pub fn install_signals(notifier: Notifier) -> Option<Signals> {
    reaper::become_subreaper();
    reaper::watch();
    match Signals::install() {
        Ok(signals) => Some(signals),
        Err(e) => {
            notifier.say(Level::ERROR, &format!("cannot install the SIGTERM/SIGINT/SIGHUP handlers: {e}"));
            None
        }
    }
}

/// Starts the endpoint over `board`; `None` (logged) when the metrics cannot be set up.
/// The boot facts come after ([`learn_boot`]): `run` starts its gate first.
pub fn start_endpoint(
    policy: &Policy,
    board: &Board,
    heartbeat: &Heartbeat,
    signals: &Signals,
    notifier: Notifier,
) -> Option<Endpoint> {
    let started = Endpoint::start(
        policy.listen,
        board.subscribe(),
        heartbeat.clone(),
        signals.shutdown.clone(),
        notifier,
        policy.allow_run,
        policy.web_config.clone(),
    );
    match started {
        Ok(endpoint) => Some(endpoint),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cannot set up the metrics");
            None
        }
    }
}

/// Reads and publishes the boot slot's facts (see [`facts`]) and starts the textfile
/// writer. The history and a fallback are learnt after ([`facts::learn_fallback`]).
pub async fn learn_boot(endpoint: &Endpoint, board: &Board, dirs: &Dirs) -> ThisBoot {
    let boot = facts::gather().await;
    facts::publish(&boot, endpoint);
    if let Some(path) = &dirs.textfile {
        textfile::start(path.clone(), Arc::clone(&endpoint.metrics), board.subscribe(), endpoint.boot.subscribe());
    }
    boot
}
