//! The uboot backend: U-Boot's bootcount rule played out against the decision (pure),
//! then every step against Debian's real `fw_printenv`/`fw_setenv` (libubootenv-tool) on
//! environments made by `mkenvimage` (u-boot-tools): a single one, a redundant pair, two
//! copies at offsets inside a disk image, and a partition of a disk on a loop device.
//! Every value written is read back with the real `fw_printenv`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as Std;
use std::time::{Duration, Instant};

use super::*;

/// The environment size every test uses (the config's and mkenvimage's must agree).
const SIZE: usize = 0x4000;

fn run(program: &str, args: &[&str]) -> std::process::Output {
    let out = Std::new(program).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {program} ({e}): build/deps.sh installs libubootenv-tool, u-boot-tools, gdisk and util-linux"
        )
    });
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `mkenvimage` of `vars` (name=value each), `-r` for a copy of a redundant pair.
fn mkenvimage(out: &Path, redundant: bool, vars: &[&str]) {
    let text = out.with_extension("txt");
    std::fs::write(&text, vars.iter().map(|v| format!("{v}\n")).collect::<String>()).unwrap();
    let size = format!("{SIZE:#x}");
    let mut args = vec!["-s", &size];
    if redundant {
        args.push("-r");
    }
    args.extend(["-o", out.to_str().unwrap(), text.to_str().unwrap()]);
    run("mkenvimage", &args);
}

