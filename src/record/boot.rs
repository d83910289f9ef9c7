//! The boot facts: what the health document's `boot`, the boot metrics and the status
//! page show of this boot — the booted GPT slot, the OS version, a fallback from another
//! slot, and what the boot backend knows ([`BackendFacts`]). One type, published by the
//! daemon and read by every renderer, so none of them reads keys back out of JSON.

use serde::{Deserialize, Serialize};

use crate::engine::Failing;

/// This boot's facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BootFacts {
    /// The booted GPT slot, when this is an A/B system bootgate could read.
    #[serde(flatten)]
    pub slot: Option<SlotFacts>,
    /// `VERSION` of the booted OS (shown beside the slot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// What the boot backend shows, once it has answered.
    #[serde(flatten)]
    pub backend: Option<BackendFacts>,
    /// Whether the backend marked this boot good, once the gate passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    /// Every gptprio slot of the booted disk (the booted slot's type), as last read: at
    /// start, and again while the booted slot waits to be marked successful.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpt_slots: Vec<GptSlot>,
    /// The partition gptprio boots next, by the attributes as last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpt_next: Option<u32>,
    /// What a failed gate led to, once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// How a fallback of the boot loader (GRUB's `boot_counter=-1`) was made permanent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permanent: Option<Permanent>,
    /// Updates held after a version failed by its own fault (`rollback.hold_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldFacts>,
}

/// The second verdict of a fallback: whether the checks the left image failed fail here too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FallbackBlame {
    /// At least one of them passes here: the image failed by its own fault.
    Image,
    /// They fail here too: the environment, not the image, failed them.
    Environment,
    /// No verdict to compare (the image left none, or none of its failed checks runs here).
    Unknown,
}

impl FallbackBlame {
    /// The JSON and label word.
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackBlame::Image => "image",
            FallbackBlame::Environment => "environment",
            FallbackBlame::Unknown => "unknown",
        }
    }
}

/// A retry of the left update decided on a fallback the environment caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryFacts {
    /// Which retry of this version it is (from 1), and how many the policy allows.
    pub attempt: u32,
    pub max: u32,
    /// When it was decided (RFC 3339).
    pub at: String,
    /// What was done, or why it was not.
    pub text: String,
    /// Whether the slot was re-armed and the reboot asked for.
    pub done: bool,
}

/// Updates held after a version failed by its own fault, as `/run/bootgate/hold-updates` has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldFacts {
    pub version: String,
    /// Until when (RFC 3339).
    pub until: String,
    /// How many of its boots failed by the image's fault.
    pub failures: u32,
    pub text: String,
}

/// The rollback run on a boot GRUB reached by falling back, so the next boot stays on
/// this deployment: what ran and how it went. A failed one is said, never retried: the
/// counter that asked for it is cleared first, so it cannot loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permanent {
    /// The command as run (`bootc rollback`); absent when there was none to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub done: bool,
    /// What it said, or why it failed.
    pub note: String,
}

/// What bootgate did about a failed gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Rebooted into the fallback slot.
    Reboot,
    /// Stayed: the booted slot was already marked successful.
    StayConfirmed,
    /// Stayed: the boot loader had no other slot to pick.
    StayNoFallback,
    /// Stayed: not an A/B system.
    NotAb,
    /// The boot was reverted after its gate (a rollback window).
    Reverted,
    /// Stayed because the policy says `on_failure: stay`.
    StayPolicy,
    /// Stayed: the boot loader's state could not be read or changed.
    StayBackendError,
    /// A decision a newer bootgate recorded, which this version does not know.
    #[serde(other)]
    Other,
}

impl Decision {
    /// The word the history line has.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Reboot => "reboot",
            Decision::StayConfirmed => "stay_confirmed",
            Decision::StayNoFallback => "stay_no_fallback",
            Decision::NotAb => "not_ab",
            Decision::Reverted => "reverted",
            Decision::StayPolicy => "stay_policy",
            Decision::StayBackendError => "stay_backend_error",
            Decision::Other => "other",
        }
    }
}

