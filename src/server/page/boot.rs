//! The boot parts of the page: a fallback banner and the last boots (the slots are in `slots`).
//! Their facts come from the health document's `boot` and the history, both of which
//! hold text from other boots (check messages among it), so all of it is escaped.

use std::fmt::Write as _;

use super::View;
use super::escape::{Esc, escape_within};
use crate::record::boot::{FallbackBlame, Reason};
use crate::record::history::{Decision, PastBoot};

/// Boots shown; the boots route has all the history keeps.
const SHOWN_BOOTS: usize = 10;
/// Bytes of HTML for one failing check's message in the banner and the history.
const FAILING_BUDGET: usize = 240;
/// Failing checks named in the banner, and for each boot in the history, before `and N more`.
const BANNER_FAILING: usize = 10;
const BOOT_FAILING: usize = 3;

/// What a fallback reason means, for a person.
fn reason_text(reason: Reason) -> &'static str {
    match reason {
        Reason::GateFailed => "failed its boot gate",
        Reason::Reverted => "was reverted after its gate passed (rollback window)",
        Reason::NoVerdict => "left no verdict: it crashed, hung or never reached bootgate",
    }
}

/// Shown above the checks when this boot is a fallback (`boot.fallback`).
pub(super) fn fallback_banner(out: &mut String, v: &View) {
    let Some(f) = v.boot.and_then(|b| b.fallback.as_ref()) else { return };
    let from = f.from_partition.as_str();
    let _ = writeln!(
        out,
        "<section class=\"alert bad\" aria-labelledby=fallback-h>\n<h2 id=fallback-h>Fell back from {}</h2>",
        Esc(from)
    );
    let _ = write!(out, "<p>This boot is a <strong>fallback</strong>: {}", Esc(from));
    if let Some(version) = &f.from_version {
        let _ = write!(out, " (version {})", Esc(version));
    }
    let _ = write!(out, " {} (reason <code>{}</code>)", reason_text(f.reason), f.reason.as_str());
    if let Some(at) = &f.at {
        let _ = write!(out, " at {}", readable_time(at));
    }
    if let Some(booted) = v.boot.and_then(|b| b.slot.as_ref()) {
        let _ = write!(out, "; the machine runs on {} again", Esc(&booted.partition));
    }
    out.push_str(".</p>\n");
    let failing = &f.failing;
    if !failing.is_empty() {
        out.push_str("<p>Failing there:</p>\n<ul>\n");
        for c in failing.iter().take(BANNER_FAILING) {
            let _ = write!(out, "<li><strong>{}</strong>", Esc(&c.name));
            if let Some(message) = Some(c.message.as_str()).filter(|m| !m.is_empty()) {
                out.push_str(": ");
                escape_within(out, message, FAILING_BUDGET);
            }
            out.push('\n');
        }
        if failing.len() > BANNER_FAILING {
            let _ = writeln!(out, "<li>and {} more (see the health document)", failing.len() - BANNER_FAILING);
        }
        out.push_str("</ul>\n");
    }
    if let Some(blame) = f.blame {
        let what = match blame {
            FallbackBlame::Image => "they pass here, so the image failed by its own fault",
            FallbackBlame::Environment => "they fail here too, so the environment failed them, not the image",
            FallbackBlame::Unknown => "there is nothing here to compare them with",
        };
        let _ = writeln!(out, "<p>Second verdict: blame <strong>{}</strong>: {what}.</p>", blame.as_str());
    }
    if let Some(r) = &f.retry {
        let _ = writeln!(out, "<p>Retry {} of {}: {}</p>", r.attempt, r.max, Esc(&r.text));
    }
    out.push_str("</section>\n");
}

/// Shown above the checks while updates are held (`boot.hold`).
pub(super) fn hold_banner(out: &mut String, v: &View) {
    let Some(h) = v.boot.and_then(|b| b.hold.as_ref()) else { return };
    let _ = writeln!(
        out,
        "<section class=\"alert bad\" aria-labelledby=hold-h>\n<h2 id=hold-h>Updates held</h2>\n<p>{}</p>\n</section>",
        Esc(&h.text)
    );
}

/// An RFC 3339 time as `2026-12-01 10:02:10 UTC`; text that is no such time as it is.
pub(super) fn readable_time(text: &str) -> String {
    match crate::util::time::parse_timestamp(text) {
        Some(t) => crate::util::time::readable_time(t),
        None => Esc(text).to_string(),
    }
}

/// What bootgate did after a boot's gate, for a person; `None` after a passed gate.
pub(super) fn decision_text(d: Decision) -> &'static str {
    match d {
        Decision::Reboot => "rebooted into the other slot",
        Decision::StayConfirmed => "stayed: the slot was already confirmed",
        Decision::StayNoFallback => "stayed: no other slot could boot",
        Decision::NotAb => "stayed: not an A/B system",
        Decision::Reverted => "reverted to the other slot",
        Decision::StayPolicy => "stayed: the policy says on_failure: stay",
        Decision::StayBackendError => "stayed: the boot loader's state could not be read or changed",
        Decision::Other => "a decision this version of bootgate does not know",
    }
}

