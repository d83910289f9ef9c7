//! Raw policy → [`Policy`]. Collects every problem it can find, each located.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::index::Index;
use super::locate::{self, Seg};
use super::raw::{OnFailure, RawCheck, RawPolicy};
use super::{CheckSpec, Gate, MAX_POLICY_BYTES, MAX_PROBLEMS_SHOWN, Policy, Problem, Runtime};
use crate::checks::{KINDS, KindError};

const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRIES: u32 = 3;

struct Ctx<'a> {
    index: &'a Index,
    file: &'a str,
    problems: Vec<Problem>,
}

impl Ctx<'_> {
    fn at(&mut self, path: &[Seg], message: impl Into<String>) {
        let (line, column) = self.index.position(path).unwrap_or((1, 1));
        let key = locate::render(path);
        self.problems.push(Problem { file: self.file.into(), line, column, key, message: message.into() });
    }

    /// Converts a yaml_serde error from parsing the whole policy text.
    fn yaml(&mut self, err: &serde_yaml::Error) {
        let (line, column) = err.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
        let full = err.to_string();
        let (path, message, field) = split(&full);
        let key = match (path.is_empty(), field) {
            (_, None) => path.to_string(),
            (true, Some(field)) => field.to_string(),
            (false, Some(field)) => format!("{path}.{field}"),
        };
        let repeated = repeated_key(message).and_then(|k| self.index.repeat(&locate::parse_path(path), k));
        let (line, column) = repeated.unwrap_or((line, column));
        let message = crate::redact::message(message);
        self.problems.push(Problem { file: self.file.into(), line, column, key, message });
    }

    /// Converts a yaml_serde error from reading one check's own copy: its path is
    /// relative to the check at `base`, and the index gives the position in the file.
    fn kind_yaml(&mut self, err: &serde_yaml::Error, base: &[Seg]) {
        let full = err.to_string();
        let (rel, message, field) = split(&full);
        let mut path = base.to_vec();
        path.extend(locate::parse_path(rel));
        // An unknown key is shown at the key's value, a missing one at its mapping.
        path.extend(field.map(Seg::key));
        // A repeated map key is shown where it repeats.
        if let Some(at) = repeated_key(message).and_then(|key| self.index.repeat(&path, key)) {
            let key = locate::render(&path);
            let message = crate::redact::message(message);
            self.problems.push(Problem { file: self.file.into(), line: at.0, column: at.1, key, message });
            return;
        }
        self.at(&path, crate::redact::message(message));
    }
}

/// The key a `duplicate entry` message names (a map key written twice).
fn repeated_key(message: &str) -> Option<&str> {
    message.strip_prefix("duplicate entry with key \"").and_then(|r| r.split('"').next())
}

/// Splits a yaml_serde message into its key path, the message itself and the field an
/// `unknown field`/`missing field` message names.
fn split(full: &str) -> (&str, &str, Option<&str>) {
    // Display ends in " at line L column C"; the position is taken from elsewhere.
    let full = full.rfind(" at line ").map_or(full, |i| &full[..i]);
    let (path, message) = match full.split_once(": ") {
        Some((p, m)) if !p.is_empty() && !p.contains(char::is_whitespace) => (p, m),
        _ => ("", full),
    };
    let field = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    (path, message, field)
}

