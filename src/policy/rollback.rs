//! `rollback:` → [`Rollback`]: the window after READY=1, the retry after a fallback the
//! environment caused, the hold after a version failed by its own fault; and whether the
//! boot backend can do each of them.

use std::time::Duration;

use super::located::Ctx;
use super::raw::{Backend, RawRollback};
use super::yaml::path::Seg;
use super::{BootSettings, Hold, Retry, Rollback};
use crate::util::time::spelled;

const DEFAULT_FAILING_FOR: Duration = Duration::from_secs(300);
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(600);
const DEFAULT_HOLD_FOR: Duration = Duration::from_secs(24 * 3600);

fn at(key: &str) -> [Seg; 2] {
    [Seg::key("rollback"), Seg::key(key)]
}

/// The `rollback:` section: `None` (no section) never reverts, retries or holds; a
/// section names its window unless it only sets a retry or a hold.
pub(super) fn validate(cx: &mut Ctx, r: Option<Option<&RawRollback>>) -> Rollback {
    let never = Rollback::window(Duration::ZERO, DEFAULT_FAILING_FOR);
    let Some(Some(r)) = r else { return never };
    let retry = retry(cx, r);
    let hold = hold(cx, r);
    let Some(window) = r.window.map(|d| d.0) else {
        if retry.is_none() && hold.is_none() && r.hold_for.is_none() {
            cx.at(
                &[Seg::key("rollback")],
                "missing field `window`: without a window nothing is ever reverted; write e.g. `window: 10m`, or remove `rollback`",
            );
        } else if r.failing_for.is_some() {
            cx.at(&at("failing_for"), "failing_for has no effect without a `window`");
        }
        return Rollback { retry, hold, ..never };
    };
    let failing_for = r.failing_for.map_or(DEFAULT_FAILING_FOR, |d| d.0);
    if window.is_zero() {
        if r.failing_for.is_some() {
            cx.at(&at("failing_for"), "failing_for has no effect: `window: 0s` never reverts");
        }
        return Rollback { retry, hold, ..never };
    }
    if failing_for < Duration::from_secs(1) {
        cx.at(&at("failing_for"), "failing_for must be at least 1s");
    } else if failing_for > window {
        let (f, w) = (spelled(failing_for), spelled(window));
        let message = if r.failing_for.is_some() {
            format!("failing_for ({f}) is longer than the window ({w}): no failure could ever revert")
        } else {
            format!("the window ({w}) is shorter than failing_for (default {f}): set a shorter `failing_for`")
        };
        cx.at(&at(if r.failing_for.is_some() { "failing_for" } else { "window" }), message);
    }
    Rollback { window, failing_for, retry, hold }
}

/// `retry_after_environment`: at least one retry, after at least 1s of passing.
fn retry(cx: &mut Ctx, r: &RawRollback) -> Option<Retry> {
    let raw = r.retry_after_environment.as_ref()?;
    let path = |key| [Seg::key("rollback"), Seg::key("retry_after_environment"), Seg::key(key)];
    let max = raw.max.unwrap_or(1);
    if max == 0 {
        cx.at(&path("max"), "max must be at least 1; remove `retry_after_environment` to never retry");
    }
    let delay = raw.delay.map_or(DEFAULT_RETRY_DELAY, |d| d.0);
    if delay < Duration::from_secs(1) {
        cx.at(&path("delay"), "delay must be at least 1s: a retry needs the checks to pass for a while, not once");
    }
    Some(Retry { max, delay })
}

/// `hold_after` (at least 1) and `hold_for` (default 24h, only with `hold_after`).
fn hold(cx: &mut Ctx, r: &RawRollback) -> Option<Hold> {
    let Some(after) = r.hold_after else {
        if r.hold_for.is_some() {
            cx.at(&at("hold_for"), "hold_for has no effect without `hold_after`");
        }
        return None;
    };
    if after == 0 {
        cx.at(&at("hold_after"), "hold_after must be at least 1; remove it to never hold updates");
    }
    let hold_for = r.hold_for.map_or(DEFAULT_HOLD_FOR, |d| d.0);
    if hold_for.is_zero() {
        cx.at(&at("hold_for"), "hold_for must be longer than 0s");
    }
    Some(Hold { after, hold_for })
}

/// Each part of `rollback:` needs a backend that can do it; `auto` is judged on the
/// device (its health document says what it could not do).
pub(super) fn fits_backend(cx: &mut Ctx, backend: Backend, boot: &BootSettings, rollback: &Rollback) {
    if !rollback.window.is_zero() {
        let why = match backend {
            Backend::None => Some("boot.backend none marks nothing and cannot revert an update".to_string()),
            Backend::Command if boot.command.as_ref().is_some_and(|c| c.revert.is_none()) => {
                Some("the command backend reverts only with `boot.command.revert`, and the policy sets none".into())
            }
            _ => None,
        };
        if let Some(why) = why {
            let message = format!(
                "{why}: a rollback window would never revert; remove `rollback` or choose a backend that can revert"
            );
            cx.at(&at("window"), message);
        }
    }
    if rollback.retry.is_some() && !matches!(backend, Backend::Flatcar | Backend::Auto) {
        let message = format!(
            "retry_after_environment is not supported by the {} backend: only flatcar (gptprio) can make a failed slot \
             bootable again; remove it or use boot.backend flatcar",
            backend.name()
        );
        cx.at(&at("retry_after_environment"), message);
    }
    if rollback.hold.is_some() && matches!(backend, Backend::None | Backend::Command) {
        let message = format!(
            "hold_after is not supported by the {} backend: bootgate cannot tell which version a fallback came \
             from there; remove it or choose a backend that falls back",
            backend.name()
        );
        cx.at(&at("hold_after"), message);
    }
}
