//! The Docker engine connection shared by the `docker` and `containers` kinds:
//! which socket to use, and engine calls bounded by the attempt's time.

use std::future::Future;
use std::path::{Path, PathBuf};

use bollard::{API_DEFAULT_VERSION, Docker};
use tokio::time::timeout;

use super::{KeyError, RunCtx};
use crate::redact::quote;
use crate::text::chain;

/// Where dockerd listens unless the policy or `DOCKER_HOST` says otherwise.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The engine's unix socket, fixed when the policy is loaded.
#[derive(Debug, Clone)]
pub struct Engine {
    /// An error when `DOCKER_HOST` names something other than a unix socket: reported
    /// at every run rather than silently replaced by the default socket.
    socket: Result<(PathBuf, Origin), String>,
}

/// Where the socket path came from: said when the socket is missing, since a path
/// the policy does not name is a surprise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Policy,
    /// The `DOCKER_HOST` value it came from.
    DockerHost(String),
    Default,
}

impl Origin {
    /// How a message says where the path came from: nothing when the policy names it.
    fn note(&self) -> String {
        match self {
            Origin::Policy => String::new(),
            Origin::DockerHost(host) => format!(" (from DOCKER_HOST={})", quote(host)),
            Origin::Default => " (the default; set `socket:` or DOCKER_HOST for another)".into(),
        }
    }
}

impl Engine {
    /// Validates the policy's `socket` key, falling back to `DOCKER_HOST`, then the default.
    pub fn from_key(socket: Option<PathBuf>) -> Result<Self, KeyError> {
        if let Some(path) = socket.as_ref().filter(|p| !p.is_absolute()) {
            return Err(KeyError::at(
                "socket",
                format!("`{}` is not an absolute path", quote(&path.to_string_lossy())),
            ));
        }
        let host = std::env::var("DOCKER_HOST").ok();
        Ok(Engine { socket: resolve(socket, host.as_deref()) })
    }

    /// A client for one attempt; fails naming the socket when it does not exist.
    pub fn connect(&self, ctx: &RunCtx) -> Result<(Docker, &Path), String> {
        let (path, origin) = self.socket.as_ref().map_err(Clone::clone)?;
        let path = path.as_path();
        // Checked here for a clear message: at boot the socket may simply not exist yet.
        if !path.exists() {
            return Err(format!("docker socket not found: {}{}", path.display(), origin.note()));
        }
        let text = path.to_str().ok_or_else(|| format!("docker socket path {} is not UTF-8", path.display()))?;
        // bollard's own timeout is a backstop; `call` enforces the attempt's limit.
        let secs = ctx.limit.as_secs().saturating_add(1);
        let docker = Docker::connect_with_unix(text, secs, API_DEFAULT_VERSION)
            .map_err(|e| format!("cannot use docker socket {}: {}", path.display(), chain(&e)))?;
        Ok((docker, path))
    }
}

/// The socket from the policy, else a `unix://` `DOCKER_HOST`, else [`DEFAULT_SOCKET`].
pub fn resolve(socket: Option<PathBuf>, docker_host: Option<&str>) -> Result<(PathBuf, Origin), String> {
    if let Some(path) = socket {
        return Ok((path, Origin::Policy));
    }
    match docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        None => Ok((PathBuf::from(DEFAULT_SOCKET), Origin::Default)),
        Some(host) => match host.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => Ok((PathBuf::from(path), Origin::DockerHost(host.to_string()))),
            _ => Err(format!(
                "DOCKER_HOST={} is not a unix:// socket path; set `socket:` on this check to choose the engine",
                quote(host)
            )),
        },
    }
}

/// Runs one engine call within what is left of the attempt.
pub async fn call<T>(
    ctx: &RunCtx,
    socket: &Path,
    what: &str,
    request: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, String> {
    bounded(ctx, socket, what, request).await?.map_err(|e| failed(socket, what, &e))
}

/// Like [`call`], but hands the engine's own error back for the caller to branch on;
/// the outer error is the timeout.
pub async fn bounded<T>(
    ctx: &RunCtx,
    socket: &Path,
    what: &str,
    request: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<Result<T, bollard::errors::Error>, String> {
    timeout(ctx.remaining(), request).await.map_err(|_| {
        format!(
            "docker at {} did not answer {what}: timed out after {}",
            socket.display(),
            humantime::format_duration(ctx.limit)
        )
    })
}

/// The message for an engine call that failed.
pub fn failed(socket: &Path, what: &str, e: &bollard::errors::Error) -> String {
    format!("docker at {}: {what}: {}", socket.display(), chain(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_comes_from_the_policy_then_docker_host_then_the_default() {
        let policy = Some(PathBuf::from("/run/a.sock"));
        let found = |path: &str, origin| Ok((PathBuf::from(path), origin));
        assert_eq!(resolve(policy, Some("unix:///run/b.sock")), found("/run/a.sock", Origin::Policy));
        let host = Origin::DockerHost("unix:///run/b.sock".into());
        assert_eq!(resolve(None, Some(" unix:///run/b.sock")), found("/run/b.sock", host));
        assert_eq!(resolve(None, None), found(DEFAULT_SOCKET, Origin::Default));
        assert_eq!(resolve(None, Some("  ")), found(DEFAULT_SOCKET, Origin::Default));
        let err = resolve(None, Some("tcp://127.0.0.1:2375")).unwrap_err();
        assert!(err.contains("DOCKER_HOST=tcp://127.0.0.1:2375") && err.contains("socket:"), "{err}");
    }

    #[test]
    fn a_path_the_policy_does_not_name_says_where_it_came_from() {
        assert_eq!(Origin::Policy.note(), "");
        assert_eq!(Origin::DockerHost("unix:///run/b.sock".into()).note(), " (from DOCKER_HOST=unix:///run/b.sock)");
        assert!(Origin::Default.note().contains("the default"), "{}", Origin::Default.note());
    }
}
