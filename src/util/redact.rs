//! How user input is shown in messages, logs and documents: URL secrets masked,
//! control characters escaped, huge values shortened. Every message that quotes
//! a value from the policy goes through [`quote`].

/// What a masked secret is shown as.
pub const MASK: &str = "***";

/// Longest part of a long value quoted in a message, in characters.
const QUOTE_MAX: usize = 80;
/// A value up to this long is quoted whole. The slack makes [`quote`] idempotent:
/// an already shortened value (80 characters and its size) is not cut again.
const QUOTE_WHOLE: usize = 100;

/// Query and fragment parameters whose values are masked, compared case-insensitively
/// with `-` read as `_`. A name ending in `_token`, `_secret`, `_password` or `_key`
/// (such as `session_token` or `x_api_key`) is masked as well.
pub const SECRET_PARAMS: &[&str] = &[
    "token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "key",
    "api_key",
    "apikey",
    "access_token",
    "auth",
    "authorization",
    "signature",
    "sig",
    "credential",
    "x_amz_credential",
    "x_amz_signature",
    "x_goog_credential",
    "x_goog_signature",
];

const SECRET_SUFFIXES: &[&str] = &["_token", "_secret", "_password", "_key", "_signature", "_credential"];

fn secret_param(name: &str) -> bool {
    // A name written percent-encoded (`%74oken`) is the same name to the server.
    let name = percent_decoded(name).to_ascii_lowercase().replace('-', "_");
    SECRET_PARAMS.contains(&name.as_str()) || SECRET_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// `text` with its `%XX` escapes decoded (invalid ones left as they are).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A URL as it may be shown: the password of its userinfo (or, without a password, the
/// whole userinfo: a token is often given as the user name) and the values of secret
/// parameters replaced by [`MASK`]. Works on text that is not a valid URL too, since
/// a rejected URL is quoted in the rejection.
pub fn url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let after = scheme_end + 3;
    let rest = &text[after..];
    // The authority ends at `/`, `?` or `#`, but a password may hold an unencoded `/`:
    // so the userinfo runs to the last `@` before any `?` or `#`, erring towards masking.
    let tail_start = rest.find(['?', '#']).unwrap_or(rest.len());
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..after]);
    let mut hier = &rest[..tail_start];
    if let Some(at) = hier.rfind('@') {
        let userinfo = &hier[..at];
        match userinfo.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(MASK);
                hier = &hier[at..];
            }
            // A user name alone never holds a `/`: past one, the `@` is in the path.
            None if !userinfo.contains('/') => {
                out.push_str(MASK);
                hier = &hier[at..];
            }
            None => {}
        }
    }
    out.push_str(hier);
    let mut tail = &rest[tail_start..];
    while let Some(sep) = tail.chars().next() {
        // The query runs to `#`; the fragment to the end.
        let body_end = if sep == '?' { tail[1..].find('#').map_or(tail.len(), |i| i + 1) } else { tail.len() };
        out.push(sep);
        out.push_str(&params(&tail[1..body_end]));
        tail = &tail[body_end..];
    }
    out
}

fn params(body: &str) -> String {
    let masked: Vec<String> = body
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if secret_param(name) && !value.is_empty() => format!("{name}={MASK}"),
            _ => pair.to_string(),
        })
        .collect();
    masked.join("&")
}

/// A value from the policy, ready to sit between backticks in a message: URL
/// secrets masked, control characters escaped (so it cannot forge a log line),
/// and cut to 80 characters plus its full size when over 100.
pub fn quote(value: &str) -> String {
    let shown = if value.contains("://") { url(value) } else { value.to_string() };
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    // Counted after escaping, so what is printed is what is bounded.
    if out.chars().count() > QUOTE_WHOLE {
        let cut = out.char_indices().nth(QUOTE_MAX).map_or(out.len(), |(i, _)| i);
        out.truncate(cut);
        out.push_str(&format!("…({} bytes)", value.len()));
    }
    out
}

