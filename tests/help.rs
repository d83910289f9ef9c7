//! `bootgate --help` lists every environment variable bootgate reads and every exit
//! code it returns, both taken from the source here, so a new one cannot go unlisted.

mod support;

use std::path::Path;

use support::bootgate;

/// Variables read for bootgate by the crates it uses, which its own source only hands
/// on: sd-notify (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
const READ_BY_CRATES: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The quoted SCREAMING_CASE names in `text`.
fn names(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.len() > 2 && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .map(str::to_string)
        .collect()
}

/// Every variable the source reads: `var("X")`, `var_os("X")`, clap's `env = "X"`,
/// `from_env("X")`, a `const …_ENV: &str = "X"`, and a list of names mapped through
/// `var_os` a few lines below it.
fn read_by_source() -> Vec<(String, String)> {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut found = Vec::new();
    for (file, text) in &files {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let mut hits = Vec::new();
            for call in ["var(\"", "var_os(\"", "env = \"", "from_env(\"", "_ENV: &str = \""] {
                for (at, _) in code.match_indices(call) {
                    hits.extend(names(&code[at + call.len() - 1..]).into_iter().take(1));
                }
            }
            if code.contains("(std::env::var_os)") || code.contains("(std::env::var)") {
                hits.extend(lines[i.saturating_sub(3)..i].iter().flat_map(|l| names(l)));
            }
            found.extend(hits.into_iter().map(|name| (name, format!("{file}:{}", i + 1))));
        }
    }
    found
}

#[test]
fn help_lists_every_environment_variable_the_source_reads() {
    let out = bootgate(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    let (_, env) = help.split_once("\nEnvironment:\n").unwrap_or_else(|| panic!("no Environment section:\n{help}"));
    let env = env.split("\n\n").next().unwrap();
    let read = read_by_source();
    // The scan itself is proven on names it must find.
    for known in ["BOOTGATE_POLICY", "BOOTGATE_STATE_DIR", "BOOTGATE_INTERVAL", "DOCKER_HOST", "SYSTEMD_ESP_PATH"] {
        assert!(read.iter().any(|(n, _)| n == known), "the scan missed {known}: {read:?}");
    }
    let listed = |name: &str| env.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| w == name);
    for (name, at) in &read {
        assert!(listed(name), "{name} (read at {at}) is not in --help's Environment:\n{env}");
    }
    for name in READ_BY_CRATES {
        assert!(listed(name), "{name} is not in --help's Environment:\n{env}");
    }
}

#[test]
fn help_lists_every_exit_code() {
    let help = String::from_utf8_lossy(&bootgate(&["--help"]).stdout).into_owned();
    let (_, codes) = help.split_once("\nExit codes:\n").unwrap_or_else(|| panic!("no Exit codes section:\n{help}"));
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let (_, module) = lib.split_once("pub mod exit {").expect("the exit module in src/lib.rs");
    let consts: Vec<(&str, &str)> = module
        .lines()
        .take_while(|l| l.trim() != "}")
        .filter_map(|l| l.trim().strip_prefix("pub const ")?.strip_suffix(';')?.split_once(": i32 = "))
        .collect();
    assert!(consts.len() >= 5, "the scan of src/lib.rs found {consts:?}");
    for (name, code) in consts {
        let line = codes.lines().find(|l| l.split_whitespace().next() == Some(code));
        let words = line.unwrap_or_else(|| panic!("exit code {code} ({name}) is not in --help:\n{codes}"));
        assert!(words.split_whitespace().count() > 1, "exit code {code} says nothing: {words}");
    }
}
