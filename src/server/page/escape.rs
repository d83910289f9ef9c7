//! Escaping for the status page. Every piece of text that comes from a check, the
//! history or the boot facts goes through here: a check's output is untrusted.

use std::fmt::{self, Write as _};

/// What HTML content or a quoted attribute value cannot hold as it is.
const SPECIAL: [char; 5] = ['&', '<', '>', '"', '\''];

/// Text escaped for HTML content and quoted attribute values alike.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(SPECIAL) {
            f.write_str(&rest[..at])?;
            f.write_str(entity(rest.as_bytes()[at]))?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

fn entity(b: u8) -> &'static str {
    match b {
        b'&' => "&amp;",
        b'<' => "&lt;",
        b'>' => "&gt;",
        b'"' => "&quot;",
        _ => "&#39;",
    }
}

/// Writes `text` escaped into `out`, cut so the escaped part stays within `max` bytes;
/// a cut text ends in `…`. Returns whether it was cut.
pub fn escape_within(out: &mut String, text: &str, max: usize) -> bool {
    let mut used = 0;
    for (i, c) in text.char_indices() {
        let width = if SPECIAL.contains(&c) { entity(c as u8).len() } else { c.len_utf8() };
        if used + width > max {
            let _ = write!(out, "{}…", Esc(&text[..i]));
            return true;
        }
        used += width;
    }
    let _ = write!(out, "{}", Esc(text));
    false
}

/// `text` as one percent-encoded path segment: only unreserved characters stay, so the
/// result is safe in a URL path and in a quoted attribute.
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_become_entities() {
        let hostile = r#"<script>alert("x")</script> & 'y'"#;
        assert_eq!(Esc(hostile).to_string(), "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;");
        assert_eq!(Esc("plain ✓ text").to_string(), "plain ✓ text");
        assert_eq!(Esc("").to_string(), "");
    }

    #[test]
    fn a_cut_stays_within_its_budget_and_never_splits_an_entity_or_a_char() {
        let mut out = String::new();
        assert!(!escape_within(&mut out, "short", 5));
        assert_eq!(out, "short");
        for max in 0..40 {
            let mut out = String::new();
            let cut = escape_within(&mut out, "a<b>ç\"dé&e", max);
            let body = out.strip_suffix('…').unwrap_or(&out);
            assert_eq!(cut, out.ends_with('…'), "{max}: {out}");
            assert!(body.len() <= max, "{max}: {out}");
            assert!(!body.contains('<') && !body.contains('"'), "{max}: {out}");
            // Whatever was kept is a prefix of the whole escaping.
            assert!(Esc("a<b>ç\"dé&e").to_string().starts_with(body), "{max}: {out}");
        }
    }

    #[test]
    fn path_segments_keep_only_unreserved_characters() {
        assert_eq!(path_segment("api-1_x.y~"), "api-1_x.y~");
        assert_eq!(path_segment("a\"b c/d<é"), "a%22b%20c%2Fd%3C%C3%A9");
    }
}
