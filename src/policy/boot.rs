//! `boot:` → [`BootSettings`]: the backend's own settings, each read only by its backend,
//! and the argv lists of the `command` backend and `fallback_command`.

use std::time::Duration;

use super::located::Ctx;
use super::raw::{Backend, RawBoot};
use super::types::{Dur, NonEmpty, Str};
use super::yaml::path::Seg;
use super::{BootSettings, CommandBackend, Efibootguard};

/// A backend command's limit unless `boot.command.timeout` says otherwise.
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// An argv of the policy's (`at` its path), refused when its program name is empty.
pub(super) fn argv(cx: &mut Ctx, at: &[&str], raw: Option<NonEmpty<Str>>) -> Option<Vec<String>> {
    let argv = raw.map(|argv| argv.0.into_iter().map(|a| a.0).collect::<Vec<_>>())?;
    if argv[0].is_empty() {
        let at: Vec<Seg> = at.iter().map(|k| Seg::key(k)).collect();
        cx.at(&at, "the program name is empty");
    }
    Some(argv)
}

/// Each backend's own settings; a backend's section under another backend is refused,
/// since nothing would read it.
pub(super) fn validate(cx: &mut Ctx, backend: Backend, raw: RawBoot) -> BootSettings {
    let only = |cx: &mut Ctx, key: &str, present: bool, owner: Backend, name: &str| {
        if present && backend != owner && !(backend == Backend::Auto && owner != Backend::Command) {
            let message =
                format!("boot.{key} is read only by the {name} backend, and boot.backend is {}", backend.name());
            cx.at(&[Seg::key("boot"), Seg::key(key)], message);
        }
    };
    only(cx, "grubenv", raw.grubenv.is_some(), Backend::Grubenv, "grubenv");
    only(cx, "efibootguard", raw.efibootguard.is_some(), Backend::Efibootguard, "efibootguard");
    only(cx, "uboot", raw.uboot.is_some(), Backend::Uboot, "uboot");
    only(cx, "command", raw.command.is_some(), Backend::Command, "command");
    let command = raw.command.map(|c| CommandBackend {
        mark_good: argv(cx, &["boot", "command", "mark_good"], Some(c.mark_good)).unwrap_or_default(),
        mark_bad: argv(cx, &["boot", "command", "mark_bad"], c.mark_bad),
        revert: argv(cx, &["boot", "command", "revert"], c.revert),
        facts: argv(cx, &["boot", "command", "facts"], c.facts),
        timeout: command_timeout(cx, c.timeout),
    });
    if backend == Backend::Command && command.is_none() {
        cx.at(
            &[Seg::key("boot"), Seg::key("backend")],
            "the command backend needs `boot.command` with at least `mark_good` (an argv, e.g. [/usr/libexec/myupdater, commit])",
        );
    }
    BootSettings {
        grubenv: raw.grubenv.map(|p| p.0),
        efibootguard: Efibootguard {},
        uboot_config: raw.uboot.and_then(|u| u.config).map(|p| p.0),
        command,
    }
}

/// `boot.command.timeout`: at least 1s (a command needs time to start), 30s by default.
fn command_timeout(cx: &mut Ctx, raw: Option<Dur>) -> Duration {
    let timeout = raw.map_or(DEFAULT_COMMAND_TIMEOUT, |d| d.0);
    if timeout < Duration::from_secs(1) {
        cx.at(&[Seg::key("boot"), Seg::key("command"), Seg::key("timeout")], "the timeout must be at least 1s");
    }
    timeout
}
