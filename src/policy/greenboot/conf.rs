//! `/etc/greenboot/greenboot.conf`: the shell `KEY=VALUE` file greenboot reads, of which
//! bootgate honours `GREENBOOT_MAX_BOOT_ATTEMPTS` and `DISABLED_HEALTHCHECKS`. Other keys
//! (the watchdog check's, for one) belong to the scripts that `source` the file and are
//! left to them; a line no shell would take as an assignment is an error at its column.

use std::path::Path;

/// The largest greenboot.conf read; greenboot ships 354 bytes.
pub const MAX_BYTES: u64 = 64 * 1024;
/// The most names `DISABLED_HEALTHCHECKS` may hold: a check directory holds no more.
const MAX_DISABLED: usize = crate::policy::MAX_CHECKS;

/// What bootgate takes from greenboot.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conf {
    /// `GREENBOOT_MAX_BOOT_ATTEMPTS`: the `boot_counter` greenboot sets on a first failure.
    pub max_boot_attempts: Option<u32>,
    /// `DISABLED_HEALTHCHECKS`: file names of checks not to run.
    pub disabled: Vec<String>,
}

/// Why greenboot.conf was refused, at a line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl ConfError {
    fn new(line: usize, column: usize, key: &str, message: impl Into<String>) -> Self {
        ConfError { line, column, key: key.into(), message: message.into() }
    }
}

/// Reads and parses the file at `path`, bounded.
pub fn read(path: &Path) -> Result<Conf, ConfError> {
    let bytes = crate::util::read::read_regular(path, MAX_BYTES)
        .map_err(|e| ConfError::new(1, 1, "", format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at - before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
        ConfError::new(line, column, "", "not UTF-8 text")
    })?;
    parse(&text)
}

/// Parses greenboot.conf text.
pub fn parse(text: &str) -> Result<Conf, ConfError> {
    let mut conf = Conf::default();
    let lines: Vec<&str> = text.lines().collect();
    let mut n = 0;
    while n < lines.len() {
        let line = lines[n];
        let start = n + 1;
        n += 1;
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        let body = body.strip_prefix("export ").map(str::trim_start).unwrap_or(body);
        let key_col = line.len() - body.len() + 1;
        let Some((key, rest)) = body.split_once('=') else {
            return Err(ConfError::new(start, indent + 1, "", "expected `KEY=VALUE`, as a shell assignment"));
        };
        if key.is_empty()
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || key.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(ConfError::new(start, key_col, "", format!("`{}` is not a shell variable name", quote(key))));
        }
        let value_col = key_col + key.len() + 1;
        let value = if rest.starts_with('(') {
            // A bash array may span lines up to its `)`.
            let mut whole = rest.to_string();
            while !closed(&whole) {
                let Some(next) = lines.get(n) else {
                    return Err(ConfError::new(start, value_col, key, "the array `(` is not closed by `)`"));
                };
                whole.push('\n');
                whole.push_str(next);
                n += 1;
            }
            Value::Array(words(&whole[1..whole.rfind(')').unwrap_or(whole.len())], start, value_col + 1, key)?)
        } else {
            let w = words(rest, start, value_col, key)?;
            if w.len() > 1 {
                return Err(ConfError::new(start, value_col, key, "a value with spaces must be quoted"));
            }
            Value::One(w.into_iter().next().unwrap_or_default())
        };
        match (key, value) {
            ("GREENBOOT_MAX_BOOT_ATTEMPTS", Value::One(v)) => match v.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => conf.max_boot_attempts = Some(n),
                _ => {
                    let message = format!("`{}` is not a number of boot attempts from 1 to 100", quote(&v));
                    return Err(ConfError::new(start, value_col, key, message));
                }
            },
            ("DISABLED_HEALTHCHECKS", Value::Array(names)) => {
                if names.len() > MAX_DISABLED {
                    let message = format!("more than {MAX_DISABLED} names");
                    return Err(ConfError::new(start, value_col, key, message));
                }
                conf.disabled = names;
            }
            ("DISABLED_HEALTHCHECKS", Value::One(v)) if v.is_empty() => conf.disabled.clear(),
            ("DISABLED_HEALTHCHECKS", Value::One(_)) => {
                let message =
                    "expected a bash array, as greenboot documents it: DISABLED_HEALTHCHECKS=(\"a.sh\" \"b.sh\")";
                return Err(ConfError::new(start, value_col, key, message));
            }
            (_, Value::Array(_)) if key == "GREENBOOT_MAX_BOOT_ATTEMPTS" => {
                return Err(ConfError::new(start, value_col, key, "expected a number, not an array"));
            }
            _ => {}
        }
    }
    Ok(conf)
}

enum Value {
    One(String),
    Array(Vec<String>),
}

