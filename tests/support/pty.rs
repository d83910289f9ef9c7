//! A real pseudo-terminal: util-linux `script` runs a command with a pty as its
//! stdin, stdout and stderr, and copies everything it wrote to its own stdout.

use std::ffi::OsString;
use std::process::Command;

/// `argv` (a command line such as [`super::Launch::through`] hands over) run on a terminal.
pub fn on_a_terminal(argv: Vec<OsString>) -> Command {
    let line: Vec<String> = argv
        .iter()
        .map(|a| {
            let a = a.to_str().expect("a command line in UTF-8");
            format!("'{}'", a.replace('\'', r"'\''"))
        })
        .collect();
    let mut cmd = Command::new(super::find_binary("script", "bsdutils"));
    cmd.args(["-qfec", &line.join(" "), "/dev/null"]);
    cmd
}
