//! The Docker engine connection shared by the `docker` and `containers` kinds:
//! which socket to use (dockerd's, or podman's Docker-compatible API), one client (and
//! its kept-alive connections) per socket, the engine's version from its ping, and
//! engine calls bounded by the attempt's time.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};
use hyper_util::rt::TokioIo;
use tokio::time::timeout;

use super::{KeyError, RunCtx};
use crate::util::redact::quote;
use crate::util::text::chain;

/// Where dockerd listens unless the policy or `DOCKER_HOST` says otherwise.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Where podman's `podman.socket` serves its Docker-compatible API (Fedora IoT, RHEL
/// for Edge, bootc hosts): the default when dockerd's socket is absent, so one policy
/// without `socket:` fits hosts of either engine. dockerd's comes first, so a Docker
/// host behaves as it always did (and `podman-docker` links dockerd's path to this one).
pub const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

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
            Origin::Default => {
                format!(" or {PODMAN_SOCKET} (the defaults; set `socket:` or DOCKER_HOST for another)")
            }
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
        // Checked here for a clear message: at boot the socket may simply not exist yet.
        let path = present(path, origin, Path::new(PODMAN_SOCKET))
            .ok_or_else(|| format!("docker socket not found: {}{}", path.display(), origin.note()))?;
        // bollard's own timeout is a backstop; `call` enforces the attempt's limit.
        let backstop = Duration::from_secs(ctx.limit.as_secs().saturating_add(1));
        Ok((client(path)?.with_timeout(backstop), path))
    }
}

/// The socket to use if it exists: `path`, or for the default `podman` when dockerd's
/// socket is absent. Looked up at every attempt, since either may appear during boot.
fn present<'a>(path: &'a Path, origin: &Origin, podman: &'a Path) -> Option<&'a Path> {
    let fallback = (*origin == Origin::Default).then_some(podman);
    std::iter::once(path).chain(fallback).find(|p| p.exists())
}

/// The clients made so far, one a socket: every check of an engine (and every round)
/// reuses the connections the others left open instead of connecting again.
static CLIENTS: Mutex<Vec<(PathBuf, Docker)>> = Mutex::new(Vec::new());

fn client(path: &Path) -> Result<Docker, String> {
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, docker)) = clients.iter().find(|(p, _)| p == path) {
        return Ok(docker.clone());
    }
    let text = path.to_str().ok_or_else(|| format!("docker socket path {} is not UTF-8", path.display()))?;
    let docker = Docker::connect_with_unix(text, 120, API_DEFAULT_VERSION)
        .map_err(|e| format!("cannot use docker socket {}: {}", path.display(), chain(&e)))?;
    clients.push((path.to_path_buf(), docker.clone()));
    Ok(docker)
}

/// Which implementation of the Docker API answered: the version means a different
/// product's release in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    Docker,
    Podman,
}

impl Product {
    /// The product's name, as observed values and messages spell it.
    pub fn name(self) -> &'static str {
        match self {
            Product::Docker => "docker",
            Product::Podman => "podman",
        }
    }
}

/// The engine's version and API version, and which engine it is when it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    pub version: String,
    pub api: String,
    pub product: Option<Product>,
}

impl EngineVersion {
    /// From a ping's `Server: Docker/20.10.24 (linux)` (podman's: `Libpod/4.3.1 (linux)`)
    /// and `Api-Version: 1.41` headers.
    fn from_ping(server: Option<&str>, api: Option<&str>) -> Option<Self> {
        let server = server?;
        let (product, rest) = [("Docker/", Product::Docker), ("Libpod/", Product::Podman)]
            .into_iter()
            .find_map(|(prefix, product)| Some((product, server.strip_prefix(prefix)?)))?;
        let version = rest.split_whitespace().next()?;
        let api = api?.trim();
        (!version.is_empty() && !api.is_empty()).then(|| EngineVersion {
            version: version.into(),
            api: api.into(),
            product: Some(product),
        })
    }
}

