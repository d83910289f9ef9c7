//! `none`: READY=1 only; a failed gate stays (there is no other boot to fall back to).

use super::{Backend, Step};
use crate::boot::decide::RebootDecision;
use crate::record::boot::BackendFacts;

/// No boot loader bootgate knows of.
pub struct None;

impl Backend for None {
    fn name(&self) -> &'static str {
        "none"
    }

    fn facts(&self) -> Step<'_, BackendFacts> {
        Box::pin(async { BackendFacts::None })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async { Ok("nothing to mark (backend none)".into()) })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async { RebootDecision::NotAbSystem })
    }
}
