//! A host moving from greenboot: its shipped scripts, its greenboot.conf, its green.d and
//! red.d hooks around a real `bootgate run`, and `bootgate migrate greenboot` on a tree
//! laid out as greenboot lays it out. Real bash, real files.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Launch, NotifySocket, bootgate, check, result};

fn script(dir: &Path, name: &str, body: &str, mode: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/greenboot").join(name)
}

/// Waits until `path` exists; panics after `timeout`.
fn wait_for_file(path: &Path, timeout: Duration) -> String {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        assert!(Instant::now() < end, "{} never appeared within {timeout:?}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether process `pid` still runs (a zombie has ended).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn greenboots_shipped_required_checks_run_without_their_executable_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let required = tmp.path().join("required.d");
    std::fs::create_dir_all(&required).unwrap();
    for name in ["01_repository_dns_check.sh", "02_watchdog.sh"] {
        // Copied as they are in the source tree: mode 644.
        let to = required.join(name);
        std::fs::copy(fixture(name), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (code, v, _) = check(&format!("version: 1\nchecks_from:\n  - {{dir: {}}}\n", required.display()));
    for name in ["01_repository_dns_check.sh", "02_watchdog.sh"] {
        let r = result(&v, name);
        assert_eq!(r["critical"], true, "{r:#}");
        assert_eq!(r["observed"]["command"], format!("bash {}", required.join(name).display()), "{r:#}");
        // It ran: bash gave an exit code, whatever this machine made the script say.
        assert!(r["observed"]["exit_code"].is_i64(), "{name} did not run: {r:#}");
        assert!(r["message"].as_str().unwrap().starts_with("exit "), "{r:#}");
    }
    if !Path::new("/etc/ostree/remotes.d").is_dir() {
        // Not an ostree host: the script says so and fails, failing the gate as under greenboot.
        let dns = result(&v, "01_repository_dns_check.sh");
        assert_eq!(dns["message"], "exit 1: /etc/ostree/remotes.d doesn't exist", "{dns:#}");
        assert_eq!(code, 2, "{v:#}");
    }
}

#[test]
fn disabled_healthchecks_are_not_run_and_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let required = tmp.path().join("required.d");
    let ran = tmp.path().join("ran");
    script(&required, "10_fails.sh", &format!("touch {}; echo broken >&2; exit 1", ran.display()), 0o644);
    script(&required, "20_passes.sh", "exit 0", 0o644);
    let conf = tmp.path().join("greenboot.conf");
    std::fs::write(
        &conf,
        "# as greenboot documents it\nGREENBOOT_MAX_BOOT_ATTEMPTS=5\nDISABLED_HEALTHCHECKS=(\"10_fails.sh\" \"99_gone.sh\")\n",
    )
    .unwrap();
    let policy = format!(
        "version: 1\nchecks_from:\n  - {{dir: {}}}\ngreenboot:\n  config: {}\n",
        required.display(),
        conf.display()
    );
    let (code, v, _, out) = support::check_with(&policy, &[]);
    assert_eq!(code, 0, "{v:#}");
    let disabled = result(&v, "10_fails.sh");
    assert_eq!((disabled["result"].as_str(), disabled["critical"].as_bool()), (Some("pass"), Some(false)));
    let said = disabled["message"].as_str().unwrap();
    assert!(said.starts_with(&format!("disabled by {} (DISABLED_HEALTHCHECKS)", conf.display())), "{said}");
    assert_eq!(disabled["observed"]["disabled"], true);
    assert!(!ran.exists(), "a disabled script ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DISABLED_HEALTHCHECKS names `99_gone.sh`, which no checks_from directory holds"),
        "{stderr}"
    );

    // validate says what bootgate takes from the file.
    let path = tmp.path().join("policy.yaml");
    std::fs::write(&path, &policy).unwrap();
    let out = bootgate(&["validate", &path.to_string_lossy()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("GREENBOOT_MAX_BOOT_ATTEMPTS 5") && stdout.contains("disabled: 10_fails.sh, 99_gone.sh"),
        "{stdout}"
    );
}

#[test]
fn a_malformed_greenboot_conf_fails_closed_at_its_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let required = tmp.path().join("required.d");
    script(&required, "10_passes.sh", "exit 0", 0o644);
    let conf = tmp.path().join("greenboot.conf");
    let path = tmp.path().join("policy.yaml");
    let policy = format!(
        "version: 1\nchecks_from:\n  - {{dir: {}}}\ngreenboot: {{config: {}}}\n",
        required.display(),
        conf.display()
    );
    std::fs::write(&path, &policy).unwrap();
    for (text, at) in [
        ("GREENBOOT_MAX_BOOT_ATTEMPTS=3\n\nDISABLED_HEALTHCHECKS=(\"a.sh\" \"b.sh\"\n", ":3:23:"),
        ("GREENBOOT_MAX_BOOT_ATTEMPTS=lots\n", ":1:29:"),
        ("# fine\nthis is not an assignment\n", ":2:1:"),
    ] {
        std::fs::write(&conf, text).unwrap();
        for command in ["validate", "check"] {
            let out = bootgate(&[command, "--policy", &path.to_string_lossy()]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(78), "{command}: {stderr}");
            assert!(stderr.contains(&format!("{}{at}", conf.display())), "{command} {text:?}: {stderr}");
        }
    }
    // A file named but missing is no better: the policy asked for it.
    std::fs::remove_file(&conf).unwrap();
    let out = bootgate(&["validate", &path.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains(&format!("{}:1:1: cannot read", conf.display())), "{stderr}");
}

/// A policy for `run` whose checks come from `required`, with green and red hooks.
fn hooked_policy(required: &Path, green: &Path, red: &Path, timeout: &str) -> String {
    format!(
        "version: 1
gate: {{deadline: 20s}}
boot: {{backend: none}}
server: {{listen: '127.0.0.1:{port}'}}
checks_from:
  - {{dir: {required}}}
greenboot:
  green: [{green}, {missing}]
  red: [{red}]
  hook_timeout: {timeout}
",
        port = support::free_port(),
        required = required.display(),
        green = green.display(),
        missing = green.join("missing.d").display(),
        red = red.display(),
    )
}

#[test]
fn green_hooks_run_after_ready_and_a_hung_one_is_killed_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (required, green, red) = (dir.path().join("required.d"), dir.path().join("green.d"), dir.path().join("red.d"));
    script(&required, "10_passes.sh", "exit 0", 0o644);
    let (hung_pid, after, red_ran) = (dir.path().join("hung.pid"), dir.path().join("after"), dir.path().join("red"));
    script(&green, "10_hangs.sh", &format!("sleep 600 & echo $! > {}; wait", hung_pid.display()), 0o644);
    script(&green, "20_after.sh", &format!("echo green > {}", after.display()), 0o644);
    script(&red, "10_red.sh", &format!("touch {}", red_ran.display()), 0o644);
    let notify = NotifySocket::bind(dir.path());
    let policy = hooked_policy(&required, &green, &red, "2s");
    let mut daemon = Launch::run(policy).in_dir(dir.path()).notify(&notify).start();
    let t0 = Instant::now();
    notify.wait_for("READY=1", t0, Duration::from_secs(20), |m| m.contains("READY=1"));
    // READY=1 did not wait for the hooks: the hung one holds the second back for 2 s.
    assert!(!after.exists(), "the green hooks ran before READY=1");
    let verdict: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/verdict.json")).unwrap()).unwrap();
    assert_eq!(verdict["gate"], "passed");
    assert_eq!(wait_for_file(&after, Duration::from_secs(30)), "green\n");
    let pid: u32 = wait_for_file(&hung_pid, Duration::from_secs(5)).trim().parse().unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < end, "the hung hook's child {pid} outlived its timeout");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(daemon.is_running(), "{}", daemon.stderr());
    assert!(!red_ran.exists(), "a red hook ran after a passed gate");
    let log = daemon.stderr();
    assert!(log.contains("10_hangs.sh failed: killed after 2s"), "{log}");
    daemon.terminate();
    daemon.wait_exit(Duration::from_secs(10));
}

