//! Small text helpers shared by messages and renderers: an error with its causes on
//! one line, and any text folded onto one line.

use std::error::Error;

/// An error and its causes on one line: library errors' top-level message alone
/// ("error sending request") rarely says why.
pub fn chain(e: &dyn Error) -> String {
    with_causes(e.to_string(), e)
}

/// `head`, then every cause of `e` (not `e` itself) that `head` does not already say:
/// wrappers often repeat their source's text, and a reader needs it once.
pub fn with_causes(mut head: String, e: &dyn Error) -> String {
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !head.contains(&text) {
            head.push_str(": ");
            head.push_str(&text);
        }
        cause = c.source();
    }
    head
}

/// `text` cut to `max` characters, with `…` when something was cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// `text` on one line, every control character (escape codes, bells) as a space, cut to `max`.
pub fn plain(text: &str, max: usize) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    cut(&one_line(&clean), max)
}

/// `text` with every run of whitespace, newlines included, as one space: keeps a
/// check's message on its line in line-oriented output.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `n` and the noun, plural unless `n` is 1: "1 check", "2 checks".
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    /// An error with a fixed text and an optional cause.
    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn e(text: &'static str, cause: Option<E>) -> E {
        E(text, cause.map(Box::new))
    }

    #[test]
    fn chain_says_every_cause_once() {
        assert_eq!(chain(&e("alone", None)), "alone");
        let io = e("connection refused", None);
        let err = e("error sending request", Some(e("client error (Connect)", Some(io))));
        assert_eq!(chain(&err), "error sending request: client error (Connect): connection refused");
        // A wrapper that already quotes its cause does not say it twice.
        let err = e("cannot open: no such file", Some(e("no such file", Some(e("", None)))));
        assert_eq!(chain(&err), "cannot open: no such file");
    }

    #[test]
    fn with_causes_leaves_out_the_error_itself() {
        let err = e("error sending request", Some(e("operation timed out", None)));
        assert_eq!(with_causes("http://h/: timed out".into(), &err), "http://h/: timed out: operation timed out");
    }

    #[test]
    fn one_line_folds_whitespace() {
        assert_eq!(one_line("  exit 1:\n\tdisk\r\n  full  "), "exit 1: disk full");
        assert_eq!(one_line(""), "");
    }

    #[test]
    fn a_count_of_one_is_singular() {
        assert_eq!(counted(1, "check"), "1 check");
        assert_eq!(counted(0, "check"), "0 checks");
        assert_eq!(counted(2, "check"), "2 checks");
    }
}
