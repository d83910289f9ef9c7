//! Prometheus metrics on a private registry. Counters and the duration histogram are
//! observed when a check result is produced; gauges are refreshed from the latest
//! snapshot at scrape time, so they can never disagree with the health document.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use crate::checks::Status;
use crate::engine::{CheckResult, GateState, GateWord, Health, Snapshot};
use crate::record::boot::BootFacts;
use prometheus::process_collector::ProcessCollector;
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub mod textfile;

/// Content type of the text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Check durations range from a local statvfs (well under 1 ms) to a slow HTTP peer (30 s).
const DURATION_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Results a finished check can have; each gets a `runs_total` series from the start.
const RESULTS: [Status; 4] = [Status::Pass, Status::Warn, Status::Fail, Status::Skipped];

const HEALTHS: [Health; 3] = [Health::Healthy, Health::Degraded, Health::Unhealthy];

/// The gate's states as `bootgate_gate_state` names them: the gate's words without a reason.
const GATE_STATES: [&str; 4] = ["running", "soaking", "passed", "failed"];

/// Every bootgate metric, registered in its own registry.
pub struct Metrics {
    registry: Registry,
    runs: IntCounterVec,
    durations: HistogramVec,
    up: IntGaugeVec,
    consecutive_failures: IntGaugeVec,
    gate_passed: IntGauge,
    gate_duration: Gauge,
    health: IntGaugeVec,
    gate_state: IntGaugeVec,
    interval: GaugeVec,
    // Label-less vectors: absent from the output until boot facts are known.
    boot_successful: IntGaugeVec,
    boot_tries: IntGaugeVec,
    boot_priority: IntGaugeVec,
    boot_marked: IntGaugeVec,
    http_rejected: IntCounter,
    http_up: IntGauge,
    boot_info: IntGaugeVec,
    fallback: IntGaugeVec,
    check_blame: IntGaugeVec,
    update_held: IntGaugeVec,
    // Label-less: absent until the gate is decided.
    gate_completed: GaugeVec,
    last_run: GaugeVec,
    soak: Gauge,
    rollback_remaining: Gauge,
    /// Refresh and gather as one step, so concurrent scrapes each see a whole state; holds
    /// the `(check, critical)` pairs the last refresh exported.
    scrape: Mutex<Vec<(String, bool)>>,
}

impl Metrics {
    /// Metrics for the checks of `snapshot`, with build info and process metrics.
    pub fn new(snapshot: &Snapshot) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let runs = IntCounterVec::new(
            Opts::new("bootgate_check_runs_total", "Finished check runs by result."),
            &["check", "result"],
        )?;
        let durations = HistogramVec::new(
            HistogramOpts::new("bootgate_check_duration_seconds", "Duration of a check's last attempt.")
                .buckets(DURATION_BUCKETS.to_vec()),
            &["check"],
        )?;
        let up = IntGaugeVec::new(
            Opts::new("bootgate_check_up", "1 when the check passes or warns, 0 otherwise (failed, skipped, pending)."),
            &["check", "critical"],
        )?;
        let consecutive_failures = IntGaugeVec::new(
            Opts::new("bootgate_check_consecutive_failures", "Failed runs in a row of the check."),
            &["check"],
        )?;
        let gate_passed = IntGauge::new("bootgate_gate_passed", "1 once the boot gate has passed.")?;
        let gate_duration = Gauge::new(
            "bootgate_gate_duration_seconds",
            "Time the boot gate took, or has taken so far while it runs.",
        )?;
        let health = IntGaugeVec::new(
            Opts::new("bootgate_health_status", "Overall health, one-hot: healthy, degraded or unhealthy."),
            &["status"],
        )?;
        let gate_state = IntGaugeVec::new(
            Opts::new("bootgate_gate_state", "The boot gate's state, one-hot: running, soaking, passed or failed."),
            &["state"],
        )?;
        let interval = GaugeVec::new(
            Opts::new("bootgate_check_interval_seconds", "How often the check runs after the gate."),
            &["check"],
        )?;
        let boot_successful = IntGaugeVec::new(
            Opts::new("bootgate_boot_partition_successful", "GPT successful bit of the booted partition."),
            &[],
        )?;
        let boot_tries = IntGaugeVec::new(
            Opts::new("bootgate_boot_partition_tries", "GPT tries left on the booted partition."),
            &[],
        )?;
        let boot_priority = IntGaugeVec::new(
            Opts::new("bootgate_boot_partition_priority", "GPT priority of the booted partition."),
            &[],
        )?;
        let boot_marked = IntGaugeVec::new(
            Opts::new(
                "bootgate_boot_marked",
                "1 once the boot backend marked this boot good, 0 when marking it failed; absent before the gate passed.",
            ),
            &[],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new("bootgate_build_info", "Always 1; the version of the running bootgate is a label."),
            &["version"],
        )?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let http_rejected = IntCounter::new(
            "bootgate_http_connections_rejected_total",
            "Connections to the endpoint closed unanswered because it already had its maximum open.",
        )?;
        let http_up = IntGauge::new(
            "bootgate_http_up",
            "1 while the endpoint serves; 0 while it is down (it cannot listen, or its web config cannot be used).",
        )?;

