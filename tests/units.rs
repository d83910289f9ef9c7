//! Boot integration: the systemd units, the install layout and the sysext image,
//! checked with systemd's own tools and squashfs-tools. A missing tool fails the
//! test with the package to install; nothing here is skipped.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::BIN;

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// `systemd-analyze security` scores 0 (locked down) to 10 (unsandboxed).
const MAX_EXPOSURE: f64 = 2.5;
/// The same with the opt-in drop-in for a read-only /boot (docs/boot-integration.md):
/// CAP_SYS_ADMIN and @mount cost 0.5, the price of remounting /boot in the daemon.
const READ_ONLY_BOOT_EXPOSURE: f64 = 2.6;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Fails with the Debian package that provides `tool` when it is not on PATH.
fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "`{tool}` not found on PATH: install the Debian package `{package}` (build/deps.sh does)");
}

/// Runs `cmd`, fails on a non-zero exit, returns stdout and stderr together.
fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    let text = text(&out);
    assert!(out.status.success(), "{cmd:?} exited {}:\n{text}", out.status);
    text
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

/// `build/install.sh DESTDIR` with the binary cargo built for this test run.
fn install_into(destdir: &Path) {
    require("install", "coreutils");
    run(Command::new(repo().join("build/install.sh")).arg(destdir).env("BOOTGATE_BIN", BIN));
}

/// A root for `systemd-analyze verify --root=`: the host's units (so
/// sysinit.target, network-online.target and the like resolve) with this
/// project installed over them. Verifying there checks the shipped files
/// unmodified, ExecStart= included: /usr/bin/bootgate exists in that root.
fn verify_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let units = root.path().join("usr/lib/systemd/system");
    fs::create_dir_all(&units).unwrap();
    let host = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").exists())
        .expect("no sysinit.target on this host: install the Debian package `systemd`");
    let mut from = host.as_os_str().to_owned();
    from.push("/.");
    run(Command::new("cp").arg("-a").arg(from).arg(&units));
    install_into(root.path());
    // ExecReload= runs kill(1), which the OS ships (procps on Debian, Flatcar's /usr/bin).
    let kill = root.path().join("usr/bin/kill");
    fs::copy("/usr/bin/kill", &kill).expect("no /usr/bin/kill on this host: install the Debian package `procps`");
    root
}

/// `systemd-analyze verify --root` of one unit: any warning about our units
/// fails, not only the exit code (unknown keys and bad values exit 0).
fn verify(root: &Path, unit: &str) {
    require("systemd-analyze", "systemd");
    let out = output(Command::new("systemd-analyze").arg("verify").arg(format!("--root={}", root.display())).arg(unit));
    let text = text(&out);
    print!("systemd-analyze verify {unit}:\n{text}");
    let ours: Vec<&str> =
        text.lines().filter(|l| ["bootgate", "update-engine"].iter().any(|n| l.contains(n))).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify {unit} ({}) complained:\n{}",
        out.status,
        ours.join("\n")
    );
}

#[test]
fn bootgate_service_verifies() {
    let root = verify_root();
    verify(root.path(), "bootgate.service");
    verify(root.path(), "bootgate-report.service");
}

#[test]
fn update_engine_dropin_verifies_and_applies() {
    let root = verify_root();
    let units = root.path().join("usr/lib/systemd/system");
    // Stands in for Flatcar's update-engine.service; only verified, never run,
    // so any binary present in the root does for ExecStart=.
    fs::write(
        units.join("update-engine.service"),
        "[Unit]\nDescription=update_engine stand-in\n\n[Service]\nExecStart=/usr/bin/bootgate\n",
    )
    .unwrap();
    verify(root.path(), "update-engine.service");

    // Without bootgate.service the drop-in's Requires= must make the start
    // transaction fail: proof that systemd reads the drop-in as shipped.
    fs::remove_file(units.join("bootgate.service")).unwrap();
    let out = output(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.path().display()))
            .arg("update-engine.service"),
    );
    let text = text(&out);
    assert!(
        !out.status.success() && text.contains("bootgate.service not found"),
        "update-engine.service did not require bootgate.service ({}):\n{text}",
        out.status
    );
}