/// A parser's message with each value it quotes (`string "…"` or between backticks)
/// passed through [`quote`], so a rejected secret or huge value is not echoed whole.
pub fn message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let string = rest.find("string \"").map(|i| (i + "string \"".len(), '"'));
        let tick = rest.find('`').map(|i| (i + 1, '`'));
        let Some((start, close)) = [string, tick].into_iter().flatten().min() else {
            out.push_str(rest);
            return out;
        };
        // The parser escapes `"` inside a string value; a backtick span has no escapes.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in rest[start..].char_indices() {
            match c {
                '\\' if close == '"' && !escaped => escaped = true,
                c if c == close && !escaped => {
                    end = Some(start + i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else {
            out.push_str(&rest[..start]);
            out.push_str(&quote(&rest[start..]));
            return out;
        };
        out.push_str(&rest[..start]);
        out.push_str(&quote(&rest[start..end]));
        out.push(close);
        rest = &rest[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets() {
        let cases = [
            ("http://127.0.0.1:8080/healthz", "http://127.0.0.1:8080/healthz"),
            ("http://user@host/", "http://***@host/"),
            ("https://ghp_0123456789abcdef@github.example/x", "https://***@github.example/x"),
            (
                "https://s.example/o?X-Goog-Algorithm=GOOG4&X-Goog-Credential=c%2F1&X-Goog-Signature=ab12",
                "https://s.example/o?X-Goog-Algorithm=GOOG4&X-Goog-Credential=***&X-Goog-Signature=***",
            ),
            ("http://h/?%74oken=t0k&%61pi%5Fkey=k&a=%74oken", "http://h/?%74oken=***&%61pi%5Fkey=***&a=%74oken"),
            ("http://user:pw@host/", "http://user:***@host/"),
            ("https://u:p%40ss@host:1/x", "https://u:***@host:1/x"),
            ("http://u:p@ss@host/", "http://u:***@host/"),
            ("http://u:p/ss@host/", "http://u:***@host/"),
            ("http://u:pw@[::1]:8080/a", "http://u:***@[::1]:8080/a"),
            (
                "http://[::1]:80/?a=1&Token=t0k&API-Key=k&apikey=&b=2",
                "http://[::1]:80/?a=1&Token=***&API-Key=***&apikey=&b=2",
            ),
            (
                "http://h/p?session_token=s&sig=x#access_token=f&x=1",
                "http://h/p?session_token=***&sig=***#access_token=***&x=1",
            ),
            ("http://h/p?keyboard=1&monkey=2", "http://h/p?keyboard=1&monkey=2"),
            ("http://h/users/@me?q=1", "http://h/users/@me?q=1"),
            ("http://u:pw@h:99999/?password=a", "http://u:***@h:99999/?password=***"),
            ("not a url", "not a url"),
        ];
        for (raw, want) in cases {
            assert_eq!(url(raw), want, "{raw}");
        }
    }

    #[test]
    fn quotes_are_short_and_single_line() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        let huge = "x".repeat(5000);
        let q = quote(&huge);
        assert!(q.starts_with(&"x".repeat(80)) && q.ends_with("…(5000 bytes)"), "{q}");
        assert_eq!(q.chars().count(), 80 + "…(5000 bytes)".chars().count());
        assert_eq!(quote(&q), q, "quoting twice changes nothing");
        assert_eq!(quote(&"y".repeat(100)), "y".repeat(100));
        assert_eq!(quote("see http://a:secret@h/"), "see http://a:***@h/");
    }

    #[test]
    fn parser_messages_quote_values_safely() {
        let plain = "unknown field `bogus`, expected one of `url`, `method`";
        assert_eq!(message(plain), plain);
        assert_eq!(
            message(r#"invalid type: string "http://u:pw@h/\"x", expected a boolean"#),
            r#"invalid type: string "http://u:***@h/\"x", expected a boolean"#
        );
        let huge = format!("unknown variant `{}`, expected one of `sha1`", "y".repeat(3000));
        let shown = message(&huge);
        assert!(shown.contains("…(3000 bytes)`, expected one of `sha1`") && shown.len() < 200, "{shown}");
        assert_eq!(message("unterminated `abc"), "unterminated `abc");
    }
}
