//! `none`: READY=1 only; a failed gate stays (there is no other boot to fall back to).

use serde_json::json;

use super::{Backend, Step};
use crate::boot::decide::RebootDecision;

/// No boot loader bootgate knows of.
pub struct None;

impl Backend for None {
    fn name(&self) -> &'static str {
        "none"
    }

    fn facts(&self) -> Step<'_, serde_json::Value> {
        Box::pin(async { json!({"backend": "none"}) })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async { Ok("nothing to mark (backend none)".into()) })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async { RebootDecision::NotAbSystem })
    }
}