#[test]
fn security_exposure_within_target() {
    for unit in ["bootgate.service", "bootgate-report.service"] {
        let exposure = exposure(unit);
        assert!(exposure <= MAX_EXPOSURE, "{unit}: exposure {exposure} above {MAX_EXPOSURE}");
    }
}

fn exposure(unit: &str) -> f64 {
    exposure_of(&repo().join("systemd").join(unit), unit)
}

/// The exposure of the unit file at `path`, named `unit`.
fn exposure_of(path: &Path, unit: &str) -> f64 {
    require("systemd-analyze", "systemd");
    let text = run(Command::new("systemd-analyze").args(["security", "--offline=yes"]).arg(path));
    let line = text
        .lines()
        .find(|l| l.contains(&format!("Overall exposure level for {unit}:")))
        .unwrap_or_else(|| panic!("no exposure line in:\n{text}"));
    println!("{line}");
    line.split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse the exposure from {line:?}"))
}

/// The drop-in docs/boot-integration.md gives hosts whose /boot is mounted read-only
/// (the grubenv mark remounts it): it verifies, it grants the remount and nothing else,
/// and the unit with it scores no worse than the price of that grant.
#[test]
fn the_read_only_boot_drop_in_verifies_and_stays_within_the_target() {
    let page = fs::read_to_string(repo().join("docs/boot-integration.md")).unwrap();
    let marker = "# /etc/systemd/system/bootgate.service.d/20-read-only-boot.conf\n";
    let at = page.find(marker).expect("no read-only /boot drop-in in docs/boot-integration.md") + marker.len();
    let drop_in = &page[at..at + page[at..].find("```").unwrap()];
    let keys: Vec<&str> = drop_in.lines().filter(|l| l.contains('=')).collect();
    assert_eq!(keys, ["CapabilityBoundingSet=CAP_SYS_ADMIN", "SystemCallFilter=@mount"], "{drop_in}");

    let root = verify_root();
    let dir = root.path().join("etc/systemd/system/bootgate.service.d");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("20-read-only-boot.conf"), drop_in).unwrap();
    verify(root.path(), "bootgate.service");

    // The offline analyzer reads one file: the unit with the drop-in's lines in its [Service].
    let merged = tempfile::tempdir().unwrap();
    let unit = fs::read_to_string(repo().join("systemd/bootgate.service")).unwrap();
    let lines = drop_in.trim_start_matches("[Service]\n");
    let with = unit.replacen("\n[Install]\n", &format!("\n{lines}\n[Install]\n"), 1);
    fs::write(merged.path().join("bootgate.service"), with).unwrap();
    let (plain, dropped) =
        (exposure("bootgate.service"), exposure_of(&merged.path().join("bootgate.service"), "bootgate.service"));
    assert!(dropped > plain, "the drop-in changed nothing: {plain} and {dropped}");
    assert!(
        dropped <= READ_ONLY_BOOT_EXPOSURE,
        "with the read-only /boot drop-in: exposure {dropped} above {READ_ONLY_BOOT_EXPOSURE}"
    );
}

/// The boot disk's GPT is readable on every kind of disk a device boots from, eMMC and
/// SD cards (the boot disk of most ARM appliances) included.
#[test]
fn every_boot_disk_kind_is_in_the_device_allow_list() {
    let unit = fs::read_to_string(repo().join("systemd/bootgate.service")).unwrap();
    let allowed: Vec<&str> = unit.lines().filter_map(|l| l.strip_prefix("DeviceAllow=")).collect();
    for disk in ["block-sd", "block-virtblk", "block-blkext", "block-xvd", "block-mmc"] {
        assert!(allowed.contains(&format!("{disk} rw").as_str()), "DeviceAllow= lacks {disk}: {allowed:?}");
    }
    // And systemd accepts the list as shipped.
    let root = verify_root();
    verify(root.path(), "bootgate.service");
}

/// Every `MESSAGE_ID` bootgate logs, from its source: the constants named in a
/// `message_id = NAME` field, as (NAME, id).
fn message_ids() -> Vec<(String, String)> {
    let mut text = String::new();
    collect_sources(&repo().join("src"), &mut text);
    let mut names: Vec<&str> = text
        .match_indices("message_id = ")
        .filter_map(|(at, m)| text[at + m.len()..].split(|c: char| !(c.is_alphanumeric() || c == '_')).next())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let (_, rest) = text
                .split_once(&format!("const {name}: &str = \""))
                .unwrap_or_else(|| panic!("no `const {name}: &str` in src/"));
            (name.to_string(), rest.split('"').next().unwrap().to_string())
        })
        .collect()
}

