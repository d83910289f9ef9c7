//! `greenboot:` — what a host moving from greenboot keeps: its greenboot.conf
//! (`DISABLED_HEALTHCHECKS`, `GREENBOOT_MAX_BOOT_ATTEMPTS`) and its `green.d`/`red.d`
//! hooks, run after the verdict.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::Problem;
use super::located::Ctx;
use super::types::{Dur, FsPath};
use super::yaml::Seg;

pub mod conf;

/// How long a hook may run when the policy does not say.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// The `greenboot:` section as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping of greenboot settings")]
pub struct RawGreenboot {
    /// greenboot's configuration file, e.g. `/etc/greenboot/greenboot.conf`: its
    /// `DISABLED_HEALTHCHECKS` are not run, its `GREENBOOT_MAX_BOOT_ATTEMPTS` is reported.
    pub config: Option<FsPath>,
    /// Directories whose scripts run, in name order, after a passed gate (greenboot's `green.d`).
    pub green: Option<Vec<FsPath>>,
    /// Directories whose scripts run, in name order, after a failed gate, before any reboot (greenboot's `red.d`).
    pub red: Option<Vec<FsPath>>,
    /// How long each hook may run before it is killed with its process group (default 30s).
    pub hook_timeout: Option<Dur>,
}

/// The validated `greenboot:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Greenboot {
    /// The configuration file read, if any.
    pub config: Option<PathBuf>,
    /// What it said.
    pub conf: conf::Conf,
    pub green: Vec<PathBuf>,
    pub red: Vec<PathBuf>,
    pub hook_timeout: Duration,
}

/// Validates the section; a greenboot.conf that cannot be read or parsed is a problem
/// located in that file, so the policy fails closed as for any error of its own.
pub fn validate(cx: &mut Ctx, raw: Option<RawGreenboot>) -> Greenboot {
    let Some(raw) = raw else {
        return Greenboot { hook_timeout: DEFAULT_HOOK_TIMEOUT, ..Greenboot::default() };
    };
    let hook_timeout = raw.hook_timeout.map_or(DEFAULT_HOOK_TIMEOUT, |d| d.0);
    if hook_timeout.is_zero() {
        cx.at(&[Seg::key("greenboot"), Seg::key("hook_timeout")], "hook_timeout must be longer than 0s");
    }
    let config = raw.config.map(|p| p.0);
    let conf = match &config {
        None => conf::Conf::default(),
        Some(path) => conf::read(path).unwrap_or_else(|e| {
            let file = path.display().to_string();
            cx.problems.push(Problem { file, line: e.line, column: e.column, key: e.key, message: e.message });
            conf::Conf::default()
        }),
    };
    let dirs = |v: Option<Vec<FsPath>>| v.unwrap_or_default().into_iter().map(|p| p.0).collect();
    Greenboot { config, conf, green: dirs(raw.green), red: dirs(raw.red), hook_timeout }
}