/// A failed gate's decision as operators read it: reboot (where to, and when) or stay (and why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnFailure {
    /// The decision, as the history line records it.
    pub decision: Decision,
    /// Where a reboot leads, as the boot loader names it (`USR-A`, `RAUC slot A`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_to: Option<String>,
    /// When the reboot is asked for (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_at: Option<String>,
    /// The decision in words: what is done, or why bootgate stays and what is left to do.
    pub text: String,
}

/// The backend's mark of a passed gate: done, or failed and why. A failed mark is a
/// boot the loader will still count as unconfirmed, and operators must see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub done: bool,
    /// What was done, or why it failed.
    pub note: String,
}

/// The booted GPT slot's attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotFacts {
    pub partition: String,
    pub index: u32,
    pub uuid: String,
    pub disk: Option<String>,
    pub priority: u8,
    pub tries: u8,
    pub successful: bool,
}

/// One gptprio slot of the booted disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GptSlot {
    pub partition: String,
    pub index: u32,
    pub priority: u8,
    pub tries: u8,
    pub successful: bool,
}

/// Why this boot is on the slot it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The previous boot, on another slot, failed its gate.
    GateFailed,
    /// The previous boot, on another slot, was reverted after its gate.
    Reverted,
    /// Another slot was tried and left no verdict (it crashed, hung or never reached bootgate).
    NoVerdict,
}

impl Reason {
    /// The label value and JSON string.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::GateFailed => "gate_failed",
            Reason::Reverted => "reverted",
            Reason::NoVerdict => "no_verdict",
        }
    }
}

/// A fallback from another slot, as the health document's `boot.fallback` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    /// The label of the slot that was left.
    pub from_partition: String,
    #[serde(skip)]
    pub from_uuid: String,
    /// Its OS version, when its boot recorded one.
    pub from_version: Option<String>,
    pub reason: Reason,
    /// When the left boot recorded its verdict.
    pub at: Option<String>,
    pub failing: Vec<Failing>,
    /// The second verdict, once this boot's gate gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blame: Option<FallbackBlame>,
    /// The retry of the left update, once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryFacts>,
}

impl Fallback {
    /// A fallback from USR-B (4230.0.0), whose gate failed on `api`, for unit tests.
    #[cfg(test)]
    pub fn sample() -> Self {
        Fallback {
            from_partition: "USR-B".into(),
            from_uuid: "u4".into(),
            from_version: Some("4230.0.0".into()),
            reason: Reason::GateFailed,
            at: Some("2026-12-01T10:00:00Z".into()),
            failing: vec![Failing { name: "api".into(), message: "refused".into() }],
            blame: None,
            retry: None,
        }
    }

    /// One line for the journal and `STATUS=`.
    pub fn text(&self) -> String {
        let version = self.from_version.as_deref().unwrap_or("unknown version");
        let what = match self.reason {
            Reason::GateFailed => "its gate failed",
            Reason::Reverted => "it was reverted",
            Reason::NoVerdict => "it left no verdict",
        };
        let names: Vec<&str> = self.failing.iter().map(|f| f.name.as_str()).collect();
        let failing = if names.is_empty() { String::new() } else { format!(" (failing: {})", names.join(", ")) };
        let blame = match self.blame {
            Some(FallbackBlame::Image) => "; blame: image (those checks pass here)",
            Some(FallbackBlame::Environment) => "; blame: environment (those checks fail here too)",
            Some(FallbackBlame::Unknown) | None => "",
        };
        format!("fell back from {} ({version}): {what}{failing}{blame}", self.from_partition)
    }
}

