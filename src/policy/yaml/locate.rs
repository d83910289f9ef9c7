//! Walks a YAML document to one node with yaml_serde itself, so every location we
//! report (line, column, key path) comes from the real parser, not from a re-scan.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::path::{Seg, render};

/// Deserializes the mapping at `path` as `T`, skipping the keys in `skip` (they belong
/// to a different layer of the schema). Locations and key paths of errors stay exact.
pub fn deserialize_at<T: DeserializeOwned>(
    text: &str,
    path: &[Seg],
    skip: &'static [&'static str],
) -> Result<T, serde_yaml::Error> {
    At::new(path, Filtered::<T> { skip, out: PhantomData }).deserialize(serde_yaml::Deserializer::from_str(text))
}

struct At<'p, S> {
    path: &'p [Seg],
    inner: S,
}

impl<'p, S> At<'p, S> {
    fn new(path: &'p [Seg], inner: S) -> Self {
        At { path, inner }
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for At<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        match self.path.split_first() {
            None => self.inner.deserialize(d),
            Some((Seg::Key(_), _)) => d.deserialize_map(self),
            Some((Seg::Index(_), _)) => d.deserialize_seq(self),
        }
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for At<'_, S> {
    type Value = S::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a document containing `{}`", render(self.path))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<S::Value, A::Error> {
        let Some((Seg::Key(want), rest)) = self.path.split_first() else {
            unreachable!("deserialize_map is only called for key segments")
        };
        let mut found = None;
        let mut inner = Some(self.inner);
        while let Some(key) = map.next_key::<String>()? {
            match (key == *want, inner.take()) {
                (true, Some(seed)) => found = Some(map.next_value_seed(At::new(rest, seed))?),
                (_, seed) => {
                    inner = seed;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        found.ok_or_else(|| de::Error::missing_field(leak(want)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<S::Value, A::Error> {
        let Some((Seg::Index(want), rest)) = self.path.split_first() else {
            unreachable!("deserialize_seq is only called for index segments")
        };
        for skipped in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::invalid_length(skipped, &"more elements"));
            }
        }
        let value = seq
            .next_element_seed(At::new(rest, self.inner))?
            .ok_or_else(|| de::Error::invalid_length(*want, &"more elements"))?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(value)
    }
}

// serde wants a `&'static str` field name; this only runs on the error path of a
// malformed document, so the leak is bounded by the number of errors reported.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// Deserializes a mapping as `T` while hiding the keys of another schema layer.
struct Filtered<T> {
    skip: &'static [&'static str],
    out: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Filtered<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for Filtered<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(SkipKeys { map, skip: self.skip }))
    }
}

struct SkipKeys<A> {
    map: A,
    skip: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for SkipKeys<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if self.skip.contains(&key.as_str()) {
                self.map.next_value::<IgnoredAny>()?;
                continue;
            }
            return seed.deserialize(key.into_deserializer()).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// The old way to locate a node, one parse per lookup: a seed that fails on the node so
/// yaml_serde stamps its position. Kept as the reference the index is checked against.
#[cfg(test)]
pub(super) mod oracle {
    use super::*;

    const MARKER: &str = "\u{0}bootgate-locate";

    pub fn reparse_position(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
        let mut path = path.to_vec();
        loop {
            let err = match At::new(&path, Fail).deserialize(serde_yaml::Deserializer::from_str(text)) {
                Ok(()) => return None,
                Err(e) => e,
            };
            if err.to_string().contains(MARKER) {
                return err.location().map(|l| (l.line(), l.column()));
            }
            path.pop()?;
        }
    }

    /// A seed that fails on whatever node it is given, so the parser stamps its location.
    struct Fail;

    impl<'de> DeserializeSeed<'de> for Fail {
        type Value = ();

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Fail {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any node")
        }

        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Err(E::custom(MARKER))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Err(E::custom(MARKER))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Err(E::custom(MARKER))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Err(E::custom(MARKER))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Err(E::custom(MARKER))
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Err(E::custom(MARKER))
        }
        fn visit_none<E: de::Error>(self) -> Result<(), E> {
            Err(E::custom(MARKER))
        }
        fn visit_some<D: Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
            Err(de::Error::custom(MARKER))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            Err(de::Error::custom(MARKER))
        }
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            Err(de::Error::custom(MARKER))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "version: 1\nchecks:\n  - name: a\n    kind: tcp\n    targets: [\"x:1\", \"y:2\"]\n";

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Tcp {
        targets: Vec<String>,
    }

    #[test]
    fn filtered_deserialize_skips_common_keys() {
        let path = [Seg::key("checks"), Seg::Index(0)];
        let tcp: Tcp = deserialize_at(DOC, &path, &["name", "kind"]).unwrap();
        assert_eq!(tcp.targets, ["x:1", "y:2"]);
        let err = deserialize_at::<Tcp>(DOC, &path, &["name"]).unwrap_err();
        assert!(err.to_string().contains("unknown field `kind`"), "{err}");
    }
}
