//! `rauc`: RAUC's D-Bus API on the system bus (`de.pengutronix.rauc`, object `/`,
//! interface `de.pengutronix.rauc.Installer`). A passed gate marks the booted slot good
//! (`Mark("good", "booted")`); a failed one marks it bad, and reboots only while another
//! slot's boot status is good, so a bad update falls back and a bad fallback stays. The
//! rollback window's revert marks the booted slot bad and the fallback active
//! (`Mark("bad", "booted")`, `Mark("active", SLOT)`), armed unless RAUC's slot status
//! read at start has no other good slot to fall back to.
//! Every step is bounded: a RAUC that hangs is a logged failure, never a hung gate.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::Serialize;
use zbus::zvariant::OwnedValue;

use super::{Backend, RevertError, Reverted, Step};
use crate::boot::decide::RebootDecision;
use crate::record::boot::BackendFacts;
pub use crate::record::boot::RaucSlot as Slot;
use crate::util::text::chain;

/// RAUC's well-known name on the system bus.
pub const SERVICE: &str = "de.pengutronix.rauc";
/// The interface RAUC's slots and marks are on.
pub const INTERFACE: &str = "de.pengutronix.rauc.Installer";
/// How long one backend step (connect and every call it makes) may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Which bus RAUC is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else the standard socket).
    System,
    /// A bus at this D-Bus address (`unix:path=…`).
    Address(String),
}

impl Bus {
    async fn connect(&self) -> zbus::Result<zbus::Connection> {
        let builder = match self {
            Bus::System => zbus::connection::Builder::system()?,
            Bus::Address(address) => zbus::connection::Builder::address(address.as_str())?,
        };
        builder.build().await
    }
}

/// What RAUC says about this boot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The booted slot's bootname (`BootSlot`).
    pub booted: Option<String>,
    /// The slot the boot loader tries first (`GetPrimary`), when the loader can tell.
    pub primary: Option<String>,
    pub slots: Vec<Slot>,
}

/// RAUC on `bus`, every step bounded by `timeout`.
pub struct Rauc {
    bus: Bus,
    timeout: Duration,
    /// The first slot status read (at start, for the facts): what the rollback window is
    /// armed by, since [`Backend::revertible`] cannot ask the bus.
    first: std::sync::Mutex<Option<Status>>,
}

impl Rauc {
    pub fn new(bus: Bus, timeout: Duration) -> Self {
        Rauc { bus, timeout, first: std::sync::Mutex::new(None) }
    }

    /// Reads the booted slot, the primary and every slot's status.
    pub async fn status(&self) -> anyhow::Result<Status> {
        self.bounded("reading the slot status", async {
            let conn = self.bus.connect().await.context("cannot connect to the system D-Bus")?;
            let booted: OwnedValue = call(&conn, "org.freedesktop.DBus.Properties", "Get", &(INTERFACE, "BootSlot"))
                .await
                .context("cannot read RAUC's BootSlot")?;
            let booted = String::try_from(booted).ok().filter(|b| !b.is_empty());
            // The primary is a fact to show, not one the decision needs: some loaders cannot tell.
            let primary = match call::<_, String>(&conn, INTERFACE, "GetPrimary", &()).await {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!("RAUC cannot tell the primary slot: {e:#}");
                    None
                }
            };
            let raw: Vec<(String, HashMap<String, OwnedValue>)> =
                call(&conn, INTERFACE, "GetSlotStatus", &()).await.context("cannot read RAUC's slot status")?;
            let mut slots: Vec<Slot> = raw.into_iter().map(|(name, fields)| slot(name, &fields)).collect();
            slots.sort_by(|a, b| a.name.cmp(&b.name));
            let status = Status { booted, primary, slots };
            let mut first = self.first.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            first.get_or_insert_with(|| status.clone());
            Ok(status)
        })
        .await
    }

    /// `Mark(state, "booted")`; returns RAUC's message (`marked slot rootfs.0 as good`).
    pub async fn mark(&self, state: &str) -> anyhow::Result<String> {
        self.mark_slot(state, "booted").await
    }

    /// `Mark(state, slot)`, `slot` being `booted`, `other` or a slot's name.
    async fn mark_slot(&self, state: &str, slot: &str) -> anyhow::Result<String> {
        let shown = if slot == "booted" { "the booted slot".to_string() } else { format!("slot {slot}") };
        self.bounded(&format!("marking {shown} {state}"), async {
            let conn = self.bus.connect().await.context("cannot connect to the system D-Bus")?;
            let (_, message): (String, String) = call(&conn, INTERFACE, "Mark", &(state, slot))
                .await
                .with_context(|| format!("RAUC did not mark {shown} {state}"))?;
            Ok(message)
        })
        .await
    }

    /// The revert's two marks: the booted slot bad, then `fallback` active (RAUC makes it
    /// the loader's primary). Returns RAUC's messages.
    async fn mark_reverted(&self, fallback: &str) -> anyhow::Result<String> {
        let bad = self.mark("bad").await?;
        let active = self.mark_slot("active", fallback).await.with_context(|| format!("after {bad}"))?;
        Ok(format!("{bad}; {active}"))
    }

    async fn bounded<T>(&self, what: &str, step: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
        match tokio::time::timeout(self.timeout, step).await {
            Ok(done) => done,
            Err(_) => {
                Err(anyhow!("RAUC did not answer within {} while {what}", crate::util::time::spelled(self.timeout)))
            }
        }
    }
}

