//! Rules a check's common values follow wherever the check comes from (`checks:` or a
//! `checks_from:` directory), so both sources refuse the same things with the same words.

use std::time::Duration;

use crate::util::time::spelled;

/// Why `name` cannot name a check, if it is a name the endpoint keeps for itself: a
/// check named `gate` would answer `/readyz/gate` in place of the gate's own probe.
pub fn reserved(name: &str) -> Option<String> {
    (name == "gate").then(|| {
        "`gate` is the boot gate's own readiness probe (/readyz/gate); give the check another name".to_string()
    })
}

/// What is wrong with a check's `timeout` under the gate's `deadline`, if anything: the
/// one rule for `checks:` and `checks_from:` alike.
pub fn timeout_problem(timeout: Duration, deadline: Option<Duration>) -> Option<String> {
    match deadline {
        _ if timeout.is_zero() => Some("the timeout must be longer than 0s".into()),
        Some(d) if timeout >= d && !d.is_zero() => {
            Some(format!("timeout {} is not shorter than the gate deadline {}", spelled(timeout), spelled(d)))
        }
        _ => None,
    }
}
