//! The page's boot slots, as the boot backend sees them: the GPT's gptprio slots (and
//! which boots next), RAUC's slots, EFI Boot Guard's configurations, systemd-boot's
//! counted entry, GRUB's `boot_counter`, U-Boot's bootcount.
//! The backend is named; a machine without slots is told so only when nothing has any.

use std::fmt::Write as _;

use super::View;
use super::escape::Esc;
use super::headline::backend_name;
use crate::boot::decide::count_down;
use crate::record::boot::{BackendFacts, BootFacts, EbgConfig, RaucSlot};

/// The slots section.
pub(super) fn section(out: &mut String, v: &View) {
    out.push_str("<section aria-labelledby=slots-h>\n<h2 id=slots-h>Boot slots</h2>\n");
    let boot = v.boot;
    let backend = boot.and_then(|b| b.backend.as_ref());
    if let Some(b) = backend {
        let _ = writeln!(
            out,
            "<p class=meta id=backend>Boot backend: <strong>{}</strong>: {}</p>",
            backend_name(b),
            about(b)
        );
    }
    let mut shown = boot.is_some_and(|b| gpt(out, b));
    match backend {
        Some(BackendFacts::Rauc { booted, primary, slots, error }) => {
            shown |= rauc(out, booted.as_deref(), primary.as_deref(), slots.as_deref().unwrap_or_default());
            problem(out, error.as_deref());
        }
        Some(BackendFacts::Efibootguard { configs, error }) => {
            shown |= ebg(out, configs.as_deref().unwrap_or_default());
            problem(out, error.as_deref());
        }
        Some(BackendFacts::BlessBoot { counting, esp, entry, tries_left, tries_done, error, .. }) => {
            let entry = entry.as_deref().unwrap_or("unknown");
            out.push_str("<table id=entries>\n<thead><tr><th scope=col>Boot entry<th scope=col>Counting");
            out.push_str("<th scope=col>Tries left<th scope=col>Tries done<th scope=col>ESP</thead>\n<tbody>\n");
            let count = |n: &Option<u32>| n.map_or_else(|| "–".into(), |n| n.to_string());
            let _ = writeln!(
                out,
                "<tr class={}><th>{} (booted)<td class=st>{}<td><i>tries left </i>{}<td><i>tries done </i>{}<td><i>ESP </i>{}",
                if *counting { "wait" } else { "ok" },
                Esc(entry),
                if *counting { "counted: not blessed yet" } else { "not counted" },
                count(tries_left),
                count(tries_done),
                Esc(esp.as_deref().unwrap_or("–"))
            );
            out.push_str("</tbody>\n</table>\n");
            problem(out, error.as_deref());
            shown = true;
        }
        Some(BackendFacts::Grubenv { grubenv, boot_counter, boot_success, error }) => {
            let counter = boot_counter.map_or_else(|| "unset".into(), |n| n.to_string());
            let success = boot_success.map_or("unset", |b| if b { "1" } else { "0" });
            let _ = write!(
                out,
                "<p id=grubenv>GRUB environment <code>{}</code>: <code>boot_counter</code> {counter}, <code>boot_success</code> {success}",
                Esc(grubenv)
            );
            match *boot_counter {
                Some(n) if n < 0 => {
                    out.push_str(": this is the fallback boot, GRUB went back to the previous deployment")
                }
                Some(n) => {
                    let _ = write!(out, ". If this boot fails: {}", Esc(&count_down(n)));
                }
                None => out.push_str(": no update is being counted"),
            }
            out.push_str(".</p>\n");
            problem(out, error.as_deref());
            shown = true;
        }
        Some(BackendFacts::Uboot { config, upgrade_available, bootcount, bootlimit, error }) => {
            uboot(out, config, *upgrade_available, *bootcount, *bootlimit);
            problem(out, error.as_deref());
            shown = true;
        }
        _ => {}
    }
    if !shown {
        out.push_str("<p>No A/B slots: this system is not booted from a gptprio slot, and its boot backend has no slots to show.</p>\n");
    }
    if let Some(id) = v.boot_id {
        let _ = writeln!(out, "<p class=meta>This boot: <code>{}</code></p>", Esc(id));
    }
    out.push_str("</section>\n");
}