/// The whole environment as the real `fw_printenv -c CONFIG` prints it (the tests' values
/// have no newlines).
fn printenv(config: &Path) -> BTreeMap<String, String> {
    let out = run("fw_printenv", &["-c", config.to_str().unwrap()]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// `name=value` of the convention's numbers in `env`, "unset" for a missing one.
fn numbers(env: &BTreeMap<String, String>) -> String {
    ["upgrade_available", "bootcount", "bootlimit"]
        .iter()
        .map(|k| format!("{k}={}", env.get(*k).map_or("unset", String::as_str)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A config file in `dir` with one line per `(device, offset)`.
fn config_of(dir: &Path, name: &str, copies: &[(&Path, u64)]) -> PathBuf {
    let path = dir.join(name);
    let lines: String = copies.iter().map(|(dev, off)| format!("{} {off:#x} {SIZE:#x}\n", dev.display())).collect();
    std::fs::write(&path, lines).unwrap();
    path
}

/// A single environment file holding `vars`, and its config.
fn single(dir: &Path, vars: &[&str]) -> (PathBuf, PathBuf) {
    let env = dir.join("env.bin");
    mkenvimage(&env, false, vars);
    let config = config_of(dir, "fw_env.config", &[(&env, 0)]);
    (env, config)
}

/// A redundant pair of files holding `vars`, and their config.
fn redundant(dir: &Path, vars: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let (a, b) = (dir.join("env1.bin"), dir.join("env2.bin"));
    mkenvimage(&a, true, vars);
    std::fs::copy(&a, &b).unwrap();
    let config = config_of(dir, "fw_env.config", &[(&a, 0), (&b, 0)]);
    (a, b, config)
}

/// A redundant copy's flag: the byte after the CRC, which libubootenv raises on each write.
fn flag(copy: &[u8]) -> u8 {
    copy[4]
}

/// Flips a byte of a copy's data, so its CRC no longer matches.
fn corrupt(file: &Path, at: u64) {
    use std::os::unix::fs::FileExt as _;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(file).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at + 100).unwrap();
    f.write_all_at(&[b[0] ^ 0xff], at + 100).unwrap();
}

const UPDATE: [&str; 4] =
    ["upgrade_available=1", "bootlimit=3", "altbootcmd=run swap_slot; run bootcmd", "bootcmd=run boot_slot"];

fn update(bootcount: u64) -> Vec<String> {
    let mut vars: Vec<String> = UPDATE.iter().map(|s| s.to_string()).collect();
    vars.push(format!("bootcount={bootcount}"));
    vars
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// --- U-Boot's rule, pure -------------------------------------------------------------

fn env(upgrade_available: Option<u64>, bootcount: Option<u64>, bootlimit: Option<u64>, altbootcmd: bool) -> Counting {
    Counting { upgrade_available, bootcount, bootlimit, altbootcmd }
}

/// One boot as U-Boot does it (CONFIG_BOOTCOUNT_LIMIT with CONFIG_BOOTCOUNT_ENV,
/// `common/autoboot.c` and `drivers/bootcount/bootcount_env.c`): with upgrade_available
/// set it loads bootcount, adds one and saves it; without, it counts 1 in RAM only. It
/// runs altbootcmd when bootlimit is set and the count exceeds it; `true` then.
fn uboot_boots(c: &mut Counting) -> bool {
    let count = if c.testing() { c.bootcount.unwrap_or(0) } else { 0 } + 1;
    if c.testing() {
        c.bootcount = Some(count);
    }
    let limit = c.bootlimit.unwrap_or(0);
    limit != 0 && count > limit
}

#[test]
fn a_gate_that_always_fails_reaches_altbootcmd_after_bootlimit_tries_and_never_loops() {
    for limit in 1..=6 {
        let mut c = env(Some(1), Some(0), Some(limit), true);
        let mut boots = 0;
        let alt = loop {
            boots += 1;
            assert!(boots <= 100, "bootlimit {limit}: a reboot loop");
            if uboot_boots(&mut c) {
                break boots;
            }
            // This image booted (bootcmd) and its gate failed.
            let d = decide(&c);
            assert!(d.reboots(), "bootlimit {limit}, boot {boots} ({}): {d:?}", c.said());
            let text = d.status_text();
            if c.bootcount == Some(limit) {
                assert!(
                    text.contains("runs altbootcmd") && text.contains("to fall back to U-Boot's altbootcmd:"),
                    "{text}"
                );
            } else {
                assert!(text.contains("more tr"), "{text}");
            }
        };
        assert_eq!(alt, limit as usize + 1, "bootlimit {limit}: the image gets bootlimit tries, then altbootcmd");
        // Should altbootcmd leave upgrade_available set, its boot is past the limit:
        // a failed gate there stays, since a reboot would run altbootcmd again.
        assert_eq!(decide(&c), RebootDecision::StayNoFallback, "{}", c.said());
    }
}

#[test]
fn outside_the_count_a_failed_gate_stays_and_says_why() {
    let cases: [(Counting, &str); 8] = [
        (env(None, None, Some(3), true), "confirmed"),
        (env(Some(0), Some(2), Some(3), true), "confirmed"),
        (env(Some(1), Some(1), None, true), "no bootlimit"),
        (env(Some(1), Some(1), Some(0), true), "no bootlimit"),
        (env(Some(1), Some(1), Some(3), false), "no altbootcmd"),
        (env(Some(1), Some(0), Some(3), true), "did not count this boot"),
        (env(Some(1), None, Some(3), true), "did not count this boot"),
        (env(Some(1), Some(4), Some(3), true), "no fallback"),
    ];
    for (c, said) in cases {
        let d = decide(&c);
        assert!(!d.reboots(), "{}: {d:?}", c.said());
        match said {
            "confirmed" => assert_eq!(d, RebootDecision::StayConfirmed, "{}", c.said()),
            "no fallback" => assert_eq!(d, RebootDecision::StayNoFallback, "{}", c.said()),
            _ => assert!(d.status_text().contains(said), "{}: {}", c.said(), d.status_text()),
        }
    }
    // Any non-zero upgrade_available counts, as U-Boot reads it.
    assert!(decide(&env(Some(2), Some(1), Some(3), true)).reboots());
}

#[test]
fn numbers_are_read_as_u_boot_reads_them() {
    for (text, n) in [("3", 3), ("007", 7), ("3abc", 3), ("abc", 0), (" 3", 0), ("-1", 0), ("0x10", 0)] {
        assert_eq!(ulong(text), n, "{text:?}");
    }
    assert_eq!(ulong("99999999999999999999999"), u64::MAX, "saturated, not wrapped");
}

#[test]
fn the_window_arms_only_on_an_update_under_test_with_a_fallback() {
    assert_eq!(arm(&env(Some(1), Some(1), Some(3), true)), Ok(()));
    assert_eq!(arm(&env(Some(1), Some(3), Some(3), true)), Ok(()));
    for (c, said) in [
        (env(Some(0), Some(0), Some(3), true), "no update under test"),
        (env(None, None, None, false), "no update under test"),
        (env(Some(1), Some(1), None, true), "no bootlimit"),
        (env(Some(1), Some(1), Some(3), false), "no altbootcmd"),
        (env(Some(1), Some(4), Some(3), true), "altbootcmd boot"),
    ] {
        let e = arm(&c).unwrap_err();
        assert!(e.starts_with("not armed: ") && e.contains(said), "{}: {e}", c.said());
    }
}

// --- The real tools ----------------------------------------------------------------

#[tokio::test]
async fn facts_are_the_numbers_fw_printenv_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = single(dir.path(), &strs(&update(2)));
    let b = Uboot::new(config.clone());
    assert_eq!(
        b.facts().await,
        BackendFacts::Uboot {
            config: config.display().to_string(),
            upgrade_available: Some(true),
            bootcount: Some(2),
            bootlimit: Some(3),
            error: None
        }
    );
    // Unset variables are unset, not empty strings (fw_printenv prints `name=` for them).
    let (_, bare) = single(&dir.path().join("bare").tap_mkdir(), &["bootcmd=boot"]);
    assert_eq!(
        Uboot::new(bare.clone()).facts().await,
        BackendFacts::Uboot {
            config: bare.display().to_string(),
            upgrade_available: Some(false),
            bootcount: None,
            bootlimit: None,
            error: None
        }
    );
}

/// `mkdir -p`, returning the path.
trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[tokio::test]
async fn each_failure_decision_on_a_real_environment_and_none_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["upgrade_available=1", "bootcount=1", "bootlimit=3", "altbootcmd=x"], "reboot: 2 more tries"),
        (&["upgrade_available=1", "bootcount=3", "bootlimit=3", "altbootcmd=x"], "reboot: altbootcmd next"),
        (&["upgrade_available=1", "bootcount=4", "bootlimit=3", "altbootcmd=x"], "stay: no fallback"),
        (&["upgrade_available=0", "bootcount=0", "bootlimit=3", "altbootcmd=x"], "stay: confirmed"),
        (&["upgrade_available=1", "bootcount=1", "altbootcmd=x"], "stay: no bootlimit"),
        (&["upgrade_available=1", "bootcount=1", "bootlimit=3"], "stay: no altbootcmd"),
        (&["upgrade_available=1", "bootcount=0", "bootlimit=3", "altbootcmd=x"], "stay: not counted"),
    ];
    for (i, (vars, want)) in cases.into_iter().enumerate() {
        let here = dir.path().join(i.to_string()).tap_mkdir();
        let (file, config) = single(&here, vars);
        let before = std::fs::read(&file).unwrap();
        let d = Uboot::new(config).on_failure().await;
        let text = d.status_text();
        let ok = match want {
            "reboot: 2 more tries" => {
                matches!(&d, RebootDecision::Fallback { to, .. } if to.contains("after 2 more tries"))
            }
            "reboot: altbootcmd next" => {
                matches!(&d, RebootDecision::Fallback { to, why } if to == "U-Boot's altbootcmd" && why.contains("next boot 4 > 3"))
            }
            "stay: no fallback" => d == RebootDecision::StayNoFallback,
            "stay: confirmed" => d == RebootDecision::StayConfirmed,
            "stay: no bootlimit" => text.contains("no bootlimit"),
            "stay: no altbootcmd" => text.contains("no altbootcmd"),
            _ => text.contains("did not count this boot"),
        };
        assert!(ok, "{vars:?}: expected {want}, got {d:?}");
        assert_eq!(std::fs::read(&file).unwrap(), before, "{vars:?}: a failed gate writes nothing");
    }
}

#[tokio::test]
async fn a_pass_clears_both_in_one_write_and_a_revert_makes_the_next_count_exceed_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = single(dir.path(), &strs(&update(1)));
    let b = Uboot::new(config.clone());
    let _ = b.facts().await; // at start, as `run` does
    let done = b.on_pass().await.unwrap();
    assert!(done.starts_with("marked this boot good: upgrade_available=0, bootcount=0"), "{done}");
    assert!(done.contains("was upgrade_available=1, bootcount=1, bootlimit=3"), "{done}");
    let env = printenv(&config);
    assert_eq!(numbers(&env), "upgrade_available=0 bootcount=0 bootlimit=3");
    assert_eq!(env["altbootcmd"], "run swap_slot; run bootcmd", "the rest of the environment is kept");
    // Judged from the environment as the boot found it, not as the mark left it.
    assert_eq!(b.revertible(), Ok(()));

    let reverted = b.revert().await.unwrap();
    assert!(reverted.fallback.starts_with("U-Boot's altbootcmd (upgrade_available=1, bootcount=3"), "{reverted:?}");
    let env = printenv(&config);
    assert_eq!(numbers(&env), "upgrade_available=1 bootcount=3 bootlimit=3");
    // U-Boot's next boot, from what fw_printenv reads: 4 > 3, altbootcmd.
    let mut next = env_of(&env);
    assert!(uboot_boots(&mut next), "after the revert U-Boot runs altbootcmd: {}", next.said());
}