#[test]
fn red_hooks_run_after_a_failed_gate_and_do_not_change_it() {
    let dir = tempfile::tempdir().unwrap();
    let (required, green, red) = (dir.path().join("required.d"), dir.path().join("green.d"), dir.path().join("red.d"));
    script(&required, "10_fails.sh", "echo 'service down' >&2; exit 1", 0o644);
    let (red_ran, green_ran) = (dir.path().join("red"), dir.path().join("green"));
    script(&green, "10_green.sh", &format!("touch {}", green_ran.display()), 0o644);
    // A red hook that itself fails, then one that records what it saw.
    script(&red, "10_broken.sh", "exit 3", 0o644);
    let verdict = dir.path().join("run/verdict.json");
    script(
        &red,
        "20_record.sh",
        &format!("grep -o '\"gate\": *\"failed\"' {} > {}", verdict.display(), red_ran.display()),
        0o644,
    );
    let notify = NotifySocket::bind(dir.path());
    let policy = hooked_policy(&required, &green, &red, "10s");
    let mut daemon = Launch::run(policy).in_dir(dir.path()).notify(&notify).start();
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).code(), Some(2), "{}", daemon.stderr());
    // The red hooks ran after the verdict was written, before the daemon ended.
    assert!(std::fs::read_to_string(&red_ran).unwrap().contains("failed"));
    assert!(!green_ran.exists(), "a green hook ran after a failed gate");
    let msgs = notify.texts();
    assert!(!msgs.iter().any(|m| m.contains("READY=1")), "{msgs:#?}");
    let log = daemon.stderr();
    assert!(log.contains("red hook") && log.contains("10_broken.sh failed: exit 3"), "{log}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&verdict).unwrap()).unwrap();
    assert_eq!((v["gate"].as_str(), v["failing"].clone()), (Some("failed"), serde_json::json!(["10_fails.sh"])));
}