/// What a backend does, in a few words.
fn about(b: &BackendFacts) -> &'static str {
    match b {
        BackendFacts::Flatcar => "gptprio attributes on the GPT; update_engine marks a slot good after READY=1",
        BackendFacts::None => "nothing marks this boot and a failed gate does not reboot",
        BackendFacts::Grubenv { .. } => "greenboot's boot counter in the GRUB environment",
        BackendFacts::Rauc { .. } => "RAUC marks slots good or bad over D-Bus",
        BackendFacts::BlessBoot { .. } => "systemd-boot counts tries; systemd-bless-boot marks the entry good",
        BackendFacts::Efibootguard { .. } => "EFI Boot Guard tests an update once; bootgate confirms its configuration",
        BackendFacts::Uboot { .. } => "U-Boot counts boots; bootgate clears upgrade_available and bootcount",
        BackendFacts::Command { .. } => "the update stack's own commands mark this boot",
    }
}

fn problem(out: &mut String, error: Option<&str>) {
    if let Some(e) = error {
        let _ = writeln!(out, "<p class=\"note bad\">The backend could not be read: {}</p>", Esc(e));
    }
}

/// The gptprio slots, booted and fallback marked; false when there are none.
fn gpt(out: &mut String, boot: &BootFacts) -> bool {
    let Some(booted) = &boot.slot else { return false };
    out.push_str("<table id=slots>\n<thead><tr><th scope=col>Slot<th scope=col>State");
    out.push_str("<th scope=col>Priority<th scope=col>Tries left<th scope=col>Successful<th scope=col>OS version</thead>\n<tbody>\n");
    let fallback = boot.fallback.as_ref();
    let row = |out: &mut String, label: &str, index: Option<u32>, attrs: Option<(u8, u8, bool)>| {
        let is_booted = index == Some(booted.index);
        let left = fallback.filter(|f| f.from_partition == label);
        let next = index.is_some() && index == boot.gpt_next;
        let mut state = Vec::new();
        if is_booted {
            state.push("booted".to_string());
        }
        if let Some(f) = left {
            state.push(format!("left: {}", f.reason.as_str().replace('_', " ")));
        }
        if next {
            state.push("boots next".into());
        }
        if state.is_empty() {
            state.push("idle".into());
        }
        let class = if left.is_some() {
            "bad"
        } else if is_booted {
            "ok"
        } else {
            "idle"
        };
        let (priority, tries, good) = attrs.map_or(("–".into(), "–".into(), "–"), |(p, t, s)| {
            (p.to_string(), t.to_string(), if s { "yes" } else { "no, not confirmed" })
        });
        let version = if is_booted { boot.version.as_deref() } else { left.and_then(|f| f.from_version.as_deref()) };
        let name = match index {
            Some(i) => format!("{} (#{i})", Esc(label)),
            None => Esc(label).to_string(),
        };
        let _ = writeln!(
            out,
            "<tr class={class}><th>{name}<td class=st>{}<td><i>priority </i>{priority}<td><i>tries left </i>{tries}<td><i>successful: </i>{good}<td><i>OS </i>{}",
            state.join(" · "),
            Esc(version.unwrap_or("–"))
        );
    };
    if boot.gpt_slots.is_empty() {
        row(out, &booted.partition, Some(booted.index), Some((booted.priority, booted.tries, booted.successful)));
        if let Some(f) = fallback {
            row(out, &f.from_partition, None, None);
        }
    } else {
        for s in &boot.gpt_slots {
            row(out, &s.partition, Some(s.index), Some((s.priority, s.tries, s.successful)));
        }
    }
    out.push_str("</tbody>\n</table>\n");
    let disk = booted.disk.as_ref().map(|d| format!("disk {}", Esc(d)));
    let uuid = format!("booted partition <code>{}</code>", Esc(&booted.uuid));
    let next = match boot.gpt_next {
        Some(_) => "gptprio boots the highest priority with tries left or successful next",
        None if boot.gpt_slots.is_empty() => "",
        None => "no slot can boot by gptprio's rules",
    };
    let parts: Vec<String> =
        disk.into_iter().chain([uuid]).chain((!next.is_empty()).then(|| next.to_string())).collect();
    let _ = writeln!(out, "<p class=meta>{}</p>", parts.join(" · "));
    true
}