/// Pings the engine and reads its version from the answer's headers: `GET /version`
/// takes dockerd 6–10 ms (it asks containerd and runs `runc --version`), a ping under
/// one. An engine whose ping does not say (another implementation of the API) is asked
/// `/version` after all.
pub async fn ping_version(ctx: &RunCtx, docker: &Docker, socket: &Path) -> Result<EngineVersion, String> {
    let (server, api) = within(ctx, socket, "ping", ping(socket))
        .await?
        .map_err(|e| format!("docker at {}: ping: {}", socket.display(), chain(e.as_ref())))?;
    if let Some(v) = EngineVersion::from_ping(server.as_deref(), api.as_deref()) {
        return Ok(v);
    }
    let v = call(ctx, socket, "version", docker.version()).await?;
    let unknown = || "unknown".to_string();
    // dockerd names its main component `Engine`, podman `Podman Engine`.
    let product = v.components.iter().flatten().find_map(|c| match c.name.as_str() {
        "Engine" => Some(Product::Docker),
        "Podman Engine" => Some(Product::Podman),
        _ => None,
    });
    Ok(EngineVersion {
        version: v.version.unwrap_or_else(unknown),
        api: v.api_version.unwrap_or_else(unknown),
        product,
    })
}

/// `GET /_ping` on a connection of its own (bollard hands back no headers): the
/// `Server` and `Api-Version` headers of a 200 answer.
async fn ping(socket: &Path) -> anyhow::Result<(Option<String>, Option<String>)> {
    let stream = tokio::net::UnixStream::connect(socket).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::get("/_ping").header(hyper::header::HOST, "docker").body(String::new())?;
    let response = send.send_request(request).await?;
    if !response.status().is_success() {
        anyhow::bail!("the engine answered {}", response.status());
    }
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok((header("server"), header("api-version")))
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
    within(ctx, socket, what, request).await
}

/// Runs `work` within what is left of the attempt; the error is the timeout.
async fn within<T>(ctx: &RunCtx, socket: &Path, what: &str, work: impl Future<Output = T>) -> Result<T, String> {
    timeout(ctx.remaining(), work).await.map_err(|_| {
        format!(
            "docker at {} did not answer {what}: timed out after {}",
            socket.display(),
            crate::util::time::spelled(ctx.limit)
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
    fn the_version_comes_from_the_ping_headers_when_they_say_it() {
        let v = EngineVersion::from_ping(Some("Docker/20.10.24+dfsg1 (linux)"), Some("1.41"));
        let docker = Some(Product::Docker);
        assert_eq!(v, Some(EngineVersion { version: "20.10.24+dfsg1".into(), api: "1.41".into(), product: docker }));
        let v = EngineVersion::from_ping(Some("Libpod/4.3.1 (linux)"), Some("1.41"));
        let podman = Some(Product::Podman);
        assert_eq!(v, Some(EngineVersion { version: "4.3.1".into(), api: "1.41".into(), product: podman }));
        assert_eq!(EngineVersion::from_ping(Some("Moby/1.0 (linux)"), Some("1.41")), None);
        assert_eq!(EngineVersion::from_ping(Some("Docker/24.0.7 (linux)"), None), None);
        assert_eq!(EngineVersion::from_ping(None, Some("1.41")), None);
        assert_eq!(EngineVersion::from_ping(Some("Docker/"), Some("1.41")), None);
    }

    #[test]
    fn a_path_the_policy_does_not_name_says_where_it_came_from() {
        assert_eq!(Origin::Policy.note(), "");
        assert_eq!(Origin::DockerHost("unix:///run/b.sock".into()).note(), " (from DOCKER_HOST=unix:///run/b.sock)");
        let note = Origin::Default.note();
        assert!(note.contains("the defaults") && note.contains(PODMAN_SOCKET), "{note}");
    }

    #[test]
    fn the_default_socket_is_dockerds_else_podmans() {
        let dir = tempfile::tempdir().unwrap();
        let (docker, podman) = (dir.path().join("docker.sock"), dir.path().join("podman.sock"));
        assert_eq!(present(&docker, &Origin::Default, &podman), None);
        std::fs::write(&podman, "").unwrap();
        assert_eq!(present(&docker, &Origin::Default, &podman), Some(podman.as_path()));
        std::fs::write(&docker, "").unwrap();
        assert_eq!(present(&docker, &Origin::Default, &podman), Some(docker.as_path()));
    }

    #[test]
    fn a_socket_the_user_named_has_no_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let (named, podman) = (dir.path().join("named.sock"), dir.path().join("podman.sock"));
        std::fs::write(&podman, "").unwrap();
        assert_eq!(present(&named, &Origin::Policy, &podman), None);
        assert_eq!(present(&named, &Origin::DockerHost("unix:///x".into()), &podman), None);
    }
}
