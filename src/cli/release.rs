//! `bootgate release [VERSION]`: lifts a hold on updates. It removes the hold file update
//! agents condition on, and records the release in the state dir, so the next boot counts
//! only the failures that come after it and does not hold the same version again.

use std::path::Path;
use std::time::SystemTime;

use crate::exit;
use crate::record::hold;

/// Lifts the hold in `run_dir` (only when it is on `version`, if one is named) and
/// records the release in `state_dir`; returns the exit code.
pub fn release(version: Option<&str>, run_dir: &Path, state_dir: &Path) -> i32 {
    let file = run_dir.join(hold::FILE);
    let held = match hold::read(run_dir) {
        Ok(held) => held,
        Err(e) => {
            eprintln!("bootgate release: cannot read the hold ({e}); removing it");
            None
        }
    };
    if let (Some(h), Some(v)) = (&held, version)
        && h.version != v
    {
        eprintln!(
            "bootgate release: the hold in {} is on version {}, not {v}; nothing lifted",
            file.display(),
            h.version
        );
        return exit::USAGE;
    }
    let Some(released) = version.map(str::to_string).or_else(|| held.as_ref().map(|h| h.version.clone())) else {
        return match hold::remove(run_dir) {
            Ok(_) => {
                println!("no hold on updates is in force ({} does not exist)", file.display());
                exit::OK
            }
            Err(e) => cannot(&file, &e),
        };
    };
    if let Err(e) = hold::record_release(state_dir, &released, SystemTime::now()) {
        eprintln!(
            "bootgate release: cannot record the release in {}: {e}; the next boot would hold {released} again",
            state_dir.join(hold::RELEASED).display()
        );
        return exit::CANT_CREATE;
    }
    match hold::remove(run_dir) {
        Ok(true) => {
            let what = held.map(|h| format!(" (held until {}, after {} failure(s))", h.until, h.failures));
            println!(
                "lifted the hold on updates of {released}{}; update agents may start again \
                 (e.g. systemctl start update-engine)",
                what.unwrap_or_default()
            );
            exit::OK
        }
        Ok(false) => {
            println!(
                "no hold on updates is in force; recorded the release of {released}, so its earlier failures hold nothing"
            );
            exit::OK
        }
        Err(e) => cannot(&file, &e),
    }
}

fn cannot(file: &Path, e: &std::io::Error) -> i32 {
    eprintln!("bootgate release: cannot remove {}: {e}", file.display());
    exit::CANT_CREATE
}