        let boot_info = IntGaugeVec::new(
            Opts::new(
                "bootgate_boot_info",
                "Always 1; the booted slot, its PARTUUID and the OS's os-release ID and version are labels.",
            ),
            &["partition", "uuid", "os_id", "os_version"],
        )?;
        let fallback = IntGaugeVec::new(
            Opts::new(
                "bootgate_boot_fallback",
                "1 for the whole boot when it fell back from another slot; blame is the second verdict \
                 (image, environment, unknown; pending until this boot's gate gives it).",
            ),
            &["from_partition", "from_version", "reason", "blame"],
        )?;
        let check_blame = IntGaugeVec::new(
            Opts::new(
                "bootgate_check_blame",
                "1 for each critical check that failed a trial boot's gate, by its blame (regression, preexisting, unknown).",
            ),
            &["check", "blame"],
        )?;
        let update_held = IntGaugeVec::new(
            Opts::new("bootgate_update_held", "1 while updates are held after the version failed by its own fault."),
            &["version"],
        )?;
        let gate_completed = GaugeVec::new(
            Opts::new("bootgate_gate_completed_timestamp_seconds", "Unix time the boot gate reached its verdict."),
            &[],
        )?;
        let last_run = GaugeVec::new(
            Opts::new("bootgate_check_last_run_timestamp_seconds", "Unix time of the check's last finished run."),
            &["check"],
        )?;

