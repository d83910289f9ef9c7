//! The page's HTML: head, verdict, checks and the list of routes; the boot parts are in
//! `boot`. Optional end tags (`</td>`, `</tr>`) are left out, as HTML allows, so a
//! thousand checks stay well under 100 KB.

use std::fmt::Write as _;

use super::View;
use super::escape::{Esc, escape_within, path_segment};
use crate::checks::Status;
use crate::engine::{CheckResult, ComponentHealth, Failing, GateState};
use crate::server::routes::{Method, ROUTES};
use crate::util::time::{ago, readable, readable_secs, readable_time, timestamp_seconds};

const STYLE: &str = include_str!("style.css");

/// The page stays under 100 KB: check messages are cut to share what room is left.
const PAGE_TARGET: usize = 96 * 1024;
/// The most of one message the page shows; the health document has it whole.
const MESSAGE_MAX: usize = 600;
/// A row's bytes besides its name and message (tags, status, role, duration, last run).
const ROW_FIXED: usize = 72;
/// The most of an exec check's command the page shows.
const COMMAND_MAX: usize = 160;
/// Causes in a message from which it is folded, the innermost first.
const CHAIN: usize = 3;
/// The bytes of the fold's tags.
const DETAILS: usize = 60;
/// Check names link to their JSON up to this many checks; beyond, the links cost more than they help.
const LINKED_CHECKS: usize = 100;
/// Names listed in the verdict line before `and N more`.
const NAMED_IN_VERDICT: usize = 5;

/// The whole page.
pub(super) fn render(v: &View) -> String {
    let headline = super::headline::of(v);
    let mut head = String::with_capacity(8192);
    head.push_str("<!doctype html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n");
    head.push_str("<meta name=viewport content=\"width=device-width, initial-scale=1\">\n");
    if let Some(secs) = v.refresh {
        let _ = writeln!(head, "<meta http-equiv=refresh content={secs}>");
    }
    let host = v.device.hostname.as_deref().unwrap_or("this device");
    let os = os_name(v);
    let os_part = if os.is_empty() { String::new() } else { format!(" · {}", Esc(&os)) };
    let _ = writeln!(head, "<title>{}{os_part} · {} · bootgate</title>", Esc(host), headline.word);
    let _ = writeln!(head, "<style>\n{STYLE}</style>\n</head>\n<body>\n<header>");
    let _ = write!(head, "<h1 id=device>{}", Esc(host));
    if !os.is_empty() {
        let _ = write!(head, " <span class=os>{}</span>", Esc(&os));
    }
    if let Some(id) = v.device.short_machine_id() {
        let _ = write!(head, " <span class=id title=\"machine id\">machine <code>{}</code></span>", Esc(id));
    }
    head.push_str("</h1>\n");
    verdict_line(&mut head, v, &headline);
    meta_line(&mut head, v);
    head.push_str("</header>\n<main>\n");
    super::boot::fallback_banner(&mut head, v);
    super::boot::hold_banner(&mut head, v);
    let mut tail = String::with_capacity(8192);
    super::slots::section(&mut tail, v);
    super::boot::history(&mut tail, v);
    routes(&mut tail);
    tail.push_str("</main>\n</body>\n</html>\n");
    // The checks' messages share the room the rest of the page leaves.
    let room = PAGE_TARGET.saturating_sub(head.len() + tail.len());
    let mut out = head;
    out.reserve(room + tail.len());
    checks(&mut out, v, room);
    out.push_str(&tail);
    out
}

fn component_class(h: ComponentHealth) -> Option<&'static str> {
    match h {
        ComponentHealth::Healthy => None,
        ComponentHealth::Degraded => Some("warn"),
        ComponentHealth::Unhealthy => Some("bad"),
        ComponentHealth::Pending => Some("wait"),
    }
}

/// The OS's pretty name, with the image version when the name does not already say it.
fn os_name(v: &View) -> String {
    let os = &v.device.os;
    let name = os.pretty_name.as_deref().or(os.id.as_deref()).unwrap_or_default();
    match os.os_version() {
        Some(version) if !name.contains(version) => format!("{name} {version}").trim().to_string(),
        _ => name.to_string(),
    }
}

