//! A mapping that rejects a repeated key. serde's `BTreeMap` keeps the last value
//! silently, so `headers: {X: a, X: b}` would send only `b`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::types::strict;
use crate::util::redact::quote;

/// A map from the policy whose keys are strings, each written once.
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueMap<K, V>(pub BTreeMap<K, V>);

impl<K, V> Default for UniqueMap<K, V> {
    fn default() -> Self {
        UniqueMap(BTreeMap::new())
    }
}

impl<'de, K: Ord + DeserializeOwned, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

struct MapVisitor<K, V>(PhantomData<(K, V)>);

impl<'de, K: Ord + DeserializeOwned, V: Deserialize<'de>> Visitor<'de> for MapVisitor<K, V> {
    type Value = UniqueMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping in which each key appears once")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key_seed(Key { seen: &out, value: PhantomData })? {
            let value = map.next_value()?;
            out.insert(key, value);
        }
        Ok(UniqueMap(out))
    }
}

/// Reads one key and refuses it when already seen. Both happen inside the key's own
/// visitor, so the error carries the line and column of the second occurrence.
struct Key<'a, K, V> {
    seen: &'a BTreeMap<K, V>,
    value: PhantomData<V>,
}

impl<'de, K: Ord + DeserializeOwned, V> DeserializeSeed<'de> for Key<'_, K, V> {
    type Value = K;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
        strict(d, "a key", |s| {
            let key = K::deserialize(StrDeserializer::<de::value::Error>::new(s)).map_err(|e| e.to_string())?;
            if self.seen.contains_key(&key) {
                Err(format!("duplicate key `{}`; each key may appear once", quote(s)))
            } else {
                Ok(key)
            }
        })
    }
}

impl<K: JsonSchema, V: JsonSchema> JsonSchema for UniqueMap<K, V> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <BTreeMap<K, V>>::schema_name()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        <BTreeMap<K, V>>::json_schema(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::types::Str;

    type Map = UniqueMap<Str, Str>;

    #[test]
    fn a_repeated_key_is_refused_where_it_repeats() {
        let err = serde_yaml::from_str::<Map>("a: x\nb: y\na: z\n").unwrap_err();
        assert!(err.to_string().contains("duplicate key `a`"), "{err}");
        let at = err.location().unwrap();
        assert_eq!((at.line(), at.column()), (3, 1), "{err}");
        let ok = serde_yaml::from_str::<Map>("a: x\nb: y\n").unwrap();
        assert_eq!(ok.0.len(), 2);
    }

    #[test]
    fn keys_must_be_strings() {
        let err = serde_yaml::from_str::<Map>("12: x\n").unwrap_err();
        assert!(err.to_string().contains("found the number 12"), "{err}");
        assert!(serde_yaml::from_str::<Map>("'12': x\n").is_ok());
    }
}
