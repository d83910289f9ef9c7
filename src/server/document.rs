//! The health documents as pure functions of a snapshot: the seed's JSON and the
//! IETF health-check draft (`application/health+json`).

use std::path::Path;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::checks::Status;
use crate::engine::{CheckResult, GateState, Health, Snapshot};
use crate::report::{millis, timestamp};

/// Facts about the machine that are not in the snapshot.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now: SystemTime,
    pub boot_id: Option<&'a str>,
    pub uptime_seconds: Option<u64>,
    pub boot: Option<&'a Value>,
}

/// Whether the overall answer is good news: the gate passed and nothing critical fails.
pub fn is_ok(s: &Snapshot) -> bool {
    s.gate == GateState::Passed && s.verdict().health != Health::Unhealthy
}

/// A component's status: healthy, degraded, unhealthy, or pending before its first result.
pub fn component_status(c: &CheckResult) -> &'static str {
    match (c.status, c.critical) {
        (Status::Pass, _) => "healthy",
        (Status::Warn, _) | (Status::Fail | Status::Skipped, false) => "degraded",
        (Status::Fail | Status::Skipped, true) => "unhealthy",
        (Status::Pending, _) => "pending",
    }
}

/// One entry of `components`: status, timing, message and the observed values flattened in.
pub fn component(c: &CheckResult) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), component_status(c).into());
    m.insert("result".into(), c.status.as_str().into());
    m.insert("kind".into(), c.kind.into());
    m.insert("critical".into(), c.critical.into());
    if let Some(t) = c.last_check {
        m.insert("last_check".into(), timestamp(t).into());
    }
    m.insert("duration_ms".into(), json!(millis(c.duration)));
    m.insert("attempts".into(), c.attempts.into());
    m.insert("consecutive_failures".into(), c.consecutive_failures.into());
    m.insert("message".into(), c.message.clone().into());
    // Observed values sit beside the fixed keys; a fixed key always wins a clash.
    for (k, v) in &c.observed {
        m.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Value::Object(m)
}

/// The seed's health document.
pub fn seed(s: &Snapshot, facts: &Facts) -> Value {
    let components: Map<String, Value> = s.checks.iter().map(|c| (c.name.clone(), component(c))).collect();
    let mut doc = json!({
        "status": s.verdict().health,
        "timestamp": humantime::format_rfc3339_seconds(facts.now).to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "boot_id": facts.boot_id,
        "uptime_seconds": facts.uptime_seconds,
        "startup_health_check": s.gate,
        "components": components,
    });
    if !s.gate_failing.is_empty() {
        doc["startup_failing"] =
            s.gate_failing.iter().map(|(name, message)| json!({"name": name, "message": message})).collect();
    }
    if let Some(boot) = facts.boot {
        doc["boot"] = boot.clone();
    }
    doc
}

/// The IETF draft status of the whole service; follows the HTTP status (fail ⇔ 503).
fn ietf_overall(s: &Snapshot) -> &'static str {
    if !is_ok(s) {
        "fail"
    } else if s.verdict().health == Health::Degraded {
        "warn"
    } else {
        "pass"
    }
}

/// The IETF draft status of one check; a pending check is not a failure yet.
fn ietf_status(c: &CheckResult) -> &'static str {
    match component_status(c) {
        "healthy" => "pass",
        "unhealthy" => "fail",
        _ => "warn",
    }
}

/// The observed value that best sums a check kind up, and its unit.
fn primary(kind: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match kind {
        "disk" => ("free_space_percent", Some("percent")),
        "http" => ("response_ms", Some("ms")),
        "tcp" => ("reachable", Some("targets")),
        "containers" => ("containers_running", Some("containers")),
        "dns" => ("addresses", None),
        "systemd" => ("active_state", None),
        "exec" => ("exit_code", None),
        _ => return None,
    })
}

/// One entry of the IETF `checks` object.
fn ietf_check(c: &CheckResult) -> Value {
    let status = ietf_status(c);
    let mut m = Map::new();
    m.insert("componentId".into(), c.name.clone().into());
    m.insert("componentType".into(), c.kind.into());
    m.insert("status".into(), status.into());
    if let Some(t) = c.last_check {
        m.insert("time".into(), timestamp(t).into());
    }
    if let Some((value, unit)) = primary(c.kind).and_then(|(key, unit)| Some((c.observed.get(key)?, unit))) {
        m.insert("observedValue".into(), value.clone());
        if let Some(unit) = unit {
            m.insert("observedUnit".into(), unit.into());
        }
    }
    if status != "pass" {
        let output = if c.status == Status::Pending { format!("pending: {}", c.message) } else { c.message.clone() };
        m.insert("output".into(), output.into());
    }
    Value::Object(m)
}

