//! JSON Schema of the policy: the raw structs plus one branch per check kind.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::raw::RawPolicy;
use super::types::{Dur, Name};
use crate::checks::KINDS;

/// The schema's `$id`: a stable name for editors and validators; nothing fetches it.
pub const SCHEMA_ID: &str = "https://bootgate.dev/schema/policy-v1.json";

/// A port from 1 to 65535, as Rust reads it (leading zeros allowed).
const PORT: &str = "0*(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})";
/// An IPv6 address in brackets; the characters only, the parser checks the rest.
const IPV6: &str = r"\[[0-9A-Fa-f:.]+\]";

/// A tcp target: `host:port`, an IPv6 address in brackets.
pub fn host_port_pattern() -> String {
    format!(r"^({IPV6}|[^\s:\[\]/@]+):{PORT}$")
}

/// An `http://` or `https://` URL (any case) that names its host in the text.
pub fn http_url_pattern() -> String {
    format!(r"^[Hh][Tt][Tt][Pp][Ss]?://([^/?#\s]*@)?({IPV6}|[^/?#@:\[\]\s]+)(:(0|{PORT})?)?([/?#].*)?$")
}

/// A socket address to listen on: IPv4 or bracketed IPv6, and a port.
pub fn listen_pattern() -> String {
    let octet = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    format!(r"^(({octet}\.){{3}}{octet}|{IPV6}):(0|{PORT})$")
}

/// Every unit humantime reads, longest first within each family.
const UNITS: &str = "nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|\
hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y";

/// A duration: numbers, each with a unit, e.g. `250ms`, `1m 30s`, `1.5h`.
pub fn duration_pattern() -> String {
    format!(r"^\s*([0-9]+(\.[0-9]+)?\s*({UNITS})\s*)+$")
}

// Patterns go on the field's own schema: schemars cannot add one beside a `$ref`.

/// Schema of a tcp check's `targets`.
pub fn host_ports(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "minItems": 1,
        "items": { "type": "string", "pattern": host_port_pattern() }
    })
}

/// Schema of an http check's `url`.
pub fn http_url(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": http_url_pattern()
    })
}

/// Schema of a `checks_from` entry's `prefix`: the start of a check name.
pub fn prefix(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "description": "Put before each file name to make its check's name.",
        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$"
    })
}

/// Schema of `server.listen`.
pub fn listen(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["string", "null"],
        "pattern": listen_pattern()
    })
}

/// The JSON Schema `bootgate schema` prints and `policy/schema.json` holds.
pub fn policy_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(RawPolicy)).expect("a schema is plain JSON");
    schema["$id"] = SCHEMA_ID.into();
    schema
}

/// Stand-in type whose schema describes one check of any kind.
pub struct CheckSchema;

impl JsonSchema for CheckSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Check".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let branches: Vec<serde_json::Value> = KINDS
            .iter()
            .map(|k| {
                let mut branch = (k.schema)(g).to_value();
                let obj = branch.as_object_mut().expect("kind keys are an object");
                obj.remove("additionalProperties");
                obj.remove("$schema");
                obj.remove("title");
                let props = obj.entry("properties").or_insert_with(|| serde_json::json!({}));
                props["kind"] = serde_json::json!({ "const": k.name });
                obj.insert("required".into(), merge_required(obj.get("required"), "kind"));
                obj.insert("description".into(), format!("A `{}` check.", k.name).into());
                branch
            })
            .collect();
        json_schema!({
            "type": "object",
            "required": ["name", "kind"],
            "properties": {
                "name": g.subschema_for::<Name>(),
                "kind": { "enum": KINDS.iter().map(|k| k.name).collect::<Vec<_>>() },
                "critical": { "type": "boolean", "description": "A failing critical check fails the gate (default true)." },
                "timeout": g.subschema_for::<Dur>(),
                "retries": { "type": "integer", "minimum": 0, "description": "Further attempts after a failure, with backoff 1s, 2s, 4s … 30s (default 3)." },
                "after": { "type": "array", "items": g.subschema_for::<Name>(), "description": "Checks that must pass before this one runs; otherwise it is skipped." },
                "interval": g.subschema_for::<Dur>(),
                "start_period": g.subschema_for::<Dur>()
            },
            "oneOf": branches,
            "unevaluatedProperties": false
        })
    }
}

fn merge_required(existing: Option<&serde_json::Value>, extra: &str) -> serde_json::Value {
    let mut list: Vec<serde_json::Value> = existing.and_then(|v| v.as_array().cloned()).unwrap_or_default();
    list.push(extra.into());
    list.into()
}
