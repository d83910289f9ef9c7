//! The verdict: a pure function of check results and criticality.

use serde::{Deserialize, Serialize};

use crate::checks::Status;

/// Overall health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// What one check's `(critical, status)` means, for every renderer: the word in the
/// health document, the HTTP code of its own route and its IETF draft status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentHealth {
    Healthy,
    /// A warning, or an optional check that failed or was skipped.
    Degraded,
    /// A critical check that failed or was skipped.
    Unhealthy,
    /// No result yet (not run, or waiting to retry).
    Pending,
}

impl ComponentHealth {
    /// The one mapping from a check's criticality and status.
    pub fn of(critical: bool, status: Status) -> Self {
        match (status, critical) {
            (Status::Pass, _) => ComponentHealth::Healthy,
            (Status::Warn, _) | (Status::Fail | Status::Skipped, false) => ComponentHealth::Degraded,
            (Status::Fail | Status::Skipped, true) => ComponentHealth::Unhealthy,
            (Status::Pending, _) => ComponentHealth::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ComponentHealth::Healthy => "healthy",
            ComponentHealth::Degraded => "degraded",
            ComponentHealth::Unhealthy => "unhealthy",
            ComponentHealth::Pending => "pending",
        }
    }

    /// The IETF health-check draft status; a pending check is not a failure yet.
    pub fn ietf(self) -> &'static str {
        match self {
            ComponentHealth::Healthy => "pass",
            ComponentHealth::Degraded | ComponentHealth::Pending => "warn",
            ComponentHealth::Unhealthy => "fail",
        }
    }

    /// The HTTP code of a route about this one check: 200 while usable, 503 when
    /// failing critically or not known yet (so `curl -f` tells the truth).
    pub fn http_code(self) -> u16 {
        match self {
            ComponentHealth::Healthy | ComponentHealth::Degraded => 200,
            ComponentHealth::Unhealthy | ComponentHealth::Pending => 503,
        }
    }
}

/// Whether a check keeps the gate (and readiness) from passing: critical and not
/// passed, whether it failed, was skipped or has no result yet.
pub fn blocks_gate(critical: bool, status: Status) -> bool {
    critical && !status.passed()
}

/// Why a critical check failed a trial boot's gate, judged against the image the update
/// replaces, as that image last saw the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Blame {
    /// It passed on the previous image: the update broke it.
    Regression,
    /// It was failing on the previous image too: the update is no worse.
    Preexisting,
    /// No recent record of it on the previous image (or it is a new check).
    Unknown,
}

impl Blame {
    /// The JSON and label word.
    pub fn as_str(self) -> &'static str {
        match self {
            Blame::Regression => "regression",
            Blame::Preexisting => "preexisting",
            Blame::Unknown => "unknown",
        }
    }
}

/// Where the boot gate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// The gate as people are told it, the one wording every renderer uses (STATUS, the
/// page, events, reboot texts, probes): its state, `soaking` while the soak runs, and
/// the reason it failed when the failing checks alone do not say (`failed during soak`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateWord<'a> {
    Running,
    Soaking,
    Passed,
    /// Failed, with the reason when there is one.
    Failed(Option<&'a str>),
}

impl<'a> GateWord<'a> {
    /// The word for a gate in `state`, soaking or not, failed for `reason`.
    pub fn of(state: GateState, soaking: bool, reason: Option<&'a str>) -> Self {
        match state {
            GateState::Running if soaking => GateWord::Soaking,
            GateState::Running => GateWord::Running,
            GateState::Passed => GateWord::Passed,
            GateState::Failed => GateWord::Failed(reason),
        }
    }

    /// Whether the gate has not decided yet.
    pub fn undecided(self) -> bool {
        matches!(self, GateWord::Running | GateWord::Soaking)
    }
}

impl std::fmt::Display for GateWord<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            GateWord::Running => "running",
            GateWord::Soaking => "soaking",
            GateWord::Passed => "passed",
            GateWord::Failed(None) => "failed",
            GateWord::Failed(Some(reason)) => reason,
        })
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
                if blocks_gate(critical, status) {
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

    /// Every `(critical, status)` pair, written out: the word, the IETF status, the
    /// code of the check's own route and whether it holds the gate.
    #[test]
    fn component_health_over_critical_and_status() {
        use ComponentHealth as C;
        let table = [
            (true, Pass, C::Healthy, "healthy", "pass", 200, false),
            (false, Pass, C::Healthy, "healthy", "pass", 200, false),
            (true, Warn, C::Degraded, "degraded", "warn", 200, false),
            (false, Warn, C::Degraded, "degraded", "warn", 200, false),
            (true, Fail, C::Unhealthy, "unhealthy", "fail", 503, true),
            (false, Fail, C::Degraded, "degraded", "warn", 200, false),
            (true, Skipped, C::Unhealthy, "unhealthy", "fail", 503, true),
            (false, Skipped, C::Degraded, "degraded", "warn", 200, false),
            (true, Pending, C::Pending, "pending", "warn", 503, true),
            (false, Pending, C::Pending, "pending", "warn", 503, false),
        ];
        assert_eq!(table.len(), 2 * ALL.len(), "every pair is listed");
        for critical in [true, false] {
            for s in ALL {
                let &(_, _, health, word, ietf, code, blocks) =
                    table.iter().find(|r| r.0 == critical && r.1 == s).expect("listed");
                let got = ComponentHealth::of(critical, s);
                let at = format!("critical={critical} {s:?}");
                assert_eq!(got, health, "{at}");
                assert_eq!(got.as_str(), word, "{at}");
                assert_eq!(serde_json::to_value(got).unwrap(), word, "{at}");
                assert_eq!(got.ietf(), ietf, "{at}");
                assert_eq!(got.http_code(), code, "{at}");
                assert_eq!(blocks_gate(critical, s), blocks, "{at}");
                // The single-check verdict agrees: what blocks the gate is unhealthy overall.
                assert_eq!(verdict([(critical, s)]).health == Health::Unhealthy, blocks, "{at}");
            }
        }
    }

    #[test]
    fn the_gate_word_says_soaking_and_the_reason() {
        let word = |state, soaking, reason| GateWord::of(state, soaking, reason).to_string();
        assert_eq!(word(GateState::Running, false, None), "running");
        assert_eq!(word(GateState::Running, true, None), "soaking");
        assert_eq!(word(GateState::Passed, false, Some("ignored")), "passed");
        assert_eq!(word(GateState::Failed, false, None), "failed");
        assert_eq!(word(GateState::Failed, true, Some("failed during soak")), "failed during soak");
        assert!(GateWord::Soaking.undecided() && !GateWord::Failed(None).undecided());
    }

    #[test]
    fn empty_is_healthy_but_policies_never_are_empty() {
        // Validation rejects a policy without checks; the pure function itself is neutral.
        assert_eq!(verdict([]), Verdict { health: Health::Healthy, gate: GateState::Passed });
    }
}
