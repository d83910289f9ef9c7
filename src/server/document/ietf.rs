//! The IETF health-check draft (draft-inadarei-api-health-check, `application/health+json`).
//!
//! `version` is the public (major) version of the API, the `v1` of `/api/v1`;
//! `releaseId` is the build. Each check is keyed `{name}:{measurement}` with the
//! measurement that sums its kind up, and typed `system` (the machine's own
//! resources: disk, TPM) or `component` (services the device depends on).

use serde_json::{Map, Value, json};

use crate::checks::{Observed, Status};
use crate::engine::{CheckResult, Health, Snapshot};
use crate::util::time::timestamp;

/// The public version of the health API; changes only with an incompatible `/api/vN`.
pub const API_VERSION: &str = "1";

/// How a check kind is measured: the draft's measurement name, component type, the
/// observed value and its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    pub name: &'static str,
    pub component_type: &'static str,
    pub unit: Option<&'static str>,
    source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Key(&'static str),
    /// The draft's `utilization` is the used share; the disk check reports the free one.
    UsedPercent,
    None,
}

/// The measurement of check kind `kind`.
pub fn measure(kind: &str) -> Measure {
    let m = |name, component_type, unit, source| Measure { name, component_type, unit, source };
    match kind {
        "disk" => m("utilization", "system", Some("percent"), Source::UsedPercent),
        "http" => m("responseTime", "component", Some("ms"), Source::Key("response_ms")),
        "tcp" => m("reachable", "component", Some("targets"), Source::Key("reachable")),
        "containers" => m("running", "component", Some("containers"), Source::Key("running")),
        "docker" => m("running", "component", Some("containers"), Source::Key("containers_running")),
        "tpm" => m("present", "system", None, Source::Key("present")),
        "dns" => m("addresses", "component", None, Source::Key("addresses")),
        "systemd" => m("activeState", "component", None, Source::Key("active_state")),
        "exec" => m("exitCode", "component", None, Source::Key("exit_code")),
        _ => m("status", "component", None, Source::None),
    }
}

impl Measure {
    fn value(&self, observed: &Observed) -> Option<Value> {
        match self.source {
            Source::Key(key) => observed.get(key).cloned(),
            Source::UsedPercent => {
                let free = observed.get("free_space_percent")?.as_f64()?;
                // One decimal, as the free share is reported.
                Some(json!(((100.0 - free) * 10.0).round() / 10.0))
            }
            Source::None => None,
        }
    }
}

/// The key of a check in `checks`; the draft reserves `:` as the separator.
pub fn key(c: &CheckResult) -> String {
    format!("{}:{}", c.name.replace(':', "_"), measure(c.kind).name)
}

/// One entry of the `checks` object.
pub fn entry(c: &CheckResult) -> Value {
    let measure = measure(c.kind);
    let status = c.health().ietf();
    let mut m = Map::new();
    m.insert("componentId".into(), c.name.clone().into());
    m.insert("componentType".into(), measure.component_type.into());
    m.insert("status".into(), status.into());
    if let Some(t) = c.last_check {
        m.insert("time".into(), timestamp(t).into());
    }
    if let Some(value) = measure.value(&c.observed) {
        m.insert("observedValue".into(), value);
        if let Some(unit) = measure.unit {
            m.insert("observedUnit".into(), unit.into());
        }
    }
    if status != "pass" {
        m.insert("output".into(), c.message.clone().into());
    }
    Value::Object(m)
}

fn document(status: &str, checks: Map<String, Value>, output: Option<String>) -> Value {
    let mut doc = json!({
        "status": status,
        "version": API_VERSION,
        "releaseId": env!("CARGO_PKG_VERSION"),
        "serviceId": "bootgate",
        "description": "boot health gate",
        "checks": checks,
    });
    if let Some(output) = output {
        doc["output"] = output.into();
    }
    doc
}

/// The whole document; its status follows the HTTP status (fail ⇔ 503).
pub fn overall(s: &Snapshot) -> Value {
    let status = if !super::is_ok(s) {
        "fail"
    } else if s.verdict().health == Health::Degraded {
        "warn"
    } else {
        "pass"
    };
    let checks = s.checks.iter().map(|c| (key(c), json!([entry(c)]))).collect();
    document(status, checks, (status != "pass").then(|| overall_output(s)))
}

/// The document of one check, for `/api/v1/system/health/{check}`.
pub fn one(c: &CheckResult) -> Value {
    let e = entry(c);
    let status = c.health().ietf();
    let output = (status != "pass").then(|| c.message.clone());
    document(status, Map::from_iter([(key(c), json!([e]))]), output)
}

/// Why the service is not a plain pass, in one line.
fn overall_output(s: &Snapshot) -> String {
    let troubled: Vec<String> = s
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| format!("{} {}", c.name, c.health().as_str()))
        .collect();
    format!("gate {}, {}: {}", s.gate.as_str(), s.verdict().health.as_str(), troubled.join(", "))
}
