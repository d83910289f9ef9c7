//! `bootgate run`: the gate at boot, then the runtime loop (shared with `bootgate serve`).
//! In order: the verdict this boot may already have, the endpoint, the gate (its soak
//! included) with the boot facts, the backend and the history read beside it, the
//! verdict written and the history line recorded, then on a pass the backend's mark,
//! the rollback window, READY=1 and the green hooks, or on a failure the red hooks and
//! the backend's decision acted on; in between, on a boot the loader reached by falling
//! back, the rollback that makes the fallback permanent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use tracing::Level;

use super::facts::{self, ThisBoot, learn_fallback, mark_good, publish_backend};
use super::gate::run_gate;
use super::hooks::{self, Hooks};
use super::judge::{self, Judging};
use super::last_seen;
use super::reload::Reloader;
use super::runtime::runtime;
use super::start::{Dirs, install_signals, learn_boot, start_endpoint};
use super::window::{self, Window};
use super::{motd, permanent};
use crate::boot::backend::{Backend, choose};
use crate::boot::decide::RebootDecision;
use crate::boot::identity::boot_id;
use crate::boot::reboot;
use crate::engine::{GateState, Snapshot};
use crate::exit;
use crate::policy::{Loaded, OnFailure, Policy};
use crate::process::logging::GATE_VERDICT_ID;
use crate::process::{Heartbeat, Notifier, Signals};
use crate::record::history::Decision;
use crate::record::verdict::{self, Recorded, VerdictRecord};
use crate::render::{status, table};
use crate::server::Endpoint;