/// The IETF health-check draft document; `checks` is keyed `name:status`.
pub fn ietf(s: &Snapshot) -> Value {
    let status = ietf_overall(s);
    let checks: Map<String, Value> =
        s.checks.iter().map(|c| (format!("{}:status", c.name), json!([ietf_check(c)]))).collect();
    let mut doc = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "serviceId": "bootgate",
        "description": "boot health gate",
        "checks": checks,
    });
    if status != "pass" {
        doc["output"] = overall_output(s).into();
    }
    doc
}

/// Why the service is not a plain pass, in one line.
fn overall_output(s: &Snapshot) -> String {
    let troubled: Vec<String> = s
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| format!("{} {}", c.name, component_status(c)))
        .collect();
    format!("gate {}, {}: {}", s.gate.as_str(), s.verdict().health.as_str(), troubled.join(", "))
}

/// Whole seconds since the system booted, from `/proc/uptime`.
pub fn uptime() -> Option<u64> {
    uptime_at(Path::new("/proc/uptime"))
}

/// [`uptime`] from another file in the same format (`12345.67 54321.00`).
pub fn uptime_at(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(secs as u64)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::checks::Observed;

    fn check(name: &str, kind: &'static str, critical: bool, status: Status) -> CheckResult {
        let mut observed = Observed::new();
        observed.insert("free_space_percent".into(), json!(65.2));
        CheckResult {
            name: name.into(),
            kind,
            critical,
            status,
            message: format!("{name} says {}", status.as_str()),
            observed,
            duration: Duration::from_micros(1200),
            attempts: 1,
            last_check: (status != Status::Pending).then(SystemTime::now),
            consecutive_failures: 0,
            consecutive_successes: 1,
        }
    }

    #[test]
    fn component_status_mapping() {
        use Status::*;
        let cases = [
            (Pass, true, "healthy"),
            (Pass, false, "healthy"),
            (Warn, true, "degraded"),
            (Warn, false, "degraded"),
            (Fail, true, "unhealthy"),
            (Fail, false, "degraded"),
            (Skipped, true, "unhealthy"),
            (Skipped, false, "degraded"),
            (Pending, true, "pending"),
            (Pending, false, "pending"),
        ];
        for (status, critical, want) in cases {
            assert_eq!(component_status(&check("c", "disk", critical, status)), want, "{status:?} {critical}");
        }
    }

    #[test]
    fn observed_values_never_replace_fixed_keys() {
        let mut c = check("storage", "disk", true, Status::Pass);
        c.observed.insert("status".into(), json!("bogus"));
        let v = component(&c);
        assert_eq!(v["status"], "healthy");
        assert_eq!(v["free_space_percent"], 65.2);
        assert_eq!(v["duration_ms"], 1.2);
    }

    #[test]
    fn ietf_primary_observation_and_output() {
        let s = Snapshot {
            gate: GateState::Passed,
            checks: vec![check("storage", "disk", true, Status::Pass), check("net", "tcp", false, Status::Fail)],
            gate_started: SystemTime::now(),
            gate_duration: None,
            gate_failing: Vec::new(),
        };
        let doc = ietf(&s);
        assert_eq!(doc["status"], "warn");
        let storage = &doc["checks"]["storage:status"][0];
        assert_eq!(storage["observedValue"], 65.2);
        assert_eq!(storage["observedUnit"], "percent");
        assert!(storage.get("output").is_none());
        let net = &doc["checks"]["net:status"][0];
        assert_eq!(net["status"], "warn");
        assert_eq!(net["output"], "net says fail");
        assert!(net.get("observedValue").is_none(), "tcp reports `reachable`, not free space");
    }

    #[test]
    fn uptime_reads_whole_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uptime");
        std::fs::write(&path, "3600.97 7000.00\n").unwrap();
        assert_eq!(uptime_at(&path), Some(3600));
        assert_eq!(uptime_at(&dir.path().join("missing")), None);
        assert!(uptime().is_some());
    }
}