fn collect_sources(dir: &Path, out: &mut String) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&fs::read_to_string(&path).unwrap());
        }
    }
}

/// The journal catalog as installed: journalctl compiles it (into a root of its own,
/// never the host's database), and every MESSAGE_ID bootgate logs has an entry with the
/// catalog's header fields and an explanation; there is none for an id it never logs.
#[test]
fn the_journal_catalog_explains_every_message_id_bootgate_logs() {
    require("journalctl", "systemd");
    let ids = message_ids();
    assert!(ids.len() >= 2, "the scan found too few MESSAGE_IDs: {ids:?}");
    let root = tempfile::tempdir().unwrap();
    install_into(root.path());
    let journalctl =
        |args: &[&str]| run(Command::new("journalctl").arg(format!("--root={}", root.path().display())).args(args));
    journalctl(&["--update-catalog"]);
    let listed = journalctl(&["--list-catalog"]);
    for (name, id) in &ids {
        // As `systemd-id128 new` makes them: 128 random bits, UUID version 4.
        let hex = id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        assert!(hex && &id[12..13] == "4" && "89ab".contains(&id[16..17]), "{name} = {id} is not a v4 id128");
        assert!(
            listed.lines().any(|l| l.starts_with(&format!("{id} bootgate: "))),
            "{name} ({id}) not listed:\n{listed}"
        );
        let entry = journalctl(&["--dump-catalog", id]);
        let (head, body) = entry.split_once("\n\n").unwrap_or_else(|| panic!("no explanation:\n{entry}"));
        for field in ["Subject: ", "Defined-By: bootgate", "Documentation: man:bootgate", "Support: "] {
            assert!(head.lines().any(|l| l.starts_with(field)), "{name}: no {field:?} in\n{head}");
        }
        assert!(body.contains("What to do") && body.contains("bootgate history"), "{name}: {body}");
    }
    let entries = listed.lines().count();
    assert_eq!(entries, ids.len(), "catalog entries for ids bootgate never logs:\n{listed}");
    let unique: std::collections::HashSet<&String> = ids.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), ids.len(), "two MESSAGE_IDs are the same: {ids:?}");
}

/// Docker comes in through a drop-in, so a policy without Docker checks can mask it.
#[test]
fn the_docker_dependency_is_a_drop_in_that_can_be_masked() {
    let root = verify_root();
    let units = root.path().join("usr/lib/systemd/system");
    let unit = fs::read_to_string(units.join("bootgate.service")).unwrap();
    assert!(!unit.lines().any(|l| l.contains("docker.service") && !l.starts_with('#')), "{unit}");
    let effective = || {
        run(Command::new("systemd-analyze")
            .arg(format!("--root={}", root.path().display()))
            .args(["cat-config", "systemd/system/bootgate.service.d/10-docker.conf"]))
    };
    let shipped = effective();
    assert!(shipped.lines().any(|l| l == "Wants=docker.service"), "{shipped}");
    assert!(shipped.lines().any(|l| l == "After=docker.service"), "{shipped}");
    verify(root.path(), "bootgate.service");
    // Masked as the README says: the /etc file wins and nothing pulls Docker in.
    let etc = root.path().join("etc/systemd/system/bootgate.service.d");
    fs::create_dir_all(&etc).unwrap();
    std::os::unix::fs::symlink("/dev/null", etc.join("10-docker.conf")).unwrap();
    let masked = effective();
    assert!(!masked.contains("docker.service"), "{masked}");
    verify(root.path(), "bootgate.service");
}

