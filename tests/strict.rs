//! A huge value in the policy is quoted shortened in its rejection, whichever key
//! holds it and whichever layer (parser, common keys, kind) rejects it.

mod support;

use support::bootgate;

const HUGE: usize = 100_000;

#[test]
fn huge_values_are_shortened_in_every_message() {
    let v = "v".repeat(HUGE);
    let cases = [
        format!("{{name: '{v}', kind: disk}}"),
        format!("{{name: a, kind: disk, after: ['{v}']}}"),
        format!("{{name: a, kind: disk, critical: '{v}'}}"),
        format!("{{name: a, kind: disk, timeout: '1{v}'}}"),
        format!("{{name: a, kind: disk, path: '{v}'}}"),
        format!("{{name: a, kind: '{v}'}}"),
        format!("{{name: a, kind: dns, host: '{v} '}}"),
        format!("{{name: a, kind: dns, host: '{v}:1'}}"),
        format!("{{name: a, kind: tcp, targets: ['{v}']}}"),
        format!("{{name: a, kind: http, url: 'http://u:p@{v}:99999/'}}"),
        format!("{{name: a, kind: http, url: 'http://h/', method: '{v}'}}"),
        format!("{{name: a, kind: http, url: 'http://h/', expect_status: '{v}'}}"),
        format!("{{name: a, kind: systemd, unit: '{v}'}}"),
        format!("{{name: a, kind: exec, command: [echo, \"{v}\\0\"]}}"),
        format!("{{name: a, kind: containers, require_running: ['-{v}']}}"),
        format!("{{name: a, kind: tpm, tcti: '{v}'}}"),
        format!("{{name: a, kind: tpm, pcrs: {{sha256: [0]}}, absent: '{v}'}}"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let mut wrong = Vec::new();
    for case in cases {
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
