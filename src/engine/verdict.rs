//! The verdict: a pure function of check results and criticality.

use serde::Serialize;

use crate::checks::Status;

/// Overall health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// Where the boot gate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GateState {
    Running,
    Passed,
    Failed,
}

impl GateState {
    pub fn as_str(self) -> &'static str {
        match self {
            GateState::Running => "running",
            GateState::Passed => "passed",
            GateState::Failed => "failed",
        }
    }
}

/// Health plus the gate decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub health: Health,
    pub gate: GateState,
}

/// Judges `(critical, status)` pairs.
///
/// A critical check that failed, was skipped (its dependency did not pass) or has not
/// finished keeps the gate from passing: nothing unproven slips through. Optional
/// problems and any warning make the result degraded. The gate runs while anything is pending.
pub fn verdict(checks: impl IntoIterator<Item = (bool, Status)>) -> Verdict {
    let (mut critical_bad, mut optional_bad, mut warned, mut pending) = (false, false, false, false);
    for (critical, status) in checks {
        match status {
            Status::Pass => {}
            Status::Warn => warned = true,
            Status::Fail | Status::Skipped | Status::Pending => {
                pending |= status == Status::Pending;
                if critical {
                    critical_bad = true;
                } else {
                    optional_bad = true;
                }
            }
        }
    }
    let health = if critical_bad {
        Health::Unhealthy
    } else if optional_bad || warned {
        Health::Degraded
    } else {
        Health::Healthy
    };
    let gate = if pending {
        GateState::Running
    } else if critical_bad {
        GateState::Failed
    } else {
        GateState::Passed
    };
    Verdict { health, gate }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const ALL: [Status; 5] = [Pass, Warn, Fail, Skipped, Pending];

    fn expected_single(critical: bool, s: Status) -> Verdict {
        let (health, gate) = match (critical, s) {
            (_, Pass) => (Health::Healthy, GateState::Passed),
            (_, Warn) => (Health::Degraded, GateState::Passed),
            (true, Fail | Skipped) => (Health::Unhealthy, GateState::Failed),
            (false, Fail | Skipped) => (Health::Degraded, GateState::Passed),
            (true, Pending) => (Health::Unhealthy, GateState::Running),
            (false, Pending) => (Health::Degraded, GateState::Running),
        };
        Verdict { health, gate }
    }

    #[test]
    fn every_single_check_combination() {
        for critical in [true, false] {
            for s in ALL {
                assert_eq!(verdict([(critical, s)]), expected_single(critical, s), "critical={critical} {s:?}");
            }
        }
    }

    /// Every pair of one critical and one optional check: the worse of the two wins,
    /// and the gate only passes when nothing critical is bad and nothing is pending.
    #[test]
    fn every_critical_optional_pair() {
        for c in ALL {
            for o in ALL {
                let v = verdict([(true, c), (false, o)]);
                let (vc, vo) = (expected_single(true, c), expected_single(false, o));
                let worst = |a: Health, b: Health| if rank(a) >= rank(b) { a } else { b };
                assert_eq!(v.health, worst(vc.health, vo.health), "critical {c:?} optional {o:?}");
                let gate = if c == Pending || o == Pending {
                    GateState::Running
                } else if matches!(c, Fail | Skipped) {
                    GateState::Failed
                } else {
                    GateState::Passed
                };
                assert_eq!(v.gate, gate, "critical {c:?} optional {o:?}");
            }
        }
    }

    fn rank(h: Health) -> u8 {
        match h {
            Health::Healthy => 0,
            Health::Degraded => 1,
            Health::Unhealthy => 2,
        }
    }

    #[test]
    fn empty_is_healthy_but_policies_never_are_empty() {
        // Validation rejects a policy without checks; the pure function itself is neutral.
        assert_eq!(verdict([]), Verdict { health: Health::Healthy, gate: GateState::Passed });
    }
}