fn env_of(env: &BTreeMap<String, String>) -> Counting {
    let n = |k: &str| env.get(k).map(|v| ulong(v));
    Counting {
        upgrade_available: n("upgrade_available"),
        bootcount: n("bootcount"),
        bootlimit: n("bootlimit"),
        altbootcmd: env.contains_key("altbootcmd"),
    }
}

#[tokio::test]
async fn a_confirmed_boot_is_left_unwritten_and_the_window_is_not_armed() {
    let dir = tempfile::tempdir().unwrap();
    let (file, config) = single(dir.path(), &["upgrade_available=0", "bootcount=0", "bootlimit=3", "altbootcmd=x"]);
    let before = std::fs::read(&file).unwrap();
    let b = Uboot::new(config);
    let _ = b.facts().await;
    let done = b.on_pass().await.unwrap();
    assert!(done.starts_with("nothing to mark: U-Boot does not count this boot"), "{done}");
    assert_eq!(std::fs::read(&file).unwrap(), before, "no write on a confirmed boot");
    assert!(b.revertible().unwrap_err().contains("no update under test"));
    // A stale count without upgrade_available is cleared all the same.
    let (_, stale) =
        single(&dir.path().join("stale").tap_mkdir(), &["upgrade_available=0", "bootcount=5", "bootlimit=3"]);
    Uboot::new(stale.clone()).on_pass().await.unwrap();
    assert_eq!(numbers(&printenv(&stale)), "upgrade_available=0 bootcount=0 bootlimit=3");
}