/// Whether an array value's `)` has been read, outside quotes and comments.
fn closed(text: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut chars = text.chars().skip(1).peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '\\') => {
                chars.next();
            }
            (None, '#') => {
                // A comment runs to the end of its line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            (None, ')') => return true,
            _ => {}
        }
    }
    false
}

/// Splits shell words: unquoted, "double" (with `\` escapes) and 'single' quoted parts,
/// `#` comments; `$` expansions and command substitutions are refused, since bootgate
/// cannot know what the shell would make of them. `line`/`col` locate `text`'s start.
fn words(text: &str, line: usize, col: usize, key: &str) -> Result<Vec<String>, ConfError> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let (mut l, mut c) = (line, col);
    let mut chars = text.chars().peekable();
    let mut quote: Option<(char, usize, usize)> = None;
    while let Some(ch) = chars.next() {
        let here = (l, c);
        if ch == '\n' {
            (l, c) = (l + 1, 1);
        } else {
            c += 1;
        }
        match (quote, ch) {
            (Some((q, _, _)), ch) if ch == q => quote = None,
            (Some(('"', _, _)), '\\') => {
                if let Some(next) = chars.next() {
                    c += 1;
                    word.get_or_insert_default().push(next);
                }
            }
            (Some(('"', _, _)), '$' | '`') => {
                return Err(ConfError::new(here.0, here.1, key, "expansions (`$`, backquotes) are not supported here"));
            }
            (Some(_), ch) => word.get_or_insert_default().push(ch),
            (None, '"' | '\'') => {
                quote = Some((ch, here.0, here.1));
                word.get_or_insert_default();
            }
            (None, '\\') => {
                if let Some(next) = chars.next() {
                    c += 1;
                    word.get_or_insert_default().push(next);
                }
            }
            (None, '$' | '`' | '(' | ')' | ';' | '&' | '|' | '<' | '>') => {
                let message = format!("`{ch}` is not supported here: write plain or quoted values");
                return Err(ConfError::new(here.0, here.1, key, message));
            }
            (None, '#') if word.is_none() => {
                for ch in chars.by_ref() {
                    if ch == '\n' {
                        (l, c) = (l + 1, 1);
                        break;
                    }
                }
            }
            (None, ch) if ch.is_whitespace() => out.extend(word.take()),
            (None, ch) => word.get_or_insert_default().push(ch),
        }
    }
    if let Some((q, ql, qc)) = quote {
        return Err(ConfError::new(ql, qc, key, format!("the quote {q} is not closed")));
    }
    out.extend(word);
    Ok(out)
}

fn quote(s: &str) -> String {
    crate::util::redact::quote(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greenboots_own_file_reads_as_greenboot_reads_it() {
        let text = "# Greenboot configuration file\n\n## Generic\nGREENBOOT_MAX_BOOT_ATTEMPTS=3\n\n\n\
                    ### DISABLED_HEALTHCHECKS=(\"01_repository_dns_check.sh\" \"02_watchdog.sh\")\nDISABLED_HEALTHCHECKS=()";
        assert_eq!(parse(text).unwrap(), Conf { max_boot_attempts: Some(3), disabled: vec![] });
    }

    #[test]
    fn arrays_quotes_comments_and_other_keys() {
        let text = "GREENBOOT_WATCHDOG_CHECK_ENABLED=true\nexport GREENBOOT_MAX_BOOT_ATTEMPTS=\"5\" # five\n\
                    DISABLED_HEALTHCHECKS=( \"01_a.sh\" '02 b.sh'\n  03_c # the third\n)\n";
        let conf = parse(text).unwrap();
        assert_eq!(conf.max_boot_attempts, Some(5));
        assert_eq!(conf.disabled, ["01_a.sh", "02 b.sh", "03_c"]);
    }

    #[test]
    fn a_malformed_line_is_located() {
        for (text, at, why) in [
            ("A=1\nnot an assignment\n", (2, 1), "KEY=VALUE"),
            ("GREENBOOT_MAX_BOOT_ATTEMPTS=three\n", (1, 29), "not a number"),
            ("DISABLED_HEALTHCHECKS=(\"a.sh\"\n", (1, 23), "not closed"),
            ("DISABLED_HEALTHCHECKS=(\"a.sh)\n", (1, 23), "not closed"),
            ("X=\"open\n", (1, 3), "not closed"),
            ("DISABLED_HEALTHCHECKS=a.sh\n", (1, 23), "bash array"),
            ("  X=$(reboot)\n", (1, 5), "not supported"),
            ("1X=2\n", (1, 1), "variable name"),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!(((e.line, e.column), e.message.contains(why)), (at, true), "{text}: {e:?}");
        }
    }
}
