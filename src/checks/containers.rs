//! `containers`: required containers are running (and healthy where they have a
//! HEALTHCHECK), and no running container is `unhealthy`.

use std::collections::HashMap;
use std::path::Path;

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::ListContainersOptionsBuilder;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::task::JoinSet;

use super::docker_conn::{Engine, bounded, call, failed};
use super::{Check, CheckFuture, KeyError, Kind, Outcome, RunCtx};
use crate::policy::types::{FsPath, NonEmpty, Text};
use crate::policy::yaml::Seg;
use crate::util::redact::quote;

/// Keys of a `containers` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// The engine's unix socket (default: a `unix://` `DOCKER_HOST`, else `/var/run/docker.sock`,
    /// else podman's `/run/podman/podman.sock`).
    pub socket: Option<FsPath>,
    /// Containers (names or ids) that must be running, and healthy if they have a HEALTHCHECK.
    pub require_running: Option<NonEmpty<Text>>,
    /// Fail when any running container is `unhealthy` (default true).
    pub fail_on_unhealthy: Option<bool>,
}

/// A validated `containers` check.
#[derive(Debug)]
pub struct Containers {
    engine: Engine,
    required: Vec<String>,
    fail_on_unhealthy: bool,
}

impl Kind for Containers {
    const NAME: &'static str = "containers";
    type Keys = Keys;

    fn build(k: Keys) -> Result<Self, KeyError> {
        let required: Vec<String> =
            k.require_running.map(|n| n.0).unwrap_or_default().into_iter().map(|t| t.0).collect();
        for (i, name) in required.iter().enumerate() {
            if !valid_name(name) {
                return Err(KeyError {
                    key: vec![Seg::key("require_running"), Seg::Index(i)],
                    message: format!("`{}` is not a container name (letters, digits, `_`, `.`, `-`)", quote(name)),
                });
            }
        }
        Ok(Containers {
            engine: Engine::from_key(k.socket.map(|s| s.0))?,
            required,
            fail_on_unhealthy: k.fail_on_unhealthy.unwrap_or(true),
        })
    }
}

/// Docker's own rule for names (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`); ids fit it too.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Where one required container stands.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    Ready,
    /// Running, its healthcheck has not passed yet: worth another attempt.
    Starting,
    Problem(String),
}

fn standing(name: &str, found: Option<&ContainerInspectResponse>) -> Standing {
    let Some(c) = found else {
        return Standing::Problem(format!("required container `{name}` does not exist"));
    };
    let state = c.state.as_ref();
    let status = state.and_then(|s| s.status);
    if status != Some(ContainerStateStatusEnum::RUNNING) {
        let said = status.map_or_else(|| "in an unknown state".to_string(), |s| s.to_string());
        return Standing::Problem(format!("required container `{name}` is {said}, not running"));
    }
    match state.and_then(|s| s.health.as_ref()).and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => Standing::Starting,
        Some(HealthStatusEnum::UNHEALTHY) => Standing::Problem(format!("required container `{name}` is unhealthy")),
        // Healthy, or no HEALTHCHECK at all: running is all that can be asked.
        _ => Standing::Ready,
    }
}

impl Containers {
    async fn attempt(&self, ctx: &RunCtx) -> Result<Outcome, String> {
        let (docker, socket) = self.engine.connect(ctx)?;
        let running = ListContainersOptionsBuilder::new().all(false).build();
        let unhealthy =
            ListContainersOptionsBuilder::new().filters(&HashMap::from([("health", vec!["unhealthy"])])).build();
        let (running, unhealthy, required) = tokio::join!(
            call(ctx, socket, "the container list", docker.list_containers(Some(running))),
            call(ctx, socket, "the unhealthy-container list", docker.list_containers(Some(unhealthy))),
            self.inspect_required(ctx, &docker, socket),
        );
        let running = running?.len();
        let unhealthy: Vec<String> = unhealthy?
            .into_iter()
            .map(|c| {
                let name = c.names.and_then(|n| n.into_iter().next());
                name.map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_else(|| c.id.unwrap_or_default().chars().take(12).collect())
            })
            .collect();
        let required = required?;

        let mut problems = Vec::new();
        let mut starting = Vec::new();
        for (name, found) in self.required.iter().zip(&required) {
            match standing(name, found.as_ref()) {
                Standing::Ready => {}
                Standing::Starting => starting.push(format!("`{name}`")),
                Standing::Problem(p) => problems.push(p),
            }
        }
        let ready = self.required.len() - problems.len() - starting.len();
        if self.fail_on_unhealthy && !unhealthy.is_empty() {
            let names: Vec<String> = unhealthy.iter().map(|n| format!("`{n}`")).collect();
            problems.push(format!("unhealthy: {}", names.join(", ")));
        }
        if !starting.is_empty() {
            // A failed attempt, not a verdict: the engine retries while the deadline allows.
            problems.push(format!("still starting (health check not passed yet): {}", starting.join(", ")));
        }
        let out = if problems.is_empty() {
            let required = if self.required.is_empty() {
                String::new()
            } else {
                format!(", required {} ready", self.required.join(", "))
            };
            Outcome::pass(format!("{running} running, {} unhealthy{required}", unhealthy.len()))
        } else {
            Outcome::fail(problems.join("; "))
        };
        Ok(out
            .with("running", running)
            .with("unhealthy", unhealthy.len())
            .with("unhealthy_names", unhealthy)
            .with("required", self.required.len())
            .with("required_ready", ready)
            .with("starting", starting.len()))
    }