/// Runs the daemon and returns the process exit code.
pub async fn run(loaded: Loaded, reload: Reloader, dirs: Dirs) -> i32 {
    let notifier = Notifier::from_env();
    let Some(mut signals) = install_signals(notifier) else { return exit::SOFTWARE };
    // A boot is judged once: a restart in the same boot (Restart=, Upholds=) finds the verdict.
    let recorded = match verdict::this_boot(&dirs.run, boot_id().as_deref()) {
        Ok(recorded) => recorded,
        Err(e) => {
            notifier.say(Level::ERROR, &format!("gate failed closed: {e}; remove the file to judge this boot again"));
            return exit::UNHEALTHY;
        }
    };
    if let Some(rec) = recorded.as_ref().filter(|r| r.gate() == GateState::Failed) {
        let status = format!("gate failed earlier in this boot (failing: {}); not run again", rec.failing().join(", "));
        tracing::error!(run_dir = %dirs.run.display(), "{status}");
        notifier.status(&status);
        return exit::UNHEALTHY;
    }
    let policy = Arc::new(loaded.policy);
    let first = match &recorded {
        Some(rec) => rec.snapshot(&policy.checks),
        None => Snapshot::new(&policy.checks),
    };
    let (board, _) = tokio::sync::watch::channel(Arc::new(first));
    let source = &loaded.source;
    tracing::info!(policy = %source, checks = policy.checks.len(), "boot gate starting: {} checks from {source}", policy.checks.len());

    let heartbeat = Heartbeat::new();
    // The endpoint binds in the background: it answers 503 while the gate runs, and a
    // port it cannot have never keeps the gate from judging.
    let Some(mut endpoint) = start_endpoint(&policy, &board, &heartbeat, &signals, notifier) else {
        return exit::SOFTWARE;
    };
    // The boot facts, the backend and its facts, and the history are read beside the
    // gate: reading the partition table is bounded but not free, `auto` may ask the
    // system bus about RAUC, and the first call may have to start the boot loader's
    // service (D-Bus activation of RAUC takes seconds), none of which the checks need.
    let backend_known = AtomicBool::new(false);
    let learnt = async |boot: &ThisBoot| {
        let chosen = async {
            let backend = choose_backend(&policy, boot).await;
            backend_known.store(true, Ordering::Relaxed);
            let backend = backend?;
            let facts = publish_backend(backend.as_ref(), &endpoint).await;
            facts::say_greenboot_attempt(&policy, &facts);
            Ok::<_, String>(backend)
        };
        tokio::join!(chosen, learn_fallback(&dirs.state, boot, &endpoint, notifier))
    };
    let (window, daemon) = match &recorded {
        Some(rec) => {
            let mut boot = learn_boot(&endpoint, &board, &dirs).await;
            let (chosen, fallback) = learnt(&boot).await;
            boot.fallback = fallback;
            judge::recorded_verdict(&mut boot, rec.record.fallback.as_ref(), &endpoint);
            let Some(daemon) = Run::new(&policy, &board, notifier, &dirs, &boot, chosen) else {
                return exit::CONFIG;
            };
            (daemon.resume(rec, &endpoint).await, daemon)
        }
        None => {
            // What `bootgate wait` shows until the verdict is written.
            let progress = super::progress::follow(&board, dirs.run.clone(), boot_id());
            let (told, known) = tokio::sync::oneshot::channel();
            let judging = Judging::once_known(&policy, known, &dirs.state);
            let gate = heartbeat.keep(run_gate(&policy, &board, notifier, true, Some(judging)));
            let learnt = async {
                let boot = learn_boot(&endpoint, &board, &dirs).await;
                let _ = told.send(boot.clone());
                let (chosen, fallback) = learnt(&boot).await;
                (boot, chosen, fallback)
            };
            let gate = async {
                let outcome = signals.shutdown.until(gate).await;
                if outcome.is_some() && !backend_known.load(Ordering::Relaxed) {
                    notifier.status("gate decided; waiting for the boot backend to answer before marking this boot");
                }
                outcome
            };
            let (outcome, (mut boot, chosen, fallback)) = tokio::join!(gate, learnt);
            progress.abort();
            boot.fallback = fallback;
            let Some(snapshot) = outcome else {
                tracing::info!("stopped before the gate reached a verdict");
                endpoint.finish().await;
                return exit::OK;
            };
            judge::second_verdict(&mut boot, &snapshot, &endpoint);
            // A backend named but not there fails the gate closed, whatever the checks said.
            let Some(daemon) = Run::new(&policy, &board, notifier, &dirs, &boot, chosen) else {
                return exit::CONFIG;
            };
            // Read before the mark, which clears the counter it reads.
            let plan = permanent::plan(daemon.backend.as_ref(), policy.fallback_command.as_deref()).await;
            let judged = daemon.judged(&snapshot, source, &endpoint).await;
            if let Some(kept) = permanent::keep(plan, daemon.backend.as_ref(), &dirs.state, &endpoint, notifier).await {
                daemon.amend_verdict(|r| r.permanent = Some(kept.clone()));
                permanent::show(&endpoint, kept);
            }
            match judged {
                Judged::Passed(window) => (window, daemon),
                Judged::Failed(failure) => {
                    daemon.act_on_failure(&snapshot, failure, &heartbeat, &mut signals).await;
                    // No drain: the endpoint was never asked to stop, and exiting hands the port
                    // to bootgate-report.service at once.
                    drop(endpoint);
                    return exit::UNHEALTHY;
                }
            }
        }
    };
    let image = judge::image(&daemon.boot);
    drop(daemon);
    let every = policy.runtime.interval;
    let seen = last_seen::keep(&board, dirs.state.clone(), image, every, endpoint.history.clone());
    let held = judge::follow_hold(&dirs.run, endpoint.boot.clone());
    let link = endpoint.take_link();
    runtime(policy, &board, notifier, &heartbeat, &mut signals, &reload, window, link).await;
    seen.abort();
    held.abort();
    endpoint.finish().await;
    exit::OK
}

/// What `run` works with once the boot facts and the backend are known.
struct Run {
    policy: Arc<Policy>,
    board: crate::engine::Board,
    notifier: Notifier,
    dirs: Dirs,
    backend: Arc<dyn Backend>,
    boot: ThisBoot,
}

/// How the gate ended: passed (with the rollback window, if armed), or failed with the
/// decision made about it (`None`: the policy says stay).
enum Judged {
    Passed(Option<Window>),
    Failed(Option<RebootDecision>),
}