/// The headline, then what it does not say: a gate failure the checks no longer show,
/// a failed mark, the rollback window.
fn verdict_line(out: &mut String, v: &View, h: &super::headline::Headline) {
    let s = v.snapshot;
    let _ = write!(out, "<p class=\"verdict {}\" id=verdict><strong>{}</strong>", h.class, h.word);
    for clause in &h.clauses {
        let _ = write!(out, " · {clause}");
    }
    out.push_str("</p>\n");
    // A message that failed the gate is in the checks table, unless the check says something else since.
    let changed: Vec<&Failing> = s
        .gate_failing
        .iter()
        .filter(|f| !s.checks.iter().any(|c| c.name == f.name && c.message == f.message))
        .collect();
    if s.gate == GateState::Failed && !changed.is_empty() {
        out.push_str("<p class=note>At the gate: ");
        for (i, Failing { name, message }) in changed.iter().enumerate().take(NAMED_IN_VERDICT) {
            let _ = write!(out, "{}<strong>{}</strong>: ", if i > 0 { "; " } else { "" }, Esc(name));
            escape_within(out, message, 300);
        }
        if changed.len() > NAMED_IN_VERDICT {
            let _ = write!(out, "; and {} more", changed.len() - NAMED_IN_VERDICT);
        }
        out.push_str("</p>\n");
    }
    if let Some(mark) = v.boot.and_then(|b| b.mark.as_ref()).filter(|m| !m.done) {
        out.push_str("<p class=\"note bad\">Marking this boot good failed: ");
        escape_within(out, &mark.note, 400);
        out.push_str(". The boot loader still counts this boot as unconfirmed.</p>\n");
    }
    if let Some(line) = super::rollback_line(s, v.now) {
        let _ = writeln!(out, "<p class=note>{}</p>", Esc(&line));
    }
}

/// Version, boot id, uptime, when the page was made and how it refreshes.
fn meta_line(out: &mut String, v: &View) {
    let _ = write!(out, "<p class=meta>bootgate {}", env!("CARGO_PKG_VERSION"));
    if let Some(up) = v.uptime_seconds {
        let _ = write!(out, " · machine up {}", readable_secs(up));
    }
    let now = timestamp_seconds(v.now);
    let _ = write!(out, " · as of <time datetime={now}>{}</time>", readable_time(v.now));
    match v.refresh {
        Some(secs) => {
            let _ = write!(out, " · reloads every {secs} s (<a href=\"/status?refresh=0\">stop reloading</a>)");
        }
        None => out.push_str(" · not reloading (<a href=\"/status\">reload automatically</a>)"),
    }
    out.push_str("</p>\n");
}

/// One row a check: name, status word, critical or optional, message, duration, last run.
/// `room` is what the table may take of the page.
fn checks(out: &mut String, v: &View, room: usize) {
    let list = &v.snapshot.checks;
    let count = |h: ComponentHealth| list.iter().filter(|c| c.health() == h).count();
    out.push_str("<section aria-labelledby=checks-h>\n<h2 id=checks-h>Checks</h2>\n<table id=checks>\n<caption>");
    let _ = write!(out, "{} check{}", list.len(), if list.len() == 1 { "" } else { "s" });
    let mut sep = ": ";
    for h in [ComponentHealth::Healthy, ComponentHealth::Degraded, ComponentHealth::Unhealthy, ComponentHealth::Pending]
    {
        let n = count(h);
        if n > 0 {
            let _ = write!(out, "{sep}{n} {}", h.as_str());
            sep = ", ";
        }
    }
    out.push_str("</caption>\n<thead><tr><th scope=col>Check<th scope=col>Status<th scope=col>Role");
    out.push_str("<th scope=col>Message<th scope=col>Duration<th scope=col>Last run</thead>\n<tbody>\n");
    let linked = list.len() <= LINKED_CHECKS;
    // A linked name is written twice, once percent-encoded (up to three times as long).
    let row = |c: &CheckResult| {
        let command = command(c).map_or(0, |cmd| COMMAND_MAX.min(cmd.len()) + 40);
        ROW_FIXED + command + if linked { 4 * c.name.len() + 40 } else { c.name.len() }
    };
    let rows_room = room.saturating_sub(1024);
    // Every check a row, when every row fits (messages then share what is left). Else (a
    // thousand long names) the passing checks are named in one line below the table, and
    // rows past the room are counted: the health document has every check whole.
    let (rows, passing): (Vec<&CheckResult>, Vec<&CheckResult>) = if list.iter().map(row).sum::<usize>() <= rows_room {
        (list.iter().collect(), Vec::new())
    } else {
        list.iter().partition(|c| c.health() != ComponentHealth::Healthy)
    };
    let passing_line = passing_line(&passing, rows_room / 3);
    let rows_room = rows_room.saturating_sub(passing_line.len());
    let fixed: usize = rows.iter().map(|c| row(c)).sum();
    let budget = (rows_room.saturating_sub(fixed) / rows.len().max(1)).min(MESSAGE_MAX);
    let (start, mut cut, mut shown) = (out.len(), false, 0);
    let mut line = String::new();
    for c in &rows {
        line.clear();
        match component_class(c.health()) {
            Some(class) => {
                let _ = write!(line, "<tr class={class}>");
            }
            None => line.push_str("<tr>"),
        }
        if linked {
            let _ =
                write!(line, "<th><a href=\"/api/v1/system/health/{}\">{}</a>", path_segment(&c.name), Esc(&c.name));
        } else {
            let _ = write!(line, "<th>{}", Esc(&c.name));
        }
        let role = match (c.critical, c.blame) {
            (false, _) => "optional".to_string(),
            (true, _) if c.accepted => "critical · preexisting, accepted".to_string(),
            (true, Some(blame)) => format!("critical · {}", blame.as_str()),
            (true, None) => "critical".to_string(),
        };
        let _ = write!(line, "<td>{}<td>{role}<td>", c.health().as_str());
        let this_cut = message(&mut line, c, budget);
        let last = c.last_check.map_or_else(|| "not yet".into(), |t| ago(v.now, t));
        // A pending check has no duration yet, whatever an earlier attempt took.
        let ran = c.status != Status::Pending && (c.last_check.is_some() || c.attempts > 0);
        let took = if ran { readable(c.duration) } else { "–".into() };
        let _ = writeln!(line, "<td>{took}<td>{last}");
        if out.len() - start + line.len() > rows_room {
            break;
        }
        out.push_str(&line);
        cut |= this_cut;
        shown += 1;
    }
    out.push_str("</tbody>\n</table>\n");
    if shown < rows.len() {
        let _ = writeln!(
            out,
            "<p class=meta>And {} more checks that do not pass: the health document lists every check.</p>",
            rows.len() - shown
        );
    }
    out.push_str(&passing_line);
    if cut {
        out.push_str("<p class=meta>Long messages are cut (…); the health document has them whole.</p>\n");
    }
    out.push_str("</section>\n");
}