/// What each boot backend shows in `boot`, tagged by `backend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "kebab-case")]
pub enum BackendFacts {
    Flatcar,
    None,
    Grubenv {
        /// The environment block's path.
        grubenv: String,
        /// greenboot's counter; `None` when unset.
        boot_counter: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        boot_success: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Rauc {
        /// RAUC's `BootSlot`: the booted slot's bootname.
        booted: Option<String>,
        primary: Option<String>,
        slots: Option<Vec<RaucSlot>>,
        error: Option<String>,
    },
    BlessBoot {
        /// Whether systemd-boot counted this boot (`LoaderBootCountPath` is set).
        counting: bool,
        esp: Option<String>,
        /// The booted entry, without its counter.
        entry: Option<String>,
        boot_count_path: Option<String>,
        tries_left: Option<u32>,
        tries_done: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Efibootguard {
        /// Every configuration found, the booted one marked.
        configs: Option<Vec<EbgConfig>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Uboot {
        /// libubootenv's configuration file.
        config: String,
        upgrade_available: Option<bool>,
        bootcount: Option<u32>,
        bootlimit: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Command {
        /// What `boot.command.facts` printed: the update stack's own document.
        facts: Option<serde_json::Map<String, serde_json::Value>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// One EFI Boot Guard configuration (a `BGENV.DAT`) as its environment says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EbgConfig {
    /// Where it was read from (its partition or file).
    pub source: String,
    pub revision: u32,
    /// `OK`, `INSTALLED`, `TESTING`, `FAILED` or `UNKNOWN(n)`.
    pub ustate: String,
    pub in_progress: bool,
    pub kernel: Option<String>,
    /// Whether this is the configuration EFI Boot Guard booted.
    pub booted: bool,
}

/// One RAUC slot as `GetSlotStatus` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaucSlot {
    /// RAUC's name for it (`rootfs.0`).
    pub name: String,
    pub class: Option<String>,
    /// The boot loader's name for it (`A`); a slot without one is not bootable.
    pub bootname: Option<String>,
    /// `booted`, `active` or `inactive`.
    pub state: Option<String>,
    /// The boot loader's mark: `good` or `bad`.
    pub boot_status: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn slot() -> SlotFacts {
        SlotFacts {
            partition: "USR-A".into(),
            index: 3,
            uuid: "u3".into(),
            disk: Some("/dev/vda".into()),
            priority: 1,
            tries: 0,
            successful: true,
        }
    }

    #[test]
    fn the_facts_are_one_flat_object_that_reads_back_as_it_was() {
        let facts = BootFacts {
            slot: Some(slot()),
            version: Some("4152.2.0".into()),
            fallback: Some(Fallback::sample()),
            backend: Some(BackendFacts::Flatcar),
            mark: None,
            gpt_slots: Vec::new(),
            gpt_next: None,
            on_failure: None,
            permanent: None,
            hold: None,
        };
        let v = serde_json::to_value(&facts).unwrap();
        assert_eq!(
            v,
            json!({"partition": "USR-A", "index": 3, "uuid": "u3", "disk": "/dev/vda", "priority": 1, "tries": 0,
                "successful": true, "version": "4152.2.0", "backend": "flatcar",
                "fallback": {"from_partition": "USR-B", "from_version": "4230.0.0", "reason": "gate_failed",
                    "at": "2026-12-01T10:00:00Z", "failing": [{"name": "api", "message": "refused"}]}})
        );
        let back: BootFacts = serde_json::from_value(v).unwrap();
        assert_eq!(back.slot, facts.slot);
        assert_eq!(back.backend, facts.backend);
        assert_eq!(back.fallback.map(|f| f.from_partition), Some("USR-B".into()));
    }

    #[test]
    fn off_a_b_only_the_backend_shows() {
        let facts = BootFacts {
            backend: Some(BackendFacts::Grubenv {
                grubenv: "/boot/grub/grubenv".into(),
                boot_counter: Some(2),
                boot_success: Some(false),
                error: None,
            }),
            ..BootFacts::default()
        };
        let v = serde_json::to_value(&facts).unwrap();
        assert_eq!(
            v,
            json!({"backend": "grubenv", "grubenv": "/boot/grub/grubenv", "boot_counter": 2, "boot_success": false})
        );
        assert_eq!(serde_json::from_value::<BootFacts>(v).unwrap(), facts);
        assert_eq!(serde_json::to_value(BootFacts::default()).unwrap(), json!({}));
    }
}
