//! JSON Schema of the policy: the raw structs plus one branch per check kind.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::raw::RawPolicy;
use super::types::{Dur, Name};
use crate::checks::KINDS;

/// The JSON Schema `bootgate schema` prints and `policy/schema.json` holds.
pub fn policy_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawPolicy)).expect("a schema is plain JSON")
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
                "after": { "type": "array", "items": g.subschema_for::<Name>(), "description": "Checks that must pass before this one runs; otherwise it is skipped." }
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
