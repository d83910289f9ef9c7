//! Where logs go. Under systemd with the journal (stderr is the `JOURNAL_STREAM`),
//! events go natively to journald: each with its priority (`journalctl -p warning`
//! finds failing checks) and its fields as journal fields (`CHECK=`, `RESULT=`,
//! `MESSAGE_ID=` for the gate verdict). Without a journal socket, stderr lines carry
//! systemd's `<N>` priority prefixes. On a terminal, coloured text unless `NO_COLOR` is
//! set (<https://no-color.org>); in a file, plain.

use std::io::IsTerminal as _;
use std::os::unix::fs::MetadataExt as _;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Registry};

/// `MESSAGE_ID` of the gate verdict (passed or failed), for `journalctl MESSAGE_ID=…`;
/// explained in `systemd/bootgate.catalog`, as is every MESSAGE_ID here.
pub const GATE_VERDICT_ID: &str = "564a382b6dcb4b5297e17e79625a218e";

/// `MESSAGE_ID` of the entry saying this boot fell back from another slot.
pub const BOOT_FALLBACK_ID: &str = "027374b19a1d44448f5c4997224d6b41";

/// Whether output to a terminal may carry escape codes: `NO_COLOR` (present and not
/// empty, as <https://no-color.org> says) removes every one, colours and cursor moves alike.
pub fn escapes_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Sets up logging; `verbose` is info (daemons), else warnings only. `BOOTGATE_LOG` overrides.
pub fn init(verbose: bool) {
    let default = if verbose { "info" } else { "warn" };
    let filter = || EnvFilter::try_from_env("BOOTGATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    if stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(journald) => {
                let mappings = tracing_journald::PriorityMappings {
                    info: tracing_journald::Priority::Informational,
                    debug: tracing_journald::Priority::Debug,
                    ..tracing_journald::PriorityMappings::new()
                };
                let journald = journald
                    .with_field_prefix(None)
                    .with_syslog_identifier("bootgate".into())
                    .with_priority_mappings(mappings);
                Registry::default().with(filter()).with(journald).init();
            }
            Err(_) => {
                // The stream is the journal but its socket is not there: systemd's level prefixes.
                let fmt = tracing_subscriber::fmt::layer()
                    .with_writer(|| OneLine { out: std::io::stderr(), escapes: false })
                    .with_ansi(false)
                    .event_format(Prefixed(Format::default().without_time().with_target(false)));
                Registry::default().with(filter()).with(fmt).init();
            }
        }
        return;
    }
    let colour = std::io::stderr().is_terminal() && escapes_allowed();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(move || OneLine { out: std::io::stderr(), escapes: colour })
        .with_ansi(colour)
        .with_target(false);
    Registry::default().with(filter()).with(fmt).init();
}

/// Whether stderr is the journal stream systemd connected (`JOURNAL_STREAM=dev:inode`).
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else { return false };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else { return false };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Keeps each event on one line: a check's output or a value from outside holding a
/// newline would otherwise start a line of its own, which the journal's stream reads as
/// another record (with a `<N>` priority of the writer's choosing). The formatter writes
/// each event whole in one call; control characters within it are escaped, and its final
/// newline kept; its own colours (ESC) are kept only where colours are on (escape
/// sequences inside values are already sanitized by the formatter).
struct OneLine<W> {
    out: W,
    escapes: bool,
}

impl<W: std::io::Write> std::io::Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write_all(one_line(&String::from_utf8_lossy(buf), self.escapes).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// `event` (a formatted log line) with every control character escaped but its final
/// newline and, when `escapes`, ESC.
fn one_line(event: &str, escapes: bool) -> String {
    let (body, end) = match event.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (event, ""),
    };
    let mut out = String::with_capacity(event.len());
    for c in body.chars() {
        if c.is_control() && !(escapes && c == '\x1b') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push_str(end);
    out
}

/// The syslog priority systemd reads from a `<N>` line prefix.
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Prefixes each line with `<N>` for systemd's `SyslogLevelPrefix=`.
struct Prefixed(Format<tracing_subscriber::fmt::format::Full, ()>);

impl<S, N> FormatEvent<S, N> for Prefixed
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newline_in_an_event_cannot_start_a_record_of_its_own() {
        let forged = "<6>api: fail in 1.0 ms (attempt 1): exit 1: x\n<2>bootgate: gate passed\r\n";
        let line = one_line(forged, true);
        assert_eq!(line, "<6>api: fail in 1.0 ms (attempt 1): exit 1: x\\n<2>bootgate: gate passed\\r\n");
        assert_eq!(line.matches('\n').count(), 1, "one record");
        assert_eq!(one_line("\x1b[32mINFO\x1b[0m ok\n", true), "\x1b[32mINFO\x1b[0m ok\n", "colours stay");
        assert_eq!(one_line("\x1b[32mINFO\x1b[0m ok\n", false), "\\u{1b}[32mINFO\\u{1b}[0m ok\n", "or not");
    }

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!([Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG].map(|l| priority(&l)), [3, 4, 6, 7]);
    }
}
