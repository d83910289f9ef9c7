//! SIGHUP: the policy read again by the lookup the daemon started with. A policy that
//! fails to load keeps the one in force; one that loads moves the board to its checks.

use std::sync::Arc;

use crate::engine::{Board, CheckResult};
use crate::policy::{Loaded, Policy, PolicyError};

/// Re-reads the policy by the same lookup the daemon started with (on SIGHUP).
pub type Reloader = Box<dyn Fn() -> Result<Loaded, PolicyError> + Send + Sync>;

/// Re-reads the policy; on success moves the board to its checks (keeping the results of
/// checks it still has, by name and kind) and returns it. An invalid policy keeps the old one.
pub(crate) fn reload_policy(current: &Policy, board: &Board, reload: &Reloader) -> Option<Arc<Policy>> {
    let loaded = match reload() {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!(error = %e, "policy reload failed; keeping the policy in force: {e}");
            return None;
        }
    };
    let new = loaded.policy;
    if new.allow_run != current.allow_run {
        tracing::warn!(
            "server.allow_run changed to {}; the endpoint keeps {} until bootgate restarts",
            new.allow_run,
            current.allow_run
        );
    }
    if new.listen != current.listen {
        tracing::warn!(
            from = %current.listen,
            to = %new.listen,
            "server.listen changed from {} to {}; the endpoint keeps its address until bootgate restarts",
            current.listen,
            new.listen
        );
    }
    board.send_modify(|s| {
        let s = Arc::make_mut(s);
        let old = std::mem::take(&mut s.checks);
        s.checks = new
            .checks
            .iter()
            .map(|spec| match old.iter().find(|c| c.name == spec.name && c.kind == spec.kind) {
                Some(c) => CheckResult { critical: spec.critical, ..c.clone() },
                None => CheckResult::pending(spec),
            })
            .collect();
    });
    let source = &loaded.source;
    tracing::info!(policy = %source, checks = new.checks.len(), "policy reloaded: {} checks from {source}", new.checks.len());
    Some(Arc::new(new))
}
