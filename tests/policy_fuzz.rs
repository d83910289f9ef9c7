//! Seeded mutation fuzzing of the policy parser: thousands of broken variants of valid
//! policies never panic, never take long, and every rejection is located. The seeds
//! are fixed, so a failure is reproducible from the seed and input it prints.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use bootgate::policy::{PolicyError, parse};
use support::bootgate;

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const INLINE: &str = "version: 1
gate:
  deadline: 30s
  settle: 0s
  on_failure: stay
runtime:
  interval: 5s
  failure_threshold: 2
server:
  listen: 127.0.0.1:8080
checks:
  - name: port
    kind: tcp
    targets: [\"127.0.0.1:1\", \"[::1]:2\"]
    timeout: 1s
  - name: web
    kind: http
    url: http://127.0.0.1:1/health
    expect_status: 200-299
    headers: {X-A: b}
    after: [port]
  - name: cmd
    kind: exec
    command: [\"true\"]
    warn_exit_codes: [3]
    critical: false
  - name: root
    kind: disk
    path: /
    min_free_percent: 5
";

const VALUES: &[&str] = &[
    "0s",
    "-1s",
    "18446744073709551615s",
    "292277026596y",
    "31days",
    "1e400",
    "99999999999999999999999999",
    "-9223372036854775809",
    "null",
    "~",
    "true",
    "[]",
    "{}",
    "\"\"",
    "'  x '",
    "*nowhere",
    "&a [1, 2]",
    "!!binary aGk=",
    "!custom x",
    ".nan",
    "0x1F",
    "\"\\u0000\"",
    "名前",
    "🦀🦀",
    "a: b: c",
    "[unclosed",
    "{a: 1, a: 2}",
    "| \n  block",
    "127.0.0.1:99999",
    "http://user:secret@127.0.0.1/",
];

const KEYS: &[&str] = &[
    "name",
    "kind",
    "after",
    "timeout",
    "retries",
    "critical",
    "targets",
    "bogus",
    "<<",
    "? complex",
    "version",
    "checks",
];

const JUNK: &[&str] = &[
    "\t", ":", "- ", "#", "&", "*", "!", "%", "@", "`", "{", "}", "[", "]", ",", "\"", "'", "|", ">", "\u{feff}",
    "\u{2028}", "é", "\u{0}",
];

/// One mutation of `text`, chosen by `rng`.
fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let n = lines.len().max(1);
    let at = rng.below(n);
    match rng.below(10) {
        0 if !lines.is_empty() => {
            lines.remove(at);
        }
        1 if !lines.is_empty() => {
            let line = lines[at].clone();
            lines.insert(at, line);
        }
        2 if lines.len() > 1 => {
            let other = rng.below(n);
            lines.swap(at, other);
        }
        3 => {
            // Replace the value after a key.
            if let Some(line) = lines.get_mut(at) {
                if let Some(i) = line.find(": ") {
                    line.truncate(i + 2);
                    line.push_str(rng.pick(VALUES));
                }
            }
        }
        4 => {
            let indent = " ".repeat(rng.below(7));
            let line = format!("{indent}{}: {}", rng.pick(KEYS), rng.pick(VALUES));
            lines.insert(at, line);
        }
        5 => {
            if let Some(line) = lines.get_mut(at) {
                let mut i = rng.below(line.len() + 1);
                while !line.is_char_boundary(i) {
                    i -= 1;
                }
                line.insert_str(i, rng.pick(JUNK));
            }
        }
        6 => {
            let depth = 1 + rng.below(300);
            let (open, close) = if rng.below(2) == 0 { ("[", "]") } else { ("{a: ", "}") };
            lines.insert(at, format!("deep: {}1{}", open.repeat(depth), close.repeat(depth)));
        }
        7 => {
            // Anchors and aliases, including a small billion-laughs.
            let fans = 2 + rng.below(12);
            let mut block = vec![format!("l0: &l0 [{}]", vec!["x"; fans].join(", "))];
            for i in 1..1 + rng.below(8) {
                block.push(format!("l{i}: &l{i} [{}]", vec![format!("*l{}", i - 1); fans].join(", ")));
            }
            lines.splice(at..at, block);
        }
        8 => {
            let line = format!("    {}: {}", rng.pick(KEYS), "9".repeat(1 + rng.below(400)));
            lines.insert(at, line);
        }
        _ => {
            // A run of random characters, unicode included.
            let len = 1 + rng.below(40);
            let junk: String = (0..len)
                .map(|_| char::from_u32(rng.below(0x3000) as u32).filter(|c| *c != '\r').unwrap_or('?'))
                .collect();
            lines.insert(at, junk);
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn bases() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bases = vec![INLINE.to_string(), bootgate::policy::DEFAULT_POLICY.to_string()];
    bases.push(std::fs::read_to_string(root.join("policy/piccolo.yaml")).unwrap());
    bases
}

/// The generated cases: (seed, input), the same on every run.
fn cases(count: u64) -> Vec<(u64, String)> {
    let bases = bases();
    (1..=count)
        .map(|seed| {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut text = bases[rng.below(bases.len())].clone();
            for _ in 0..1 + rng.below(4) {
                text = mutate(&text, &mut rng);
            }
            (seed, text)
        })
        .collect()
}

#[test]
fn mutated_policies_never_panic_hang_or_go_unlocated() {
    let started = Instant::now();
    let (mut accepted, mut rejected) = (0, 0);
    for (seed, input) in cases(3000) {
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| parse(&input, "fuzz.yaml")));
        let took = t.elapsed();
        let result = result.unwrap_or_else(|_| panic!("seed {seed}: parse panicked on:\n{input}"));
        assert!(took < Duration::from_secs(10), "seed {seed}: parse took {took:?} on:\n{input}");
        match result {
            Ok(_) => accepted += 1,
            Err(PolicyError::Invalid { problems, .. }) => {
                rejected += 1;
                assert!(!problems.is_empty(), "seed {seed}: rejected without a problem:\n{input}");
                for p in &problems {
                    assert!(p.line >= 1 && p.column >= 1, "seed {seed}: unlocated {p:?} in:\n{input}");
                }
            }
            Err(other) => panic!("seed {seed}: {other} on:\n{input}"),
        }
    }
    // Both outcomes occur, or the mutations are not exercising the validator.
    assert!(accepted > 50 && rejected > 1000, "accepted {accepted}, rejected {rejected}");
    assert!(started.elapsed() < Duration::from_secs(120), "fuzzing took {:?}", started.elapsed());
}

#[test]
fn the_binary_exits_78_with_a_location_on_mutated_policies() {
    let dir = tempfile::tempdir().unwrap();
    for (seed, input) in cases(3000).into_iter().step_by(100) {
        let path = dir.path().join(format!("case-{seed}.yaml"));
        std::fs::write(&path, &input).unwrap();
        let path = path.to_str().unwrap();
        let out = bootgate(&["validate", path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(78) => {
                let located =
                    stderr.lines().filter_map(|l| l.trim_start().strip_prefix(&format!("{path}:"))).any(|rest| {
                        let mut parts = rest.splitn(3, ':');
                        let n = |s: Option<&str>| s.and_then(|s| s.parse::<usize>().ok()).is_some_and(|n| n >= 1);
                        n(parts.next()) && n(parts.next())
                    });
                assert!(located, "seed {seed}: no `{path}:LINE:COL:` in:\n{stderr}\ninput:\n{input}");
            }
            code => panic!("seed {seed}: exit {code:?}:\n{stderr}\ninput:\n{input}"),
        }
    }
}