    /// Inspects every required container at once; `None` for one that does not exist.
    async fn inspect_required(
        &self,
        ctx: &RunCtx,
        docker: &Docker,
        socket: &Path,
    ) -> Result<Vec<Option<ContainerInspectResponse>>, String> {
        let mut set = JoinSet::new();
        for (i, name) in self.required.iter().cloned().enumerate() {
            let (ctx, docker, socket) = (*ctx, docker.clone(), socket.to_path_buf());
            set.spawn(async move {
                let what = format!("inspect `{name}`");
                let found = match bounded(&ctx, &socket, &what, docker.inspect_container(&name, None)).await? {
                    Ok(c) => matches(&name, c),
                    Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => None,
                    Err(e) => return Err(failed(&socket, &what, &e)),
                };
                Ok((i, found))
            });
        }
        let mut found = vec![None; self.required.len()];
        while let Some(joined) = set.join_next().await {
            let (i, c) = joined.map_err(|e| format!("inspect task failed: {e}"))??;
            found[i] = c;
        }
        Ok(found)
    }
}

/// The engine also resolves id prefixes; a name must match exactly or be an id prefix.
fn matches(name: &str, c: ContainerInspectResponse) -> Option<ContainerInspectResponse> {
    let by_name = c.name.as_deref().map(|n| n.trim_start_matches('/')) == Some(name);
    let by_id = c.id.as_deref().is_some_and(|id| id.starts_with(name));
    (by_name || by_id).then_some(c)
}

impl Check for Containers {
    fn run<'a>(&'a self, ctx: &'a RunCtx) -> CheckFuture<'a> {
        Box::pin(async move { self.attempt(ctx).await.unwrap_or_else(Outcome::fail) })
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::{ContainerState, Health};

    use super::*;

    fn container(status: ContainerStateStatusEnum, health: Option<HealthStatusEnum>) -> ContainerInspectResponse {
        let health = health.map(|h| Health { status: Some(h), ..Default::default() });
        let state = ContainerState { status: Some(status), health, ..Default::default() };
        ContainerInspectResponse { name: Some("/web".into()), state: Some(state), ..Default::default() }
    }

    #[test]
    fn standing_of_required_containers() {
        use ContainerStateStatusEnum::*;
        assert_eq!(standing("web", Some(&container(RUNNING, None))), Standing::Ready);
        assert_eq!(standing("web", Some(&container(RUNNING, Some(HealthStatusEnum::HEALTHY)))), Standing::Ready);
        assert_eq!(standing("web", Some(&container(RUNNING, Some(HealthStatusEnum::STARTING)))), Standing::Starting);
        let unhealthy = standing("web", Some(&container(RUNNING, Some(HealthStatusEnum::UNHEALTHY))));
        assert_eq!(unhealthy, Standing::Problem("required container `web` is unhealthy".into()));
        let exited = standing("web", Some(&container(EXITED, None)));
        assert_eq!(exited, Standing::Problem("required container `web` is exited, not running".into()));
        let absent = standing("web", None);
        assert_eq!(absent, Standing::Problem("required container `web` does not exist".into()));
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(valid_name("web-1.prod_a"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a b"));
    }
}
