//! The health documents as pure functions of a snapshot: the seed's JSON and the
//! IETF health-check draft (`application/health+json`).

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::boot::identity::Device;
use crate::engine::{CheckResult, GateState, Health, Snapshot};
use crate::record::boot::BootFacts;
use crate::record::verdict::CheckRecord;
use crate::util::time::timestamp_seconds;

mod ietf;
mod uptime;

pub use ietf::one as ietf_one;

/// Facts about the machine that are not in the snapshot.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now: SystemTime,
    pub boot_id: Option<&'a str>,
    /// The machine's uptime.
    pub uptime_seconds: Option<u64>,
    /// This daemon's.
    pub process_uptime_seconds: Option<u64>,
    pub boot: Option<&'a BootFacts>,
    /// Which device this is.
    pub device: Option<&'a Device>,
}

/// Whether the overall answer is good news: the gate passed and nothing critical fails.
pub fn is_ok(s: &Snapshot) -> bool {
    s.gate == GateState::Passed && s.verdict().health != Health::Unhealthy
}

/// One entry of `components`, the answer of one component's route and of a run on
/// request: the shape `check --format json` and the verdict file give each check.
pub fn component(c: &CheckResult) -> Value {
    serde_json::to_value(CheckRecord::of(c)).unwrap_or_default()
}

/// The seed's health document.
pub fn seed(s: &Snapshot, facts: &Facts) -> Value {
    let components: Map<String, Value> = s.checks.iter().map(|c| (c.name.clone(), component(c))).collect();
    let mut doc = json!({
        "status": s.verdict().health,
        "timestamp": timestamp_seconds(facts.now),
        "version": env!("CARGO_PKG_VERSION"),
        "boot_id": facts.boot_id,
        "uptime_seconds": facts.uptime_seconds,
        "process_uptime_seconds": facts.process_uptime_seconds,
        "startup_health_check": s.gate,
        "components": components,
    });
    if !s.gate_failing.is_empty() {
        doc["startup_failing"] = serde_json::to_value(&s.gate_failing).unwrap_or_default();
    }
    if let Some(reason) = &s.gate_reason {
        doc["startup_reason"] = reason.as_str().into();
    }
    if let Some(soak) = &s.soak {
        let remaining = soak.remaining(facts.now).as_secs_f64().ceil();
        doc["soak"] = json!({"seconds": soak.total.as_secs_f64(), "remaining_seconds": remaining});
    }
    if let Some(w) = &s.rollback {
        doc["rollback"] = json!({
            "window_ends": timestamp_seconds(w.ends),
            "armed": w.armed_at(facts.now),
            "remaining_seconds": w.remaining(facts.now).as_secs_f64().ceil(),
            "note": w.note,
        });
    }
    if let Some(boot) = facts.boot {
        doc["boot"] = serde_json::to_value(boot).unwrap_or_default();
    }
    if let Some(d) = facts.device {
        doc["device"] = device(d);
    }
    doc
}

/// The health document's `device`: every key present (`null` when unknown), so fleets
/// can index on it; the machine id in its short form, since systemd asks that the whole
/// id stay off the network.
pub fn device(d: &Device) -> Value {
    let os = &d.os;
    json!({
        "hostname": d.hostname,
        "machine_id": d.short_machine_id(),
        "os": {
            "id": os.id,
            "pretty_name": os.pretty_name,
            "version": os.os_version(),
            "version_id": os.version_id,
            "image_id": os.image_id,
            "image_version": os.image_version,
        },
    })
}

/// The IETF health-check draft document.
pub fn ietf(s: &Snapshot) -> Value {
    ietf::overall(s)
}

/// Whole seconds since the machine booted (`/proc/uptime`).
pub fn uptime() -> Option<u64> {
    uptime::machine()
}

/// Whole seconds since this daemon started.
pub fn process_uptime() -> Option<u64> {
    uptime::process()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::checks::Status;

    fn check(name: &str, status: Status) -> CheckResult {
        let c = CheckResult::finished(name, true, status)
            .with_kind("disk")
            .with_message(format!("{name} says {}", status.as_str()))
            .with_observed("free_space_percent", 65.2)
            .with_attempts(1, Duration::from_micros(1200));
        if status == Status::Pending { c } else { c.with_last_check(SystemTime::now()) }
    }

    #[test]
    fn observed_values_sit_in_one_place_beside_the_fixed_keys() {
        let mut c = check("storage", Status::Pass);
        c.observed.insert("status".into(), json!("bogus"));
        let v = component(&c);
        assert_eq!(v["status"], "healthy");
        assert_eq!(v["name"], "storage");
        assert_eq!(v["observed"]["free_space_percent"], 65.2);
        assert_eq!(v["observed"]["status"], "bogus");
        assert!(v.get("free_space_percent").is_none());
        assert_eq!(v["duration_ms"], 1.2);
        assert!(v.get("next_attempt").is_none());
        // The same keys as `check --format json` and the verdict file.
        assert_eq!(v, serde_json::to_value(CheckRecord::of(&c)).unwrap());
    }

    #[test]
    fn a_retrying_check_says_when_it_tries_again() {
        let mut c = check("api", Status::Pending);
        c.timing.next_attempt = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2));
        assert_eq!(component(&c)["next_attempt"], "1970-01-01T00:00:02.000Z");
    }
}
