//! `GET /api/v1/system/services/{name}`: one systemd unit's state, in the shape patch
//! managers already poll their agents for (`{"success": true, "data": {...}}`), read over
//! the system D-Bus within [`ASK_TIMEOUT`]. `healthy` is true when the unit is active.
//!
//! 400 for a name that is not a unit name, 404 for a unit systemd does not know, 500
//! (with the reason) when systemd cannot be asked; every error a problem.

use std::time::Duration;

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use zbus::zvariant::OwnedObjectPath;

use super::problem::{member, problem};
use crate::checks::systemd::{UNIT_SUFFIXES, system_bus};
use crate::util::redact::quote;
use crate::util::text::chain;

/// How long systemd gets to answer, connecting included.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest unit name systemd accepts.
const MAX_UNIT_NAME: usize = 255;

/// What the route answers about one unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub name: String,
    pub display_name: String,
    pub active_state: String,
    pub sub_state: String,
    pub load_state: String,
    pub enabled_state: String,
    /// The main process of a running service; `null` for other units or none.
    pub main_pid: Option<u32>,
    pub healthy: bool,
}

/// Why a unit could not be reported.
#[derive(Debug)]
enum Unreported {
    Unknown,
    Unasked(String),
}

/// `GET /api/v1/system/services/{name}`.
pub(super) async fn service(Path(name): Path<String>) -> Response {
    let unit = match unit_name(&name) {
        Ok(unit) => unit,
        Err(why) => return problem(StatusCode::BAD_REQUEST, why, member("name", name)),
    };
    let (bus, shown) = system_bus();
    match tokio::time::timeout(ASK_TIMEOUT, ask(&bus, &unit)).await {
        Ok(Ok(service)) => Json(json!({"success": true, "data": service})).into_response(),
        Ok(Err(Unreported::Unknown)) => {
            let detail = format!("systemd knows no unit `{unit}`; `systemctl list-units --all` lists the ones it has");
            problem(StatusCode::NOT_FOUND, detail, member("name", unit))
        }
        Ok(Err(Unreported::Unasked(why))) => {
            let detail = format!("cannot ask systemd about `{unit}` over the system D-Bus at {shown}: {why}");
            problem(StatusCode::INTERNAL_SERVER_ERROR, detail, member("name", unit))
        }
        Err(_) => {
            let detail = format!(
                "systemd did not answer about `{unit}` within {}s over {shown}; try again, and look at `systemctl status` on the device",
                ASK_TIMEOUT.as_secs()
            );
            problem(StatusCode::INTERNAL_SERVER_ERROR, detail, member("name", unit))
        }
    }
}

/// `name` as a full unit name: one of systemd's unit names, `.service` added when it has
/// no type suffix (as `systemctl` does).
fn unit_name(name: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c);
    if name.is_empty() || name.len() > MAX_UNIT_NAME || !name.chars().all(allowed) || name.starts_with('.') {
        return Err(format!(
            "`{}` is not a systemd unit name: letters, digits and `:-_.\\@`, at most {MAX_UNIT_NAME} characters, e.g. `sshd.service`",
            quote(name)
        ));
    }
    if UNIT_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        return Ok(name.to_string());
    }
    let full = format!("{name}.service");
    if full.len() > MAX_UNIT_NAME || name.contains('.') {
        return Err(format!("`{}` has no unit type suffix such as .service or .timer", quote(name)));
    }
    Ok(full)
}

/// The unit's state, from systemd on the bus at `address`.
async fn ask(address: &str, unit: &str) -> Result<Service, Unreported> {
    let unasked = |e: zbus::Error| Unreported::Unasked(chain(&e));
    let conn = zbus::connection::Builder::address(address).map_err(unasked)?.build().await.map_err(unasked)?;
    let reply = conn
        .call_method(
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            Some("org.freedesktop.systemd1.Manager"),
            "LoadUnit",
            &(unit,),
        )
        .await
        .map_err(unasked)?;
    let path: OwnedObjectPath = reply.body().deserialize().map_err(unasked)?;
    let proxy = zbus::Proxy::new(&conn, "org.freedesktop.systemd1", path.clone(), "org.freedesktop.systemd1.Unit")
        .await
        .map_err(unasked)?;
    let text = |name: &'static str| {
        let proxy = &proxy;
        async move { proxy.get_property::<String>(name).await.map_err(unasked) }
    };
    let load_state = text("LoadState").await?;
    if load_state == "not-found" {
        return Err(Unreported::Unknown);
    }
    let active_state = text("ActiveState").await?;
    let main_pid = if unit.ends_with(".service") {
        let service = zbus::Proxy::new(&conn, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Service")
            .await
            .map_err(unasked)?;
        service.get_property::<u32>("MainPID").await.ok().filter(|pid| *pid != 0)
    } else {
        None
    };
    Ok(Service {
        name: text("Id").await?,
        display_name: text("Description").await?,
        healthy: active_state == "active",
        active_state,
        sub_state: text("SubState").await?,
        load_state,
        enabled_state: text("UnitFileState").await?,
        main_pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_are_checked_and_completed_as_systemctl_does() {
        assert_eq!(unit_name("sshd.service").unwrap(), "sshd.service");
        assert_eq!(unit_name("bootgate").unwrap(), "bootgate.service");
        assert_eq!(unit_name("getty@tty1.service").unwrap(), "getty@tty1.service");
        assert_eq!(unit_name("network-online.target").unwrap(), "network-online.target");
        assert_eq!(
            unit_name("dev-disk-by\\x2dlabel-USR\\x2dA.device").unwrap(),
            "dev-disk-by\\x2dlabel-USR\\x2dA.device"
        );
        for bad in ["", "../etc/passwd", "a b.service", "x;reboot", ".service", "a.notatype", &"a".repeat(300)] {
            assert!(unit_name(bad).is_err(), "{bad:?}");
        }
        assert!(unit_name("a b").unwrap_err().contains("is not a systemd unit name"));
    }
}