async fn call<B, R>(conn: &zbus::Connection, interface: &str, method: &str, body: &B) -> anyhow::Result<R>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
    R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
{
    let reply = conn.call_method(Some(SERVICE), "/", Some(interface), method, body).await?;
    Ok(reply.body().deserialize()?)
}

/// A call to the bus itself (`org.freedesktop.DBus`).
async fn bus_call<B, R>(conn: &zbus::Connection, method: &str, body: &B) -> anyhow::Result<R>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
    R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
{
    let dbus = "org.freedesktop.DBus";
    let reply = conn
        .call_method(Some(dbus), "/org/freedesktop/DBus", Some(dbus), method, body)
        .await
        .with_context(|| format!("{method} failed"))?;
    Ok(reply.body().deserialize()?)
}

fn slot(name: String, fields: &HashMap<String, OwnedValue>) -> Slot {
    let text = |key: &str| fields.get(key).and_then(|v| v.try_clone().ok()).and_then(|v| String::try_from(v).ok());
    Slot {
        name,
        class: text("class"),
        bootname: text("bootname"),
        state: text("state"),
        boot_status: text("boot-status"),
    }
}

/// The slot a reboot falls back to: another bootable slot of the booted one's class whose
/// boot status is good (the primary first). `None` when nothing else can boot, so a
/// failed gate stays rather than loop.
pub fn fallback(status: &Status) -> Option<&Slot> {
    let booted = status
        .slots
        .iter()
        .find(|s| s.state.as_deref() == Some("booted") || (s.bootname.is_some() && s.bootname == status.booted));
    let candidates: Vec<&Slot> = status
        .slots
        .iter()
        .filter(|s| s.bootname.is_some() && s.bootname != status.booted && s.boot_status.as_deref() == Some("good"))
        .filter(|s| booted.is_none_or(|b| b.name != s.name && b.class == s.class))
        .collect();
    candidates.iter().find(|s| status.primary.as_ref() == Some(&s.name)).or(candidates.first()).copied()
}

/// What a revert marks: the booted slot (known to RAUC) and the slot [`fallback`] picks.
/// `None` when RAUC cannot tell which slot is booted or no other slot is good: marking
/// the booted slot bad would then leave nothing to boot.
pub fn revert_target(status: &Status) -> Option<(&Slot, &Slot)> {
    let booted = status
        .slots
        .iter()
        .find(|s| s.state.as_deref() == Some("booted") || (s.bootname.is_some() && s.bootname == status.booted))?;
    Some((booted, fallback(status)?))
}

/// Whether the rollback window can revert, judged from the slot status read at start.
/// A status RAUC did not give in time (D-Bus activation on a slow device takes seconds)
/// is no evidence against a fallback: the window is armed, and the revert reads the
/// status again and is refused when no good slot is left.
pub fn armed(first: Option<&Status>) -> Result<(), String> {
    let Some(status) = first else { return Ok(()) };
    match revert_target(status) {
        Some(_) => Ok(()),
        None if status.booted.is_none() => Err("not armed: RAUC cannot tell which slot is booted".into()),
        None => {
            Err("not armed: no other slot of the booted one's class is bootable and good in RAUC's slot status".into())
        }
    }
}