/// The policy's boot backend over what this machine has, said in the log.
async fn choose_backend(policy: &Policy, boot: &ThisBoot) -> Result<Arc<dyn Backend>, String> {
    let (backend, why) = choose(policy.backend, boot.status.as_ref(), &policy.boot).await?;
    tracing::info!(backend = backend.name(), "boot backend {}: {why}", backend.name());
    Ok(Arc::from(backend))
}

impl Run {
    /// What `run` works with, once the backend is chosen; `None` (said) when it could
    /// not be: the gate fails closed.
    fn new(
        policy: &Arc<Policy>,
        board: &crate::engine::Board,
        notifier: Notifier,
        dirs: &Dirs,
        boot: &ThisBoot,
        chosen: Result<Arc<dyn Backend>, String>,
    ) -> Option<Run> {
        match chosen {
            Ok(backend) => Some(Run {
                policy: Arc::clone(policy),
                board: board.clone(),
                notifier,
                dirs: dirs.clone(),
                backend,
                boot: boot.clone(),
            }),
            Err(e) => {
                notifier.say(Level::ERROR, &format!("gate failed closed: {e}"));
                None
            }
        }
    }

    /// A restart after a passed gate in this boot: the mark again (a crash may have come
    /// between the verdict and the mark), READY=1 again, the window re-opened.
    async fn resume(&self, rec: &Recorded, endpoint: &Endpoint) -> Option<Window> {
        let mark = mark_good(self.backend.as_ref(), endpoint, self.notifier).await;
        self.amend_verdict(|r| r.mark = Some(mark));
        let window = window::reopen(
            &self.policy,
            rec.record.rollback.as_ref(),
            Arc::clone(&self.backend),
            &self.board,
            self.notifier,
            self.dirs.clone(),
        );
        let status =
            format!("{} (gate passed earlier in this boot; not run again)", status::summary(&self.board.borrow()));
        let path = rec.path.display();
        tracing::info!(verdict = %path, "gate passed earlier in this boot ({path}); resuming the runtime loop");
        self.notifier.ready(&status);
        window
    }

    /// Writes the verdict and the history line, and on a pass marks the boot good and
    /// sends READY=1. The decision on a failure is made once, here, recorded, then acted on.
    async fn judged(&self, snapshot: &Snapshot, source: &str, endpoint: &Endpoint) -> Judged {
        let mut record = VerdictRecord::of(snapshot, source, boot_id(), SystemTime::now());
        record.fallback = self.boot.fallback.clone();
        let mut window = None;
        if snapshot.gate == GateState::Passed {
            // Opened before READY=1 and recorded with the verdict: update_engine marks the
            // slot right after READY=1, and a restart must find the window, not a good slot.
            window =
                window::open(&self.policy, Arc::clone(&self.backend), &self.board, self.notifier, self.dirs.clone());
            record.rollback = window::record(&self.board, window.as_ref());
        }
        self.publish_verdict(&record);
        let failure = match snapshot.gate {
            GateState::Passed => None,
            _ => Some(self.decide_failure().await),
        };
        if let Some(decided) = &failure {
            let slots = self.boot.status.clone().unwrap_or_default();
            let delay = self.policy.gate.reboot_delay;
            facts::show_on_failure(endpoint, reboot::shown(decided.as_ref(), &slots, delay, SystemTime::now()));
        }
        let decision = failure.as_ref().map(|d| d.clone().map_or(Decision::StayPolicy, Decision::from));
        facts::record(&self.dirs.state, &record, &self.boot, decision, endpoint).await;
        // Before READY=1, which starts the update agent the hold keeps from starting.
        judge::hold_updates(&self.policy, &self.dirs.run, &self.dirs.state, endpoint).await;
        last_seen::write(&self.dirs.state, &judge::image(&self.boot), snapshot).await;
        print!("{}", table::checks(snapshot));
        if let Some(failure) = failure {
            return Judged::Failed(failure);
        }
        let status = status::summary(snapshot);
        tracing::info!(message_id = GATE_VERDICT_ID, gate = "passed", "boot gate passed: {status}");
        let mark = mark_good(self.backend.as_ref(), endpoint, self.notifier).await;
        if !mark.done {
            let failed = mark.clone();
            facts::amend_history(&self.dirs.state, endpoint, move |line| line.mark = Some(failed)).await;
        }
        record.mark = Some(mark);
        self.publish_verdict(&record);
        publish_backend(self.backend.as_ref(), endpoint).await;
        self.notifier.ready(&status);
        // After the mark and READY=1, not before as greenboot runs them: a hung green
        // hook then delays nothing, and the runtime loop starts beside it.
        let greenboot = &self.policy.greenboot;
        if !greenboot.green.is_empty() {
            let (dirs, timeout) = (greenboot.green.clone(), greenboot.hook_timeout);
            tokio::spawn(async move { hooks::run(Hooks::Green, &dirs, timeout).await });
        }
        Judged::Passed(window)
    }