#[tokio::test]
async fn a_redundant_pair_takes_the_mark_in_one_write_and_a_bad_newest_copy_falls_back_to_the_older() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, config) = redundant(dir.path(), &strs(&update(2)));
    let (a0, b0) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let backend = Uboot::new(config.clone());
    backend.on_pass().await.unwrap();
    let (a1, b1) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // One write: exactly one copy changed, its flag one above the other's.
    let changed: Vec<&str> = [("first", a0 != a1), ("second", b0 != b1)].iter().filter(|c| c.1).map(|c| c.0).collect();
    assert_eq!(changed.len(), 1, "both variables in one write, not two: {changed:?}");
    let (newest, older, older_was) = if a0 != a1 { (&a, &b1, &b0) } else { (&b, &a1, &a0) };
    assert_eq!(older, older_was, "the older copy keeps the state before the mark");
    assert_eq!(flag(&std::fs::read(newest).unwrap()), flag(older).wrapping_add(1));
    assert_eq!(numbers(&printenv(&config)), "upgrade_available=0 bootcount=0 bootlimit=3", "the newest copy wins");

    // The newest copy's CRC breaks: libubootenv reads the older, and so does the backend.
    corrupt(newest, 0);
    assert_eq!(numbers(&printenv(&config)), "upgrade_available=1 bootcount=2 bootlimit=3");
    match backend.facts().await {
        BackendFacts::Uboot {
            upgrade_available: Some(true),
            bootcount: Some(2),
            bootlimit: Some(3),
            error: None,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert!(backend.on_failure().await.reboots(), "bootcount 2 of 3 from the older copy");
    // The next write goes over the broken copy, and wins again.
    backend.on_pass().await.unwrap();
    assert_eq!(numbers(&printenv(&config)), "upgrade_available=0 bootcount=0 bootlimit=3");
}

#[tokio::test]
async fn two_copies_at_offsets_inside_a_disk_image_and_nothing_else_of_it_changes() {
    // The layout of many boards: the environment at fixed offsets of the raw boot disk,
    // here a disk image file (the VM scenarios use the same offsets on /dev/vda).
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    let copy = dir.path().join("copy.bin");
    mkenvimage(&copy, true, &strs(&update(3)));
    let mut image = vec![0x5au8; 1 << 20];
    let copy_bytes = std::fs::read(&copy).unwrap();
    let (first, second) = (0x80000usize, 0x84000usize);
    image[first..first + SIZE].copy_from_slice(&copy_bytes);
    image[second..second + SIZE].copy_from_slice(&copy_bytes);
    std::fs::write(&disk, &image).unwrap();
    let config = config_of(dir.path(), "fw_env.config", &[(&disk, first as u64), (&disk, second as u64)]);
    let b = Uboot::new(config.clone());
    match b.on_failure().await {
        RebootDecision::Fallback { to, .. } => assert_eq!(to, "U-Boot's altbootcmd"),
        other => panic!("{other:?}"),
    }
    b.on_pass().await.unwrap();
    assert_eq!(numbers(&printenv(&config)), "upgrade_available=0 bootcount=0 bootlimit=3");
    let after = std::fs::read(&disk).unwrap();
    assert_eq!(after.len(), image.len());
    let outside = |img: &[u8]| [img[..first].to_vec(), img[second + SIZE..].to_vec()].concat();
    assert_eq!(outside(&after), outside(&image), "only the environment's sectors are written");
}

/// A loop device over a disk image, detached when dropped.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Std::new("losetup").args(["-d", &self.0]).status();
    }
}

