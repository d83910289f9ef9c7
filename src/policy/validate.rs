//! Raw policy → [`Policy`]. Collects every problem it can find, each located: the
//! sections and each check (its common keys and its kind's keys) are read independently.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::de::IgnoredAny;
use serde_yaml::Value;

use super::greenboot::RawGreenboot;
use super::located::Ctx;
use super::raw::{
    Backend, OnFailure, RawBoot, RawCheck, RawChecksFrom, RawGate, RawPolicy, RawRollback, RawRuntime, RawServer,
};
use super::yaml::index::Index;
use super::yaml::path::{self, Seg};
use super::{CheckSpec, Gate, MAX_POLICY_BYTES, MAX_PROBLEMS_SHOWN, MIN_INTERVAL, Policy, Problem, Runtime};
use crate::checks::{KINDS, KindError};
use crate::util::time::spelled;

const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_SOAK_INTERVAL: Duration = Duration::from_secs(5);
/// A shorter soak interval would re-run the checks in a busy loop.
const MIN_SOAK_INTERVAL: Duration = Duration::from_millis(100);
/// After the gate the checks share the device with its workloads: a few at a time.
const DEFAULT_RUNTIME_CONCURRENT: u32 = 8;

/// The top-level keys of a policy, in the order the schema lists them.
const TOP_KEYS: [&str; 9] =
    ["version", "gate", "runtime", "server", "rollback", "boot", "checks", "checks_from", "greenboot"];

/// The sections as read: `None` when absent, `Some(None)` when present but rejected.
#[derive(Default)]
struct Sections<'d> {
    version: Option<Option<u32>>,
    gate: Option<Option<RawGate>>,
    runtime: Option<Option<RawRuntime>>,
    server: Option<Option<RawServer>>,
    rollback: Option<Option<RawRollback>>,
    boot: Option<Option<RawBoot>>,
    checks_from: Option<Option<Vec<RawChecksFrom>>>,
    greenboot: Option<Option<RawGreenboot>>,
    checks: Option<&'d Value>,
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
    // One tree for the whole text; each section and check is then read from its own
    // node, so a problem in one does not stop the reading of the others.
    let doc: Value = match serde_yaml::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            cx.document(&e);
            return Err(sorted(cx.problems));
        }
    };
    let mut s = sections(&mut cx, &doc);
    if let Some(Some(v)) = s.version
        && v != 1
    {
        cx.at(&[Seg::key("version")], format!("unsupported policy version {v}; this bootgate reads version 1"));
    }
    let gate = s.gate.map_or(Some(RawGate::default()), |g| g).map(|g| gate(&mut cx, &g));
    let runtime = runtime(&mut cx, &s.runtime.flatten().unwrap_or_default());
    let rollback = super::rollback::validate(&mut cx, s.rollback.as_ref().map(|r| r.as_ref()));
    let server = s.server.flatten().unwrap_or_default();
    let listen = listen(&mut cx, &server);
    let allow_run = server.allow_run.unwrap_or(false);
    let web_config = server.web_config.map(|p| p.0);
    let deadline = gate.as_ref().map(|g| g.deadline);
    // Read before `checks_from`: greenboot.conf says which of its files are disabled.
    let greenboot = super::greenboot::validate(&mut cx, s.greenboot.take().flatten());
    let mut checks = s.checks.map(|node| checks(&mut cx, node, deadline)).unwrap_or_default();
    let written = s.checks.and_then(Value::as_sequence).map_or(0, Vec::len);
    let mut found = 0;
    if let Some(Some(entries)) = &s.checks_from {
        let limit = deadline.unwrap_or(DEFAULT_DEADLINE);
        found = super::checks_from::add(
            &mut cx,
            entries,
            DEFAULT_TIMEOUT.min(limit / 2),
            deadline,
            &greenboot,
            &mut checks,
        );
        if checks.len() > super::MAX_CHECKS {
            let message =
                format!("{} checks in all; the most a policy may hold is {}", checks.len(), super::MAX_CHECKS);
            cx.at(&[Seg::key("checks_from")], message);
        }
    }
    no_checks(&mut cx, s.checks, &s.checks_from, written + found);
    let raw_boot = s.boot.flatten().unwrap_or_default();
    let backend = raw_boot.backend.unwrap_or(Backend::Auto);
    let fallback_command = super::boot::argv(&mut cx, &["boot", "fallback_command"], raw_boot.fallback_command.clone());
    let boot = super::boot::validate(&mut cx, backend, raw_boot);
    super::rollback::fits_backend(&mut cx, backend, &boot, &rollback);
    match gate {
        Some(gate) if cx.problems.is_empty() => Ok(Policy {
            gate,
            runtime,
            rollback,
            backend,
            boot,
            fallback_command,
            listen,
            allow_run,
            web_config,
            greenboot,
            checks,
        }),
        _ => Err(sorted(cx.problems)),
    }
}

