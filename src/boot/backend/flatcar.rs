//! `flatcar`: the gptprio slots behind `/usr`. READY=1 is the pass (update_engine marks
//! the slot after it, `cgpt add -S1 -T0`); a failed gate reboots when gptprio would pick
//! another slot (see [`crate::boot::decide::reboot_decision`]).

use serde_json::json;

use super::{Backend, Step};
use crate::boot::BootStatus;
use crate::boot::decide::RebootDecision;

/// The slots as read at start (`None` when they could not be read in time).
pub struct Flatcar {
    status: Option<BootStatus>,
}

impl Flatcar {
    pub fn new(status: Option<BootStatus>) -> Self {
        Flatcar { status }
    }
}

impl Backend for Flatcar {
    fn name(&self) -> &'static str {
        "flatcar"
    }

    fn facts(&self) -> Step<'_, serde_json::Value> {
        Box::pin(async { json!({"backend": "flatcar"}) })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async { Ok("READY=1: update_engine marks the slot".into()) })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async {
            // The table as it is now, read again when it could not be read at start.
            let status = match &self.status {
                Some(status) => status.clone(),
                None => match tokio::task::spawn_blocking(crate::boot::detect).await {
                    Ok(status) => status,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the boot partition table ({e})");
                        BootStatus::default()
                    }
                },
            };
            if let Some(note) = &status.note {
                tracing::warn!("boot partition: {note}");
            }
            status.reboot_decision()
        })
    }
}