/// Validates policy text into a [`Policy`] or every problem found.
pub fn validate(text: &str, file: &str) -> Result<Policy, Vec<Problem>> {
    let first =
        |line, column, key: String, message: String| vec![Problem { file: file.into(), line, column, key, message }];
    if text.len() as u64 > MAX_POLICY_BYTES {
        let message = format!("the policy is larger than the limit of {MAX_POLICY_BYTES} bytes");
        return Err(first(1, 1, String::new(), message));
    }
    // The limits come first: the parses below would walk a too-deep or alias-bombed
    // document at length, and locating problems must not re-read the text each time.
    let index = Index::build(text).map_err(|o| first(o.line, o.column, o.key, o.message))?;
    let mut cx = Ctx { index: &index, file, problems: Vec::new() };
    let raw: RawPolicy = match serde_yaml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            cx.yaml(&e);
            return Err(cx.problems);
        }
    };
    // Parsed once more as a plain tree: each check's kind keys are read from it.
    let doc: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            cx.yaml(&e);
            return Err(cx.problems);
        }
    };
    if raw.version != 1 {
        cx.at(
            &[Seg::key("version")],
            format!("unsupported policy version {}; this bootgate reads version 1", raw.version),
        );
    }
    let gate = gate(&mut cx, &raw);
    let runtime = runtime(&mut cx, &raw);
    let listen = listen(&mut cx, &raw);
    if raw.checks.is_empty() {
        cx.at(&[Seg::key("checks")], "no checks: an empty gate would pass anything");
    }
    let checks = checks(&mut cx, &raw.checks, gate.deadline, &doc);
    if cx.problems.is_empty() { Ok(Policy { gate, runtime, listen, checks }) } else { Err(cx.problems) }
}

fn gate(cx: &mut Ctx, raw: &RawPolicy) -> Gate {
    let deadline = raw.gate.deadline.map_or(DEFAULT_DEADLINE, |d| d.0);
    if deadline.is_zero() {
        cx.at(&[Seg::key("gate"), Seg::key("deadline")], "the deadline must be longer than 0s");
    }
    Gate {
        deadline,
        settle: raw.gate.settle.map_or(Duration::ZERO, |d| d.0),
        on_failure: raw.gate.on_failure.unwrap_or(OnFailure::Reboot),
        reboot_delay: raw.gate.reboot_delay.map_or(Duration::from_secs(10), |d| d.0),
    }
}

fn runtime(cx: &mut Ctx, raw: &RawPolicy) -> Runtime {
    let r = &raw.runtime;
    let interval = r.interval.map_or(Duration::from_secs(60), |d| d.0);
    if interval < Duration::from_secs(1) {
        cx.at(&[Seg::key("runtime"), Seg::key("interval")], "the interval must be at least 1s");
    }
    let mut threshold = |key: &str, value: Option<u32>, default: u32| match value {
        Some(0) => {
            cx.at(&[Seg::key("runtime"), Seg::key(key)], "a threshold must be at least 1");
            1
        }
        v => v.unwrap_or(default),
    };
    Runtime {
        interval,
        failure_threshold: threshold("failure_threshold", r.failure_threshold, 3),
        success_threshold: threshold("success_threshold", r.success_threshold, 1),
    }
}

fn listen(cx: &mut Ctx, raw: &RawPolicy) -> SocketAddr {
    let fallback = SocketAddr::from(([127, 0, 0, 1], 8080));
    let Some(text) = &raw.server.listen else {
        return fallback;
    };
    text.0.parse().unwrap_or_else(|e| {
        cx.at(
            &[Seg::key("server"), Seg::key("listen")],
            format!("`{}` is not an address:port ({e})", crate::redact::quote(&text.0)),
        );
        fallback
    })
}

