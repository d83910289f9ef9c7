//! Check kinds. Each kind is one module implementing [`Kind`], returning what it
//! [`Found`]; the engine alone turns that into a reported [`Status`].
//!
//! The code of a new kind is its module plus two lines here (`pub mod` and its
//! [`KINDS`] entry): parsing, validation and the schema's branch follow from those.
//! What else a new kind touches, so that it is documented and shown like the others:
//!
//! - `policy/schema.json`: regenerate with `bootgate schema > policy/schema.json`
//!   (the policy tests fail while it is stale);
//! - docs/policy.md's table of kinds: its keys, when it passes, its observed values;
//! - `measure()` in `src/server/document/ietf.rs`: the observed value that sums the kind up
//!   as `observedValue` in the health document (without it, the entry has none);
//! - `tests/strict.rs`: a huge value for each of its string keys, shown shortened;
//! - the sandbox in `systemd/bootgate.service` and `systemd/bootgate-report.service`,
//!   if the kind needs a device (`DeviceAllow=`), an address family
//!   (`RestrictAddressFamilies=`) or a path the sandbox hides;
//! - `policy/default.yaml` and `policy/piccolo.yaml`, if the kind belongs in them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::policy::raw::COMMON_KEYS;
use crate::policy::yaml::{Seg, locate};

pub mod containers;
pub mod disk;
pub mod dns;
pub mod docker;
pub mod docker_conn;
pub mod exec;
pub mod http;
pub mod systemd;
pub mod tcp;
pub mod tpm;

/// Every kind the policy may name.
pub static KINDS: &[KindEntry] = &[
    entry::<disk::Disk>(),
    entry::<tcp::Tcp>(),
    entry::<dns::Dns>(),
    entry::<http::Http>(),
    entry::<systemd::Systemd>(),
    entry::<exec::Exec>(),
    entry::<tpm::Tpm>(),
    entry::<docker::Docker>(),
    entry::<containers::Containers>(),
];

/// What the engine reports for a check: what it [`Found`], or that it has not run
/// yet (pending) or did not run because a check it comes after failed (skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skipped,
    Pending,
}

impl Status {
    /// Pass and warn both count as passed for the gate and for `after:` ordering.
    pub fn passed(self) -> bool {
        matches!(self, Status::Pass | Status::Warn)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skipped => "skipped",
            Status::Pending => "pending",
        }
    }
}

/// What one attempt of a check found: the only results a kind can return, since
/// pending and skipped are the engine's to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Pass,
    Warn,
    Fail,
}

impl Found {
    /// Whether the engine counts this as passed (see [`Status::passed`]).
    pub fn passed(self) -> bool {
        Status::from(self).passed()
    }
}

impl From<Found> for Status {
    fn from(found: Found) -> Self {
        match found {
            Found::Pass => Status::Pass,
            Found::Warn => Status::Warn,
            Found::Fail => Status::Fail,
        }
    }
}

/// Observed values of a check (free space, versions, counts), reported as they are.
pub type Observed = serde_json::Map<String, serde_json::Value>;

/// What one attempt of a check found.
///
/// A kind cannot claim a status only the engine sets:
///
/// ```compile_fail
/// use bootgate::checks::{Outcome, Status};
/// let skipped = Outcome { status: Status::Skipped, ..Outcome::fail("dependency failed") };
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Found,
    pub message: String,
    pub observed: Observed,
}

impl Outcome {
    pub fn pass(message: impl Into<String>) -> Self {
        Self::new(Found::Pass, message)
    }
    pub fn warn(message: impl Into<String>) -> Self {
        Self::new(Found::Warn, message)
    }
    pub fn fail(message: impl Into<String>) -> Self {
        Self::new(Found::Fail, message)
    }
    fn new(status: Found, message: impl Into<String>) -> Self {
        Outcome { status, message: message.into(), observed: Observed::new() }
    }
    /// Adds an observed value.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.observed.insert(key.to_string(), value.into());
        self
    }
}