/// RAUC's slots with a boot name (the bootable ones first); false when RAUC listed none.
fn rauc(out: &mut String, booted: Option<&str>, primary: Option<&str>, slots: &[RaucSlot]) -> bool {
    if slots.is_empty() {
        return false;
    }
    out.push_str("<table id=rauc-slots>\n<thead><tr><th scope=col>RAUC slot<th scope=col>State");
    out.push_str("<th scope=col>Boot name<th scope=col>Class<th scope=col>Marked</thead>\n<tbody>\n");
    let mut ordered: Vec<&RaucSlot> = slots.iter().collect();
    ordered.sort_by_key(|s| s.bootname.is_none());
    for s in ordered {
        let bootname = s.bootname.as_deref();
        let is_booted = bootname.is_some() && bootname == booted;
        let mut state: Vec<&str> = Vec::new();
        if is_booted {
            state.push("booted");
        } else if let Some(st) = s.state.as_deref() {
            state.push(st);
        }
        // RAUC's GetPrimary names the slot (`rootfs.1`); some loaders give the boot name.
        if primary.is_some_and(|p| p == s.name || Some(p) == bootname) {
            state.push("boots next (primary)");
        }
        let bad = s.boot_status.as_deref() == Some("bad");
        let class = if bad {
            "bad"
        } else if is_booted {
            "ok"
        } else {
            "idle"
        };
        let _ = writeln!(
            out,
            "<tr class={class}><th>{}<td class=st>{}<td><i>boot name </i>{}<td><i>class </i>{}<td><i>marked </i>{}",
            Esc(&s.name),
            Esc(&state.join(" · ")),
            Esc(bootname.unwrap_or("– (not bootable)")),
            Esc(s.class.as_deref().unwrap_or("–")),
            Esc(s.boot_status.as_deref().unwrap_or("–"))
        );
    }
    out.push_str("</tbody>\n</table>\n");
    true
}

/// EFI Boot Guard's configurations, the booted one marked; false when none was read.
fn ebg(out: &mut String, configs: &[EbgConfig]) -> bool {
    if configs.is_empty() {
        return false;
    }
    out.push_str("<table id=ebg-configs>\n<thead><tr><th scope=col>Configuration<th scope=col>State");
    out.push_str("<th scope=col>Revision<th scope=col>ustate<th scope=col>Kernel</thead>\n<tbody>\n");
    for c in configs {
        let mut state: Vec<&str> = Vec::new();
        if c.booted {
            state.push("booted");
        }
        match c.ustate.as_str() {
            "TESTING" if c.booted => state.push("under test: not confirmed yet"),
            "INSTALLED" => state.push("installed: tested at the next boot"),
            "FAILED" => state.push("failed its test"),
            _ => {}
        }
        if c.in_progress {
            state.push("update in progress");
        }
        if state.is_empty() {
            state.push("idle");
        }
        let class = match (c.ustate.as_str(), c.booted) {
            ("FAILED", _) => "bad",
            ("TESTING", true) => "wait",
            (_, true) => "ok",
            _ => "idle",
        };
        let _ = writeln!(
            out,
            "<tr class={class}><th>{}<td class=st>{}<td><i>revision </i>{}<td><i>ustate </i>{}<td><i>kernel </i>{}",
            Esc(&c.source),
            Esc(&state.join(" · ")),
            c.revision,
            Esc(&c.ustate),
            Esc(c.kernel.as_deref().unwrap_or("–"))
        );
    }
    out.push_str("</tbody>\n</table>\n");
    true
}

/// U-Boot's bootcount variables and what U-Boot makes of them.
fn uboot(out: &mut String, config: &str, testing: Option<bool>, count: Option<u32>, limit: Option<u32>) {
    let _ = write!(out, "<p id=uboot>U-Boot environment (<code>{}</code>)", Esc(config));
    let Some(testing) = testing else {
        out.push_str(": not read.</p>\n");
        return;
    };
    let n = |v: Option<u32>| v.map_or_else(|| "unset".into(), |n| n.to_string());
    let meaning = match (testing, count.unwrap_or(0), limit.unwrap_or(0)) {
        (false, ..) => "U-Boot does not count this boot, it is confirmed".into(),
        (true, _, 0) => "no bootlimit, so U-Boot never runs altbootcmd".into(),
        (true, c, l) if c > l => "past bootlimit, this boot is U-Boot's altbootcmd".into(),
        (true, c, l) => format!("U-Boot counts this update's boots, this is try {c} of {l}, then altbootcmd"),
    };
    let _ = writeln!(
        out,
        ": <code>upgrade_available</code> {}, <code>bootcount</code> {}, <code>bootlimit</code> {}: {}.</p>",
        if testing { "1" } else { "0" },
        n(count),
        n(limit),
        Esc(&meaning)
    );
}
