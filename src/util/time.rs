//! Durations and times as bootgate writes them, each in one place: in documents (JSON
//! milliseconds, RFC 3339 timestamps), in messages (as a policy spells a duration:
//! `10s`, `1m 30s`) and for people reading a table or the page (`850 µs`, `2.3 s`,
//! `3 min 5 s`, `2026-12-01 10:02:10 UTC`).

use std::time::{Duration, SystemTime};

/// A duration in a document: milliseconds as a number, to the microsecond.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// A duration in a log field read by people: milliseconds to two decimals, since
/// `0.6985480000000001` helps nobody.
pub fn log_millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

/// A duration in a message, as a policy writes one: `250ms`, `10s`, `1m 30s`.
pub fn spelled(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

/// [`spelled`], whole seconds rounded up: what is left of a wait, for STATUS.
pub fn spelled_secs_up(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_secs(d.as_secs_f64().ceil() as u64))
}

/// A duration for people: `850 µs`, `1.5 ms`, `120 ms`, `2.3 s`, `3 min 5 s`.
pub fn readable(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{} µs", d.as_micros())
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        readable_secs(d.as_secs())
    }
}

/// Whole seconds for people, as the two largest units: `42 s`, `3 min 5 s`, `2 h 10 min`, `4 d 3 h`.
pub fn readable_secs(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let (big, small) = match (d, h, m) {
        (0, 0, 0) => return format!("{s} s"),
        (0, 0, _) => ((m, "min"), (s, "s")),
        (0, _, _) => ((h, "h"), (m, "min")),
        _ => ((d, "d"), (h, "h")),
    };
    // `1 min`, not `1 min 0 s`.
    match small {
        (0, _) => format!("{} {}", big.0, big.1),
        (n, unit) => format!("{} {} {n} {unit}", big.0, big.1),
    }
}

/// How long before `now` `then` was: `3 s ago`; a time ahead of the clock is `just now`.
pub fn ago(now: SystemTime, then: SystemTime) -> String {
    match now.duration_since(then) {
        Ok(d) if d.as_secs() > 0 => format!("{} ago", readable_secs(d.as_secs())),
        _ => "just now".into(),
    }
}

/// Time since this boot began, suspend included (`CLOCK_BOOTTIME`): a clock no one can
/// set, so a deadline kept against it survives a step of the wall clock.
pub fn since_boot() -> Option<Duration> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    Some(Duration::new(t.tv_sec().try_into().ok()?, t.tv_nsec().try_into().ok()?))
}

/// A time in a document bootgate writes and reads back: RFC 3339 UTC with milliseconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A time in an answer of the endpoint: RFC 3339 UTC to the second.
pub fn timestamp_seconds(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A time read back from a document: any RFC 3339 UTC time [`timestamp`] writes.
pub fn parse_timestamp(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(text).ok()
}

/// A time for people: `2026-12-01 10:02:10 UTC`.
pub fn readable_time(t: SystemTime) -> String {
    let whole = timestamp_seconds(t);
    format!("{} UTC", whole.trim_end_matches('Z').replacen('T', " ", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ages_read_like_a_person_writes_them() {
        let ms = Duration::from_millis;
        assert_eq!(readable(Duration::from_micros(850)), "850 µs");
        assert_eq!(readable(Duration::from_micros(1500)), "1.5 ms");
        assert_eq!(readable(ms(120)), "120 ms");
        assert_eq!(readable(ms(2300)), "2.3 s");
        assert_eq!(readable(ms(185_000)), "3 min 5 s");
        assert_eq!(readable_secs(7800), "2 h 10 min");
        assert_eq!(
            (readable_secs(60), readable_secs(7200), readable_secs(86_400)),
            ("1 min".into(), "2 h".into(), "1 d".into())
        );
        assert_eq!(readable_secs(356_400), "4 d 3 h");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(ago(t, t - Duration::from_secs(3)), "3 s ago");
        assert_eq!(ago(t, t + Duration::from_secs(3)), "just now");
        assert_eq!(ago(t, t), "just now");
    }

    #[test]
    fn documents_messages_and_people_each_get_their_form() {
        let d = Duration::from_micros(1_234_567);
        assert_eq!(millis(d), 1234.567);
        assert_eq!(log_millis(d), 1234.57);
        assert_eq!(spelled(Duration::from_secs(90)).to_string(), "1m 30s");
        assert_eq!(spelled_secs_up(Duration::from_millis(39_500)).to_string(), "40s");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_583_330_250);
        assert_eq!(timestamp(t), "2025-12-01T10:02:10.250Z");
        assert_eq!(timestamp_seconds(t), "2025-12-01T10:02:10Z");
        assert_eq!(readable_time(t), "2025-12-01 10:02:10 UTC");
        assert_eq!(parse_timestamp(&timestamp(t)), Some(t));
    }
}
