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
    socket: Result<PathBuf, String>,
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
        let path = self.socket.as_deref().map_err(Clone::clone)?;
        // Checked here for a clear message: at boot the socket may simply not exist yet.
        if !path.exists() {
            return Err(format!("docker socket not found: {}", path.display()));
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
pub fn resolve(socket: Option<PathBuf>, docker_host: Option<&str>) -> Result<PathBuf, String> {
    if let Some(path) = socket {
        return Ok(path);
    }
    match docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        None => Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(host) => match host.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
            _ => Err(format!(
                "DOCKER_HOST={host} is not a unix:// socket path; set `socket:` on this check to choose the engine"
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
        assert_eq!(resolve(policy, Some("unix:///run/b.sock")), Ok(PathBuf::from("/run/a.sock")));
        assert_eq!(resolve(None, Some("unix:///run/b.sock")), Ok(PathBuf::from("/run/b.sock")));
        assert_eq!(resolve(None, None), Ok(PathBuf::from(DEFAULT_SOCKET)));
        assert_eq!(resolve(None, Some("  ")), Ok(PathBuf::from(DEFAULT_SOCKET)));
        let err = resolve(None, Some("tcp://127.0.0.1:2375")).unwrap_err();
        assert!(err.contains("DOCKER_HOST=tcp://127.0.0.1:2375") && err.contains("socket:"), "{err}");
    }
}
