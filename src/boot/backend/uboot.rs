//! `uboot`: the U-Boot bootcount convention (`upgrade_available`, `bootcount`,
//! `bootlimit`), read and written with libubootenv's tools. Not built yet: every step
//! says so.

use std::path::PathBuf;

use super::{Backend, Step};
use crate::boot::decide::RebootDecision;
use crate::record::boot::BackendFacts;

/// libubootenv's configuration unless `boot.uboot.config` names another.
pub const FW_ENV_CONFIG: &str = "/etc/fw_env.config";

const NOT_YET: &str = "the uboot backend is not built yet";

/// The U-Boot environment that `config` describes.
pub struct Uboot {
    config: PathBuf,
}

impl Uboot {
    pub fn new(config: PathBuf) -> Self {
        Uboot { config }
    }
}

impl Backend for Uboot {
    fn name(&self) -> &'static str {
        "uboot"
    }

    fn facts(&self) -> Step<'_, BackendFacts> {
        Box::pin(async {
            BackendFacts::Uboot {
                config: self.config.display().to_string(),
                upgrade_available: None,
                bootcount: None,
                bootlimit: None,
                error: Some(NOT_YET.into()),
            }
        })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async { Err(NOT_YET.into()) })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async { RebootDecision::StayBackendError { why: NOT_YET.into() } })
    }
}
