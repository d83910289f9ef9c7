//! `bootgate check --format text` as a person sees it: rows and footer that add up
//! (attempts, the time each check took with its retry waits, the gate's time), a
//! progress line on a terminal (a real pty from util-linux `script`), and nothing
//! but the table on a pipe.

mod support;

use std::path::Path;

use support::{Launch, bootgate};

const ERASE: &str = "\r\x1b[2K";

/// A passing disk check and a tcp check on a closed loopback port that fails twice,
/// a second apart (one retry).
fn policy(dir: &Path) -> std::path::PathBuf {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let path = dir.join("policy.yaml");
    let text = format!(
        "version: 1
gate: {{deadline: 20s}}
checks:
  - {{name: root, kind: disk, path: /, min_free_percent: 0}}
  - {{name: net, kind: tcp, timeout: 1s, retries: 1, targets: ['{closed}']}}
"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Seconds in a `7.0 s` / `12.3 ms` / `850 µs` cell.
fn seconds(cell: &str) -> f64 {
    let (number, unit) = cell.split_once(' ').unwrap_or_else(|| panic!("not a time: {cell}"));
    let number: f64 = number.parse().unwrap_or_else(|e| panic!("not a time: {cell}: {e}"));
    match unit {
        "s" => number,
        "ms" => number / 1000.0,
        "µs" => number / 1_000_000.0,
        other => panic!("not a unit of a time: {other} in {cell}"),
    }
}

/// The cells of a table row: columns are two or more spaces apart, a cell holds single ones.
fn cells(line: &str) -> Vec<&str> {
    line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()
}

#[test]
fn on_a_pipe_the_table_adds_up_and_no_progress_is_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let path = policy(dir.path());
    let out = bootgate(&["check", "--format", "text", "--policy", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\r') && !stderr.contains('\x1b') && !stderr.contains("checking:"), "{stderr:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>()[..5],
        ["CHECK", "CRITICAL", "RESULT", "ATTEMPTS", "TIME"]
    );
    let row = cells(lines.iter().find(|l| l.starts_with("net ")).unwrap());
    assert_eq!(row[1..4], ["yes", "fail", "2"], "{table}");
    let net = seconds(row[4]);
    // Two refused connects around a 1 s backoff: the wait is in the check's time.
    assert!((1.0..3.0).contains(&net), "net took {net}s:\n{table}");

    let footer = lines.last().unwrap();
    let (gate, slowest) = footer
        .strip_prefix("verdict: unhealthy (gate failed) in ")
        .and_then(|rest| rest.split_once("; slowest: net "))
        .unwrap_or_else(|| panic!("footer: {footer}"));
    assert!(seconds(gate) >= net, "the gate ({gate}) cannot be shorter than a check in it ({net}s)");
    assert_eq!(slowest, format!("{} over 2 attempts (1.0 s waiting to retry)", row[4]), "{footer}");
}

#[test]
fn on_a_terminal_progress_is_drawn_in_place_and_cleared_before_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = policy(dir.path());
    // `script` gives the command a real pty for stdout and stderr and copies what it wrote.
    let out = Launch::command(&["check", "--format", "text", "--policy", path.to_str().unwrap()])
        .through(support::on_a_terminal)
        .output();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{screen}\n{}", String::from_utf8_lossy(&out.stderr));
    let first = screen.find(&format!("{ERASE}checking: ")).unwrap_or_else(|| panic!("no progress line: {screen:?}"));
    assert!(screen[first..].contains("net attempt 1/2 failed, next in "), "{screen:?}");
    let table = screen.find("CHECK").unwrap_or_else(|| panic!("no table: {screen:?}"));
    let last_erase = screen.rfind(ERASE).unwrap();
    assert!(first < table && last_erase < table, "the progress line is cleared before the table: {screen:?}");
    assert!(!screen[table..].contains("checking:"), "{screen:?}");
    // Refreshed in place, a few times a second: about four lines in the ~1 s gate.
    let draws = screen.matches(&format!("{ERASE}checking: ")).count();
    assert!((2..=12).contains(&draws), "{draws} redraws: {screen:?}");
}