/// What an attempt may know about its limits.
#[derive(Debug, Clone, Copy)]
pub struct RunCtx {
    /// The attempt is cut off at this instant; checks may end sooner with a better message.
    pub deadline: Instant,
    /// The attempt's time limit, for messages ("timed out after 1s").
    pub limit: Duration,
}

impl RunCtx {
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A boxed future, so kinds can be stored side by side as trait objects.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// A configured check that can be run any number of times.
pub trait Check: Send + Sync + 'static {
    fn run<'a>(&'a self, ctx: &'a RunCtx) -> CheckFuture<'a>;
}

/// A check kind: its policy keys and how to build a check from them.
pub trait Kind: Check + Sized {
    /// The `kind:` value in the policy.
    const NAME: &'static str;
    /// The kind's own keys, with `deny_unknown_fields`.
    type Keys: DeserializeOwned + JsonSchema;
    /// Validates the keys into a check that cannot hold an invalid value.
    fn build(keys: Self::Keys) -> Result<Self, KeyError>;
}

/// A kind-specific validation error, located at a key relative to the check.
#[derive(Debug)]
pub struct KeyError {
    pub key: Vec<Seg>,
    pub message: String,
}

impl KeyError {
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        KeyError { key: vec![Seg::key(key)], message: message.into() }
    }
}

/// Why a check's kind-specific keys were rejected.
#[derive(Debug)]
pub enum KindError {
    Yaml(serde_yaml::Error),
    Key(KeyError),
}

/// Builds a check from its node (when already parsed) or the mapping at a path of the policy text.
pub type ParseFn = fn(&str, &[Seg], Option<&serde_yaml::Value>) -> Result<Arc<dyn Check>, KindError>;

/// Registration record of one kind.
pub struct KindEntry {
    pub name: &'static str,
    /// Builds the check from the mapping at `path` of the policy text.
    pub parse: ParseFn,
    pub schema: fn(&mut SchemaGenerator) -> Schema,
}

const fn entry<K: Kind>() -> KindEntry {
    KindEntry { name: K::NAME, parse: parse_kind::<K>, schema: schema_kind::<K> }
}

fn parse_kind<K: Kind>(
    text: &str,
    path: &[Seg],
    node: Option<&serde_yaml::Value>,
) -> Result<Arc<dyn Check>, KindError> {
    // Fast path: the check's own node, parsed once for the whole policy. Only when it is
    // rejected is the text read again at `path`, for an error with its line and column
    // (re-reading the text for every check would make validation quadratic).
    let fast = node.and_then(|n| n.as_mapping()).and_then(|m| {
        let own: serde_yaml::Mapping = m
            .iter()
            .filter(|(k, _)| !k.as_str().is_some_and(|k| COMMON_KEYS.contains(&k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        K::Keys::deserialize(serde_yaml::Value::Mapping(own)).ok()
    });
    let keys: K::Keys = match fast {
        Some(keys) => keys,
        None => locate::deserialize_at(text, path, COMMON_KEYS).map_err(KindError::Yaml)?,
    };
    let check = K::build(keys).map_err(KindError::Key)?;
    Ok(Arc::new(check))
}

fn schema_kind<K: Kind>(g: &mut SchemaGenerator) -> Schema {
    K::Keys::json_schema(g)
}

/// Shortens command output or a response body to its last `max` bytes, on a char boundary.
pub fn tail(text: &str, max: usize) -> &str {
    let text = text.trim_end();
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_reports_what_a_check_found() {
        for (outcome, status) in
            [(Outcome::pass("p"), Status::Pass), (Outcome::warn("w"), Status::Warn), (Outcome::fail("f"), Status::Fail)]
        {
            assert_eq!(Status::from(outcome.status), status);
            assert_eq!(outcome.status.passed(), status.passed());
        }
        // The shape the `compile_fail` example on `Outcome` refuses compiles with a `Found`,
        // so that example fails for the status alone.
        let warned = Outcome { status: Found::Warn, ..Outcome::fail("x") };
        assert_eq!(Status::from(warned.status), Status::Warn);
    }
}