/// The one rule a gate cannot do without: something to check. The directories of
/// `checks_from` count with what they hold, so an empty or emptied greenboot tree fails
/// closed instead of passing anything. Counted as written, so a check refused for
/// another reason is not also called missing.
fn no_checks(cx: &mut Ctx, checks: Option<&Value>, checks_from: &Option<Option<Vec<RawChecksFrom>>>, count: usize) {
    let from = matches!(checks_from, Some(Some(_)));
    let unread = checks.is_some_and(|c| !c.is_sequence())
        || matches!(checks_from, Some(None))
        || cx.problems.iter().any(|p| p.key.starts_with("checks_from"));
    if count > 0 || unread {
        return;
    }
    let message = "no checks: an empty gate would pass anything";
    match (checks.is_some(), from) {
        (_, true) => cx.at(
            &[Seg::key("checks_from")],
            format!("{message} (the checks_from directories hold no file, and `checks` lists none)"),
        ),
        (true, false) => cx.at(&[Seg::key("checks")], message),
        (false, false) => {}
    }
}

/// Problems in the order they appear in the file.
fn sorted(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by_key(|p| (p.line, p.column));
    problems
}

/// Reads each top-level section on its own.
fn sections<'d>(cx: &mut Ctx, doc: &'d Value) -> Sections<'d> {
    let mut s = Sections::default();
    let Some(map) = doc.as_mapping() else {
        if doc.is_null() {
            cx.at(&[], "the policy is empty; it needs at least `version` and `checks`");
            return s;
        }
        // Not a mapping at all: the typed reading says what it is instead.
        cx.typed::<RawPolicy>(doc, &[]);
        return s;
    };
    for (key, node) in map {
        let name = match key {
            Value::String(k) => k.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => "?".into(),
        };
        let path = [Seg::Key(name.clone())];
        match name.as_str() {
            "version" => s.version = Some(cx.typed(node, &path)),
            "gate" => s.gate = Some(cx.typed(node, &path)),
            "runtime" => s.runtime = Some(cx.typed(node, &path)),
            "server" => s.server = Some(cx.typed(node, &path)),
            "rollback" => s.rollback = Some(cx.typed(node, &path)),
            "boot" => s.boot = Some(cx.typed(node, &path)),
            "checks_from" => s.checks_from = Some(cx.typed(node, &path)),
            "greenboot" => s.greenboot = Some(cx.typed(node, &path)),
            "checks" => s.checks = Some(node),
            other => {
                let known = TOP_KEYS.map(|k| format!("`{k}`")).join(", ");
                cx.at_key(
                    &path,
                    format!("unknown field `{}`, expected one of {known}", crate::util::redact::quote(other)),
                );
            }
        }
    }
    if s.version.is_none() {
        cx.at(&[Seg::key("version")], "missing field `version`");
    }
    if s.checks.is_none() && s.checks_from.is_none() {
        cx.at(&[Seg::key("checks")], "missing field `checks` (or `checks_from`, directories of check scripts)");
    }
    s
}

fn gate(cx: &mut Ctx, g: &RawGate) -> Gate {
    let deadline = g.deadline.map_or(DEFAULT_DEADLINE, |d| d.0);
    if deadline.is_zero() {
        cx.at(&[Seg::key("gate"), Seg::key("deadline")], "the deadline must be longer than 0s");
    }
    let soak_interval = g.soak_interval.map_or(DEFAULT_SOAK_INTERVAL, |d| d.0);
    if soak_interval < MIN_SOAK_INTERVAL {
        cx.at(
            &[Seg::key("gate"), Seg::key("soak_interval")],
            format!("the soak interval must be at least {}", spelled(MIN_SOAK_INTERVAL)),
        );
    }
    Gate {
        deadline,
        settle: g.settle.map_or(Duration::ZERO, |d| d.0),
        on_failure: g.on_failure.unwrap_or(OnFailure::Reboot),
        reboot_delay: g.reboot_delay.map_or(Duration::from_secs(10), |d| d.0),
        soak: g.soak.map_or(Duration::ZERO, |d| d.0),
        soak_interval,
        max_concurrent: g.max_concurrent.map(|n| at_least_one(cx, &["gate", "max_concurrent"], n) as usize),
        judge: g.judge.unwrap_or_default(),
    }
}

/// `n`, or 1 after reporting a zero at `key`: no check could ever run with no slot.
fn at_least_one(cx: &mut Ctx, key: &[&str], n: u32) -> u32 {
    if n == 0 {
        let path: Vec<Seg> = key.iter().map(|k| Seg::key(k)).collect();
        cx.at(&path, "max_concurrent must be at least 1: no check could run with 0 slots");
        return 1;
    }
    n
}

fn runtime(cx: &mut Ctx, r: &RawRuntime) -> Runtime {
    let interval = r.interval.map_or(Duration::from_secs(60), |d| d.0);
    if interval < MIN_INTERVAL {
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
        max_concurrent: at_least_one(
            cx,
            &["runtime", "max_concurrent"],
            r.max_concurrent.unwrap_or(DEFAULT_RUNTIME_CONCURRENT),
        ) as usize,
    }
}

