//! One pass over a policy's YAML events that records where every node starts and
//! enforces the size limits before yaml_serde builds anything from the text: nesting
//! depth, alias expansion and the number of checks.

use std::collections::HashMap;

use super::events::{Event, Events, Mark};
use super::path::{Seg, render};

/// The most checks a policy may hold.
pub const MAX_CHECKS: usize = 1000;
/// The deepest nesting of lists and mappings a policy may have.
pub const MAX_DEPTH: usize = 64;
/// The most nodes all aliases (`*name`) of a policy may stand for together.
pub const MAX_ALIASED_NODES: usize = 100_000;

/// Positions of the nodes of a document, found by path.
#[derive(Debug, Default)]
pub struct Index {
    nodes: Vec<Node>,
    /// Keys seen a second time in one mapping: (mapping's path, key, where it repeats).
    repeats: Vec<(String, String, Mark)>,
}

#[derive(Debug)]
struct Node {
    mark: Mark,
    kids: Kids,
}

#[derive(Debug)]
enum Kids {
    Leaf,
    /// Each key: where the key itself is written, and its value's node.
    Map(HashMap<String, (Mark, usize)>),
    Seq(Vec<usize>),
}

/// A limit the document broke, located at the node that broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit {
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

struct Frame {
    node: usize,
    map: bool,
    /// In a mapping: `None` while a key is expected, else the key whose value comes next
    /// (`Some(None)` for a key that is not a plain string: its value is not indexed).
    key: Option<Option<String>>,
    /// Where the pending key is written.
    key_mark: Mark,
    items: usize,
    anchor: Option<Vec<u8>>,
    /// The expanded node count before this collection started, for its anchor's size.
    before: usize,
}

impl Index {
    /// Reads `text`'s first document once. A syntax error ends the index early (the
    /// parser reports it); a broken limit is returned as the only result.
    pub fn build(text: &str) -> Result<Index, OverLimit> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut repeats = Vec::new();
        let mut frames: Vec<Frame> = Vec::new();
        let mut path: Vec<Seg> = Vec::new();
        // Aliases are counted as the nodes they stand for: parsing walks them again
        // each time they are used (a "billion laughs" document expands without end).
        let mut anchors: HashMap<Vec<u8>, usize> = HashMap::new();
        let (mut expanded, mut aliased) = (0usize, 0usize);
        for (event, mark) in Events::new(text) {
            let (anchor, kids) = match event {
                Event::DocumentEnd => break,
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some(frame) = frames.pop() {
                        if let Some(name) = frame.anchor {
                            anchors.insert(name, expanded - frame.before);
                        }
                        path.pop();
                    }
                    continue;
                }
                Event::Scalar { value, anchor } => {
                    expanded += 1;
                    if let Some(name) = anchor {
                        anchors.insert(name, 1);
                    }
                    // A scalar key names the value that follows it.
                    if let Some(f) = frames.last_mut().filter(|f| f.map && f.key.is_none()) {
                        if let Kids::Map(m) = &nodes[f.node].kids
                            && m.contains_key(&value)
                        {
                            repeats.push((render(&path), value.clone(), mark));
                        }
                        f.key = Some(Some(value));
                        f.key_mark = mark;
                        continue;
                    }
                    (None, Kids::Leaf)
                }
                Event::Alias(name) => {
                    let size = anchors.get(&name).copied().unwrap_or(1);
                    expanded += size;
                    aliased += size;
                    if aliased > MAX_ALIASED_NODES {
                        let message = format!(
                            "aliases expand to more than {MAX_ALIASED_NODES} nodes, the limit that keeps a small file from growing without bound"
                        );
                        return Err(over(mark, &path, frames.last(), message));
                    }
                    if let Some(f) = frames.last_mut().filter(|f| f.map && f.key.is_none()) {
                        f.key = Some(None);
                        continue;
                    }
                    (None, Kids::Leaf)
                }
                Event::SequenceStart { anchor } => (anchor, Kids::Seq(Vec::new())),
                Event::MappingStart { anchor } => (anchor, Kids::Map(HashMap::new())),
            };
            let collection = !matches!(kids, Kids::Leaf);
            if collection {
                expanded += 1;
                if frames.len() >= MAX_DEPTH {
                    let message = format!("nested deeper than {MAX_DEPTH} levels, the limit for a policy");
                    return Err(over(mark, &path, frames.last(), message));
                }
            }
            let id = nodes.len();
            let seg = match frames.last_mut() {
                None => None,
                // A collection used as a mapping key: walked for the limits, never indexed.
                Some(f) if f.map && f.key.is_none() => {
                    f.key = Some(None);
                    Some(Seg::key("?"))
                }
                Some(f) if f.map => {
                    let key = f.key.take().flatten();
                    if let (Some(k), Kids::Map(m)) = (&key, &mut nodes[f.node].kids) {
                        m.entry(k.clone()).or_insert((f.key_mark, id));
                    }
                    Some(Seg::Key(key.unwrap_or_else(|| "?".into())))
                }
                Some(f) => {
                    let i = f.items;
                    f.items += 1;
                    if let Kids::Seq(s) = &mut nodes[f.node].kids {
                        s.push(id);
                    }
                    if i >= MAX_CHECKS && path.len() == 1 && path[0] == Seg::key("checks") {
                        let message = format!(
                            "check number {} is one too many: a policy holds at most {MAX_CHECKS} checks",
                            MAX_CHECKS + 1
                        );
                        return Err(over(mark, &path, Some(&*f), message).with_index(i));
                    }
                    Some(Seg::Index(i))
                }
            };
            nodes.push(Node { mark, kids });
            if collection {
                path.extend(seg);
                frames.push(Frame {
                    node: id,
                    map: nodes[id].is_map(),
                    key: None,
                    key_mark: mark,
                    items: 0,
                    anchor,
                    before: expanded - 1,
                });
            }
        }
        Ok(Index { nodes, repeats })
    }

    /// Every key written twice in one mapping: the mapping's path as yaml_serde renders
    /// it, the key, and the line and column where it repeats.
    pub fn repeats(&self) -> impl Iterator<Item = (&str, &str, (usize, usize))> {
        self.repeats.iter().map(|(p, k, m)| (p.as_str(), k.as_str(), (m.line, m.column)))
    }

    /// Line and column where the last key of `path` is written; else [`Self::position`].
    pub fn key_position(&self, path: &[Seg]) -> Option<(usize, usize)> {
        if let Some((Seg::Key(key), parent)) = path.split_last()
            && let Some(Kids::Map(m)) = self.node(parent).map(|n| &self.nodes[n].kids)
            && let Some((mark, _)) = m.get(key)
        {
            return Some((mark.line, mark.column));
        }
        self.position(path)
    }

    /// The node at exactly `path`.
    fn node(&self, path: &[Seg]) -> Option<usize> {
        let mut at = if self.nodes.is_empty() { return None } else { 0 };
        for seg in path {
            at = match (&self.nodes[at].kids, seg) {
                (Kids::Map(m), Seg::Key(k)) => m.get(k).map(|&(_, n)| n),
                (Kids::Seq(s), Seg::Index(i)) => s.get(*i).copied(),
                _ => None,
            }?;
        }
        Some(at)
    }

    /// Line and column of the node at `path`, or of the deepest node of it that exists.
    pub fn position(&self, path: &[Seg]) -> Option<(usize, usize)> {
        let mut at = self.nodes.first()?;
        for seg in path {
            let next = match (&at.kids, seg) {
                (Kids::Map(m), Seg::Key(k)) => m.get(k).map(|&(_, n)| n),
                (Kids::Seq(s), Seg::Index(i)) => s.get(*i).copied(),
                _ => None,
            };
            match next {
                Some(n) => at = &self.nodes[n],
                None => break,
            }
        }
        Some((at.mark.line, at.mark.column))
    }
}

