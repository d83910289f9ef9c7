//! efibootguard against `BGENV.DAT` files written and read back by Debian's real
//! `bg_setenv` and `bg_printenv` (file mode: the same environment format the loader reads
//! from its config partitions; partition mode runs in the VM scenarios).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

use super::*;

const PRINTENV: &str = "bg_printenv";
const SETENV: &str = "bg_setenv";

/// Writes a fresh environment at `path` with the real `bg_setenv`, as an updater does.
fn env(path: &Path, revision: u32, ustate: &str, args: &str, in_progress: bool) {
    let out = Std::new(SETENV)
        .arg("-f")
        .arg(path)
        .args(["-r", &revision.to_string(), "-k", "L:BOOT:vmlinuz", "-a", args, "-w", "30", "-s", ustate])
        .args(["-i", if in_progress { "1" } else { "0" }])
        .output()
        .expect("bg_setenv (Debian package efibootguard) must be installed");
    assert!(out.status.success(), "{out:?}");
}

/// What the real `bg_printenv -r` reads from `path`, all fields.
fn printenv(path: &Path) -> String {
    let out = Std::new(PRINTENV).arg("-f").arg(path).arg("-r").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

const ARGS_A: &str = "console=ttyS0 root=/dev/vda1 initrd=\\initrd.img";
const ARGS_B: &str = "console=ttyS0 root=/dev/vda2 initrd=\\initrd.img";

/// Two configurations in a temporary directory (A = #0, B = #1) and the kernel command
/// line this boot started with.
struct Machine {
    _dir: tempfile::TempDir,
    files: Vec<PathBuf>,
    cmdline: PathBuf,
}

impl Machine {
    fn new(a: (u32, &str), b: (u32, &str), booted_args: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![dir.path().join("a.dat"), dir.path().join("b.dat")];
        env(&files[0], a.0, a.1, ARGS_A, false);
        env(&files[1], b.0, b.1, ARGS_B, false);
        let cmdline = dir.path().join("cmdline");
        fs::write(&cmdline, format!("{booted_args}\n")).unwrap();
        Machine { _dir: dir, files, cmdline }
    }

    fn backend(&self) -> Efibootguard {
        self.with_tools(PRINTENV, SETENV)
    }

    fn with_tools(&self, printenv: &str, setenv: &str) -> Efibootguard {
        let source = Source::Files(self.files.clone());
        Efibootguard::at(source, Path::new(printenv), Path::new(setenv), &self.cmdline, Duration::from_secs(20))
    }
}

fn config(index: usize, revision: u32, ustate: u8, args: &str) -> Config {
    Config { index, revision, ustate, kernelparams: args.into(), kernel: "vmlinuz".into(), in_progress: false }
}

#[test]
fn the_real_printenv_output_is_parsed_field_by_field() {
    let m = Machine::new((1, "OK"), (2, "TESTING"), ARGS_B);
    let out = Std::new(PRINTENV).arg("-f").arg(&m.files[1]).args(["-r", "-o", FIELDS]).output().unwrap();
    let parsed = parse(1, &String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(
        parsed,
        Config {
            index: 1,
            in_progress: false,
            revision: 2,
            kernel: "L:BOOT:vmlinuz".into(),
            kernelparams: ARGS_B.into(),
            ustate: TESTING
        }
    );
}

#[test]
fn kernel_arguments_holding_a_newline_cannot_pose_as_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("BGENV.DAT");
    env(&file, 3, "TESTING", "quiet\nUSTATE=0", false);
    let out = Std::new(PRINTENV).arg("-f").arg(&file).args(["-r", "-o", FIELDS]).output().unwrap();
    let parsed = parse(0, &String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(parsed.ustate, TESTING);
    assert_eq!(parsed.kernelparams, "quiet\nUSTATE=0");
}

#[test]
fn output_that_is_not_an_environment_is_an_error_not_a_panic() {
    for bad in [
        "",
        "\n",
        "IN_PROGRESS=0\n",
        "IN_PROGRESS=0\nREVISION=x\nKERNEL=k\nKERNELARGS=a\nUSTATE=0\n",
        "IN_PROGRESS=0\nREVISION=1\nKERNEL=k\nKERNELARGS=a\nUSTATE=300\n",
        "REVISION=1\nIN_PROGRESS=0\nKERNEL=k\nKERNELARGS=a\nUSTATE=0\n",
        "IN_PROGRESS=0\nREVISION=1\nKERNEL=k\nUSTATE=0\n",
        "Values:\nin_progress: no\n",
        "\u{0}\u{ffff}=\n\n\n\n",
    ] {
        assert!(parse(0, bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_booted_configuration_is_the_command_lines_else_the_loaders_choice_replayed() {
    let a = config(0, 1, OK, ARGS_A);
    let b = config(1, 2, TESTING, ARGS_B);
    // The command line decides when exactly one configuration has it (whitespace aside).
    assert_eq!(booted(&[a.clone(), b.clone()], Some(&format!("  {}\n", ARGS_A.replace(' ', "  ")))), Some(0));
    assert_eq!(booted(&[a.clone(), b.clone()], Some(ARGS_B)), Some(1));
    // Otherwise the loader's rule: the highest revision…
    assert_eq!(booted(&[a.clone(), b.clone()], Some("something else")), Some(1));
    assert_eq!(booted(&[a.clone(), b.clone()], None), Some(1));
    let same = config(1, 2, TESTING, ARGS_A);
    assert_eq!(booted(&[a.clone(), same], Some(ARGS_A)), Some(1), "two configurations with this command line");
    // …unless it is being written or was installed after this boot (not yet booted)…
    let writing = Config { in_progress: true, ..b.clone() };
    assert_eq!(booted(&[a.clone(), writing], None), Some(0));
    let installed = config(1, 3, INSTALLED, ARGS_B);
    assert_eq!(booted(&[a.clone(), installed], None), Some(0));
    // …and a failed test (revision 0) never boots; a tie goes to the lower index.
    assert_eq!(booted(&[a.clone(), config(1, 0, FAILED, ARGS_B)], None), Some(0));
    assert_eq!(booted(&[config(0, 5, OK, ARGS_A), config(1, 5, OK, ARGS_B)], None), Some(0));
    assert_eq!(booted(&[config(0, 0, FAILED, ARGS_A), config(1, 0, FAILED, ARGS_B)], None), None);
}

#[tokio::test]
async fn a_tested_configuration_with_an_ok_other_reboots_to_it() {
    let m = Machine::new((1, "OK"), (2, "TESTING"), ARGS_B);
    let decision = m.backend().on_failure().await;
    assert_eq!(
        decision,
        RebootDecision::Fallback {
            to: "config #0 (revision 1, OK)".into(),
            why: "config #1 is TESTING, so EFI Boot Guard marks it FAILED (revision 0) and boots the next".into()
        }
    );
    assert!(decision.reboots());
    // bootgate writes nothing: the loader itself marks the failed test at the next boot.
    assert!(printenv(&m.files[1]).contains("USTATE=2\n"));
}

#[tokio::test]
async fn a_confirmed_configuration_stays() {
    let m = Machine::new((1, "OK"), (2, "OK"), ARGS_B);
    assert_eq!(m.backend().on_failure().await, RebootDecision::StayConfirmed);
}

#[tokio::test]
async fn a_tested_configuration_without_a_good_other_stays() {
    // The other failed its own test earlier (revision 0, FAILED).
    let m = Machine::new((0, "FAILED"), (2, "TESTING"), ARGS_B);
    assert_eq!(m.backend().on_failure().await, RebootDecision::StayNoFallback);
    // The other is being written by an updater.
    let m = Machine::new((1, "OK"), (2, "TESTING"), ARGS_B);
    env(&m.files[0], 1, "OK", ARGS_A, true);
    assert_eq!(m.backend().on_failure().await, RebootDecision::StayNoFallback);
    // The other is OK but has the higher revision: the loader would boot the same again.
    let m = Machine::new((3, "OK"), (2, "TESTING"), ARGS_B);
    assert_eq!(m.backend().on_failure().await, RebootDecision::StayNoFallback);
}

#[tokio::test]
async fn an_unreadable_environment_is_a_backend_error() {
    let m = Machine::new((1, "OK"), (2, "TESTING"), ARGS_B);
    fs::write(&m.files[0], b"not an environment").unwrap();
    match m.backend().on_failure().await {
        RebootDecision::StayBackendError { why } => {
            assert!(why.contains("bg_printenv -f") && why.contains("Error reading environment file"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // A checksum that does not match is refused by the tool as well.
    let m = Machine::new((1, "OK"), (2, "TESTING"), ARGS_B);
    let mut raw = fs::read(&m.files[1]).unwrap();
    raw[1020] ^= 1;
    fs::write(&m.files[1], raw).unwrap();
    assert!(matches!(m.backend().on_failure().await, RebootDecision::StayBackendError { .. }));
    // And a machine without the tools.
    let m = Machine::new((1, "OK"), (2, "TESTING"), ARGS_B);
    match m.with_tools("/nonexistent/bg_printenv", SETENV).on_failure().await {
        RebootDecision::StayBackendError { why } => {
            assert!(why.starts_with("cannot run `/nonexistent/bg_printenv"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_passed_gate_confirms_the_booted_configuration_and_keeps_the_rest() {
    let m = Machine::new((1, "OK"), (2, "TESTING"), ARGS_B);
    let a_before = fs::read(&m.files[0]).unwrap();
    let b_before = printenv(&m.files[1]);
    let done = m.backend().on_pass().await.unwrap();
    assert_eq!(done, "confirmed EFI Boot Guard config #1 (revision 2): ustate TESTING → OK");
    // Read back by the real tool: only ustate changed.
    assert_eq!(printenv(&m.files[1]), b_before.replace("USTATE=2", "USTATE=0"));
    assert!(b_before.contains("WATCHDOG_TIMEOUT=30\n") && b_before.contains(&format!("KERNELARGS={ARGS_B}\n")));
    assert_eq!(fs::read(&m.files[0]).unwrap(), a_before, "the other configuration is left alone");
    // Confirmed once, a second pass writes nothing.
    let b_after = fs::read(&m.files[1]).unwrap();
    let again = m.backend().on_pass().await.unwrap();
    assert_eq!(again, "EFI Boot Guard config #1 (revision 2, OK) is already confirmed");
    assert_eq!(fs::read(&m.files[1]).unwrap(), b_after);
}

#[tokio::test]
async fn a_confirm_that_cannot_be_written_says_so() {
    let m = Machine::new((1, "OK"), (2, "TESTING"), ARGS_B);
    let err = m.with_tools(PRINTENV, "/nonexistent/bg_setenv").on_pass().await.unwrap_err();
    assert!(err.starts_with("cannot confirm this boot: cannot run `/nonexistent/bg_setenv -f "), "{err}");
    assert!(err.ends_with("EFI Boot Guard will count it as a failed test"), "{err}");
}

#[tokio::test]
async fn facts_list_every_configuration_and_the_booted_one() {
    let m = Machine::new((1, "OK"), (2, "TESTING"), ARGS_B);
    let facts = m.backend().facts().await;
    let BackendFacts::Efibootguard { configs: Some(configs), error: None } = facts else { panic!("{facts:?}") };
    assert_eq!(
        configs,
        vec![
            EbgConfig {
                source: m.files[0].display().to_string(),
                revision: 1,
                ustate: "OK".into(),
                in_progress: false,
                kernel: Some("L:BOOT:vmlinuz".into()),
                booted: false,
            },
            EbgConfig {
                source: m.files[1].display().to_string(),
                revision: 2,
                ustate: "TESTING".into(),
                in_progress: false,
                kernel: Some("L:BOOT:vmlinuz".into()),
                booted: true,
            },
        ]
    );
    fs::write(&m.files[1], b"").unwrap();
    let facts = m.backend().facts().await;
    let BackendFacts::Efibootguard { configs: None, error: Some(e) } = facts else { panic!("{facts:?}") };
    assert!(e.contains("Error reading environment file"), "{e}");
}

#[tokio::test]
async fn a_revert_marks_the_booted_configuration_failed_so_the_other_boots() {
    let m = Machine::new((1, "OK"), (2, "OK"), ARGS_B);
    let backend = m.backend();
    assert!(backend.revertible().is_err(), "nothing read yet");
    backend.on_pass().await.unwrap();
    backend.revertible().unwrap();
    let a_before = fs::read(&m.files[0]).unwrap();
    let reverted = backend.revert().await.unwrap();
    assert_eq!(
        reverted,
        Reverted { booted: "config #1 (revision 2, OK)".into(), fallback: "config #0 (revision 1, OK)".into() }
    );
    let b = printenv(&m.files[1]);
    assert!(b.contains("REVISION=0\n") && b.contains("USTATE=3\n"), "{b}");
    assert!(b.contains(&format!("KERNELARGS={ARGS_B}\n")), "the rest is kept: {b}");
    assert_eq!(fs::read(&m.files[0]).unwrap(), a_before);
}

#[tokio::test]
async fn no_revert_without_a_good_other_configuration() {
    let m = Machine::new((0, "FAILED"), (2, "OK"), ARGS_B);
    let backend = m.backend();
    backend.on_pass().await.unwrap();
    assert_eq!(
        backend.revertible().unwrap_err(),
        "not armed: no other EFI Boot Guard configuration is OK to fall back to"
    );
    let before = fs::read(&m.files[1]).unwrap();
    assert!(matches!(backend.revert().await, Err(RevertError::NoFallback)));
    assert_eq!(fs::read(&m.files[1]).unwrap(), before);
}

#[test]
fn mounted_fat_file_systems_holding_an_environment_are_found() {
    let table = "\
24 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 24 254:4 / /efi rw,relatime shared:5 - vfat /dev/vda4 rw,fmask=0077
31 24 254:5 / /boot/efibootguard/0 rw,relatime shared:6 - vfat /dev/vda5 rw
32 24 254:6 / /boot/ebg\\0401 rw,relatime shared:7 - vfat /dev/vda6 rw
33 24 0:5 / /mnt/tmp rw - tmpfs tmpfs rw
garbage line
";
    let exists = |p: &Path| p.starts_with("/boot") || p.starts_with("/mnt");
    assert_eq!(
        mounted_envs(table, exists),
        vec![PathBuf::from("/boot/efibootguard/0/BGENV.DAT"), PathBuf::from("/boot/ebg 1/BGENV.DAT")]
    );
    assert!(mounted_envs(table, |_| false).is_empty());
}

#[test]
fn auto_needs_a_uefi_boot_and_a_mounted_environment() {
    let dir = tempfile::tempdir().unwrap();
    let firmware = dir.path().join("firmware");
    let cfg = dir.path().join("cfg");
    fs::create_dir_all(&cfg).unwrap();
    fs::write(cfg.join("BGENV.DAT"), b"x").unwrap();
    let mountinfo = dir.path().join("mountinfo");
    fs::write(&mountinfo, format!("31 24 254:5 / {} rw - vfat /dev/vda5 rw\n", cfg.display())).unwrap();
    assert_eq!(detect(&firmware, &mountinfo), None, "not a UEFI boot");
    fs::create_dir_all(firmware.join("efi")).unwrap();
    let why = detect(&firmware, &mountinfo).unwrap();
    assert_eq!(why, format!("EFI Boot Guard's environment is mounted ({}/BGENV.DAT)", cfg.display()));
    fs::remove_file(cfg.join("BGENV.DAT")).unwrap();
    assert_eq!(detect(&firmware, &mountinfo), None);
}
