//! `bootgate generate` (hidden): shell completions and man pages made from this binary's
//! own command line, so a package always ships files that match the binary beside them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Subcommand};
use clap_complete::Shell;

use super::Cli;
use crate::exit;

/// Generate shell completions and man pages from this command line (for packaging).
#[derive(Debug, Subcommand)]
enum Generate {
    /// Print the completion script for SHELL.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write bootgate.1 and one page per command (bootgate-run.1, …) into DIR.
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// The name of the hidden command.
pub(super) const NAME: &str = "generate";

/// `cmd` with the hidden `generate` command added: parsed, but never shown in help,
/// completions or man pages (those are made from [`Cli`] alone).
pub(super) fn with_hidden(cmd: clap::Command) -> clap::Command {
    // The about line is the doc comment of `Generate`.
    let generate = clap::Command::new(NAME).hide(true).subcommand_required(true);
    cmd.subcommand(Generate::augment_subcommands(generate))
}

/// Runs `generate` from its matches and returns the exit code.
pub(super) fn main(matches: &ArgMatches) -> i32 {
    let what = match Generate::from_arg_matches(matches) {
        Ok(what) => what,
        Err(e) => {
            let _ = e.print();
            return exit::USAGE;
        }
    };
    match what {
        Generate::Completions { shell } => completions(shell),
        Generate::Man { dir } => man(&dir),
    }
}

fn completions(shell: Shell) -> i32 {
    // Into a buffer first: clap_complete panics on a failed write, a closed pipe included.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "bootgate", &mut script);
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("bootgate: cannot write the {shell} completions: {e}");
            exit::CANT_CREATE
        }
    }
}

fn man(dir: &Path) -> i32 {
    // As clap_mangen::generate_to, but every page's footer names bootgate and its version
    // (a command's own page would otherwise say only "run").
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let source = format!("bootgate {}", env!("CARGO_PKG_VERSION"));
    match std::fs::create_dir_all(dir).and_then(|()| pages(cmd, &source, dir)) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("bootgate: cannot write the man pages into {}: {e}", dir.display());
            exit::CANT_CREATE
        }
    }
}

/// Writes the page of `cmd` and of each command below it.
fn pages(cmd: clap::Command, source: &str, dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        pages(sub, source, dir)?;
    }
    clap_mangen::Man::new(cmd).source(source).generate_to(dir)?;
    Ok(())
}