#[tokio::test]
async fn an_environment_in_a_partition_of_a_disk_on_a_loop_device() {
    // A real block device: the disk image on a loop device, its GPT partition read by
    // the kernel (`partx -a` where the loop driver's own scan left no node).
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk).unwrap().set_len(8 << 20).unwrap();
    run("sgdisk", &["-o", "-n", "1:2048:+1M", "-c", "1:uboot-env", disk.to_str().unwrap()]);
    let copy = dir.path().join("copy.bin");
    mkenvimage(&copy, true, &strs(&update(1)));
    {
        use std::os::unix::fs::FileExt as _;
        let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
        let bytes = std::fs::read(&copy).unwrap();
        f.write_all_at(&bytes, 2048 * 512).unwrap();
        f.write_all_at(&bytes, 2048 * 512 + SIZE as u64).unwrap();
    }
    let out = run("losetup", &["-f", "--show", "-P", disk.to_str().unwrap()]);
    let dev = Loop(String::from_utf8(out.stdout).unwrap().trim().to_string());
    let part = PathBuf::from(format!("{}p1", dev.0));
    if !part.exists() {
        run("partx", &["-a", &dev.0]);
    }
    let end = Instant::now() + Duration::from_secs(20);
    while !part.exists() {
        assert!(Instant::now() < end, "{} never appeared", part.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    let config = config_of(dir.path(), "fw_env.config", &[(&part, 0), (&part, SIZE as u64)]);
    assert_eq!(numbers(&printenv(&config)), "upgrade_available=1 bootcount=1 bootlimit=3");
    let b = Uboot::new(config.clone());
    let _ = b.facts().await;
    assert!(b.on_failure().await.reboots());
    b.on_pass().await.unwrap();
    assert_eq!(numbers(&printenv(&config)), "upgrade_available=0 bootcount=0 bootlimit=3");
    b.revert().await.unwrap();
    assert_eq!(numbers(&printenv(&config)), "upgrade_available=1 bootcount=3 bootlimit=3");
    drop(dev);
    // What the partition holds is in the image file, at the partition's offset.
    let start = 2048 * 512;
    let file_config = config_of(dir.path(), "file.config", &[(&disk, start), (&disk, start + SIZE as u64)]);
    assert_eq!(numbers(&printenv(&file_config)), "upgrade_available=1 bootcount=3 bootlimit=3");
}

#[tokio::test]
async fn an_environment_that_cannot_be_read_is_an_error_never_a_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let zeroed = dir.path().join("zeroed.bin");
    std::fs::write(&zeroed, vec![0u8; SIZE]).unwrap();
    let cases = [
        (dir.path().join("nonexistent.config"), "does not exist"),
        (config_of(dir.path(), "missing-device.config", &[(&dir.path().join("nodev"), 0)]), "fw_printenv -c"),
        // An environment never saved: libubootenv refuses it unless given a default (-f),
        // which bootgate never passes, so nothing is written over it either.
        (config_of(dir.path(), "zeroed.config", &[(&zeroed, 0)]), "exit status: 243"),
    ];
    for (config, said) in cases {
        let b = Uboot::new(config.clone());
        match b.facts().await {
            BackendFacts::Uboot { error: Some(e), upgrade_available: None, .. } => assert!(e.contains(said), "{e}"),
            other => panic!("{}: {other:?}", config.display()),
        }
        match b.on_failure().await {
            RebootDecision::StayBackendError { why } => {
                assert!(why.starts_with("cannot read U-Boot's environment: ") && why.contains(said), "{why}")
            }
            other => panic!("{}: {other:?}", config.display()),
        }
        let e = b.on_pass().await.unwrap_err();
        assert!(e.starts_with("cannot mark this boot good: ") && e.contains(said), "{e}");
        assert!(b.revertible().is_err());
        assert!(matches!(b.revert().await, Err(RevertError::Failed { .. })));
        assert!(counting(&config).await.is_none());
    }
    assert_eq!(std::fs::read(&zeroed).unwrap(), vec![0u8; SIZE], "the zeroed environment stays untouched");
}

#[tokio::test]
async fn a_device_that_never_answers_is_cut_at_the_timeout() {
    // fw_printenv opening a FIFO nobody writes blocks in open(2), as on a wedged device.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let config = config_of(dir.path(), "fw_env.config", &[(&fifo, 0)]);
    let b = Uboot::with_timeout(config, Duration::from_millis(300));
    let t0 = Instant::now();
    match b.on_failure().await {
        RebootDecision::StayBackendError { why } => assert!(why.contains("did not finish within 300ms"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn auto_finds_the_convention_only_where_the_environment_carries_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, with) = single(&dir.path().join("with").tap_mkdir(), &["bootlimit=3", "bootcmd=boot"]);
    let why = counting(&with).await.unwrap();
    assert!(why.contains("carries the bootcount convention") && why.contains("bootlimit=3"), "{why}");
    let (_, testing) = single(&dir.path().join("testing").tap_mkdir(), &["upgrade_available=1"]);
    assert!(counting(&testing).await.is_some());
    let (_, without) = single(&dir.path().join("without").tap_mkdir(), &["bootcmd=boot", "bootdelay=2"]);
    assert_eq!(counting(&without).await, None);
    assert_eq!(counting(&dir.path().join("nonexistent")).await, None);
}