#[test]
fn migrate_prints_a_policy_validate_accepts_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let at = |p: &str| root.path().join(p);
    for name in ["01_repository_dns_check.sh", "02_watchdog.sh"] {
        let to = at("usr/lib/greenboot/check/required.d").join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixture(name), &to).unwrap();
    }
    // The admin's copy of a vendor script: greenboot runs both.
    script(&at("etc/greenboot/check/required.d"), "02_watchdog.sh", "exit 0", 0o644);
    script(&at("etc/greenboot/check/wanted.d"), "50_extra.sh", "exit 0", 0o755);
    for d in ["etc/greenboot/green.d", "etc/greenboot/red.d", "usr/lib/greenboot/wanted.d"] {
        std::fs::create_dir_all(at(d)).unwrap();
    }
    std::fs::write(
        at("etc/greenboot/greenboot.conf"),
        "GREENBOOT_MAX_BOOT_ATTEMPTS=4\nDISABLED_HEALTHCHECKS=(\"01_repository_dns_check.sh\")\n",
    )
    .unwrap();
    let before = listing(root.path());
    let out = bootgate(&["migrate", "greenboot", "--root", &root.path().to_string_lossy()]);
    let policy = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(listing(root.path()), before, "migrate changed the tree");
    for said in [
        "backend: grubenv",
        "grubenv: /boot/grub2/grubenv",
        "#   greenboot-healthcheck.service",
        "#   greenboot-grub2-set-counter.service",
        "# GREENBOOT_MAX_BOOT_ATTEMPTS: 4",
        "prefix: vendor.",
    ] {
        assert!(policy.contains(said), "`{said}` missing from:\n{policy}");
    }
    let file = root.path().join("policy.yaml");
    std::fs::write(&file, &policy).unwrap();
    let out = bootgate(&["validate", &file.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}\n{policy}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (4 checks)"), "{}", String::from_utf8_lossy(&out.stdout));
    // Every script of both trees is a check, the vendor's copy told apart, the disabled one said so.
    let (_, v, _) = check(&policy);
    let names: Vec<&str> = v["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["vendor.01_repository_dns_check.sh", "vendor.02_watchdog.sh", "02_watchdog.sh", "50_extra.sh"]);
    assert!(result(&v, "vendor.01_repository_dns_check.sh")["message"].as_str().unwrap().starts_with("disabled by"));

    let empty = tempfile::tempdir().unwrap();
    let out = bootgate(&["migrate", "greenboot", "--root", &empty.path().to_string_lossy()]);
    assert_eq!(out.status.code(), Some(66));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no greenboot tree"));
}

/// Every path under `dir` with its length and mode, to see that nothing changed.
fn listing(dir: &Path) -> Vec<(PathBuf, u64, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                todo.push(e.path());
            }
            out.push((e.path(), m.len(), m.permissions().mode()));
        }
    }
    out.sort();
    out
}

/// With greenboot.conf in the policy and greenboot's GRUB handshake, `run` says how many
/// boots the update has left, from GRUB's own counter.
#[test]
fn run_says_which_of_greenboots_boot_attempts_this_boot_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    for args in [&["create"][..], &["set", "boot_counter=3", "boot_success=0"]] {
        // What greenboot's set-counter wrote for GREENBOOT_MAX_BOOT_ATTEMPTS=4, after GRUB counted the
        // update's first boot (which set boot_success=0 and was not marked good).
        let out = std::process::Command::new("grub-editenv")
            .arg(&file)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run grub-editenv ({e}): install grub-common (build/deps.sh)"));
        assert!(out.status.success(), "grub-editenv {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let required = dir.path().join("required.d");
    script(&required, "10_passes.sh", "exit 0", 0o644);
    let conf = dir.path().join("greenboot.conf");
    std::fs::write(&conf, "GREENBOOT_MAX_BOOT_ATTEMPTS=4\n").unwrap();
    let policy = format!(
        "version: 1\nboot: {{backend: grubenv, grubenv: {}}}\nserver: {{listen: '127.0.0.1:{}'}}\n\
         checks_from:\n  - {{dir: {}}}\ngreenboot: {{config: {}}}\n",
        file.display(),
        support::free_port(),
        required.display(),
        conf.display()
    );
    let notify = NotifySocket::bind(dir.path());
    let mut daemon = Launch::run(policy).in_dir(dir.path()).notify(&notify).start();
    notify.wait_for("READY=1", Instant::now(), Duration::from_secs(20), |m| m.contains("READY=1"));
    let log = daemon.stderr();
    assert!(
        log.contains(
            "greenboot: if this boot fails, GRUB tries the update 3 more times before it falls back \
             (boot_counter 3, GREENBOOT_MAX_BOOT_ATTEMPTS 4)"
        ),
        "{log}"
    );
    daemon.terminate();
    daemon.wait_exit(Duration::from_secs(10));
}
