//! `bootgate migrate greenboot`: the policy equivalent to a host's greenboot tree and
//! greenboot.conf, printed with the greenboot units to disable and to keep as comments
//! at its top. It reads and changes nothing else: the operator reviews, then installs it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::exit;
use crate::policy::checks_from::entries_of;
use crate::policy::greenboot::conf;

/// greenboot's two trees, in the order greenboot-rs runs them: the image's, then the admin's.
const TREES: [(&str, &str); 2] = [("/usr/lib/greenboot", "vendor."), ("/etc/greenboot", "")];
/// greenboot's configuration file.
const CONF: &str = "/etc/greenboot/greenboot.conf";
/// Where the grubenv backend finds GRUB's environment block on Fedora-family hosts.
const GRUBENV: &str = "/boot/grub2/grubenv";

/// The greenboot units whose part bootgate takes: greenboot-rs (0.16) and the shell greenboot (0.15).
const DISABLE: &[(&str, &str)] = &[
    ("greenboot-healthcheck.service", "runs the checks and the green/red scripts (both greenboots)"),
    ("greenboot-success.target", "greenboot-rs: reached after its passed health check"),
    ("greenboot-task-runner.service", "greenboot 0.15: runs green.d"),
    ("redboot-task-runner.service", "greenboot 0.15: runs red.d"),
    ("redboot.target", "greenboot 0.15: reached after a failed health check"),
    ("redboot-auto-reboot.service", "greenboot 0.15: the reboot after a failure"),
    ("greenboot-grub2-set-success.service", "greenboot 0.15: boot_success=1 after a pass"),
    ("greenboot-status.service", "greenboot 0.15: the motd of the verdict"),
    ("greenboot-loading-message.service", "greenboot 0.15: the motd while checks run"),
    (
        "greenboot-rpm-ostree-grub2-check-fallback.service",
        "greenboot 0.15: the rollback on the fallback boot (bootgate runs bootc or rpm-ostree rollback)",
    ),
];
/// The greenboot units that keep doing what bootgate does not.
const KEEP: &[(&str, &str)] = &[
    (
        "greenboot-grub2-set-counter.service",
        "greenboot 0.15: sets boot_counter before an update's reboot, which GRUB counts down",
    ),
    ("greenboot-set-rollback-trigger.service", "greenboot-rs: arms its GRUB variables before an update's reboot"),
];

/// Prints the policy for the greenboot tree under `root` (`/` on the host). Exit 0, 66
/// when neither tree exists, 78 when greenboot.conf is unreadable or malformed.
pub fn greenboot(root: &Path) -> i32 {
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    if !TREES.iter().any(|(tree, _)| at(tree).is_dir()) {
        eprintln!(
            "bootgate: no greenboot tree: neither {} nor {} is a directory",
            at(TREES[0].0).display(),
            at(TREES[1].0).display()
        );
        return exit::NO_INPUT;
    }
    let conf_path = at(CONF);
    let conf = if conf_path.exists() {
        match conf::read(&conf_path) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("bootgate: {}:{}:{}: {}", conf_path.display(), e.line, e.column, e.message);
                return exit::CONFIG;
            }
        }
    } else {
        None
    };
    print!("{}", policy(root, conf.as_ref().map(|c| (conf_path.as_path(), c))));
    exit::OK
}

/// One `checks_from` entry: its directory, whether it is critical, its file names.
struct Dir {
    path: PathBuf,
    critical: bool,
    prefix: &'static str,
    files: Vec<String>,
}

/// The check directories that exist under `root`, required before wanted, each tree in
/// greenboot's order; a prefix goes to a vendor directory whose names the admin's reuse.
fn check_dirs(root: &Path) -> Vec<Dir> {
    let mut dirs = Vec::new();
    for (kind, critical) in [("required.d", true), ("wanted.d", false)] {
        for (tree, prefix) in TREES {
            let path = root.join(tree.trim_start_matches('/')).join("check").join(kind);
            if let Ok(files) = entries_of(&path) {
                dirs.push(Dir { path, critical, prefix, files });
            }
        }
    }
    // greenboot runs a file name found in two directories twice; each of those
    // directories gets its own tag (all four differ), so the check names differ too.
    let clashes: Vec<bool> = (0..dirs.len())
        .map(|i| dirs.iter().enumerate().any(|(j, o)| j != i && o.files.iter().any(|f| dirs[i].files.contains(f))))
        .collect();
    for (d, clash) in dirs.iter_mut().zip(clashes) {
        d.prefix = match (clash, d.critical, d.prefix.is_empty()) {
            (false, _, _) => "",
            (true, true, _) => d.prefix,
            (true, false, true) => "wanted.",
            (true, false, false) => "vendor.wanted.",
        };
    }
    dirs
}

