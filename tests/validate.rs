//! `bootgate validate` as an operator meets it: every independent problem of a file in
//! one run, several files at once, hints for YAML 1.1 habits, and which commands take
//! `--policy`.

mod support;

use std::process::Output;

use support::bootgate;

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Writes each body to its own file in one fresh directory; the guard keeps it alive.
fn files(bodies: &[&str]) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let path = dir.path().join(format!("p{i}.yaml"));
            std::fs::write(&path, body).unwrap();
            path.to_str().unwrap().to_string()
        })
        .collect();
    (dir, paths)
}

/// The problem lines `validate` printed for `path`, without their indent.
fn problems(out: &Output, path: &str) -> Vec<String> {
    let prefix = format!("{path}:");
    text(out).lines().filter_map(|l| l.trim_start().strip_prefix(&prefix).map(String::from)).collect()
}

#[test]
fn every_independent_problem_is_listed_in_one_run() {
    // Each of these once stopped the reading of everything after it.
    let body = "\
version: 1
gate: {deadline: 10}
runtime: {interval: soon}
server: {listen: 127.0.0.1:8080, bogus: 1}
extra: 1
checks:
  - name: a
    kind: tcp
    retries: many
    targets: ['127.0.0.1:1']
  - name: b
    kind: tcp
    timeout: 5
    targets: ['127.0.0.1:1']
  - name: c
    kind: tcp
    tragets: ['127.0.0.1:1']
  - name: d
    kind: disk
    critical: 'yes'
    min_free_percent: 101
  - name: e
    kind: tcp
    targets: ['127.0.0.1:1']
    after: [a]
";
    let (_dir, paths) = files(&[body]);
    let out = bootgate(&["validate", &paths[0]]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let got = problems(&out, &paths[0]);
    let want = [
        "2:18: gate.deadline: duration `10` has no unit",
        "3:21: runtime.interval: invalid duration `soon`",
        "4:34: server.bogus: unknown field `bogus`, expected one of `listen`, `allow_run`, `web_config`",
        "5:1: extra: unknown field `extra`, expected one of `version`, `gate`, `runtime`, `server`, `rollback`, `boot`, `checks`, `checks_from`",
        "9:14: checks[0].retries: invalid type: string \"many\", expected u32",
        "13:14: checks[1].timeout: duration `5` has no unit",
        "17:5: checks[2].tragets: unknown field `tragets`, expected `targets`",
        "20:15: checks[3].critical: invalid type: string \"yes\", expected a boolean",
        "21:23: checks[3].min_free_percent: percentage 101 is outside 0–100",
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (got, want) in got.iter().zip(want) {
        assert!(got.starts_with(want), "expected `{want}`, got `{got}`");
    }
    // `after` naming a rejected check is not a further problem: the check exists.
    assert!(!text(&out).contains("not a check in this policy"), "{}", text(&out));
}

#[test]
fn every_repeated_key_is_listed_and_broken_yaml_is_one_problem() {
    let repeated = "version: 1\nversion: 1\nchecks:\n  - {name: a, kind: tcp, targets: ['127.0.0.1:1'], name: b}\n";
    let broken = "version: 1\nchecks: [\n  - bad\ngate: {deadline: 1}\n";
    let (_dir, paths) = files(&[repeated, broken]);
    let out = bootgate(&["validate", &paths[0]]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let got = problems(&out, &paths[0]);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got[0].starts_with("2:1: duplicate entry with key \"version\""), "{got:?}");
    assert!(got[1].starts_with("4:52: checks[0]: duplicate entry with key \"name\""), "{got:?}");
    let out = bootgate(&["validate", &paths[1]]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert_eq!(problems(&out, &paths[1]).len(), 1, "{}", text(&out));
}

#[test]
fn a_boolean_key_written_the_yaml_1_1_way_gets_a_hint() {
    for (value, hint) in [
        ("yes", "write true or false (YAML 1.2 reads `yes` as a string)"),
        ("on", "write true or false (YAML 1.2 reads `on` as a string)"),
        ("No", "write true or false (YAML 1.2 reads `No` as a string)"),
        ("'true'", "write true or false without quotes"),
        ("1", "write true or false"),
        ("maybe", "write true or false"),
    ] {
        let body = format!(
            "version: 1\nchecks:\n  - name: a\n    kind: tcp\n    critical: {value}\n    targets: ['127.0.0.1:1']\n"
        );
        let (_dir, paths) = files(&[&body]);
        let out = bootgate(&["validate", &paths[0]]);
        assert_eq!(out.status.code(), Some(78), "{value}: {}", text(&out));
        let got = problems(&out, &paths[0]);
        assert_eq!(got.len(), 1, "{value}: {got:?}");
        assert!(got[0].starts_with("5:15: checks[0].critical: invalid type: "), "{value}: {got:?}");
        assert!(got[0].ends_with(&format!("expected a boolean; {hint}")), "{value}: {got:?}");
    }
    // A kind's own boolean key gets the same hint.
    let body = "version: 1\nchecks:\n  - {name: w, kind: http, url: 'http://127.0.0.1:1/', tls_verify: off}\n";
    let (_dir, paths) = files(&[body]);
    let out = bootgate(&["validate", &paths[0]]);
    assert!(text(&out).contains("checks[0].tls_verify: invalid type: string \"off\", expected a boolean; write true or false (YAML 1.2 reads `off` as a string)"), "{}", text(&out));
}

#[test]
fn several_files_are_validated_each_on_its_own() {
    let good = "version: 1\nchecks: [{name: a, kind: tcp, targets: ['127.0.0.1:1']}]\n";
    let two = "version: 1\nchecks:\n  - {name: a, kind: tcp, targets: ['127.0.0.1:1']}\n  - {name: b, kind: disk}\n";
    let bad = "version: 2\nchecks: [{name: a, kind: tcp, targets: ['127.0.0.1:1']}]\n";
    let (dir, paths) = files(&[good, bad, two]);
    let missing = dir.path().join("missing.yaml").to_str().unwrap().to_string();
    let out = bootgate(&["validate", &paths[0], &paths[1], &missing, &paths[2]]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, format!("{}: ok (1 check)\n{}: ok (2 checks)\n", paths[0], paths[2]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:1:10: version: unsupported policy version 2", paths[1])), "{stderr}");
    assert!(stderr.contains(&format!("cannot read policy {missing}")), "{stderr}");
    // All valid: exit 0, one line each.
    let out = bootgate(&["validate", &paths[0], &paths[2]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2, "{}", text(&out));
}

#[test]
fn policy_is_an_option_of_the_commands_that_read_one() {
    let bad = "version: 1\nchecks: [{name: a, kind: tcp, targets: ['127.0.0.1:1'], critical: yes}]\n";
    let (dir, paths) = files(&[bad]);
    let bad = paths[0].as_str();
    let run = dir.path().join("run");
    let run = run.to_str().unwrap();
    // Before or after the command, the named file is read (and here refused).
    for args in [
        vec!["check", "--policy", bad],
        vec!["--policy", bad, "check"],
        vec!["validate", "--policy", bad],
        vec!["--policy", bad, "validate"],
        vec!["run", "--policy", bad, "--run-dir", run, "--state-dir", run],
        vec!["--policy", bad, "serve", "--run-dir", run, "--state-dir", run],
    ] {
        let out = bootgate(&args);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(&format!("{bad}:2:67: checks[0].critical")), "{args:?}: {}", text(&out));
    }
    // Commands that read no policy refuse it rather than ignore it.
    for args in [
        vec!["schema", "--policy", bad],
        vec!["--policy", bad, "schema"],
        vec!["boot-status", "--policy", bad],
        vec!["--policy", bad, "boot-status"],
    ] {
        let out = bootgate(&args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("--policy"), "{args:?}: {}", text(&out));
    }
    let out = bootgate(&["--policy", bad, "schema"]);
    assert!(text(&out).contains("`--policy` is not used by `schema`: it reads no policy"), "{}", text(&out));
    for args in [vec!["--policy", bad, "check", "--policy", bad], vec!["--policy", bad, "validate", bad]] {
        assert_eq!(bootgate(&args).status.code(), Some(64), "{args:?}");
    }
    for (command, help) in [("schema", false), ("boot-status", false), ("check", true), ("validate", true)] {
        let out = bootgate(&[command, "--help"]);
        assert_eq!(text(&out).contains("--policy"), help, "{command} --help: {}", text(&out));
    }
}

#[test]
fn help_says_what_each_format_prints() {
    let out = bootgate(&["check", "--help"]);
    assert!(text(&out).contains("text: a table; json: the verdict document"), "{}", text(&out));
    let out = bootgate(&["boot-status", "--help"]);
    assert!(text(&out).contains("text: one line a partition; json: the boot status document"), "{}", text(&out));
}

#[test]
fn every_boot_backend_validates_and_an_unknown_one_is_refused() {
    let body =
        |b: &str| format!("version: 1\nboot: {{backend: {b}}}\nchecks:\n  - {{name: root, kind: disk, path: /}}\n");
    let names = ["auto", "flatcar", "bless-boot", "rauc", "grubenv", "efibootguard", "uboot", "none"];
    let mut bodies: Vec<String> = names.iter().map(|b| body(b)).collect();
    bodies.push(body("command, command: {mark_good: [/usr/libexec/myupdater, commit]}"));
    let (_dir, paths) = files(&bodies.iter().map(String::as_str).collect::<Vec<_>>());
    let mut args = vec!["validate"];
    args.extend(paths.iter().map(String::as_str));
    let out = bootgate(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (_dir, paths) = files(&[&body("lilo")]);
    let out = bootgate(&["validate", &paths[0]]);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        problems(&out, &paths[0]),
        [
            "2:17: boot.backend: unknown variant `lilo`, expected one of `auto`, `flatcar`, `bless-boot`, `rauc`, `grubenv`, `efibootguard`, `uboot`, `command`, `none`"
        ]
    );
}

#[test]
fn a_rollback_window_is_refused_for_a_backend_that_cannot_revert() {
    let checks = "checks:\n  - {name: root, kind: disk, path: /}\n";
    let rollback = "rollback: {window: 10m, failing_for: 1m}\n";
    let policy = |boot: &str| format!("version: 1\nboot: {boot}\n{rollback}{checks}");
    let refused = [
        policy("{backend: none}"),
        policy("{backend: command, command: {mark_good: [/bin/true], mark_bad: [/bin/false]}}"),
    ];
    for body in &refused {
        let (_dir, paths) = files(&[body]);
        let out = bootgate(&["validate", &paths[0]]);
        assert_eq!(out.status.code(), Some(78), "{body}: {}", text(&out));
        let got = problems(&out, &paths[0]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("3:20: rollback.window: "), "{got:?}");
        assert!(got[0].contains("would never revert"), "{got:?}");
    }
    // Every backend that can revert keeps its window, `auto` included (judged on the device).
    let accepted: Vec<String> = ["auto", "flatcar", "bless-boot", "rauc", "grubenv", "efibootguard", "uboot"]
        .iter()
        .map(|b| policy(&format!("{{backend: {b}}}")))
        .chain([policy("{backend: command, command: {mark_good: [/bin/true], revert: [/usr/libexec/up, rollback]}}")])
        .collect();
    let (_dir, paths) = files(&accepted.iter().map(String::as_str).collect::<Vec<_>>());
    let mut args = vec!["validate"];
    args.extend(paths.iter().map(String::as_str));
    let out = bootgate(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_retry_or_a_hold_is_refused_for_a_backend_that_cannot_do_it_and_their_values_are_checked() {
    let checks = "checks:\n  - {name: root, kind: disk, path: /}\n";
    let policy = |boot: &str, rollback: &str| format!("version: 1\nboot: {boot}\nrollback: {rollback}\n{checks}");
    let retry = "{retry_after_environment: {max: 1, delay: 20s}}";
    let hold = "{hold_after: 2, hold_for: 12h}";
    let command = "{backend: command, command: {mark_good: [/bin/true], mark_bad: [/bin/false]}}";
    let mut refused: Vec<(String, &str)> = Vec::new();
    for b in ["none", "bless-boot", "rauc", "grubenv", "efibootguard", "uboot"] {
        refused.push((
            policy(&format!("{{backend: {b}}}"), retry),
            "rollback.retry_after_environment: retry_after_environment is not supported by the",
        ));
    }
    refused.push((
        policy(command, retry),
        "rollback.retry_after_environment: retry_after_environment is not supported by the command backend",
    ));
    refused.push((
        policy("{backend: none}", hold),
        "rollback.hold_after: hold_after is not supported by the none backend",
    ));
    refused.push((policy(command, hold), "rollback.hold_after: hold_after is not supported by the command backend"));
    refused.push((
        policy("{backend: flatcar}", "{retry_after_environment: {max: 0}}"),
        "rollback.retry_after_environment.max: max must be at least 1",
    ));
    refused.push((
        policy("{backend: flatcar}", "{retry_after_environment: {delay: 0s}}"),
        "rollback.retry_after_environment.delay: delay must be at least 1s",
    ));
    refused.push((
        policy("{backend: flatcar}", "{retry_after_environment: {tries: 2}}"),
        "rollback.retry_after_environment.tries: unknown field `tries`",
    ));
    refused
        .push((policy("{backend: flatcar}", "{hold_after: 0}"), "rollback.hold_after: hold_after must be at least 1"));
    refused.push((
        policy("{backend: flatcar}", "{hold_for: 1h}"),
        "rollback.hold_for: hold_for has no effect without `hold_after`",
    ));
    refused.push((
        policy("{backend: flatcar}", "{hold_after: 1, hold_for: 0s}"),
        "rollback.hold_for: hold_for must be longer than 0s",
    ));
    refused.push((
        policy("{backend: flatcar}", "{hold_after: 1, failing_for: 1m}"),
        "rollback.failing_for: failing_for has no effect without a `window`",
    ));
    for (body, want) in &refused {
        let (_dir, paths) = files(&[body]);
        let out = bootgate(&["validate", &paths[0]]);
        assert_eq!(out.status.code(), Some(78), "{body}: {}", text(&out));
        let got = problems(&out, &paths[0]);
        assert_eq!(got.len(), 1, "{body}: {got:?}");
        assert!(got[0].contains(want), "{body}: {got:?} lacks {want}");
    }
    // Without a window, a retry or a hold is a rollback section of its own; flatcar and
    // auto can do both, every backend with a fallback can hold.
    let mut accepted = vec![
        policy("{backend: flatcar}", retry),
        policy("{backend: auto}", retry),
        policy("{backend: flatcar}", "{window: 10m, failing_for: 1m, retry_after_environment: {}, hold_after: 1}"),
        format!("version: 1\ngate: {{judge: regression}}\n{checks}"),
        format!("version: 1\ngate: {{judge: absolute}}\n{checks}"),
    ];
    for b in ["auto", "flatcar", "bless-boot", "rauc", "grubenv", "efibootguard", "uboot"] {
        accepted.push(policy(&format!("{{backend: {b}}}"), hold));
    }
    let (_dir, paths) = files(&accepted.iter().map(String::as_str).collect::<Vec<_>>());
    let mut args = vec!["validate"];
    args.extend(paths.iter().map(String::as_str));
    let out = bootgate(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (_dir, paths) = files(&[&format!("version: 1\ngate: {{judge: relative}}\n{checks}")]);
    let out = bootgate(&["validate", &paths[0]]);
    let got = problems(&out, &paths[0]);
    assert!(got.len() == 1 && got[0].contains("gate.judge: unknown variant `relative`"), "{got:?}");
}

#[test]
fn the_command_backend_is_validated_like_every_other_key() {
    let checks = "checks:\n  - {name: root, kind: disk, path: /}\n";
    let cases = [
        ("{backend: command}", "2:17: boot.backend: the command backend needs `boot.command`"),
        ("{backend: command, command: {mark_bad: [x]}}", "2:35: boot.command.mark_good: missing field `mark_good`"),
        ("{backend: command, command: {mark_good: []}}", "2:47: boot.command.mark_good: the list is empty"),
        ("{backend: command, command: {mark_good: ['']}}", "2:47: boot.command.mark_good: the program name is empty"),
        (
            "{backend: command, command: {mark_good: [x], timeout: 10ms}}",
            "2:61: boot.command.timeout: the timeout must be at least 1s",
        ),
        (
            "{backend: command, command: {mark_good: [x], shell: true}}",
            "2:52: boot.command.shell: unknown field `shell`",
        ),
        (
            "{backend: rauc, command: {mark_good: [x]}}",
            "2:32: boot.command: boot.command is read only by the command backend",
        ),
    ];
    for (boot, want) in cases {
        let body = format!("version: 1\nboot: {boot}\n{checks}");
        let (_dir, paths) = files(&[&body]);
        let out = bootgate(&["validate", &paths[0]]);
        assert_eq!(out.status.code(), Some(78), "{body}: {}", text(&out));
        let got = problems(&out, &paths[0]);
        assert!(got.len() == 1 && got[0].starts_with(want), "{boot}: want {want}, got {got:?}");
    }
}

#[test]
fn the_web_config_a_policy_names_is_validated_with_it() {
    let checks = "checks: [{name: a, kind: tcp, targets: ['127.0.0.1:1']}]\n";
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let web_path = web.to_str().unwrap();
    let (_policies, paths) = files(&[&format!("version: 1\nserver: {{web_config: '{web_path}'}}\n{checks}")]);
    std::fs::write(&web, "basic_auth_users:\n  alice: hunter2hunter2\ntls_server_config:\n  cert_fil: x\n").unwrap();
    let out = bootgate(&["validate", &paths[0]]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let got = problems(&out, web_path);
    assert_eq!(got.len(), 2, "{}", text(&out));
    assert!(got[0].starts_with("2:10: basic_auth_users.alice: not a bcrypt hash"), "{got:?}");
    assert!(got[1].starts_with("4:3: tls_server_config.cert_fil: unknown field `cert_fil`"), "{got:?}");
    assert!(!text(&out).contains("hunter2hunter2"), "the plaintext is never repeated: {}", text(&out));

    let hash = "$2y$04$Mr0pDo0cDFcA6T0FXCRMb.CoV2c9Q3k8O6PmAOeJt7ZTk2Mp6m4rW";
    std::fs::write(&web, format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
    let out = bootgate(&["validate", &paths[0]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("web.yml: ok (plain HTTP, basic auth: 1 user)"), "{}", text(&out));
    assert!(!text(&out).contains(hash), "{}", text(&out));
}

#[test]
fn a_network_listen_without_a_web_config_is_warned_about() {
    let checks = "checks: [{name: a, kind: tcp, targets: ['127.0.0.1:1']}]\n";
    let open = format!("version: 1\nserver: {{listen: '0.0.0.0:8080'}}\n{checks}");
    let local = format!("version: 1\nserver: {{listen: '127.0.0.1:8080'}}\n{checks}");
    let (_dir, paths) = files(&[&open, &local]);
    let out = bootgate(&["validate", &paths[0]]);
    assert_eq!(out.status.code(), Some(0), "a warning, not a refusal: {}", text(&out));
    assert!(text(&out).contains("warning: ") && text(&out).contains("no server.web_config"), "{}", text(&out));
    let out = bootgate(&["validate", &paths[1]]);
    assert!(!text(&out).contains("warning"), "{}", text(&out));
}
