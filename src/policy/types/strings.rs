//! Strings from the policy: written as YAML strings, never as null, booleans or
//! numbers that YAML would quietly turn into text, and checked where they are read.

use std::fmt;
use std::path::PathBuf;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, de};

use crate::util::redact::quote;

/// Deserializes a YAML string and nothing else, checking it inside the visitor so
/// the parser stamps the value's position on a rejection. YAML would otherwise turn
/// `~`, `12` or `yes` into the text "~", "12", "yes" wherever a string is expected.
pub fn strict<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<F>(&'static str, F);
    impl<T, F: FnOnce(&str) -> Result<T, String>> de::Visitor<'_> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            (self.1)(s).map_err(E::custom)
        }
        fn visit_unit<E: de::Error>(self) -> Result<T, E> {
            Err(not_a_string("null"))
        }
        fn visit_none<E: de::Error>(self) -> Result<T, E> {
            Err(not_a_string("null"))
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<T, E> {
            Err(not_a_string(&format!("the boolean {b}")))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
            Err(not_a_string(&format!("the number {n}")))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
            Err(not_a_string(&format!("the number {n}")))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<T, E> {
            Err(not_a_string(&format!("the number {n}")))
        }
    }
    d.deserialize_any(V(expecting, check))
}

fn not_a_string<E: de::Error>(found: &str) -> E {
    E::custom(format!("expected a string, found {found}; quote it if you mean the text"))
}

/// A non-empty string without surrounding whitespace or control characters (hosts, units).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        strict(d, "a non-empty string", |s| {
            if s.trim().is_empty() {
                Err("must not be empty".into())
            } else if s.trim() != s {
                Err(format!("`{}` has leading or trailing whitespace", quote(s)))
            } else if s.contains(char::is_control) {
                Err(format!("`{}` holds a control character", quote(s)))
            } else {
                Ok(Text(s.to_string()))
            }
        })
    }
}

impl JsonSchema for Text {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Text".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // Control characters are the C0 and C1 ranges and DEL, as `char::is_control` has them.
        json_schema!({
            "type": "string",
            "minLength": 1,
            "pattern": r"^[^\s\u0000-\u001f\u007f-\u009f]([^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f])?$"
        })
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The rule for check names, as stated in messages and docs/policy.md.
pub const NAME_RULE: &str =
    "1 to 63 characters: ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit";

/// A check name: safe in a log line, a URL path, a metric label and a probe's text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Name(pub String);

impl Name {
    /// Whether `s` follows [`NAME_RULE`].
    pub fn valid(s: &str) -> bool {
        let mut chars = s.chars();
        s.len() <= 63
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        strict(d, "a check name", |s| {
            if Name::valid(s) {
                Ok(Name(s.to_string()))
            } else {
                Err(format!("`{}` is not a check name; a name has {NAME_RULE}", quote(s)))
            }
        })
    }
}

impl JsonSchema for Name {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Name".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": NAME_RULE,
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
        })
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Any string, possibly empty, but a string: never a YAML null, boolean or number.
/// A NUL byte is refused, since no argument, header or path can carry one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Str(pub String);

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        strict(d, "a string", |s| match s.find('\0') {
            Some(at) => Err(format!("`{}` holds a NUL byte at offset {at}", quote(s))),
            None => Ok(Str(s.to_string())),
        })
    }
}

impl JsonSchema for Str {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "String".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": r"^[^\u0000]*$" })
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file system path written as a non-empty string without a NUL byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsPath(pub PathBuf);

impl<'de> Deserialize<'de> for FsPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        strict(d, "a path", |s| {
            if s.is_empty() {
                Err("the path is empty".into())
            } else if s.contains('\0') {
                Err(format!("`{}` holds a NUL byte", quote(s)))
            } else {
                Ok(FsPath(PathBuf::from(s)))
            }
        })
    }
}

impl JsonSchema for FsPath {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Path".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "pattern": r"^[^\u0000]*$" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, String> {
        serde_yaml::from_str(s).map_err(|e| e.to_string())
    }

    #[test]
    fn strings_must_be_written_as_strings() {
        for (yaml, found) in [("~", "null"), ("null", "null"), ("12", "the number 12"), ("true", "the boolean true")] {
            let errs = [
                parse::<Text>(yaml).map(drop),
                parse::<Name>(yaml).map(drop),
                parse::<Str>(yaml).map(drop),
                parse::<FsPath>(yaml).map(drop),
            ];
            for err in errs.map(Result::unwrap_err) {
                assert!(err.contains(&format!("expected a string, found {found}; quote it")), "{yaml}: {err}");
            }
        }
        assert_eq!(parse::<Text>("'12'").unwrap().0, "12");
        assert_eq!(parse::<Name>("\"12\"").unwrap().0, "12");
        assert_eq!(parse::<Str>("''").unwrap().0, "");
        assert!(parse::<Str>("\"a\\0b\"").unwrap_err().contains("NUL byte"));
        assert!(parse::<Text>("\"a\\tb\"").unwrap_err().contains("control character"));
    }

    #[test]
    fn check_names_follow_the_rule() {
        for ok in ["web", "root-fs", "docker.sock_1", "A", "0", &"x".repeat(63)] {
            assert!(Name::valid(ok), "{ok}");
        }
        for bad in ["", "-web", ".x", "a b", "a\nb", "a/b", "ünï", "a:b", &"x".repeat(64)] {
            assert!(!Name::valid(bad), "{bad}");
        }
        let err = parse::<Name>("\"a\\nfake line\"").unwrap_err();
        assert!(err.contains("`a\\nfake line` is not a check name") && err.contains(NAME_RULE), "{err}");
    }
}
