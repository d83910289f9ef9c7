//! Raw policy → [`Policy`]. Collects every problem it can find, each located.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::locate::{self, Seg};
use super::raw::{OnFailure, RawCheck, RawPolicy};
use super::{CheckSpec, Gate, Policy, Problem, Runtime};
use crate::checks::{KINDS, KindError};

const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRIES: u32 = 3;

struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    problems: Vec<Problem>,
}

impl Ctx<'_> {
    fn at(&mut self, path: &[Seg], message: impl Into<String>) {
        let (line, column) = locate::position(self.text, path).unwrap_or((1, 1));
        let key = locate::render(path);
        self.problems.push(Problem { file: self.file.into(), line, column, key, message: message.into() });
    }

    /// Converts a yaml_serde error; `base` is where a kind's keys were read from.
    fn yaml(&mut self, err: &serde_yaml::Error, base: &[Seg]) {
        let (line, column) = err.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
        let full = err.to_string();
        let text = match full.rfind(" at line ") {
            Some(i) => &full[..i],
            None => &full,
        };
        let (path, message) = match text.split_once(": ") {
            Some((p, m)) if !p.is_empty() && !p.contains(char::is_whitespace) => (p.to_string(), m),
            _ => (String::new(), text),
        };
        let message = &crate::redact::message(message);
        let field = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|prefix| message.strip_prefix(prefix))
            .and_then(|rest| rest.split('`').next());
        let problem = match field {
            Some(field) => {
                let key = if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
                // Unknown kind keys are reported at their mapping; point at the key itself.
                let mut key_path = base.to_vec();
                key_path.push(Seg::key(field));
                let (line, column) = match (base.is_empty(), locate::position(self.text, &key_path)) {
                    (false, Some(pos)) => pos,
                    _ => (line, column),
                };
                Problem { file: self.file.into(), line, column, key, message: message.to_string() }
            }
            None => Problem { file: self.file.into(), line, column, key: path, message: message.to_string() },
        };
        self.problems.push(problem);
    }
}

/// Validates policy text into a [`Policy`] or every problem found.
pub fn validate(text: &str, file: &str) -> Result<Policy, Vec<Problem>> {
    let mut cx = Ctx { text, file, problems: Vec::new() };
    let raw: RawPolicy = match serde_yaml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            cx.yaml(&e, &[]);
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
    // Parsed once more as a plain tree: each check's kind keys are read from it.
    let doc: Option<serde_yaml::Value> = serde_yaml::from_str(text).ok();
    let checks = checks(&mut cx, &raw.checks, gate.deadline, doc.as_ref());
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

fn checks(cx: &mut Ctx, raw: &[RawCheck], deadline: Duration, doc: Option<&serde_yaml::Value>) -> Vec<CheckSpec> {
    let path = |i: usize, key: &str| [Seg::key("checks"), Seg::Index(i), Seg::key(key)];
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, c) in raw.iter().enumerate() {
        if let Some(first) = index.insert(&c.name.0, i) {
            index.insert(&c.name.0, first);
            let line = locate::position(cx.text, &path(first, "name")).map_or(0, |p| p.0);
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
        match (kind.parse)(cx.text, &base, doc.and_then(|d| d.get("checks")).and_then(|c| c.get(i))) {
            Ok(check) => specs.push(CheckSpec {
                name: c.name.0.clone(),
                kind: kind.name,
                critical: c.critical.unwrap_or(true),
                timeout,
                retries: c.retries.unwrap_or(DEFAULT_RETRIES),
                after,
                check,
            }),
            Err(KindError::Yaml(e)) => cx.yaml(&e, &base),
            Err(KindError::Key(e)) => cx.at(&[&base[..], &e.key[..]].concat(), e.message),
        }
    }
    if cx.problems.is_empty() {
        report_cycles(cx, &specs);
    }
    specs
}

/// Reports each dependency cycle once, at the `after` key of its first member.
fn report_cycles(cx: &mut Ctx, specs: &[CheckSpec]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(i: usize, specs: &[CheckSpec], marks: &mut [Mark], stack: &mut Vec<usize>, cycles: &mut Vec<Vec<usize>>) {
        marks[i] = Mark::Active;
        stack.push(i);
        for &d in &specs[i].after {
            match marks[d] {
                Mark::New => visit(d, specs, marks, stack, cycles),
                Mark::Active => {
                    let start = stack.iter().position(|&s| s == d).unwrap_or(0);
                    cycles.push(stack[start..].to_vec());
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
    }
    let mut marks = vec![Mark::New; specs.len()];
    let mut cycles = Vec::new();
    for i in 0..specs.len() {
        if marks[i] == Mark::New {
            visit(i, specs, &mut marks, &mut Vec::new(), &mut cycles);
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
}

fn fmt(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