/// The command an `exec` check ran, as it reported it.
fn command(c: &CheckResult) -> Option<&str> {
    c.observed.get("command").and_then(serde_json::Value::as_str)
}

/// A check's message, readable: an exec check's command first, then for a chain of
/// causes (`a: b: c`) the innermost cause, with the whole chain folded below it.
/// Returns whether the message was cut to `budget`.
fn message(out: &mut String, c: &CheckResult, budget: usize) -> bool {
    if let Some(cmd) = command(c) {
        out.push_str("<code class=cmd>$ ");
        escape_within(out, cmd, COMMAND_MAX);
        out.push_str("</code>");
    }
    let causes: Vec<&str> = c.message.split(": ").collect();
    match causes.as_slice() {
        [.., innermost] if causes.len() >= CHAIN => {
            let cut = escape_within(out, innermost, budget / 3);
            out.push_str("<details><summary>whole message</summary>");
            let whole_cut = escape_within(out, &c.message, budget.saturating_sub(budget / 3 + DETAILS));
            out.push_str("</details>");
            cut || whole_cut
        }
        _ => escape_within(out, &c.message, budget),
    }
}

/// The passing checks that have no row, named in one line of at most about `room` bytes.
fn passing_line(passing: &[&CheckResult], room: usize) -> String {
    if passing.is_empty() {
        return String::new();
    }
    let mut out = format!("<p class=meta>{} more checks pass: ", passing.len());
    for (i, c) in passing.iter().enumerate() {
        if out.len() + c.name.len() + 2 > room {
            let _ = write!(out, " and {} more", passing.len() - i);
            break;
        }
        let _ = write!(out, "{}{}", if i > 0 { ", " } else { "" }, Esc(&c.name));
    }
    out.push_str(".</p>\n");
    out
}

/// The routes, as links where a route has no parameter.
fn routes(out: &mut String) {
    out.push_str("<section aria-labelledby=routes-h>\n<h2 id=routes-h>Endpoints</h2>\n<ul class=links>\n");
    for r in ROUTES {
        let (method, path, what) = (r.method.as_str(), r.path, r.about);
        if r.method != Method::Get || path.contains('{') {
            let _ = writeln!(out, "<li><code>{method} {}</code>: {}", Esc(path), Esc(what));
        } else {
            // The probes' verbose form is the one a person wants to read.
            let query = if matches!(path, "/livez" | "/readyz") { "?verbose" } else { "" };
            let _ =
                writeln!(out, "<li><a href=\"{0}{query}\"><code>{method} {0}</code></a>: {1}", Esc(path), Esc(what));
        }
    }
    out.push_str("</ul>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::boot::identity::Device;
    use crate::engine::{GateState, Snapshot};

    fn view(checks: Vec<CheckResult>) -> String {
        let mut s = Snapshot::new(&[]);
        s.gate = GateState::Passed;
        s.checks = checks;
        let v = View {
            snapshot: &s,
            boot: None,
            history: &[],
            boot_id: None,
            device: &Device::default(),
            now: SystemTime::now(),
            uptime_seconds: Some(10),
            refresh: Some(15),
        };
        render(&v)
    }

    fn long(i: usize, status: Status) -> CheckResult {
        CheckResult::finished(&format!("{i:04}-{}", "n".repeat(58)), true, status).with_message("m".repeat(500))
    }

    #[test]
    fn a_thousand_checks_of_long_names_stay_under_100_kb() {
        for mix in [[Status::Pass, Status::Pass, Status::Pass, Status::Fail], [Status::Fail; 4]] {
            let page = view((0..1000).map(|i| long(i, mix[i % 4])).collect());
            assert!(page.len() < 100 * 1024, "{} bytes", page.len());
            assert!(page.contains("<th>0003-nnn"), "the first failing check has its row");
            let counted = page.contains("more checks that do not pass") || page.contains("more checks pass: ");
            assert!(counted, "the checks without a row are named or counted");
        }
    }
}