fn checks(cx: &mut Ctx, raw: &[RawCheck], deadline: Duration, doc: &serde_yaml::Value) -> Vec<CheckSpec> {
    let path = |i: usize, key: &str| [Seg::key("checks"), Seg::Index(i), Seg::key(key)];
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, c) in raw.iter().enumerate() {
        if let Some(first) = index.insert(&c.name.0, i) {
            index.insert(&c.name.0, first);
            let line = cx.index.position(&path(first, "name")).map_or(0, |p| p.0);
            cx.at(&path(i, "name"), format!("duplicate check name `{}` (first used on line {line})", c.name));
        }
    }
    let mut specs = Vec::with_capacity(raw.len());
    for (i, c) in raw.iter().enumerate() {
        // A default timeout always leaves room for a retry inside the deadline.
        let timeout = c.timeout.map_or(DEFAULT_TIMEOUT.min(deadline / 2), |d| d.0);
        if timeout.is_zero() {
            cx.at(&path(i, "timeout"), "the timeout must be longer than 0s");
        } else if timeout >= deadline && !deadline.is_zero() {
            cx.at(
                &path(i, "timeout"),
                format!("timeout {} is not shorter than the gate deadline {}", fmt(timeout), fmt(deadline)),
            );
        }
        let mut after = Vec::new();
        for (j, dep) in c.after.iter().flatten().enumerate() {
            let at = [Seg::key("checks"), Seg::Index(i), Seg::key("after"), Seg::Index(j)];
            match index.get(dep.0.as_str()) {
                Some(&d) if d == i => cx.at(&at, format!("check `{}` cannot run after itself", c.name)),
                Some(&d) => after.push(d),
                None => cx.at(&at, format!("`after` names `{dep}`, which is not a check in this policy")),
            }
        }
        let Some(kind) = KINDS.iter().find(|k| k.name == c.kind.0) else {
            let known: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
            cx.at(
                &path(i, "kind"),
                format!("unknown check kind `{}`; known kinds: {}", crate::redact::quote(&c.kind.0), known.join(", ")),
            );
            continue;
        };
        let base = [Seg::key("checks"), Seg::Index(i)];
        // A rejected check is read again for a located error, from its own copy: reading
        // the whole text again for each would make validation quadratic.
        let node = doc.get("checks").and_then(|c| c.get(i));
        let own = node.and_then(|n| serde_yaml::to_string(n).ok()).unwrap_or_default();
        match (kind.parse)(&own, &[], node) {
            Ok(check) => specs.push(CheckSpec {
                name: c.name.0.clone(),
                kind: kind.name,
                critical: c.critical.unwrap_or(true),
                timeout,
                retries: c.retries.unwrap_or(DEFAULT_RETRIES),
                after,
                check,
            }),
            Err(KindError::Yaml(e)) => cx.kind_yaml(&e, &base),
            Err(KindError::Key(e)) => cx.at(&[&base[..], &e.key[..]].concat(), e.message),
        }
    }
    if cx.problems.is_empty() {
        report_cycles(cx, &specs);
    }
    specs
}

/// Reports each dependency cycle once, at the `after` key of its first member. The walk
/// keeps its own stack: a long `after:` chain must not exhaust the thread's.
fn report_cycles(cx: &mut Ctx, specs: &[CheckSpec]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        /// On the walk's stack, at this depth.
        Active(usize),
        Done,
    }
    let mut marks = vec![Mark::New; specs.len()];
    let mut cycles: Vec<Vec<usize>> = Vec::new();
    let mut unlisted = 0usize;
    // Each entry: a check and how many of its `after` edges were followed.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for root in 0..specs.len() {
        if marks[root] != Mark::New {
            continue;
        }
        marks[root] = Mark::Active(0);
        stack.push((root, 0));
        while let Some((i, next)) = stack.last_mut() {
            let Some(&d) = specs[*i].after.get(*next) else {
                marks[*i] = Mark::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            match marks[d] {
                Mark::New => {
                    marks[d] = Mark::Active(stack.len());
                    stack.push((d, 0));
                }
                Mark::Active(at) if cycles.len() < MAX_PROBLEMS_SHOWN => {
                    cycles.push(stack[at..].iter().map(|&(s, _)| s).collect());
                }
                Mark::Active(_) => unlisted += 1,
                Mark::Done => {}
            }
        }
    }
    for cycle in cycles {
        let mut names: Vec<&str> = cycle.iter().map(|&i| specs[i].name.as_str()).collect();
        names.push(names[0]);
        let first = *cycle.iter().min().unwrap_or(&0);
        cx.at(
            &[Seg::key("checks"), Seg::Index(first), Seg::key("after")],
            format!("dependency cycle: {}", names.join(" → ")),
        );
    }
    if unlisted > 0 {
        cx.at(&[Seg::key("checks")], format!("{unlisted} more dependency cycles, not listed"));
    }
}

fn fmt(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