impl Node {
    fn is_map(&self) -> bool {
        matches!(self.kids, Kids::Map(_))
    }
}

impl OverLimit {
    fn with_index(mut self, i: usize) -> Self {
        self.key = format!("{}[{i}]", self.key);
        self
    }
}

/// Locates a broken limit at `mark`; the key is the path of the enclosing node, plus the
/// key this node is the value of.
fn over(mark: Mark, path: &[Seg], parent: Option<&Frame>, message: String) -> OverLimit {
    let mut key = render(path);
    if let Some(Some(Some(k))) = parent.filter(|f| f.map).map(|f| &f.key) {
        key = if key.is_empty() { k.clone() } else { format!("{key}.{k}") };
    }
    OverLimit { line: mark.line, column: mark.column, key, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCATED: &str = "version: 1\nchecks:\n  - name: a\n    kind: tcp\n    targets: [\"x:1\", \"y:2\"]\n";

    #[test]
    fn finds_nested_nodes() {
        let p = |segs: &[Seg]| Index::build(LOCATED).unwrap().position(segs);
        assert_eq!(p(&[Seg::key("version")]), Some((1, 10)));
        assert_eq!(p(&[Seg::key("checks"), Seg::Index(0), Seg::key("kind")]), Some((4, 11)));
        assert_eq!(p(&[Seg::key("checks"), Seg::Index(0), Seg::key("targets"), Seg::Index(1)]), Some((5, 22)));
    }

    #[test]
    fn missing_key_points_at_parent() {
        let index = Index::build(LOCATED).unwrap();
        let at = index.position(&[Seg::key("checks"), Seg::Index(0), Seg::key("timeout")]);
        assert_eq!(at, index.position(&[Seg::key("checks"), Seg::Index(0)]));
        assert!(at.is_some());
    }

    /// Every path into `v` whose keys are strings, each with the path of its parent.
    fn paths(v: &serde_yaml::Value, at: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        out.push(at.clone());
        let kids: Vec<(Seg, &serde_yaml::Value)> = match v {
            serde_yaml::Value::Mapping(m) => m.iter().filter_map(|(k, v)| Some((Seg::key(k.as_str()?), v))).collect(),
            serde_yaml::Value::Sequence(s) => s.iter().enumerate().map(|(i, v)| (Seg::Index(i), v)).collect(),
            _ => Vec::new(),
        };
        for (seg, kid) in kids {
            at.push(seg);
            paths(kid, at, out);
            at.pop();
        }
    }

    #[test]
    fn the_index_agrees_with_the_parser_on_every_node_of_every_fixture() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        for dir in ["tests/fixtures/invalid", "policy"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                files.push(entry.unwrap().path());
            }
        }
        let mut compared = 0;
        for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "yaml")) {
            let text = std::fs::read_to_string(file).unwrap();
            let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(&text) else { continue };
            // Over a limit (too deep, alias bombs): no index, by design.
            let Ok(index) = Index::build(&text) else { continue };
            let mut all = Vec::new();
            paths(&doc, &mut Vec::new(), &mut all);
            // Missing keys and indices too: both fall back to the deepest existing node.
            all.push(vec![Seg::key("checks"), Seg::Index(0), Seg::key("no_such_key")]);
            all.push(vec![Seg::key("checks"), Seg::Index(999)]);
            for path in all {
                let want = super::super::locate::oracle::reparse_position(&text, &path);
                assert_eq!(index.position(&path), want, "{}: {}", file.display(), render(&path));
                compared += 1;
            }
        }
        assert!(compared > 200, "only {compared} nodes compared");
    }

    const DOC: &str = "version: 1\nchecks:\n  - name: a\n    kind: tcp\n    targets: [\"x:1\", \"y:2\"]\n";

    #[test]
    fn positions_match_the_parser() {
        let index = Index::build(DOC).unwrap();
        let p = |segs: &[Seg]| index.position(segs);
        assert_eq!(p(&[]), Some((1, 1)));
        assert_eq!(p(&[Seg::key("version")]), Some((1, 10)));
        assert_eq!(p(&[Seg::key("checks"), Seg::Index(0)]), Some((3, 5)));
        assert_eq!(p(&[Seg::key("checks"), Seg::Index(0), Seg::key("kind")]), Some((4, 11)));
        assert_eq!(p(&[Seg::key("checks"), Seg::Index(0), Seg::key("targets"), Seg::Index(1)]), Some((5, 22)));
        // A missing key or index: the deepest node that exists.
        assert_eq!(p(&[Seg::key("checks"), Seg::Index(0), Seg::key("timeout")]), Some((3, 5)));
        assert_eq!(p(&[Seg::key("checks"), Seg::Index(7)]), Some((3, 3)));
        assert_eq!(Index::build("").unwrap().position(&[]), None);
    }

    #[test]
    fn keys_and_repeats_are_located_where_written() {
        let doc = "version: 1\ngate:\n  deadline: 1s\n  deadline: 2s\nchecks: [{a: 1, a: 2}]\n";
        let index = Index::build(doc).unwrap();
        assert_eq!(index.key_position(&[Seg::key("gate"), Seg::key("deadline")]), Some((3, 3)));
        assert_eq!(index.key_position(&[Seg::key("checks"), Seg::Index(0), Seg::key("a")]), Some((5, 11)));
        // A key that is not there: its mapping.
        assert_eq!(index.key_position(&[Seg::key("gate"), Seg::key("settle")]), Some((3, 3)));
        let repeats: Vec<_> = index.repeats().collect();
        assert_eq!(repeats, [("gate", "deadline", (4, 3)), ("checks[0]", "a", (5, 17))]);
    }

    #[test]
    fn depth_is_limited_before_parsing() {
        let deep = format!("version: 1\nchecks: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let err = Index::build(&deep).unwrap_err();
        assert_eq!((err.line, err.column), (2, 9 + MAX_DEPTH - 1));
        assert!(err.key.starts_with("checks[0][0]"), "{}", err.key);
        assert!(err.message.contains("deeper than 64 levels"), "{}", err.message);
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        Index::build(&ok).unwrap();
    }

    #[test]
    fn alias_expansion_is_limited() {
        // Ten levels of ten aliases each would stand for 10^10 nodes.
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            doc.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", ")));
        }
        let err = Index::build(&doc).unwrap_err();
        assert!(err.message.contains("aliases expand to more than 100000 nodes"), "{}", err.message);
        assert!(err.key.starts_with('a'), "{}", err.key);
        // A few aliases of a small anchor are fine.
        Index::build("a: &x {k: v}\nb: *x\nc: [*x, *x]\n").unwrap();
    }

    #[test]
    fn the_number_of_checks_is_limited() {
        let item = "  - {name: a, kind: tcp}\n";
        let doc = format!("version: 1\nchecks:\n{}", item.repeat(MAX_CHECKS + 1));
        let err = Index::build(&doc).unwrap_err();
        assert_eq!((err.line, err.column, err.key.as_str()), (MAX_CHECKS + 3, 5, "checks[1000]"));
        assert!(err.message.contains("at most 1000 checks"), "{}", err.message);
        Index::build(&format!("version: 1\nchecks:\n{}", item.repeat(MAX_CHECKS))).unwrap();
        // Only the top-level `checks` counts.
        Index::build(&format!("other:\n{}", item.repeat(MAX_CHECKS + 1))).unwrap();
    }
}
