//! `tcp`: every target accepts a TCP connection.

use std::net::Ipv6Addr;

use schemars::JsonSchema;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::{Check, CheckFuture, KeyError, Kind, Outcome, RunCtx};
use crate::policy::types::{NonEmpty, Text};
use crate::policy::yaml::Seg;
use crate::util::redact::quote;

/// Keys of a `tcp` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// `host:port` targets (`[::1]:80` for IPv6); all must connect.
    #[schemars(schema_with = "crate::policy::schema::host_ports")]
    pub targets: NonEmpty<Text>,
}

/// A validated `tcp` check.
#[derive(Debug)]
pub struct Tcp {
    targets: Vec<String>,
}

impl Kind for Tcp {
    const NAME: &'static str = "tcp";
    type Keys = Keys;

    fn build(k: Keys) -> Result<Self, KeyError> {
        for (i, t) in k.targets.0.iter().enumerate() {
            target(&t.0).map_err(|why| KeyError {
                key: vec![Seg::key("targets"), Seg::Index(i)],
                message: format!("`{}` is not host:port ({why})", quote(&t.0)),
            })?;
        }
        Ok(Tcp { targets: k.targets.0.into_iter().map(|t| t.0).collect() })
    }
}

/// Checks `host:port`, where an IPv6 host is bracketed: `::1:80` could be `[::1]:80`
/// or the address `::1:80` without a port, so it is refused rather than guessed.
fn target(t: &str) -> Result<(), &'static str> {
    let (host, port) = t.rsplit_once(':').ok_or("no port")?;
    match host.strip_prefix('[') {
        Some(inner) => {
            let addr = inner.strip_suffix(']').ok_or("an IPv6 address must be written `[::1]:80`")?;
            addr.parse::<Ipv6Addr>().map_err(|_| "not an IPv6 address between the brackets")?;
        }
        None if host.is_empty() => return Err("no host"),
        None if host.contains(':') => return Err("an IPv6 address must be written `[::1]:80`"),
        None if host.contains(['[', ']', '/', '@']) || host.contains(char::is_whitespace) => {
            return Err("not a host name or address");
        }
        None => {}
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err("the port must be 1–65535"),
    }
}

impl Check for Tcp {
    fn run<'a>(&'a self, ctx: &'a RunCtx) -> CheckFuture<'a> {
        Box::pin(async move {
            let mut set = JoinSet::new();
            for (i, target) in self.targets.iter().cloned().enumerate() {
                let (limit, said) = (ctx.remaining(), ctx.limit);
                set.spawn(async move {
                    let result = match timeout(limit, TcpStream::connect(&target)).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(format!("{target}: {e}")),
                        Err(_) => Err(format!("{target}: timed out after {}", crate::util::time::spelled(said))),
                    };
                    (i, result)
                });
            }
            let mut failures: Vec<(usize, String)> = Vec::new();
            while let Some(joined) = set.join_next().await {
                match joined {
                    Ok((_, Ok(()))) => {}
                    Ok((i, Err(e))) => failures.push((i, e)),
                    Err(e) => failures.push((usize::MAX, format!("connect task failed: {e}"))),
                }
            }
            failures.sort();
            let total = self.targets.len();
            let reachable = total - failures.len();
            let out = if failures.is_empty() {
                Outcome::pass(format!("{total}/{total} targets reachable"))
            } else {
                let reasons: Vec<String> = failures.into_iter().map(|(_, e)| e).collect();
                Outcome::fail(reasons.join("; "))
            };
            out.with("reachable", reachable).with("targets", total)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_unambiguous() {
        for ok in ["127.0.0.1:80", "localhost:8080", "[::1]:80", "[fe80::1]:65535"] {
            assert_eq!(target(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("::1:80", "[::1]:80"),
            ("[::1:80", "[::1]:80"),
            ("[nope]:80", "IPv6"),
            (":80", "no host"),
            ("host", "no port"),
            ("host:0", "1–65535"),
            ("host:http", "1–65535"),
            ("a b:80", "host name"),
        ] {
            let err = target(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
