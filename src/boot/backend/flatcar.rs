//! `flatcar`: the gptprio slots behind `/usr`. READY=1 is the pass (update_engine marks
//! the slot after it, `cgpt add -S1 -T0`); a failed gate reboots when gptprio would pick
//! another slot (see [`crate::boot::decide::reboot_decision`]); the rollback window's
//! revert marks the booted slot bad the way Flatcar's own tools write gptprio
//! attributes, with `cgpt add`.

use std::path::Path;
use std::time::Duration;

use super::{Backend, RevertError, Reverted, Step};
use crate::boot::decide::judge::rearm_target;
use crate::boot::decide::revert::{arm, demoted_priority, falls_back, gptprio_target};
use crate::boot::decide::{RebootDecision, gptprio_next};
use crate::boot::{BootStatus, PartitionInfo};
use crate::record::boot::BackendFacts;
use crate::util::tool;

/// How long `cgpt` may take on a local disk before the revert is given up.
const CGPT_TIMEOUT: Duration = Duration::from_secs(20);

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

    fn facts(&self) -> Step<'_, BackendFacts> {
        Box::pin(async { BackendFacts::Flatcar })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async { Ok("READY=1: update_engine marks the slot".into()) })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async {
            // The table as it is now, read again when it could not be read at start.
            let status = match &self.status {
                Some(status) => status.clone(),
                None => read_table().await,
            };
            if let Some(note) = &status.note {
                tracing::warn!("boot partition: {note}");
            }
            status.reboot_decision()
        })
    }

    fn revertible(&self) -> Result<(), String> {
        arm(self.status.as_ref()).map_err(String::from)
    }

    fn revert(&self) -> Step<'_, Result<Reverted, RevertError>> {
        Box::pin(async {
            // The table as it is now: update_engine has marked the slot since the start.
            let table = read_table().await;
            let (Some((booted, fallback)), Some(disk)) = (gptprio_target(&table), table.disk.as_deref()) else {
                return Err(RevertError::NoFallback);
            };
            mark_bad(Path::new(disk), &booted, &fallback)
                .await
                .map_err(|e| RevertError::Failed { booted: booted.label.clone(), why: e.to_string() })?;
            if !falls_back(&read_table().await, &fallback) {
                tracing::warn!(
                    "after the revert gptprio would not pick {} as expected; rebooting anyway",
                    fallback.label
                );
            }
            Ok(Reverted { booted: booted.label, fallback: fallback.label })
        })
    }

    fn rearm<'a>(&'a self, failed_uuid: &'a str) -> Step<'a, Result<String, String>> {
        Box::pin(async move {
            let table = read_table().await;
            let (failed, priority) = rearm_target(&table, failed_uuid)?;
            let disk = table.disk.as_deref().ok_or("the booted disk is not known")?;
            let (index, priority) = (failed.index.to_string(), priority.to_string());
            let args = ["add", "-i", &index, "-S", "0", "-T", "1", "-P", &priority];
            let mut cmd = tokio::process::Command::new("cgpt");
            cmd.args(args).arg(disk);
            let shown = format!("cgpt {} {disk}", args.join(" "));
            crate::process::reaper::run_tool(cmd, shown.clone(), CGPT_TIMEOUT).await.map_err(|e| e.to_string())?;
            let after = read_table().await;
            if gptprio_next(&after.partitions, &failed.type_guid) != Some(failed.index) {
                return Err(format!("after `{shown}` gptprio would not pick {} next", failed.label));
            }
            Ok(format!("{} armed to boot once more with priority {priority} ({shown})", failed.label))
        })
    }
}

/// The booted disk's partition table, read off the async threads.
async fn read_table() -> BootStatus {
    match tokio::task::spawn_blocking(crate::boot::detect).await {
        Ok(status) => status,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the boot partition table ({e})");
            BootStatus::default()
        }
    }
}

/// `cgpt add` with successful 0, tries 0 and a priority below `fallback`'s.
async fn mark_bad(disk: &Path, booted: &PartitionInfo, fallback: &PartitionInfo) -> Result<(), tool::ToolError> {
    let priority = demoted_priority(booted, fallback);
    let index = booted.index.to_string();
    let priority = priority.to_string();
    let args = ["add", "-i", &index, "-S", "0", "-T", "0", "-P", &priority];
    let mut cmd = tokio::process::Command::new("cgpt");
    cmd.args(args).arg(disk);
    let shown = format!("cgpt {} {}", args.join(" "), disk.display());
    crate::process::reaper::run_tool(cmd, shown.clone(), CGPT_TIMEOUT).await?;
    tracing::info!(command = %shown, "marked partition {} {} bad: {shown}", booted.index, booted.label);
    Ok(())
}
