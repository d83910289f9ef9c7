//! `dns`: a name resolves (through the system resolver, as services see it),
//! optionally to an expected address.

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Check, CheckFuture, KeyError, Kind, Outcome, RunCtx};
use crate::policy::types::Text;
use crate::util::redact::quote;

/// Keys of a `dns` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// The host name to resolve. (Not `name`: every check's `name` is its own.)
    pub host: Text,
    /// An address the name must resolve to.
    pub expect: Option<IpAddr>,
}

/// A validated `dns` check.
#[derive(Debug)]
pub struct Dns {
    name: String,
    expect: Option<IpAddr>,
}

impl Kind for Dns {
    const NAME: &'static str = "dns";
    type Keys = Keys;

    fn build(k: Keys) -> Result<Self, KeyError> {
        if k.host.0.contains(':') || k.host.0.contains(char::is_whitespace) {
            return Err(KeyError::at("host", format!("`{}` is not a host name", quote(&k.host.0))));
        }
        Ok(Dns { name: k.host.0, expect: k.expect })
    }
}

impl Check for Dns {
    fn run<'a>(&'a self, _: &'a RunCtx) -> CheckFuture<'a> {
        Box::pin(async move {
            let addrs: Vec<IpAddr> = match tokio::net::lookup_host((self.name.as_str(), 0)).await {
                Ok(found) => found.map(|a| a.ip()).collect(),
                Err(e) => return Outcome::fail(format!("{}: {e}", self.name)),
            };
            let mut unique: Vec<IpAddr> = Vec::new();
            for a in addrs {
                if !unique.contains(&a) {
                    unique.push(a);
                }
            }
            let list = unique.iter().map(ToString::to_string).collect::<Vec<_>>();
            let out = match self.expect {
                None if unique.is_empty() => Outcome::fail(format!("{} resolved to no address", self.name)),
                Some(want) if !unique.contains(&want) => {
                    Outcome::fail(format!("{} resolved to {}, not {want}", self.name, list.join(", ")))
                }
                _ => Outcome::pass(format!("{} → {}", self.name, list.join(", "))),
            };
            out.with("addresses", list)
        })
    }
}