/// Nothing in the unit orders the gate after anything: its default dependencies start
/// it at basic.target, once the local file systems are up. The network is pulled in
/// (the default policy's network check asks about the target) but not waited for,
/// unless the drop-in that ships off is linked in; masked, it is off again.
#[test]
fn the_gate_waits_for_the_network_only_through_a_drop_in_that_ships_off() {
    let root = verify_root();
    let units = root.path().join("usr/lib/systemd/system");
    let unit = fs::read_to_string(units.join("bootgate.service")).unwrap();
    let keys: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(!keys.iter().any(|l| l.starts_with("After=")), "bootgate.service orders itself after something:\n{unit}");
    assert!(!keys.iter().any(|l| l.starts_with("DefaultDependencies=")), "{unit}");
    assert!(keys.contains(&"Wants=network-online.target"), "{unit}");

    let name = "bootgate.service.d/20-network-online.conf";
    let shipped = root.path().join("usr/share/bootgate/dropins").join(name);
    assert_eq!(fs::read(&shipped).unwrap(), fs::read(repo().join("systemd").join(name)).unwrap());
    assert!(!units.join(name).exists(), "the network drop-in is active as installed");
    let config = format!("systemd/system/{name}");
    let effective = || {
        run(Command::new("systemd-analyze")
            .arg(format!("--root={}", root.path().display()))
            .args(["cat-config", config.as_str()]))
    };
    assert!(!effective().contains("network-online.target\n"), "{}", effective());
    verify(root.path(), "bootgate.service");

    // Linked as its comment says (relative here: systemd-analyze --root does not
    // resolve an absolute link inside the root): both lines take effect.
    let etc = root.path().join("etc/systemd/system/bootgate.service.d");
    fs::create_dir_all(&etc).unwrap();
    let link = etc.join("20-network-online.conf");
    std::os::unix::fs::symlink(
        "../../../../usr/share/bootgate/dropins/bootgate.service.d/20-network-online.conf",
        &link,
    )
    .unwrap();
    let linked = effective();
    for line in ["Wants=network-online.target", "After=network-online.target"] {
        assert!(linked.lines().any(|l| l == line), "{linked}");
    }
    verify(root.path(), "bootgate.service");

    // Installed active by an image, and masked as its comment says: the /etc file wins.
    fs::remove_file(&link).unwrap();
    fs::copy(&shipped, units.join(name)).unwrap();
    assert!(effective().lines().any(|l| l == "After=network-online.target"));
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    let masked = effective();
    assert!(!masked.lines().any(|l| l.contains("network-online.target") && !l.starts_with('#')), "{masked}");
    verify(root.path(), "bootgate.service");
}

/// The code block of `doc` whose first line is `first`, without its fences.
fn fenced_block(doc: &str, first: &str) -> String {
    let text = fs::read_to_string(repo().join(doc)).unwrap();
    let start = text.find(&format!("```ini\n{first}\n")).unwrap_or_else(|| panic!("{doc} has no block for {first}"));
    let block = &text[start + "```ini\n".len()..];
    block[..block.find("```").unwrap_or_else(|| panic!("{doc}: the block for {first} does not close"))].to_string()
}

/// The podman drop-in the policy reference shows, installed as written: systemd reads
/// it, pulls podman's API socket in and orders the gate after it.
#[test]
fn the_podman_drop_in_of_the_docs_verifies() {
    let path = "/etc/systemd/system/bootgate.service.d/10-podman.conf";
    let dropin = fenced_block("docs/policy.md", &format!("# {path}"));
    let root = verify_root();
    // podman's own unit, from the package the host has (build/deps.sh installs it).
    let socket = root.path().join("usr/lib/systemd/system/podman.socket");
    assert!(socket.exists(), "no podman.socket among the host's units: install the Debian package `podman`");
    let file = root.path().join(path.trim_start_matches('/'));
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, &dropin).unwrap();
    let effective = run(Command::new("systemd-analyze")
        .arg(format!("--root={}", root.path().display()))
        .args(["cat-config", "systemd/system/bootgate.service.d/10-podman.conf"]));
    for line in ["Wants=podman.socket", "After=podman.socket"] {
        assert!(effective.lines().any(|l| l == line), "{effective}");
    }
    verify(root.path(), "bootgate.service");
}

