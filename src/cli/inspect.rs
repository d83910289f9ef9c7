//! The commands that read and print: `validate`, `boot-status`, `history` and `status`.

use std::path::{Path, PathBuf};

use super::Format;
use crate::boot::BootStatus;
use crate::boot::identity::boot_id;
use crate::boot::next::{self, NextBoot};
use crate::exit;
use crate::policy;
use crate::record::{history, verdict};
use crate::render::motd;
use crate::render::table;
use crate::server::web_config;
use crate::util::text::counted;

/// Validates each file on its own (or the policy the lookup order finds when none is
/// named), so one invalid file does not hide the verdict on the others; the web config
/// a policy names is validated with it, as the daemon would read it.
pub(super) fn validate(policy: Option<PathBuf>, files: Vec<PathBuf>) -> i32 {
    let targets: Vec<Option<PathBuf>> =
        if files.is_empty() { vec![policy] } else { files.into_iter().map(Some).collect() };
    let mut code = exit::OK;
    for target in targets {
        match policy::load(target.as_deref()) {
            Ok(loaded) => {
                println!("{}: ok ({})", loaded.source, counted(loaded.policy.checks.len(), "check"));
                let listen = loaded.policy.listen;
                if !listen.ip().is_loopback() && loaded.policy.web_config.is_none() {
                    eprintln!(
                        "bootgate: warning: {}: server.listen {listen} is reachable from the network and no server.web_config sets TLS or basic auth: anyone who reaches it reads every check's messages",
                        loaded.source
                    );
                }
                if let Some(path) = &loaded.policy.web_config {
                    match web_config::load(path) {
                        Ok(config) => println!("{}: ok ({})", path.display(), web_config_summary(&config)),
                        Err(e) => {
                            eprintln!("bootgate: {e}");
                            code = exit::CONFIG;
                        }
                    }
                }
                if let Some(path) = &loaded.policy.greenboot.config {
                    println!("{}: ok ({})", path.display(), greenboot_summary(&loaded.policy.greenboot.conf));
                }
            }
            Err(e) => code = super::bad_policy(&e),
        }
    }
    code
}

/// What bootgate takes from greenboot.conf, in a few words.
fn greenboot_summary(conf: &policy::greenboot::conf::Conf) -> String {
    // greenboot's own default when the file does not say.
    let attempts = conf.max_boot_attempts.unwrap_or(3);
    let disabled = match conf.disabled.len() {
        0 => "none disabled".to_string(),
        _ => format!("disabled: {}", conf.disabled.join(", ")),
    };
    format!("GREENBOOT_MAX_BOOT_ATTEMPTS {attempts}: the boot_counter GRUB counts down from; {disabled}")
}

/// What a valid web config turns on, in a few words.
fn web_config_summary(config: &web_config::WebConfig) -> String {
    let tls = match &config.tls {
        Some(tls) => format!("TLS, client certificates: {:?}", tls.client_auth),
        None => "plain HTTP".into(),
    };
    match config.users.len() {
        0 => tls,
        n => format!("{tls}, basic auth: {}", counted(n, "user")),
    }
}

/// The boot status document with the next boot beside the slots.
#[derive(serde::Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    status: &'a BootStatus,
    #[serde(flatten)]
    next: NextBoot,
}

pub(super) fn boot_status(disk: Option<PathBuf>, format: Format) -> i32 {
    let (status, next) = match &disk {
        Some(path) => match crate::boot::read_image(path) {
            Ok(status) => {
                // An image boots nothing here: only its table can say what would boot.
                let none = || NextBoot { index: None, by: "none: the image has no gptprio slots".into() };
                let next = next::of_table(&status).unwrap_or_else(none);
                (status, next)
            }
            Err(e) => {
                eprintln!("bootgate: {}: {e}", path.display());
                return exit::NO_INPUT;
            }
        },
        None => {
            let status = crate::boot::detect();
            let next = next::of_system(&status);
            (status, next)
        }
    };
    match format {
        Format::Text => println!("{}{}", status.text(), next.text(&status.partitions)),
        Format::Json => {
            let shown = Shown { status: &status, next };
            println!("{}", serde_json::to_string_pretty(&shown).expect("boot status is JSON"))
        }
    }
    exit::OK
}

pub(super) fn history(dir: &std::path::Path, format: Format, limit: usize) -> i32 {
    let boots = match history::read(dir) {
        Ok(boots) => boots,
        Err(e) => {
            eprintln!("bootgate: cannot read {}: {e}", history::path(dir).display());
            return exit::NO_INPUT;
        }
    };
    let shown = history::newest(&boots, limit);
    // Where it looked, so an empty answer is not taken for a lost history.
    let path = history::path(dir);
    let none = || table::no_history(&path, path.exists());
    match format {
        Format::Text if boots.is_empty() => print!("{}", none()),
        Format::Text => print!("{}", table::history(&shown)),
        Format::Json => {
            if boots.is_empty() {
                // Beside the empty array scripts parse, not in it.
                eprint!("{}", none());
            }
            println!("{}", serde_json::to_string_pretty(&shown).expect("boots are JSON"))
        }
    }
    exit::OK
}

/// `status`: this boot's verdict in the two lines of the motd file, with `check`'s exit
/// codes; while there is none yet (the gate runs), says so and exits 75.
pub(super) fn status(run_dir: &Path) -> i32 {
    match verdict::this_boot(run_dir, boot_id().as_deref()) {
        Ok(Some(rec)) => {
            print!("{}", motd::two_lines(&rec.record));
            motd::exit_code(&rec.record)
        }
        Ok(None) => {
            let file = run_dir.join(verdict::FILE);
            println!("bootgate: no verdict for this boot yet ({} does not exist or is another boot's)", file.display());
            println!("the gate is still running, or bootgate has not run in this boot: see systemctl status bootgate");
            exit::TEMP_FAIL
        }
        Err(e) => {
            eprintln!("bootgate: {e}");
            exit::NO_INPUT
        }
    }
}