fn listen(cx: &mut Ctx, server: &RawServer) -> SocketAddr {
    let fallback = SocketAddr::from(([127, 0, 0, 1], 8080));
    let Some(text) = &server.listen else {
        return fallback;
    };
    text.0.parse().unwrap_or_else(|e| {
        cx.at(
            &[Seg::key("server"), Seg::key("listen")],
            format!("`{}` is not an address:port ({e})", crate::util::redact::quote(&text.0)),
        );
        fallback
    })
}

fn checks(cx: &mut Ctx, node: &Value, deadline: Option<Duration>) -> Vec<CheckSpec> {
    let Some(nodes) = node.as_sequence() else {
        cx.typed::<Vec<IgnoredAny>>(node, &[Seg::key("checks")]);
        return Vec::new();
    };
    let path = |i: usize, key: &str| [Seg::key("checks"), Seg::Index(i), Seg::key(key)];
    // Names as written, even of a check rejected for another key: `after` may name it.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let Some(name) = n.get("name").and_then(Value::as_str) else { continue };
        if let Some(why) = super::rules::reserved(name) {
            cx.at(&path(i, "name"), why);
        }
        if let Some(&first) = index.get(name) {
            let line = cx.index.position(&path(first, "name")).map_or(0, |p| p.0);
            cx.at(&path(i, "name"), format!("duplicate check name `{}` (first used on line {line})", quote(name)));
        } else {
            index.insert(name, i);
        }
    }
    let mut specs = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let base = [Seg::key("checks"), Seg::Index(i)];
        let before = cx.problems.len();
        let raw: Option<RawCheck> = cx.typed(n, &base);
        let common = raw.map(|c| common(cx, i, c, deadline, &index));
        let kind_name = n.get("kind").and_then(Value::as_str);
        let Some(kind) = kind_name.and_then(|k| KINDS.iter().find(|e| e.name == k)) else {
            let kind_key = path::render(&path(i, "kind"));
            let flagged = cx.problems[before..].iter().any(|p| p.key == kind_key);
            if let (Some(k), false) = (kind_name, flagged) {
                let known: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
                let message = format!("unknown check kind `{}`; known kinds: {}", quote(k), known.join(", "));
                cx.at(&path(i, "kind"), message);
            }
            continue;
        };
        // The kind reads its keys from the node; a rejection is read again from the
        // check's own copy for a located error (the whole text again would be quadratic).
        let own = serde_yaml::to_string(n).unwrap_or_default();
        let check = match (kind.parse)(&own, &[], Some(n)) {
            Ok(check) => check,
            Err(KindError::Yaml(e)) => {
                cx.relative(&e, &base);
                continue;
            }
            Err(KindError::Key(e)) => {
                cx.at(&[&base[..], &e.key[..]].concat(), e.message);
                continue;
            }
        };
        if let Some(Some(c)) = common {
            let Common { name, critical, timeout, retries, after, interval, start_period } = c;
            let kind = kind.name;
            specs.push(CheckSpec { name, kind, critical, timeout, retries, after, interval, start_period, check });
        }
    }
    if cx.problems.is_empty() {
        report_cycles(cx, &specs);
    }
    specs
}

/// A check's validated common keys.
struct Common {
    name: String,
    critical: bool,
    timeout: Duration,
    retries: u32,
    after: Vec<usize>,
    interval: Option<Duration>,
    start_period: Duration,
}

/// Validates one check's common keys; `None` when one is invalid. Without a known `deadline` (the gate was rejected), timeouts
/// are not compared with it.
fn common(
    cx: &mut Ctx,
    i: usize,
    c: RawCheck,
    deadline: Option<Duration>,
    index: &HashMap<&str, usize>,
) -> Option<Common> {
    let path = |key: &str| [Seg::key("checks"), Seg::Index(i), Seg::key(key)];
    let before = cx.problems.len();
    // A default timeout always leaves room for a retry inside the deadline.
    let limit = deadline.unwrap_or(DEFAULT_DEADLINE);
    let timeout = c.timeout.map_or(DEFAULT_TIMEOUT.min(limit / 2), |d| d.0);
    if let Some(why) = super::rules::timeout_problem(timeout, deadline) {
        cx.at(&path("timeout"), why);
    }
    let interval = c.interval.map(|d| d.0);
    if interval.is_some_and(|i| i < MIN_INTERVAL) {
        cx.at(&path("interval"), "the interval must be at least 1s");
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
    (cx.problems.len() == before).then(|| Common {
        name: c.name.0,
        critical: c.critical.unwrap_or(true),
        timeout,
        retries: c.retries.unwrap_or(DEFAULT_RETRIES),
        after,
        interval,
        start_period: c.start_period.map_or(Duration::ZERO, |d| d.0),
    })
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

fn quote(s: &str) -> String {
    crate::util::redact::quote(s)
}
