//! What is done with every result a check produces, wherever it ran (the gate, the soak,
//! the runtime schedule, a run on request): one log event with its fields, and its count
//! and duration in the metrics. The board is each caller's own, since each folds a result
//! in its own way (round events, soak thresholds, runtime thresholds).

use crate::checks::Status;
use crate::engine::CheckResult;
use crate::util::time::{log_millis, readable};

/// Logs `r` and counts it in the metrics.
pub fn result(r: &CheckResult) {
    log(r);
    crate::metrics::observe(r);
}

/// One structured event per check result.
fn log(r: &CheckResult) {
    let duration_ms = log_millis(r.duration);
    let (check, result, attempt, detail) = (r.name.as_str(), r.status.as_str(), r.attempts, r.message.as_str());
    let text = format!("{check}: {result} in {} (attempt {attempt}): {detail}", readable(r.duration));
    match r.status {
        Status::Pass => tracing::info!(check, result, duration_ms, attempt, "{text}"),
        _ => tracing::warn!(check, result, duration_ms, attempt, "{text}"),
    }
}
