//! Value types that cannot hold an invalid value. Each rejects bad input while it is
//! being deserialized, so the parser attaches the exact line and column to the error.

use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::util::redact::quote;

mod strings;

pub use strings::{FsPath, NAME_RULE, Name, Str, Text, strict};

/// A non-negative duration written as `250ms`, `10s`, `2m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Display::fmt(&crate::util::time::spelled(self.0), f)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `250ms`, `10s` or `2m`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                let s = s.trim();
                if s.starts_with('-') {
                    return Err(E::custom(format!("duration `{}` is negative; durations must be ≥ 0", quote(s))));
                }
                let d = humantime::parse_duration(s).map_err(|e| {
                    let why = quote(&e.to_string());
                    E::custom(format!("invalid duration `{}` ({why}); write e.g. `250ms`, `10s`, `2m`", quote(s)))
                })?;
                if d > super::MAX_DURATION {
                    return Err(E::custom(format!(
                        "duration `{}` is longer than the maximum of {}",
                        quote(s),
                        crate::util::time::spelled(super::MAX_DURATION)
                    )));
                }
                Ok(Dur(d))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!("duration `{n}` has no unit; write e.g. `{}s`", n.unsigned_abs())))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dur, E> {
                Err(E::custom(format!("duration `{n}` has no unit; write e.g. `{n}s`")))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(format!("duration `{n}` has no unit; write e.g. `{n}s`")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as `250ms`, `10s`, `2m` or `1h 30m`.",
            "pattern": super::schema::duration_pattern()
        })
    }
}

/// A percentage from 0 to 100 inclusive.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Percent(pub f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Validation happens inside the visitor so the parser stamps the value's position.
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a percentage from 0 to 100")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Percent, E> {
                if (0.0..=100.0).contains(&v) {
                    Ok(Percent(v))
                } else {
                    Err(E::custom(format!("percentage {v} is outside 0–100")))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percent, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number", "minimum": 0, "maximum": 100 })
    }
}

/// A list that must hold at least one element.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NonEmpty<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NonEmpty<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for V<T> {
            type Value = NonEmpty<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list with at least one entry")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<NonEmpty<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                if items.is_empty() {
                    return Err(de::Error::custom("the list is empty; at least one entry is required"));
                }
                Ok(NonEmpty(items))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for NonEmpty<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("NonEmpty_{}", T::schema_name()).into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "array", "items": g.subschema_for::<T>(), "minItems": 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, String> {
        serde_yaml::from_str(s).map_err(|e| e.to_string())
    }

    #[test]
    fn durations() {
        assert_eq!(parse::<Dur>("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(parse::<Dur>("2m").unwrap().0, Duration::from_secs(120));
        assert!(parse::<Dur>("-5s").unwrap_err().contains("negative"));
        assert!(parse::<Dur>("10").unwrap_err().contains("no unit"));
        assert!(parse::<Dur>("soon").unwrap_err().contains("invalid duration"));
    }

    #[test]
    fn percents_and_lists() {
        assert_eq!(parse::<Percent>("12.5").unwrap().0, 12.5);
        assert!(parse::<Percent>("101").unwrap_err().contains("outside 0–100"));
        assert!(parse::<Percent>("-1").is_err());
        assert!(parse::<NonEmpty<u8>>("[]").unwrap_err().contains("empty"));
        assert!(parse::<Text>("\" x\"").unwrap_err().contains("whitespace"));
    }
}