/// How RAUC is on a bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// `de.pengutronix.rauc` has an owner.
    Running,
    /// Nothing owns it yet, but the bus starts RAUC on the first call (how Debian's
    /// `rauc.service`, which has no `[Install]`, is always started).
    Activatable,
    Absent,
}

/// Whether RAUC is on `bus` (`NameHasOwner`, then `ListActivatableNames`), bounded by `timeout`.
pub async fn on_bus(bus: &Bus, timeout: Duration) -> anyhow::Result<Presence> {
    let ask = async {
        let conn = bus.connect().await.context("cannot connect to the system D-Bus")?;
        if bus_call::<_, bool>(&conn, "NameHasOwner", &(SERVICE,)).await? {
            return Ok(Presence::Running);
        }
        let names: Vec<String> = bus_call(&conn, "ListActivatableNames", &()).await?;
        Ok(if names.iter().any(|n| n == SERVICE) { Presence::Activatable } else { Presence::Absent })
    };
    match tokio::time::timeout(timeout, ask).await {
        Ok(answer) => answer,
        Err(_) => Err(anyhow!("the system D-Bus did not answer within {}", crate::util::time::spelled(timeout))),
    }
}

impl Backend for Rauc {
    fn name(&self) -> &'static str {
        "rauc"
    }

    fn facts(&self) -> Step<'_, BackendFacts> {
        Box::pin(async {
            match self.status().await {
                Ok(s) => BackendFacts::Rauc { booted: s.booted, primary: s.primary, slots: Some(s.slots), error: None },
                Err(e) => {
                    BackendFacts::Rauc { booted: None, primary: None, slots: None, error: Some(format!("{e:#}")) }
                }
            }
        })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async {
            match self.mark("good").await {
                Ok(message) => Ok(format!("RAUC: {message}")),
                Err(e) => Err(format!("cannot mark the booted slot good: {e:#}")),
            }
        })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async {
            // Unmarked, the slot stays the one the loader boots: a reboot would only loop.
            match self.mark("bad").await {
                Ok(message) => tracing::info!("RAUC: {message}"),
                Err(e) => {
                    tracing::error!("cannot mark the booted slot bad: {e:#}; not rebooting (it would boot again)");
                    return RebootDecision::StayBackendError {
                        why: format!("RAUC did not mark the booted slot bad ({})", chain(e.as_ref())),
                    };
                }
            }
            match self.status().await {
                Ok(status) => match fallback(&status) {
                    Some(slot) => RebootDecision::RebootTo { slot: slot.name.clone() },
                    None => RebootDecision::StayNoFallback,
                },
                Err(e) => {
                    tracing::error!("cannot tell whether another slot can boot: {e:#}; not rebooting");
                    RebootDecision::StayBackendError {
                        why: format!("RAUC's slot status cannot be read ({})", chain(e.as_ref())),
                    }
                }
            }
        })
    }

    fn revertible(&self) -> Result<(), String> {
        let first = self.first.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none() {
            tracing::info!("RAUC's slot status was not read at start: a revert checks for a good slot when it comes");
        }
        armed(first.as_ref())
    }

    fn revert(&self) -> Step<'_, Result<Reverted, RevertError>> {
        Box::pin(async {
            // The status as it is now: another slot may have been marked bad since the start.
            let status = self
                .status()
                .await
                .map_err(|e| RevertError::Failed { booted: "the booted RAUC slot".into(), why: format!("{e:#}") })?;
            let (booted, fallback) = revert_target(&status).ok_or(RevertError::NoFallback)?;
            // The fallback by name, not RAUC's "other": with more than two slots of a class,
            // "other" is any one of them, not necessarily the one that is good.
            let said = self.mark_reverted(&fallback.name).await.map_err(|e| RevertError::Failed {
                booted: format!("RAUC slot {}", booted.name),
                why: format!("{e:#}"),
            })?;
            tracing::info!("RAUC: {said}");
            Ok(Reverted {
                booted: format!("RAUC slot {}", booted.name),
                fallback: format!("RAUC slot {}", fallback.name),
            })
        })
    }
}

#[cfg(test)]
#[path = "rauc_tests.rs"]
mod tests;
