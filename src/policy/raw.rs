//! The policy exactly as written: serde structs that reject unknown keys.
//! Kind-specific check keys live with their check kind (see `checks::Kind::Keys`).

use schemars::JsonSchema;
use serde::Deserialize;

use super::types::{Dur, FsPath, Name, NonEmpty, Str, Text};

/// The whole policy file (version 1).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a policy: a mapping with `version` and `checks` or `checks_from`")]
#[schemars(title = "bootgate policy", description = "Checks that decide whether a freshly booted OS is kept.")]
// The checks come from `checks`, `checks_from` or both; `validate` counts what the
// directories hold, and refuses a policy that ends with none.
#[schemars(extend("anyOf" = [
    { "required": ["checks"], "properties": { "checks": { "minItems": 1 } } },
    { "required": ["checks_from"], "properties": { "checks_from": { "minItems": 1 } } }
]))]
pub struct RawPolicy {
    /// Format version; only 1 exists.
    #[schemars(extend("const" = 1))]
    pub version: u32,
    #[serde(default)]
    pub gate: RawGate,
    #[serde(default)]
    pub runtime: RawRuntime,
    #[serde(default)]
    pub server: RawServer,
    /// The rollback window: reverting an update whose critical checks break soon after its gate.
    pub rollback: Option<RawRollback>,
    #[serde(default)]
    pub boot: RawBoot,
    /// The checks; with `checks_from`, the two together must hold at least one.
    #[serde(default)]
    #[schemars(with = "Vec<super::schema::CheckSchema>", length(max = super::MAX_CHECKS))]
    pub checks: Option<Vec<RawCheck>>,
    /// More `exec` checks, one per file in these directories (greenboot's `check/required.d`, `wanted.d`):
    /// `*.sh` files run through bash whatever their mode, other files when executable.
    pub checks_from: Option<Vec<RawChecksFrom>>,
    /// What a host moving from greenboot keeps: greenboot.conf and the green.d/red.d hooks.
    pub greenboot: Option<super::greenboot::RawGreenboot>,
}

/// How this system's boot gets marked.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping of boot settings")]
pub struct RawBoot {
    /// `auto` (default), `flatcar`, `bless-boot`, `rauc`, `grubenv`, `efibootguard`, `uboot`, `command` or `none`.
    pub backend: Option<Backend>,
    /// The GRUB environment block of the `grubenv` backend (default `/boot/grub2/grubenv`, then `/boot/grub/grubenv`).
    pub grubenv: Option<FsPath>,
    /// What makes a GRUB fallback permanent (`boot_counter=-1`) where neither `bootc` nor `rpm-ostree` is on PATH: an argv, no shell.
    pub fallback_command: Option<NonEmpty<Str>>,
    /// The `efibootguard` backend's settings.
    pub efibootguard: Option<RawEfibootguard>,
    /// The `uboot` backend's settings.
    pub uboot: Option<RawUboot>,
    /// The `command` backend: the update stack's own commands, each an argv (no shell).
    pub command: Option<RawCommand>,
}

/// EFI Boot Guard's environment (the `efibootguard` backend).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping of EFI Boot Guard settings")]
pub struct RawEfibootguard {}

/// The U-Boot environment (the `uboot` backend), read and written with libubootenv's tools.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping of U-Boot settings")]
pub struct RawUboot {
    /// libubootenv's configuration naming the environment's device(s) (default `/etc/fw_env.config`).
    pub config: Option<FsPath>,
}

/// The `command` backend: what bootgate runs instead of writing boot-loader state itself.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `mark_good` and optionally `mark_bad`, `revert`, `facts`, `timeout`"
)]
pub struct RawCommand {
    /// Marks this boot good once the gate passed (before READY=1); must exit 0.
    pub mark_good: NonEmpty<Str>,
    /// After a failed gate: marks this boot bad so that the boot loader falls back; exit 0 means a reboot
    /// falls back, so bootgate reboots. Without it a failed gate stays.
    pub mark_bad: Option<NonEmpty<Str>>,
    /// The rollback window's revert: makes the boot loader fall back on the next boot; exit 0 means it will.
    /// Without it `rollback:` is refused.
    pub revert: Option<NonEmpty<Str>>,
    /// Prints a JSON object about the update stack's state, shown in the health document's `boot`.
    pub facts: Option<NonEmpty<Str>>,
    /// Each command's limit (default 30s); a command still running then is killed and counts as failed.
    pub timeout: Option<Dur>,
}

/// The boot loader's way of counting and marking boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    Auto,
    Flatcar,
    BlessBoot,
    Rauc,
    Grubenv,
    Efibootguard,
    Uboot,
    Command,
    None,
}

impl Backend {
    /// The policy's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Flatcar => "flatcar",
            Backend::BlessBoot => "bless-boot",
            Backend::Rauc => "rauc",
            Backend::Grubenv => "grubenv",
            Backend::Efibootguard => "efibootguard",
            Backend::Uboot => "uboot",
            Backend::Command => "command",
            Backend::None => "none",
        }
    }
}