/// The label of the slot with `uuid`, as some boot in the history recorded it.
fn label_of<'a>(history: &'a [PastBoot], uuid: &str) -> Option<&'a str> {
    history
        .iter()
        .filter_map(|b| b.partition.as_ref())
        .find(|p| p.uuid.eq_ignore_ascii_case(uuid))
        .map(|p| p.label.as_str())
}

/// The newest boots, with the boots that left a slot and the boots that fell back marked.
pub(super) fn history(out: &mut String, v: &View) {
    out.push_str("<section aria-labelledby=boots-h>\n<h2 id=boots-h>Last boots</h2>\n");
    if v.history.is_empty() {
        out.push_str("<p>No boot recorded yet: a boot is recorded once its gate decides.</p>\n</section>\n");
        return;
    }
    let shown = v.history.len().min(SHOWN_BOOTS);
    let _ = write!(out, "<table id=boots>\n<caption>The {shown} newest of {} recorded, newest first", v.history.len());
    out.push_str(" (<a href=\"/api/v1/system/boots\">all as JSON</a>)</caption>\n");
    out.push_str("<thead><tr><th scope=col>Time<th scope=col>Slot<th scope=col>OS version<th scope=col>Gate");
    out.push_str("<th scope=col>Status<th scope=col>What happened<th scope=col>Failing</thead>\n<tbody>\n");
    for b in v.history.iter().rev().take(SHOWN_BOOTS) {
        let left = matches!(b.decision, Some(Decision::Reboot | Decision::Reverted));
        let failed = b.gate.as_deref() == Some("failed") || b.decision.is_some();
        let class = if left || failed {
            "bad"
        } else if b.fallback.is_some() {
            "warn"
        } else {
            "ok"
        };
        let _ =
            write!(out, "<tr class={class}><td>{}", b.timestamp.as_deref().map_or_else(|| "–".into(), readable_time));
        if v.boot_id.is_some() && b.boot_id.as_deref() == v.boot_id {
            out.push_str(" (this boot)");
        }
        let slot = b.partition.as_ref().map_or("–", |p| p.label.as_str());
        let _ = write!(out, "<td>{}<td>{}", Esc(slot), Esc(b.version.as_deref().unwrap_or("–")));
        let _ = write!(out, "<td class=st>gate {}", Esc(b.gate.as_deref().unwrap_or("unknown")));
        let _ = write!(out, "<td>{}<td>", Esc(b.status.as_deref().unwrap_or("–")));
        let mut said = false;
        if let Some(f) = &b.fallback {
            let from = label_of(v.history, &f.from_uuid).unwrap_or(&f.from_uuid);
            let _ = write!(
                out,
                "<strong>fell back</strong> from {} ({})",
                Esc(from),
                f.reason.known().map_or("was left", reason_text)
            );
            if let Some(blame) = f.blame.known() {
                let _ = write!(out, ", blame {}", blame.as_str());
            }
            said = true;
        }
        if let Some(d) = b.decision {
            let text = decision_text(d);
            if said {
                out.push_str("; ");
            }
            if left {
                let _ = write!(out, "<strong>{text}</strong>");
            } else {
                out.push_str(text);
            }
            said = true;
        }
        if !said {
            let passed = b.gate.as_deref() == Some("passed");
            out.push_str(match (passed, &b.partition) {
                (true, Some(_)) => "kept the slot",
                (true, None) => "accepted",
                _ => "–",
            });
        }
        out.push_str("<td class=msg>");
        if b.failing.is_empty() {
            out.push('–');
        }
        // This boot's messages are in the checks table; said once is enough.
        let this_boot = v.boot_id.is_some() && b.boot_id.as_deref() == v.boot_id;
        for (i, f) in b.failing.iter().enumerate().take(BOOT_FAILING) {
            let _ = write!(out, "{}<strong>{}</strong>", if i > 0 { "\n" } else { "" }, Esc(&f.name));
            if !f.message.is_empty() && !this_boot {
                out.push_str(": ");
                escape_within(out, &f.message, FAILING_BUDGET);
            }
        }
        if b.failing.len() > BOOT_FAILING {
            let _ = write!(out, "\nand {} more", b.failing.len() - BOOT_FAILING);
        }
        out.push('\n');
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::readable_time;

    #[test]
    fn history_times_read_as_utc_and_anything_else_stays_escaped() {
        assert_eq!(readable_time("2026-12-01T10:02:10Z"), "2026-12-01 10:02:10 UTC");
        assert_eq!(readable_time("2026-12-01T11:40:52.467Z"), "2026-12-01 11:40:52 UTC");
        assert_eq!(readable_time("yesterday <b>"), "yesterday &lt;b&gt;");
        assert_eq!(readable_time("2026-12-01T10:02:10+02:00"), "2026-12-01T10:02:10+02:00");
    }
}
