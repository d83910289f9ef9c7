//! A huge value in the policy is quoted shortened in its rejection, whichever key
//! holds it and whichever layer (parser, common keys, kind) rejects it, for every
//! registered check kind.

mod support;

use support::bootgate;

const HUGE: usize = 100_000;

/// Checks with a huge value (`HUGE` stands for it) in a key every check has.
const COMMON: &[&str] = &[
    "{name: 'HUGE', kind: disk}",
    "{name: a, kind: disk, after: ['HUGE']}",
    "{name: a, kind: disk, critical: 'HUGE'}",
    "{name: a, kind: disk, timeout: '1HUGE'}",
    "{name: a, kind: 'HUGE'}",
];

/// Checks of each kind with a huge value in one of its own keys.
const BY_KIND: &[(&str, &str)] = &[
    ("disk", "{name: a, kind: disk, path: 'HUGE'}"),
    ("dns", "{name: a, kind: dns, host: 'HUGE '}"),
    ("dns", "{name: a, kind: dns, host: 'HUGE:1'}"),
    ("tcp", "{name: a, kind: tcp, targets: ['HUGE']}"),
    ("http", "{name: a, kind: http, url: 'http://u:p@HUGE:99999/'}"),
    ("http", "{name: a, kind: http, url: 'http://h/', method: 'HUGE'}"),
    ("http", "{name: a, kind: http, url: 'http://h/', expect_status: 'HUGE'}"),
    ("systemd", "{name: a, kind: systemd, unit: 'HUGE'}"),
    ("exec", "{name: a, kind: exec, command: [echo, \"HUGE\\0\"]}"),
    ("containers", "{name: a, kind: containers, require_running: ['-HUGE']}"),
    ("docker", "{name: a, kind: docker, socket: 'HUGE'}"),
    ("tpm", "{name: a, kind: tpm, tcti: 'HUGE'}"),
    ("tpm", "{name: a, kind: tpm, pcrs: {sha256: [0]}, absent: 'HUGE'}"),
];

#[test]
fn huge_values_are_shortened_in_every_message() {
    let names: Vec<&str> = bootgate::checks::KINDS.iter().map(|k| k.name).collect();
    let without: Vec<&&str> = names.iter().filter(|n| !BY_KIND.iter().any(|(kind, _)| kind == *n)).collect();
    assert!(without.is_empty(), "kinds without a case of their own: {without:?}");
    let unknown: Vec<&str> = BY_KIND.iter().map(|(kind, _)| *kind).filter(|k| !names.contains(k)).collect();
    assert!(unknown.is_empty(), "cases of kinds that do not exist: {unknown:?}");

    let v = "v".repeat(HUGE);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let mut wrong = Vec::new();
    for case in COMMON.iter().chain(BY_KIND.iter().map(|(_, case)| case)) {
        let case = case.replace("HUGE", &v);
        std::fs::write(&path, format!("version: 1\nchecks:\n  - {case}\n")).unwrap();
        let out = bootgate(&["validate", path.to_str().unwrap()]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let shown = &case[..case.len().min(60)];
        let head = &text[..text.len().min(600)];
        if out.status.code() != Some(78) || text.len() > 1200 || !text.contains("bytes)") {
            wrong.push(format!("{shown}: exit {:?}, {} bytes of output:\n{head}", out.status.code(), text.len()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
