//! `systemd`: a unit's ActiveState is `active`, asked over the system D-Bus
//! (`DBUS_SYSTEM_BUS_ADDRESS` is honoured).

use schemars::JsonSchema;
use serde::Deserialize;
use zbus::zvariant::OwnedObjectPath;

use super::{Check, CheckFuture, KeyError, Kind, Outcome, RunCtx};
use crate::policy::types::Text;
use crate::util::redact::quote;
use crate::util::text::chain;

/// The system bus unless `DBUS_SYSTEM_BUS_ADDRESS` names another: systemd's own
/// default, under `/run`, which exists at boot before `/var` may be mounted.
pub const SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";

/// The unit types systemd has.
pub const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".target",
    ".socket",
    ".mount",
    ".timer",
    ".path",
    ".device",
    ".swap",
    ".slice",
    ".scope",
    ".automount",
];

/// Keys of a `systemd` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// Full unit name, e.g. `docker.service` or `network-online.target`.
    pub unit: Text,
}

/// A validated `systemd` check.
#[derive(Debug)]
pub struct Systemd {
    unit: String,
    /// The bus address, fixed when the policy is loaded, and how a message names it.
    bus: String,
    shown: String,
}

impl Kind for Systemd {
    const NAME: &'static str = "systemd";
    type Keys = Keys;

    fn build(k: Keys) -> Result<Self, KeyError> {
        if !UNIT_SUFFIXES.iter().any(|s| k.unit.0.ends_with(s)) || k.unit.0.contains('/') {
            return Err(KeyError::at(
                "unit",
                format!("`{}` is not a unit name with a type suffix like .service", quote(&k.unit.0)),
            ));
        }
        let (bus, shown) = system_bus();
        Ok(Systemd { unit: k.unit.0, bus, shown })
    }
}

/// The system bus this process uses (see [`bus`]), and how a message names it.
pub fn system_bus() -> (String, String) {
    bus(std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok().as_deref())
}

/// The system bus address from `DBUS_SYSTEM_BUS_ADDRESS`, else [`SYSTEM_BUS`], and how
/// a message names it: a failure to connect says which bus was tried and why that one.
fn bus(env: Option<&str>) -> (String, String) {
    match env.map(str::trim).filter(|a| !a.is_empty()) {
        Some(address) => (address.to_string(), format!("{} (from DBUS_SYSTEM_BUS_ADDRESS)", quote(address))),
        None => (SYSTEM_BUS.to_string(), SYSTEM_BUS.to_string()),
    }
}

impl Systemd {
    async fn states(&self) -> Result<(String, String), String> {
        let connect = async { zbus::connection::Builder::address(self.bus.as_str())?.build().await };
        let conn = connect
            .await
            .map_err(|e| format!("cannot connect to the system D-Bus at {}: {}", self.shown, chain(&e)))?;
        self.ask(&conn).await.map_err(|e| format!("systemd did not answer over D-Bus: {e}"))
    }

    async fn ask(&self, conn: &zbus::Connection) -> zbus::Result<(String, String)> {
        let reply = conn
            .call_method(
                Some("org.freedesktop.systemd1"),
                "/org/freedesktop/systemd1",
                Some("org.freedesktop.systemd1.Manager"),
                "LoadUnit",
                &(self.unit.as_str(),),
            )
            .await?;
        let path: OwnedObjectPath = reply.body().deserialize()?;
        let unit = zbus::Proxy::new(conn, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit").await?;
        let active: String = unit.get_property("ActiveState").await?;
        let sub: String = unit.get_property("SubState").await?;
        Ok((active, sub))
    }
}

impl Check for Systemd {
    fn run<'a>(&'a self, _: &'a RunCtx) -> CheckFuture<'a> {
        Box::pin(async move {
            match self.states().await {
                Ok((active, sub)) => {
                    let msg = format!("{} is {active} ({sub})", self.unit);
                    let out = if active == "active" { Outcome::pass(msg) } else { Outcome::fail(msg) };
                    out.with("active_state", active).with("sub_state", sub)
                }
                Err(e) => Outcome::fail(format!("{}: {e}", self.unit)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bus_is_the_environments_else_the_system_default() {
        assert_eq!(bus(None), (SYSTEM_BUS.to_string(), SYSTEM_BUS.to_string()));
        assert_eq!(bus(Some(" ")).0, SYSTEM_BUS);
        let (address, shown) = bus(Some("unix:path=/tmp/b"));
        assert_eq!(address, "unix:path=/tmp/b");
        assert_eq!(shown, "unix:path=/tmp/b (from DBUS_SYSTEM_BUS_ADDRESS)");
    }
}