/// OnFailure= of the gate's unit names the report unit, and nothing depends on the report.
#[test]
fn a_failed_gate_hands_over_to_the_report_unit() {
    let root = verify_root();
    let units = root.path().join("usr/lib/systemd/system");
    let gate = fs::read_to_string(units.join("bootgate.service")).unwrap();
    assert!(gate.lines().any(|l| l == "OnFailure=bootgate-report.service"), "{gate}");
    assert!(gate.lines().any(|l| l == "ExecReload=/usr/bin/kill -HUP $MAINPID"), "{gate}");
    let report = fs::read_to_string(units.join("bootgate-report.service")).unwrap();
    assert!(report.lines().any(|l| l == "ExecStart=/usr/bin/bootgate serve"), "{report}");
    assert!(!report.contains("[Install]"), "the report unit is started only by OnFailure=");
    assert!(report.lines().any(|l| l == "Type=exec"), "serve must not be a notify unit: {report}");
    // No shipped unit requires, wants or is bound to the report.
    for entry in fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = fs::read_to_string(&path) else { continue };
        if path.ends_with("bootgate-report.service") {
            continue;
        }
        for line in text.lines().filter(|l| !l.starts_with('#') && l.contains("bootgate-report")) {
            assert!(
                line.starts_with("OnFailure=") && path.ends_with("bootgate.service"),
                "{} refers to the report unit: {line}",
                path.display()
            );
        }
    }
}

/// One entry of `unsquashfs -lls`: mode string, owner, size, path.
struct Entry {
    mode: String,
    owner: String,
    size: u64,
    path: String,
}

fn list_image(image: &Path) -> Vec<Entry> {
    let text = run(Command::new("unsquashfs").arg("-lls").arg(image));
    text.lines()
        .filter_map(|line| {
            // -rwxr-xr-x root/root 35664 2026-01-01 00:00 squashfs-root/usr/bin/bootgate
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 6 && f[5].starts_with("squashfs-root")).then(|| Entry {
                mode: f[0].to_owned(),
                owner: f[1].to_owned(),
                size: f[2].parse().unwrap_or(0),
                path: f[5].to_owned(),
            })
        })
        .collect()
}

fn cat_image(image: &Path, path: &str) -> String {
    run(Command::new("unsquashfs").arg("-cat").arg(image).arg(path))
}

#[test]
fn sysext_image_is_a_flatcar_extension() {
    require("mksquashfs", "squashfs-tools");
    require("unsquashfs", "squashfs-tools");
    let out = tempfile::tempdir().unwrap();
    run(Command::new(repo().join("build/sysext.sh")).arg(out.path()).env("BOOTGATE_BIN", BIN));
    let image: PathBuf = out.path().join(format!("bootgate-{VERSION}-x86-64.raw"));
    assert!(image.is_file(), "{} was not written", image.display());
    // Reproducible: a second build of the same tree is byte-identical.
    let again = tempfile::tempdir().unwrap();
    run(Command::new(repo().join("build/sysext.sh")).arg(again.path()).env("BOOTGATE_BIN", BIN));
    let second = again.path().join(image.file_name().unwrap());
    assert!(fs::read(&image).unwrap() == fs::read(&second).unwrap(), "two sysext builds differ");
    let sums = |dir: &Path| fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    assert_eq!(sums(out.path()), sums(again.path()), "two sysext builds list different checksums");

    let entries = list_image(&image);
    for e in &entries {
        assert!(
            e.path == "squashfs-root" || e.path == "squashfs-root/usr" || e.path.starts_with("squashfs-root/usr/"),
            "outside usr/: {}",
            e.path
        );
        assert_eq!(e.owner, "root/root", "{} not owned by root", e.path);
        // Directories are overlaid onto the host's /usr: anything but 0755
        // would change who can read /usr/lib and friends.
        if e.mode.starts_with('d') {
            assert_eq!(e.mode, "drwxr-xr-x", "{}", e.path);
        }
    }
    let entry = |path: &str| {
        entries
            .iter()
            .find(|e| e.path == format!("squashfs-root/{path}"))
            .unwrap_or_else(|| panic!("{path} missing from the image"))
    };
    let bin = entry("usr/bin/bootgate");
    assert_eq!(bin.mode, "-rwxr-xr-x");
    // A copy of BIN with a run path into the image (tests/sysext.rs), so never smaller.
    assert!(bin.size >= fs::metadata(BIN).unwrap().len(), "usr/bin/bootgate is {} bytes", bin.size);
    for path in [
        "usr/lib/systemd/system/bootgate.service",
        "usr/lib/systemd/system/bootgate-report.service",
        "usr/lib/systemd/system/bootgate.service.d/10-docker.conf",
        "usr/lib/systemd/system/update-engine.service.d/10-bootgate.conf",
        "usr/share/bootgate/dropins/bootgate.service.d/20-network-online.conf",
        "usr/share/bootgate/policy.yaml",
        "usr/share/bootgate/schema.json",
    ] {
        assert_eq!(entry(path).mode, "-rw-r--r--", "{path}");
    }
    // Off in the image too: the gate of an offline device does not wait for the network.
    assert!(
        !entries.iter().any(|e| e.path.ends_with("usr/lib/systemd/system/bootgate.service.d/20-network-online.conf")),
        "the network drop-in is active in the image"
    );

    let release = cat_image(&image, "usr/lib/extension-release.d/extension-release.bootgate");
    for key in ["ID=flatcar", "SYSEXT_LEVEL=1.0", "ARCHITECTURE=x86-64"] {
        assert!(release.lines().any(|l| l.trim() == key), "{key} missing from extension-release:\n{release}");
    }

    let upholds = cat_image(&image, "usr/lib/systemd/system/multi-user.target.d/10-bootgate.conf");
    assert!(
        upholds.contains("[Unit]") && upholds.lines().any(|l| l.trim() == "Upholds=bootgate.service"),
        "Upholds= drop-in wrong:\n{upholds}"
    );
    // And systemd accepts it as shipped, on the real multi-user.target.
    let root = verify_root();
    let dropin = root.path().join("usr/lib/systemd/system/multi-user.target.d/10-bootgate.conf");
    fs::create_dir_all(dropin.parent().unwrap()).unwrap();
    fs::write(&dropin, &upholds).unwrap();
    verify(root.path(), "multi-user.target");
}

