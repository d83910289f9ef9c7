//! `docker`: the engine (dockerd, or podman's Docker-compatible API) answers a ping
//! (which names its version) and lists its containers.

use bollard::query_parameters::ListContainersOptionsBuilder;
use schemars::JsonSchema;
use serde::Deserialize;

use super::docker_conn::{Engine, Product, call, ping_version};
use super::{Check, CheckFuture, KeyError, Kind, Outcome, RunCtx};
use crate::policy::types::FsPath;

/// Keys of a `docker` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// The engine's unix socket (default: a `unix://` `DOCKER_HOST`, else `/var/run/docker.sock`,
    /// else podman's `/run/podman/podman.sock`).
    pub socket: Option<FsPath>,
}

/// A validated `docker` check.
#[derive(Debug)]
pub struct Docker {
    engine: Engine,
}

impl Kind for Docker {
    const NAME: &'static str = "docker";
    type Keys = Keys;

    fn build(k: Keys) -> Result<Self, KeyError> {
        Ok(Docker { engine: Engine::from_key(k.socket.map(|s| s.0))? })
    }
}

impl Docker {
    async fn attempt(&self, ctx: &RunCtx) -> Result<Outcome, String> {
        let (docker, socket) = self.engine.connect(ctx)?;
        let running = ListContainersOptionsBuilder::new().all(false).build();
        // Independent requests: asked at once so the check costs one round trip.
        let (version, containers) = tokio::join!(
            ping_version(ctx, &docker, socket),
            call(ctx, socket, "the container list", docker.list_containers(Some(running))),
        );
        let version = version?;
        let running = containers?.len();
        let (engine, api) = (version.version, version.api);
        let word = if running == 1 { "container" } else { "containers" };
        // podman's version is podman's release, not a Docker one: say whose it is.
        let product = match version.product {
            Some(Product::Podman) => "podman",
            _ => "engine",
        };
        let out = Outcome::pass(format!("{product} {engine} (API {api}), {running} {word} running"));
        let out = out.with("version", engine).with("api_version", api).with("containers_running", running);
        Ok(match version.product {
            Some(p) => out.with("engine", p.name()),
            None => out,
        })
    }
}

impl Check for Docker {
    fn run<'a>(&'a self, ctx: &'a RunCtx) -> CheckFuture<'a> {
        Box::pin(async move { self.attempt(ctx).await.unwrap_or_else(Outcome::fail) })
    }
}