    /// Writes the verdict and its two lines for logins; neither failure is fatal, both are said.
    fn publish_verdict(&self, record: &VerdictRecord) {
        if let Err(e) = verdict::write(&self.dirs.run, record) {
            let dir = self.dirs.run.display();
            tracing::error!(dir = %dir, error = %e, "cannot write {} in {dir}: {e}", verdict::FILE);
        }
        motd::write(&self.dirs.motd, record);
    }

    /// Changes this boot's recorded verdict with `change` and publishes it again.
    fn amend_verdict(&self, change: impl FnOnce(&mut VerdictRecord)) {
        match verdict::this_boot(&self.dirs.run, boot_id().as_deref()) {
            Ok(Some(mut rec)) => {
                change(&mut rec.record);
                self.publish_verdict(&rec.record);
            }
            Ok(None) => tracing::warn!("this boot's verdict is gone from {}; not amended", self.dirs.run.display()),
            Err(e) => tracing::warn!("cannot amend this boot's verdict: {e}"),
        }
    }

    /// What a failed gate does: `None` when the policy says stay, else the backend's
    /// decision (it marks the boot bad where its loader needs that).
    async fn decide_failure(&self) -> Option<RebootDecision> {
        match self.policy.gate.on_failure {
            OnFailure::Stay => None,
            OnFailure::Reboot => Some(self.backend.on_failure().await),
        }
    }

    /// Says the gate failed and acts on the decision: reboots after the delay, or stays.
    async fn act_on_failure(
        &self,
        snapshot: &Snapshot,
        decision: Option<RebootDecision>,
        heartbeat: &Heartbeat,
        signals: &mut Signals,
    ) {
        let status = status::summary(snapshot);
        self.board.send_modify(|s| Arc::make_mut(s).gate_failing = s.critical_failures());
        let failing: Vec<String> = snapshot.critical_failures().into_iter().map(|f| f.name).collect();
        let failing = failing.join(", ");
        tracing::error!(message_id = GATE_VERDICT_ID, gate = "failed", failing = %failing, "boot gate failed: {status} (failing: {failing})");
        self.notifier.status(&format!("{status} (failing: {failing})"));
        // The GPT's slots name a gptprio fallback in the reboot message.
        let slots = self.boot.status.clone().unwrap_or_default();
        let greenboot = &self.policy.greenboot;
        let act = async {
            // The red hooks run before any reboot, as greenboot runs them, each bounded:
            // the verdict is already written, so the hooks only delay the reboot.
            hooks::run(Hooks::Red, &greenboot.red, greenboot.hook_timeout).await;
            reboot::on_gate_failure(
                &slots,
                decision,
                self.policy.gate.reboot_delay,
                &failing,
                snapshot.gate_word(),
                self.notifier,
            )
            .await
        };
        // A stop request during the reboot delay ends the wait (signals no longer kill the
        // process). The watchdog, armed by the gate's pings, is pinged on: a reboot delay
        // as long as WatchdogSec= would otherwise have systemd abort and restart the daemon,
        // which then finds the failed verdict and never reboots.
        signals.shutdown.until(heartbeat.keep(self.notifier.pings().during(self.notifier, act))).await;
    }
}
