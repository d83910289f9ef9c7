//! Reading typed values from a parsed policy, one node at a time, so one rejected
//! section or check never hides the problems of the others. Every problem is located
//! through the one-pass [`Index`], never by reading the whole text again.

use serde::de::DeserializeOwned;

use super::Problem;
use super::yaml::index::Index;
use super::yaml::path::{self, Seg};
use crate::util::redact;

/// The problems found so far, and where to locate new ones.
pub struct Ctx<'a> {
    pub index: &'a Index,
    pub file: &'a str,
    pub problems: Vec<Problem>,
}

impl Ctx<'_> {
    /// A problem at the node at `path` (or its deepest existing parent).
    pub fn at(&mut self, path: &[Seg], message: impl Into<String>) {
        let at = self.index.position(path);
        self.push(at, path::render(path), message.into());
    }

    /// A problem at the key that ends `path`, where it is written (an unknown key).
    pub fn at_key(&mut self, path: &[Seg], message: impl Into<String>) {
        let at = self.index.key_position(path);
        self.push(at, path::render(path), message.into());
    }

    fn push(&mut self, at: Option<(usize, usize)>, key: String, message: String) {
        let (line, column) = at.unwrap_or((1, 1));
        self.problems.push(Problem { file: self.file.into(), line, column, key, message });
    }

    /// Reads `node`, found at `path` of the file, as `T`; a rejection becomes a problem.
    pub fn typed<T: DeserializeOwned>(&mut self, node: &serde_yaml::Value, path: &[Seg]) -> Option<T> {
        let err = match T::deserialize(node) {
            Ok(value) => return Some(value),
            Err(e) => e,
        };
        // A tree gives no key path in its errors; the node's own text does, relative to it.
        // Both are small, so each rejected node costs time in its own size only.
        match serde_yaml::to_string(node).map(|own| serde_yaml::from_str::<T>(&own)) {
            Ok(Err(e)) => self.relative(&e, path),
            _ => self.at(path, hint(&redact::message(&err.to_string()))),
        }
        None
    }

    /// Converts a yaml_serde error from reading a node's own text: its key path is
    /// relative to the node at `base`; the index gives the position in the file.
    pub fn relative(&mut self, err: &serde_yaml::Error, base: &[Seg]) {
        let full = err.to_string();
        let (rel, message, field) = split(&full);
        let mut path = base.to_vec();
        path.extend(path::parse_path(rel));
        let message = hint(&redact::message(message));
        match field {
            Some(Field::Unknown(key)) => {
                path.push(Seg::key(key));
                self.at_key(&path, message);
            }
            Some(Field::Missing(key)) => {
                // Shown at the mapping that lacks it.
                path.push(Seg::key(key));
                self.at(&path, message);
            }
            None => self.at(&path, message),
        }
    }

    /// Converts the error of parsing the whole text (a syntax error, a repeated key).
    pub fn document(&mut self, err: &serde_yaml::Error) {
        let full = err.to_string();
        let (path, message, _) = split(&full);
        if message.starts_with("duplicate entry with key ") {
            // yaml_serde stops at the first; the index knows them all.
            let repeats: Vec<(String, String, (usize, usize))> =
                self.index.repeats().map(|(p, k, at)| (p.to_string(), k.to_string(), at)).collect();
            for (path, key, at) in &repeats {
                let message = format!("duplicate entry with key \"{}\"", redact::quote(key));
                self.push(Some(*at), path.clone(), message);
            }
            if !repeats.is_empty() {
                return;
            }
        }
        let at = err.location().map(|l| (l.line(), l.column()));
        self.push(at, path.to_string(), redact::message(message));
    }
}

/// A key an `unknown field` or `missing field` message names.
enum Field<'a> {
    Unknown(&'a str),
    Missing(&'a str),
}

/// Splits a yaml_serde message into its key path, the message itself and the field an
/// `unknown field`/`missing field` message names.
fn split(full: &str) -> (&str, &str, Option<Field<'_>>) {
    // Display ends in " at line L column C"; the position is taken from elsewhere.
    let full = full.rfind(" at line ").map_or(full, |i| &full[..i]);
    let (path, message) = match full.split_once(": ") {
        Some((p, m)) if !p.is_empty() && !p.contains(char::is_whitespace) => (p, m),
        _ => ("", full),
    };
    let field = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next());
    let field = field("unknown field `").map(Field::Unknown).or_else(|| field("missing field `").map(Field::Missing));
    (path, message, field)
}

/// Adds what to write instead when a boolean key got another value: YAML 1.2 (which
/// yaml_serde reads) takes `yes`, `on` and `no` as strings, unlike YAML 1.1.
pub fn hint(message: &str) -> String {
    if !message.ends_with("expected a boolean") {
        return message.to_string();
    }
    let word = message.strip_prefix("invalid type: string \"").and_then(|r| r.split('"').next());
    match word.map(str::to_ascii_lowercase).as_deref() {
        Some("true" | "false") => format!("{message}; write true or false without quotes"),
        Some("yes" | "no" | "on" | "off" | "y" | "n") => {
            format!("{message}; write true or false (YAML 1.2 reads `{}` as a string)", word.unwrap_or_default())
        }
        _ => format!("{message}; write true or false"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boolean_hints() {
        let h = |m: &str| hint(m);
        assert_eq!(
            h("invalid type: string \"yes\", expected a boolean"),
            "invalid type: string \"yes\", expected a boolean; write true or false (YAML 1.2 reads `yes` as a string)"
        );
        assert!(h("invalid type: string \"true\", expected a boolean").ends_with("without quotes"));
        assert!(h("invalid type: integer `1`, expected a boolean").ends_with("; write true or false"));
        assert_eq!(h("invalid type: integer `1`, expected u32"), "invalid type: integer `1`, expected u32");
    }

    #[test]
    fn split_finds_path_and_field() {
        let (p, m, f) = split("gate: unknown field `x`, expected `deadline` at line 3 column 4");
        assert_eq!((p, m), ("gate", "unknown field `x`, expected `deadline`"));
        assert!(matches!(f, Some(Field::Unknown("x"))));
        assert!(matches!(split("missing field `kind`").2, Some(Field::Missing("kind"))));
        assert_eq!(split("did not find expected key").0, "");
    }
}
