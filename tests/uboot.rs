//! The `uboot` backend in a real `bootgate run`: U-Boot's environment made by
//! `mkenvimage` (u-boot-tools), read and written by the daemon through Debian's
//! `fw_printenv`/`fw_setenv` (libubootenv-tool), read back here with `fw_printenv`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Launch, NotifySocket};

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}): build/deps.sh installs libubootenv-tool and u-boot-tools")
    });
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A redundant environment (two files) holding `vars`, and the fw_env.config naming it.
fn environment(dir: &Path, vars: &[&str]) -> PathBuf {
    let text = dir.join("env.txt");
    std::fs::write(&text, vars.iter().map(|v| format!("{v}\n")).collect::<String>()).unwrap();
    let (a, b) = (dir.join("env1.bin"), dir.join("env2.bin"));
    run("mkenvimage", &["-r", "-s", "0x4000", "-o", a.to_str().unwrap(), text.to_str().unwrap()]);
    std::fs::copy(&a, &b).unwrap();
    let config = dir.join("fw_env.config");
    std::fs::write(&config, format!("{} 0x0 0x4000\n{} 0x0 0x4000\n", a.display(), b.display())).unwrap();
    config
}

/// `NAME=VALUE` of each of `names` as the real `fw_printenv` reads them.
fn printenv(config: &Path, names: &[&str]) -> String {
    let mut args = vec!["-c", config.to_str().unwrap()];
    args.extend(names);
    run("fw_printenv", &args).lines().collect::<Vec<_>>().join(" ")
}

const NUMBERS: [&str; 3] = ["upgrade_available", "bootcount", "bootlimit"];

fn policy(config: &Path, gate: &str, check: &str) -> String {
    format!("boot: {{backend: uboot, uboot: {{config: {}}}}}\ngate: {gate}\nchecks:\n  - {check}\n", config.display())
}

const PASSING: &str = "{name: root, kind: disk, path: /, min_free_percent: 0}";
const FAILING: &str = "{name: broken, kind: exec, command: ['/bin/false'], retries: 0}";

#[test]
fn a_passed_gate_clears_the_count_before_ready() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        environment(dir.path(), &["upgrade_available=1", "bootcount=1", "bootlimit=3", "altbootcmd=run altboot"]);
    let notify = NotifySocket::bind(dir.path());
    let t0 = Instant::now();
    let daemon =
        Launch::listening(policy(&config, "{deadline: 30s}", PASSING)).in_dir(dir.path()).notify(&notify).start();
    notify.wait_for("READY=1", t0, Duration::from_secs(20), |m| m.contains("READY=1"));
    assert_eq!(printenv(&config, &NUMBERS), "upgrade_available=0 bootcount=0 bootlimit=3", "marked before READY=1");
    let doc = daemon.health();
    let boot = &doc["boot"];
    assert_eq!(boot["backend"], "uboot", "{doc:#}");
    assert_eq!(boot["config"], config.display().to_string(), "{doc:#}");
    assert_eq!((boot["upgrade_available"].clone(), boot["bootcount"].clone()), (false.into(), 0.into()), "{doc:#}");
    assert_eq!(boot["mark"]["done"], true, "{doc:#}");
    let note = boot["mark"]["note"].as_str().unwrap();
    assert!(note.contains("(was upgrade_available=1, bootcount=1, bootlimit=3)"), "{note}");
    assert!(daemon.get("/").body.contains("<p id=uboot>U-Boot environment"));
}

#[test]
fn a_failed_gate_at_the_limit_asks_for_the_reboot_that_runs_altbootcmd() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        environment(dir.path(), &["upgrade_available=1", "bootcount=3", "bootlimit=3", "altbootcmd=run altboot"]);
    let notify = NotifySocket::bind(dir.path());
    // The reboot request goes to a bus that is not there: it fails, and nothing reboots.
    let gate = "{deadline: 10s, on_failure: reboot, reboot_delay: 0s}";
    let mut daemon = Launch::listening(policy(&config, gate, FAILING))
        .in_dir(dir.path())
        .notify(&notify)
        .without_system_bus()
        .start();
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)).code(), Some(2), "{}", daemon.stderr());
    let msgs = notify.texts();
    assert!(
        msgs.iter().any(|m| m.contains(
            "rebooting in 0s to fall back to U-Boot's altbootcmd: upgrade_available=1 and bootcount 3 = bootlimit 3"
        )),
        "{msgs:#?}"
    );
    assert!(msgs.iter().any(|m| m.contains("the reboot request failed")), "{msgs:#?}");
    assert_eq!(
        printenv(&config, &NUMBERS),
        "upgrade_available=1 bootcount=3 bootlimit=3",
        "a failed gate writes nothing"
    );
    let history = std::fs::read_to_string(dir.path().join("state/history.jsonl")).unwrap();
    assert!(history.contains(r#""decision":"reboot""#), "{history}");
}

#[test]
fn a_failed_gate_on_a_boot_u_boot_did_not_count_stays_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        environment(dir.path(), &["upgrade_available=1", "bootcount=0", "bootlimit=3", "altbootcmd=run altboot"]);
    let notify = NotifySocket::bind(dir.path());
    let gate = "{deadline: 10s, on_failure: reboot, reboot_delay: 0s}";
    let mut daemon = Launch::listening(policy(&config, gate, FAILING))
        .in_dir(dir.path())
        .notify(&notify)
        .without_system_bus()
        .start();
    let end = Instant::now() + Duration::from_secs(60);
    while !notify.texts().iter().any(|m| m.contains("manual intervention needed")) {
        assert!(Instant::now() < end && daemon.is_running(), "{:#?}\n{}", notify.texts(), daemon.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    let msgs = notify.texts();
    assert!(msgs.iter().any(|m| m.contains("U-Boot did not count this boot")), "{msgs:#?}");
    assert!(!msgs.iter().any(|m| m.contains("reboot request")), "no reboot was asked for: {msgs:#?}");
    assert_eq!(printenv(&config, &NUMBERS), "upgrade_available=1 bootcount=0 bootlimit=3");
}