fn policy(root: &Path, conf: Option<(&Path, &conf::Conf)>) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# bootgate policy for the greenboot tree under {}", root.display());
    let _ = writeln!(w, "# (made by `bootgate migrate greenboot`; check it with `bootgate validate FILE`).");
    let _ = writeln!(w, "#\n# Units to disable, whose part bootgate takes (those the image has):");
    for (unit, why) in DISABLE {
        let _ = writeln!(w, "#   {unit:<52} {why}");
    }
    let _ = writeln!(w, "# Units to keep:");
    for (unit, why) in KEEP {
        let _ = writeln!(w, "#   {unit:<52} {why}");
    }
    let _ = writeln!(w, "# `systemctl list-unit-files 'greenboot*' 'redboot*'` lists what the image has.");
    let _ = writeln!(w, "# Where /boot is mounted read-only (rpm-ostree, bootc), add the unit's read-only /boot");
    let _ = writeln!(w, "# drop-in (CAP_SYS_ADMIN, @mount) so that bootgate may remount it for the mark.\n");
    let _ = writeln!(w, "version: 1");
    let _ = writeln!(w, "gate:");
    let _ = writeln!(w, "  # greenboot waits for its scripts without a limit; bootgate gives the gate one.");
    let _ = writeln!(w, "  deadline: 5m");
    let _ = writeln!(w, "boot:");
    let _ = writeln!(w, "  # greenboot's GRUB handshake: boot_counter counted down by GRUB, boot_success=1 on a pass.");
    let _ = writeln!(w, "  backend: grubenv");
    let _ = writeln!(w, "  grubenv: {GRUBENV}");
    let dirs = check_dirs(root);
    if dirs.is_empty() {
        let _ = writeln!(w, "# No check directory exists: bootgate refuses a policy without checks.");
        let _ = writeln!(w, "checks: []");
    } else {
        let _ = writeln!(w, "# greenboot's scripts: `*.sh` through bash, other files when executable; a");
        let _ = writeln!(w, "# file that cannot run is a failing check. Each one is bounded by `timeout`.");
        let _ = writeln!(w, "checks_from:");
    }
    for d in &dirs {
        let _ = write!(w, "  - {{dir: {}", yaml_str(&d.path.display().to_string()));
        if !d.critical {
            let _ = write!(w, ", critical: false");
        }
        let _ = write!(w, ", timeout: 1m");
        if !d.prefix.is_empty() {
            let _ = write!(w, ", prefix: {}", d.prefix);
        }
        let _ = writeln!(w, "}}");
    }
    let _ = writeln!(w, "greenboot:");
    if let Some((path, conf)) = conf {
        let attempts = conf.max_boot_attempts.map_or("unset (greenboot's default: 3)".into(), |n| n.to_string());
        let _ = writeln!(w, "  # GREENBOOT_MAX_BOOT_ATTEMPTS: {attempts}");
        let disabled = if conf.disabled.is_empty() { "none".into() } else { conf.disabled.join(", ") };
        let _ = writeln!(w, "  # DISABLED_HEALTHCHECKS (not run, shown as disabled): {disabled}");
        let _ = writeln!(w, "  config: {}", yaml_str(&path.display().to_string()));
    }
    for (key, hooks) in [("green", "green.d"), ("red", "red.d")] {
        let list: Vec<String> = TREES
            .iter()
            .map(|(tree, _)| yaml_str(&root.join(tree.trim_start_matches('/')).join(hooks).display().to_string()))
            .collect();
        let _ = writeln!(w, "  {key}: [{}]", list.join(", "));
    }
    let _ = writeln!(w, "  hook_timeout: 30s");
    out
}

/// A path as a YAML scalar: plain when that reads back as the same string, else quoted.
fn yaml_str(s: &str) -> String {
    let plain = s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c)) && !s.is_empty();
    if plain { s.to_string() } else { serde_json::to_string(s).unwrap_or_default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_in_two_directories_gets_a_prefix_that_tells_them_apart() {
        let root = tempfile::tempdir().unwrap();
        for (dir, file) in [
            ("usr/lib/greenboot/check/required.d", "01_a.sh"),
            ("etc/greenboot/check/required.d", "01_a.sh"),
            ("etc/greenboot/check/required.d", "02_b.sh"),
            ("usr/lib/greenboot/check/wanted.d", "02_b.sh"),
            ("etc/greenboot/check/wanted.d", "03_c.sh"),
        ] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
            std::fs::write(root.path().join(dir).join(file), "exit 0\n").unwrap();
        }
        let prefixes: Vec<&str> = check_dirs(root.path()).iter().map(|d| d.prefix).collect();
        assert_eq!(prefixes, ["vendor.", "", "vendor.wanted.", ""]);
    }
}
