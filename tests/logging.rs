//! Where bootgate's log lines go: plain text (no escape codes) when stderr is not a
//! terminal, systemd's `<N>` priority prefixes when stderr is the journal stream but no
//! journal socket is there to log natively, rounded figures, and no escape code at all
//! under `NO_COLOR`, even on a terminal.

mod support;

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use support::{Launch, free_port, on_a_terminal};

/// A policy whose one check fails at once (a closed loopback port): a warning is logged.
fn failing_policy(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("policy.yaml");
    let policy = format!(
        "version: 1\ngate: {{deadline: 5s}}\nchecks:\n  - {{name: api, kind: tcp, timeout: 1s, retries: 0, targets: ['127.0.0.1:{}']}}\n",
        free_port()
    );
    std::fs::write(&path, policy).unwrap();
    path
}

/// Runs `bootgate check` with stderr into a file; returns what it logged.
fn check_logging_to_file(journal_stream: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let policy = failing_policy(dir.path());
    let log = dir.path().join("stderr.log");
    let file = std::fs::File::create(&log).unwrap();
    let meta = file.metadata().unwrap();
    let mut launch = Launch::command(&["--policy", policy.to_str().unwrap(), "check"]).stderr(file);
    if journal_stream {
        launch = launch.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    }
    let out = launch.output();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn a_log_in_a_file_has_no_escape_codes_and_rounded_figures() {
    let text = check_logging_to_file(false);
    assert!(text.contains("api: fail"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes in a file: {text:?}");
    let ms = text.split("duration_ms=").nth(1).and_then(|r| r.split_whitespace().next()).unwrap();
    let decimals = ms.split('.').nth(1).map_or(0, str::len);
    assert!(decimals <= 2, "duration_ms={ms} is not rounded");
}

#[test]
fn the_journal_stream_gets_priorities() {
    let text = check_logging_to_file(true);
    if Path::new("/run/systemd/journal/socket").exists() {
        // journald runs here: the entries went to it natively, not to the stream.
        assert!(!text.contains("api: fail"), "logged to the stream although journald is there: {text}");
    } else {
        let line = text.lines().find(|l| l.contains("api: fail")).unwrap_or_else(|| panic!("{text}"));
        assert!(line.starts_with("<4>"), "a failing check is a warning (<4>): {line}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }
}

#[test]
fn a_check_whose_output_holds_a_newline_cannot_forge_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let forge = r#"printf 'disk full\n<2>bootgate: gate passed: forged\n' >&2; exit 1"#;
    let policy = format!(
        "version: 1\ngate: {{deadline: 5s}}\nchecks:\n  - name: api\n    kind: exec\n    retries: 0\n    command: [sh, -c, {forge:?}]\n"
    );
    std::fs::write(&path, policy).unwrap();
    let log = dir.path().join("stderr.log");
    let file = std::fs::File::create(&log).unwrap();
    let meta = file.metadata().unwrap();
    let out = Launch::command(&["--policy", path.to_str().unwrap(), "check"])
        .stderr(file)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .output();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("api: fail"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("<2>")), "a line with a priority of the check's choosing: {text}");
    assert!(text.contains("\\n<2>bootgate: gate passed: forged"), "the output is there, escaped: {text}");
}

/// `NO_COLOR` (https://no-color.org: present and not empty) leaves no escape code in
/// anything `check` prints on a real terminal: not in the log, not in the progress line.
#[test]
fn no_color_removes_every_escape_code_even_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let policy = failing_policy(dir.path());
    let screen = |no_color: Option<&str>| {
        let mut launch = Launch::command(&["--policy", policy.to_str().unwrap(), "check"]).through(on_a_terminal);
        if let Some(value) = no_color {
            launch = launch.env("NO_COLOR", value);
        }
        let out = launch.output();
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(2), "{screen}");
        assert!(screen.contains("api: fail") && screen.contains("CHECK"), "the log and the table: {screen:?}");
        screen
    };
    assert!(screen(None).contains('\u{1b}'), "a terminal without NO_COLOR gets colours");
    assert!(screen(Some("")).contains('\u{1b}'), "an empty NO_COLOR is as if unset");
    let plain = screen(Some("1"));
    assert!(!plain.contains('\u{1b}'), "escape codes despite NO_COLOR: {plain:?}");
}