#[test]
fn install_lays_out_ten_files() {
    let dest = tempfile::tempdir().unwrap();
    // Twice: a second install over the first must succeed and change nothing.
    install_into(dest.path());
    install_into(dest.path());
    let d = dest.path();
    let expect = [
        ("usr/bin/bootgate", 0o755, Path::new(BIN).to_path_buf()),
        ("usr/lib/systemd/system/bootgate.service", 0o644, repo().join("systemd/bootgate.service")),
        ("usr/lib/systemd/system/bootgate-report.service", 0o644, repo().join("systemd/bootgate-report.service")),
        (
            "usr/lib/systemd/system/bootgate.service.d/10-docker.conf",
            0o644,
            repo().join("systemd/bootgate.service.d/10-docker.conf"),
        ),
        (
            "usr/lib/systemd/system/update-engine.service.d/10-bootgate.conf",
            0o644,
            repo().join("systemd/update-engine.service.d/10-bootgate.conf"),
        ),
        (
            "usr/share/bootgate/dropins/bootgate.service.d/20-network-online.conf",
            0o644,
            repo().join("systemd/bootgate.service.d/20-network-online.conf"),
        ),
        ("usr/lib/systemd/catalog/bootgate.catalog", 0o644, repo().join("systemd/bootgate.catalog")),
        ("usr/share/bootgate/policy.yaml", 0o644, repo().join("policy/default.yaml")),
        ("usr/share/bootgate/schema.json", 0o644, repo().join("policy/schema.json")),
        (
            "usr/share/bootgate/integrations/mender/ArtifactCommit_Enter_00_bootgate",
            0o644,
            repo().join("integrations/mender/ArtifactCommit_Enter_00_bootgate"),
        ),
    ];
    for (path, want, source) in &expect {
        let file = d.join(path);
        assert_eq!(mode(&file), *want, "mode of {path}");
        assert_eq!(
            fs::metadata(&file).unwrap().len(),
            fs::metadata(source).unwrap().len(),
            "{path} differs from {}",
            source.display()
        );
    }
    for (path, _, source) in &expect[1..] {
        assert_eq!(fs::read(d.join(path)).unwrap(), fs::read(source).unwrap(), "{path}");
    }
    let mut files = Vec::new();
    collect_files(d, d, &mut files);
    files.sort();
    let mut want: Vec<String> = expect.iter().map(|(p, _, _)| p.to_string()).collect();
    want.sort();
    assert_eq!(files, want, "install.sh installed other files too");
}

fn collect_files(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(base, &path, out);
        } else {
            out.push(path.strip_prefix(base).unwrap().display().to_string());
        }
    }
}
