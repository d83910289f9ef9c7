//! A path to one node of the policy document, as yaml_serde writes it in its
//! messages (`checks[2].timeout`): built by the validator, parsed back from the parser's
//! own messages.

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    pub fn key(k: &str) -> Self {
        Seg::Key(k.to_string())
    }
}

/// Renders a path the way yaml_serde does in its own messages: `checks[2].timeout`.
pub fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Parses a path as yaml_serde renders it (`targets[1].user`) back into its steps.
/// A key that itself holds `.` or `[` comes back split; lookups then stop at its parent.
pub fn parse_path(rendered: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in rendered.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.find('[').map_or((part, ""), |i| part.split_at(i));
        if !key.is_empty() {
            out.push(Seg::key(key));
        }
        while let Some(close) = rest.find(']') {
            match rest[1..close].parse() {
                Ok(i) => out.push(Seg::Index(i)),
                Err(_) => return out,
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_paths_parse_back() {
        let path = [Seg::key("checks"), Seg::Index(2), Seg::key("pcrs"), Seg::key("sha256"), Seg::Index(0)];
        assert_eq!(parse_path(&render(&path)), path);
        assert_eq!(parse_path("a[1][2]"), [Seg::key("a"), Seg::Index(1), Seg::Index(2)]);
        assert_eq!(parse_path(""), []);
        assert_eq!(parse_path("a[x].b"), [Seg::key("a")]);
    }
}
