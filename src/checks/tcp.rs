//! `tcp`: every target accepts a TCP connection.

use schemars::JsonSchema;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::{Check, CheckFuture, KeyError, Kind, Outcome, RunCtx};
use crate::policy::locate::Seg;
use crate::policy::types::{NonEmpty, Text};

/// Keys of a `tcp` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// `host:port` targets (`[::1]:80` for IPv6); all must connect.
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
            let port_ok =
                t.0.rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(KeyError {
                    key: vec![Seg::key("targets"), Seg::Index(i)],
                    message: format!("`{t}` is not host:port"),
                });
            }
        }
        Ok(Tcp { targets: k.targets.0.into_iter().map(|t| t.0).collect() })
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
                        Err(_) => Err(format!("{target}: timed out after {}", humantime::format_duration(said))),
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