/// A directory whose files become `exec` checks, named after the file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with `dir`")]
pub struct RawChecksFrom {
    /// The directory, e.g. `/etc/greenboot/check/required.d`.
    pub dir: FsPath,
    /// Put before each file name to make its check's name, e.g. `vendor.` for
    /// `/usr/lib/greenboot/check/required.d`, whose file names may also be in `/etc`'s.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::prefix")]
    pub prefix: Option<Text>,
    /// Whether its checks fail the gate (default true; false for greenboot's `wanted.d`).
    pub critical: Option<bool>,
    /// Per script (default: as for any check).
    pub timeout: Option<Dur>,
    /// Further attempts after a failure (default 0, as greenboot runs each script once).
    pub retries: Option<u32>,
}

/// What the boot gate waits for and what it does on failure.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping of gate settings")]
pub struct RawGate {
    /// Every critical check must have passed by then (default 120s).
    pub deadline: Option<Dur>,
    /// Wait before the first round (default 0s).
    pub settle: Option<Dur>,
    /// `reboot` (default) or `stay`; reboot only when the booted partition is unconfirmed and a fallback is bootable.
    pub on_failure: Option<OnFailure>,
    /// Pause between a failed gate and the reboot, so an operator can read the status (default 10s).
    pub reboot_delay: Option<Dur>,
    /// Once every critical check passed, how long they must keep passing before READY=1 (default 0s).
    pub soak: Option<Dur>,
    /// Time between the re-runs during the soak (default 5s, at least 100ms).
    pub soak_interval: Option<Dur>,
    /// At most this many checks run at once in the gate (default: no limit).
    #[schemars(range(min = 1))]
    pub max_concurrent: Option<u32>,
    /// `absolute` (default): every failing critical check fails the gate. `regression`: a
    /// critical check that was failing on the image this update replaces too does not.
    pub judge: Option<Judge>,
}

/// What a trial boot's gate is judged against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Judge {
    /// The device's health now: every failing critical check fails the gate.
    #[default]
    Absolute,
    /// The update against the image it replaces: a failure that was there before is accepted (degraded).
    Regression,
}

impl Judge {
    /// The policy's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Judge::Absolute => "absolute",
            Judge::Regression => "regression",
        }
    }
}

/// After READY=1, a sustained critical failure still reverts the update for this long.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping of rollback settings")]
pub struct RawRollback {
    /// How long after READY=1 a sustained critical failure reverts this update (required unless
    /// only `retry_after_environment` or `hold_after` is set; 0s: never).
    pub window: Option<Dur>,
    /// A critical check failing without one pass for this long reverts (default 300s, at least 1s, at most `window`).
    pub failing_for: Option<Dur>,
    /// After a fallback blamed on the environment, boot the failed update again once the
    /// checks it failed have passed here for `delay` (off by default; gptprio only).
    pub retry_after_environment: Option<RawRetry>,
    /// Hold updates once the same version failed this many times by its own fault (off by default).
    #[schemars(range(min = 1))]
    pub hold_after: Option<u32>,
    /// How long a hold lasts after the failure that started it (default 24h).
    pub hold_for: Option<Dur>,
}

/// `rollback.retry_after_environment`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with `max` and `delay`")]
pub struct RawRetry {
    /// At most this many retries of one version (default 1, at least 1).
    #[schemars(range(min = 1))]
    pub max: Option<u32>,
    /// How long the failed checks must pass here before the retry (default 10m, at least 1s).
    pub delay: Option<Dur>,
}

/// What to do after a failed gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    Reboot,
    Stay,
}

/// Re-checks after the gate.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping of runtime settings")]
pub struct RawRuntime {
    /// Time between two runs of a check (default 60s, at least 1s); a check's own `interval` and
    /// the `BOOTGATE_INTERVAL` environment variable take precedence.
    pub interval: Option<Dur>,
    /// Consecutive failures before a check turns failed (default 3).
    #[schemars(range(min = 1))]
    pub failure_threshold: Option<u32>,
    /// Consecutive successes before a failed check turns passed again (default 1).
    #[schemars(range(min = 1))]
    pub success_threshold: Option<u32>,
    /// At most this many checks run at once after the gate (default 8).
    #[schemars(range(min = 1))]
    pub max_concurrent: Option<u32>,
}

/// The health and metrics endpoint.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping of server settings")]
pub struct RawServer {
    /// Address to listen on (default 127.0.0.1:8080).
    #[schemars(schema_with = "super::schema::listen")]
    pub listen: Option<Text>,
    /// Whether `POST /api/v1/system/health/{check}/run` may run a check on request (default false:
    /// it lets any client of the port start exec checks).
    pub allow_run: Option<bool>,
    /// An exporter-toolkit web configuration file: TLS, client certificates, basic auth users.
    pub web_config: Option<FsPath>,
}

/// Keys every check has; the rest of its mapping belongs to its kind.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a check: a mapping with `name`, `kind` and the kind's keys")]
pub struct RawCheck {
    pub name: Name,
    pub kind: Text,
    pub critical: Option<bool>,
    pub timeout: Option<Dur>,
    pub retries: Option<u32>,
    pub after: Option<Vec<Name>>,
    pub interval: Option<Dur>,
    pub start_period: Option<Dur>,
}

/// The keys of `RawCheck`, hidden from the kind's own deserializer.
pub const COMMON_KEYS: &[&str] =
    &["name", "kind", "critical", "timeout", "retries", "after", "interval", "start_period"];
