//! `efibootguard`: EFI Boot Guard's configurations (`BGENV.DAT`), read and confirmed
//! with its own tools. Not built yet: every step says so.

use super::{Backend, Step};
use crate::boot::decide::RebootDecision;
use crate::policy::Efibootguard as Settings;
use crate::record::boot::BackendFacts;

const NOT_YET: &str = "the efibootguard backend is not built yet";

/// EFI Boot Guard as the policy configures it.
pub struct Efibootguard {
    _settings: Settings,
}

impl Efibootguard {
    pub fn new(settings: &Settings) -> Self {
        Efibootguard { _settings: settings.clone() }
    }
}

impl Backend for Efibootguard {
    fn name(&self) -> &'static str {
        "efibootguard"
    }

    fn facts(&self) -> Step<'_, BackendFacts> {
        Box::pin(async { BackendFacts::Efibootguard { configs: None, error: Some(NOT_YET.into()) } })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async { Err(NOT_YET.into()) })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async { RebootDecision::StayBackendError { why: NOT_YET.into() } })
    }
}