        let soak =
            Gauge::new("bootgate_gate_soak_seconds", "Seconds of the soak left before READY=1; 0 when not soaking.")?;
        let rollback_remaining = Gauge::new(
            "bootgate_rollback_window_remaining_seconds",
            "Seconds left in which a sustained critical failure reverts this update; 0 when not armed.",
        )?;
        for c in &snapshot.checks {
            for r in RESULTS {
                runs.with_label_values(&[c.name.as_str(), r.as_str()]);
            }
        }
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(consecutive_failures.clone()))?;
        registry.register(Box::new(gate_passed.clone()))?;
        registry.register(Box::new(gate_duration.clone()))?;
        registry.register(Box::new(health.clone()))?;
        registry.register(Box::new(gate_state.clone()))?;
        registry.register(Box::new(interval.clone()))?;
        registry.register(Box::new(boot_successful.clone()))?;
        registry.register(Box::new(boot_tries.clone()))?;
        registry.register(Box::new(boot_priority.clone()))?;
        registry.register(Box::new(boot_marked.clone()))?;
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(http_rejected.clone()))?;
        registry.register(Box::new(http_up.clone()))?;
        registry.register(Box::new(boot_info.clone()))?;
        registry.register(Box::new(fallback.clone()))?;
        registry.register(Box::new(check_blame.clone()))?;
        registry.register(Box::new(update_held.clone()))?;
        registry.register(Box::new(gate_completed.clone()))?;
        registry.register(Box::new(last_run.clone()))?;
        registry.register(Box::new(soak.clone()))?;
        registry.register(Box::new(rollback_remaining.clone()))?;
        registry.register(Box::new(ProcessCollector::for_self()))?;

        let metrics = Metrics {
            registry,
            runs,
            durations,
            up,
            consecutive_failures,
            gate_passed,
            gate_duration,
            health,
            gate_state,
            interval,
            boot_successful,
            boot_tries,
            boot_priority,
            boot_marked,
            http_rejected,
            http_up,
            boot_info,
            fallback,
            check_blame,
            update_held,
            gate_completed,
            last_run,
            soak,
            rollback_remaining,
            scrape: Mutex::new(Vec::new()),
        };
        metrics.refresh(snapshot, None);
        Ok(metrics)
    }

    /// Counts one produced result and its duration; pending results are not runs.
    pub fn observe(&self, r: &CheckResult) {
        if r.status == Status::Pending {
            return;
        }
        self.runs.with_label_values(&[r.name.as_str(), r.status.as_str()]).inc();
        self.durations.with_label_values(&[r.name.as_str()]).observe(r.duration.as_secs_f64());
    }

    /// Counts one connection the endpoint closed at once because it was full.
    pub fn connection_rejected(&self) {
        self.http_rejected.inc();
    }

    /// Sets `bootgate_http_up`: whether the endpoint serves.
    pub fn set_http_up(&self, up: bool) {
        self.http_up.set(i64::from(up));
    }

    /// Sets `bootgate_boot_info` (empty labels when not known).
    pub fn set_boot_info(&self, partition: &str, uuid: &str, os_id: &str, os_version: &str) {
        self.boot_info.reset();
        self.boot_info.with_label_values(&[partition, uuid, os_id, os_version]).set(1);
    }

    /// Sets `bootgate_check_interval_seconds` to the checks' runtime intervals, dropping
    /// those of checks no longer scheduled.
    pub fn set_intervals<'a>(&self, intervals: impl IntoIterator<Item = (&'a str, Duration)>) {
        self.interval.reset();
        for (check, every) in intervals {
            self.interval.with_label_values(&[check]).set(every.as_secs_f64());
        }
    }

    /// The text exposition of every metric, gauges refreshed from `snapshot` and `boot`.
    pub fn render(&self, snapshot: &Snapshot, boot: Option<&BootFacts>) -> Result<Vec<u8>, prometheus::Error> {
        // A poisoned lock only means another scrape panicked; the metrics are still whole.
        let mut exported = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.forget_gone(snapshot, &mut exported);
        self.refresh(snapshot, boot);
        let mut body = Vec::with_capacity(8 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut body)?;
        Ok(body)
    }

    /// Drops the series of checks a reload removed, and the `up` series of a check whose
    /// `critical` changed, so no alert fires for a check that is gone or now healthy
    /// under its new label; gives a new check its zero run counters.
    fn forget_gone(&self, s: &Snapshot, exported: &mut Vec<(String, bool)>) {
        let now: Vec<(String, bool)> = s.checks.iter().map(|c| (c.name.clone(), c.critical)).collect();
        if *exported == now {
            return;
        }
        for (name, critical) in exported.iter().filter(|e| !now.contains(e)) {
            let _ = self.up.remove_label_values(&[name.as_str(), if *critical { "true" } else { "false" }]);
            if now.iter().any(|(n, _)| n == name) {
                continue;
            }
            for r in RESULTS {
                let _ = self.runs.remove_label_values(&[name.as_str(), r.as_str()]);
            }
            let _ = self.durations.remove_label_values(&[name.as_str()]);
            let _ = self.consecutive_failures.remove_label_values(&[name.as_str()]);
            let _ = self.last_run.remove_label_values(&[name.as_str()]);
        }
        for (name, _) in now.iter().filter(|(n, _)| !exported.iter().any(|(e, _)| e == n)) {
            for r in RESULTS {
                self.runs.with_label_values(&[name.as_str(), r.as_str()]);
            }
        }
        *exported = now;
    }

    fn refresh(&self, s: &Snapshot, boot: Option<&BootFacts>) {
        for c in &s.checks {
            let critical = if c.critical { "true" } else { "false" };
            self.up.with_label_values(&[c.name.as_str(), critical]).set(i64::from(c.status.passed()));
            self.consecutive_failures.with_label_values(&[c.name.as_str()]).set(i64::from(c.consecutive_failures));
            if let Some(t) = c.last_check.and_then(unix_seconds) {
                self.last_run.with_label_values(&[c.name.as_str()]).set(t);
            }
        }
        let completed = (s.gate != GateState::Running)
            .then(|| s.gate_duration.map(|d| s.gate_started + d))
            .flatten()
            .and_then(unix_seconds);
        match completed {
            Some(t) => self.gate_completed.with_label_values(&[] as &[&str]).set(t),
            None => self.gate_completed.reset(),
        }
        self.gate_passed.set(i64::from(s.gate == GateState::Passed));
        let took = match (s.gate, s.gate_duration) {
            (_, Some(d)) => d.as_secs_f64(),
            (GateState::Running, None) => {
                SystemTime::now().duration_since(s.gate_started).map(|d| d.as_secs_f64()).unwrap_or(0.0)
            }
            (_, None) => 0.0,
        };
        self.gate_duration.set(took);
        let now = SystemTime::now();
        self.soak.set(s.soak.map_or(0.0, |soak| soak.remaining(now).as_secs_f64()));
        self.rollback_remaining.set(s.rollback.as_ref().map_or(0.0, |w| w.remaining(now).as_secs_f64()));
        let word = match s.gate_word() {
            GateWord::Running => "running",
            GateWord::Soaking => "soaking",
            GateWord::Passed => "passed",
            GateWord::Failed(_) => "failed",
        };
        for state in GATE_STATES {
            self.gate_state.with_label_values(&[state]).set(i64::from(state == word));
        }
        let health = s.verdict().health;
        for h in HEALTHS {
            self.health.with_label_values(&[h.as_str()]).set(i64::from(h == health));
        }
        self.check_blame.reset();
        for c in &s.checks {
            if let Some(blame) = c.blame {
                self.check_blame.with_label_values(&[c.name.as_str(), blame.as_str()]).set(1);
            }
        }
        self.refresh_boot(boot);
    }

    fn refresh_boot(&self, boot: Option<&BootFacts>) {
        let slot = boot.and_then(|b| b.slot.as_ref());
        let marked = boot.and_then(|b| b.mark.as_ref()).map(|m| i64::from(m.done));
        let gauges = [
            (&self.boot_successful, slot.map(|s| i64::from(s.successful))),
            (&self.boot_tries, slot.map(|s| i64::from(s.tries))),
            (&self.boot_priority, slot.map(|s| i64::from(s.priority))),
            (&self.boot_marked, marked),
        ];
        for (gauge, value) in gauges {
            match value {
                Some(v) => gauge.with_label_values(&[] as &[&str]).set(v),
                None => gauge.reset(),
            }
        }
        self.fallback.reset();
        if let Some(f) = boot.and_then(|b| b.fallback.as_ref()) {
            let blame = f.blame.map_or("pending", |b| b.as_str());
            let labels = [f.from_partition.as_str(), f.from_version.as_deref().unwrap_or(""), f.reason.as_str(), blame];
            self.fallback.with_label_values(&labels).set(1);
        }
        self.update_held.reset();
        if let Some(hold) = boot.and_then(|b| b.hold.as_ref()) {
            self.update_held.with_label_values(&[hold.version.as_str()]).set(1);
        }
    }
}

fn unix_seconds(t: SystemTime) -> Option<f64> {
    t.duration_since(SystemTime::UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

/// The daemon's metrics, which [`observe`] records into.
static INSTALLED: OnceLock<Arc<Metrics>> = OnceLock::new();

/// Makes `metrics` the sink of [`observe`]; the first call wins and later ones return false.
pub fn install(metrics: Arc<Metrics>) -> bool {
    INSTALLED.set(metrics).is_ok()
}

/// Publishes the checks' runtime intervals in the installed metrics, if any.
pub fn intervals<'a>(intervals: impl IntoIterator<Item = (&'a str, Duration)>) {
    if let Some(m) = INSTALLED.get() {
        m.set_intervals(intervals);
    }
}

/// Records a produced check result in the installed metrics; without any (`bootgate check`) it does nothing.
pub fn observe(r: &CheckResult) {
    if let Some(m) = INSTALLED.get() {
        m.observe(r);
    }
}

#[cfg(test)]
mod tests;
