//! Packages: the completions and man pages `bootgate generate` makes, loaded by the real
//! shells and renderers; the .deb (build/deb.sh) installed with apt into a clean Debian
//! root from mmdebstrap, checked there and purged to nothing; the .rpm (build/rpm.sh)
//! read back with rpm. Both are built from this test run's debug binary. A missing
//! tool fails with the package to install; nothing here is skipped.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use support::{BIN, DebianRoot, find_binary, run_bounded};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs `cmd` with a deadline, fails on a non-zero exit, returns its stdout.
#[track_caller]
fn stdout(cmd: &mut Command, timeout: Duration) -> String {
    let out = run_bounded(cmd, timeout);
    assert!(out.status.success(), "{cmd:?} exited {}:\n{}", out.status, text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The commands `bootgate --help` lists (`help` aside): what completions and man pages must name.
fn commands() -> Vec<String> {
    let help = stdout(Command::new(BIN).arg("--help"), Duration::from_secs(30));
    let listed: Vec<String> = help
        .lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect();
    assert!(listed.len() >= 7 && listed.iter().any(|c| c == "boot-status"), "commands read from --help: {listed:?}");
    listed
}

/// The commands `bootgate COMMAND --help` lists, if any (without `help`).
fn subcommands(command: &str) -> Vec<String> {
    let help = stdout(Command::new(BIN).args([command, "--help"]), Duration::from_secs(30));
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

/// `bootgate generate completions SHELL` written to a file in `dir`.
fn completions(dir: &Path, shell: &str) -> PathBuf {
    let script = stdout(Command::new(BIN).args(["generate", "completions", shell]), Duration::from_secs(30));
    let path = dir.join(format!("bootgate.{shell}"));
    fs::write(&path, script).unwrap();
    path
}

#[test]
fn bash_completion_completes_commands_and_options_in_a_real_bash() {
    let bash = find_binary("bash", "bash");
    let dir = tempfile::tempdir().unwrap();
    let script = completions(dir.path(), "bash");
    // What bash does on TAB: the function `complete -p` names gets the words and fills COMPREPLY.
    let complete = |words: &[&str]| -> Vec<String> {
        let line = words.join(" ");
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            r#"source "$1" || exit 9
fn=$(complete -p bootgate | sed -E 's/.* -F ([^ ]+) .*/\1/')
COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE="{line}"; COMP_POINT=${{#COMP_LINE}}
"$fn" bootgate "{cur}" "{prev}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
            words = quoted.join(" "),
            cword = words.len() - 1,
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let mut cmd = Command::new(&bash);
        cmd.args(["--norc", "--noprofile", "-c", &program, "bash"]).arg(&script).env_clear();
        stdout(&mut cmd, Duration::from_secs(30)).lines().filter(|l| !l.is_empty()).map(String::from).collect()
    };
    assert_eq!(complete(&["bootgate", "hi"]), ["history"]);
    assert_eq!(complete(&["bootgate", "check", "--fo"]), ["--format"]);
    assert_eq!(complete(&["bootgate", "check", "--format", ""]), ["text", "json"]);
    // The hidden command is parsed but never offered.
    assert_eq!(complete(&["bootgate", "gen"]), Vec::<String>::new());
}

#[test]
fn zsh_and_fish_completions_parse_and_name_every_command() {
    let zsh = find_binary("zsh", "zsh");
    let fish = find_binary("fish", "fish");
    let dir = tempfile::tempdir().unwrap();
    let commands = commands();
    for (shell, flag, program) in [("zsh", "-n", &zsh), ("fish", "--no-execute", &fish)] {
        let script = completions(dir.path(), shell);
        let out = run_bounded(Command::new(program).arg(flag).arg(&script), Duration::from_secs(30));
        assert!(out.status.success() && out.stderr.is_empty(), "{shell} -n: {}\n{}", out.status, text(&out));
        let body = fs::read_to_string(&script).unwrap();
        for command in &commands {
            assert!(body.contains(command.as_str()), "the {shell} completions do not name `{command}`");
        }
        assert!(!body.contains("generate"), "the {shell} completions offer the hidden command");
    }
}

#[test]
fn man_pages_render_without_warnings_and_name_every_command() {
    let groff = find_binary("groff", "groff-base");
    let man = find_binary("man", "man-db");
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    stdout(Command::new(BIN).arg("generate").arg("man").arg(&pages), Duration::from_secs(30));
    let commands = commands();
    let mut expected: Vec<String> = commands.iter().map(|c| format!("bootgate-{c}.1")).collect();
    // A command with commands of its own (`migrate greenboot`) has a page for each, as git's do.
    for command in &commands {
        expected.extend(subcommands(command).iter().map(|s| format!("bootgate-{command}-{s}.1")));
    }
    expected.push("bootgate.1".into());
    expected.sort();
    let mut written: Vec<String> =
        fs::read_dir(&pages).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    written.sort();
    assert_eq!(written, expected, "one page for bootgate and one per command");

    for page in &written {
        let path = pages.join(page);
        // -ww: every warning groff knows; -z: parse and format, print nothing.
        let out =
            run_bounded(Command::new(&groff).args(["-man", "-Tutf8", "-ww", "-z"]).arg(&path), Duration::from_secs(30));
        assert!(out.status.success() && out.stderr.is_empty(), "groff on {page}: {}\n{}", out.status, text(&out));
        let out = run_bounded(
            Command::new(&man).args(["--warnings", "-l"]).arg(&path).env("MANWIDTH", "80").env("MANPAGER", "cat"),
            Duration::from_secs(30),
        );
        assert!(out.status.success() && out.stderr.is_empty(), "man -l {page}: {}\n{}", out.status, text(&out));
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(shown.contains("NAME") && shown.contains(&format!("bootgate {VERSION}")), "man -l {page}:\n{shown}");
    }
    let top = stdout(
        Command::new(&man).arg("-l").arg(pages.join("bootgate.1")).env("MANWIDTH", "200").env("MANPAGER", "cat"),
        Duration::from_secs(30),
    );
    for command in &commands {
        assert!(top.contains(&format!("bootgate-{command}(1)")), "bootgate(1) does not name `{command}`:\n{top}");
    }
}

/// Builds the package with `script` (build/deb.sh or build/rpm.sh) from this run's
/// debug binary into `out`; returns its path.
fn build_package(script: &str, out: &Path) -> PathBuf {
    let mut cmd = Command::new(repo().join(script));
    cmd.arg(out).env("BOOTGATE_BIN", BIN).env_remove("SOURCE_DATE_EPOCH");
    // dpkg-deb's own knob: xz (the default `make deb` ships) takes half a minute on the
    // unoptimised binary; what is inside the package does not depend on it.
    cmd.env("DPKG_DEB_COMPRESSOR_TYPE", "gzip");
    let path = PathBuf::from(stdout(&mut cmd, Duration::from_secs(300)).trim());
    assert!(path.is_file(), "{script} printed {}, which is no file", path.display());
    path
}

/// Whether a listed path is a drop-in where systemd reads it (the package's are opt-in).
fn active_dropin(path: &str) -> bool {
    path.starts_with("/usr/lib/systemd/system/") && path.contains(".service.d")
}

/// Paths whose changes are dpkg's and apt's own bookkeeping, or outside the root.
const NOT_THE_PACKAGES: [&str; 8] =
    ["proc", "dev", "sys", "mnt", "var/lib/dpkg", "var/lib/apt", "var/cache/apt", "var/log"];

/// What differs between two listings, one line a path.
fn differences(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut diff = Vec::new();
    for (path, what) in after {
        match before.get(path) {
            None => diff.push(format!("left behind: {path} ({what})")),
            Some(was) if was != what => diff.push(format!("changed: {path} ({was} -> {what})")),
            Some(_) => {}
        }
    }
    diff.extend(before.keys().filter(|p| !after.contains_key(*p)).map(|p| format!("removed: {p}")));
    diff
}

#[test]
fn deb_installs_with_apt_enabled_not_started_and_purges_to_nothing() {
    find_binary("dpkg-deb", "dpkg");
    find_binary("dpkg-shlibdeps", "dpkg-dev");
    let shared = tempfile::tempdir().unwrap();
    let out = shared.path().to_path_buf();
    // The root comes from the network, the package from the CPU: make both at once.
    let building = thread::spawn(move || build_package("build/deb.sh", &out));
    let root = DebianRoot::create(&["systemd"], shared.path());
    let deb = building.join().unwrap_or_else(|_| panic!("build/deb.sh failed"));
    assert_eq!(deb.file_name().unwrap().to_string_lossy(), format!("bootgate_{VERSION}_amd64.deb"));
    let deb_inside = format!("/mnt/{}", deb.file_name().unwrap().to_string_lossy());
    let short = Duration::from_secs(60);
    let apt = Duration::from_secs(300);

    let depends = root.ok(&["dpkg-deb", "-f", &deb_inside, "Depends"], short);
    for library in ["libtss2-esys", "libtss2-tctildr", "libc6", "procps"] {
        assert!(depends.contains(library), "Depends: {depends}");
    }
    // The dependencies first, resolved by apt from the package's own Depends:, so that the
    // listing below holds them and tells only the package's own files apart.
    root.ok(&["apt-get", "satisfy", "-y", "--no-install-recommends", depends.trim()], apt);
    // The marker of a running systemd, so the maintainer scripts take the path they take
    // on a live machine; policy-rc.d records (and refuses) every start or stop asked of
    // deb-systemd-invoke.
    fs::create_dir_all(root.path().join("run/systemd/system")).unwrap();
    let policy_rc = root.path().join("usr/sbin/policy-rc.d");
    fs::write(&policy_rc, "#!/bin/sh\necho \"$*\" >>/mnt/policy-rc.log\nexit 101\n").unwrap();
    fs::set_permissions(&policy_rc, fs::Permissions::from_mode(0o755)).unwrap();
    let pristine = root.listing(&NOT_THE_PACKAGES);
    let requests = || fs::read_to_string(shared.path().join("policy-rc.log")).unwrap_or_default();

    // An administrator's preset that disables the gate wins over the package's.
    let admin_preset = root.path().join("etc/systemd/system-preset/10-admin.preset");
    fs::create_dir_all(admin_preset.parent().unwrap()).unwrap();
    fs::write(&admin_preset, "disable bootgate.service\n").unwrap();
    root.ok(&["apt-get", "install", "-y", &deb_inside], apt);
    // --root=/: read the unit files, as no service manager runs here to ask.
    let state = root.run(&["systemctl", "--root=/", "is-enabled", "bootgate.service"], short);
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "disabled", "{}", text(&state));
    root.ok(&["dpkg", "--purge", "bootgate"], short);
    fs::remove_file(&admin_preset).unwrap();
    fs::remove_dir(admin_preset.parent().unwrap()).unwrap();
    let diff = differences(&pristine, &root.listing(&NOT_THE_PACKAGES));
    assert!(diff.is_empty(), "after a purge of a disabled install:\n{}", diff.join("\n"));

    // Installed with apt, the package's preset applies: enabled, and never started.
    root.ok(&["apt-get", "install", "-y", &deb_inside], apt);
    let installed = root.ok(&["dpkg", "-L", "bootgate"], short);
    for file in [
        "/usr/bin/bootgate",
        "/usr/lib/systemd/system/bootgate.service",
        "/usr/lib/systemd/system/bootgate-report.service",
        "/usr/lib/systemd/system-preset/50-bootgate.preset",
        "/usr/share/bootgate/policy.yaml",
        "/usr/share/bootgate/schema.json",
        "/usr/share/bootgate/examples/default.yaml",
        "/usr/share/bootgate/examples/piccolo.yaml",
        "/usr/share/bootgate/examples/web-config.example.yml",
        "/usr/share/bootgate/dropins/README",
        "/usr/share/bootgate/integrations/mender/ArtifactCommit_Enter_00_bootgate",
        "/usr/share/bootgate/dropins/bootgate.service.d/10-docker.conf",
        "/usr/share/bootgate/dropins/bootgate.service.d/20-network-online.conf",
        "/usr/share/bootgate/dropins/update-engine.service.d/10-bootgate.conf",
        "/usr/share/bash-completion/completions/bootgate",
        "/usr/share/zsh/vendor-completions/_bootgate",
        "/usr/share/fish/vendor_completions.d/bootgate.fish",
        "/usr/share/man/man1/bootgate.1.gz",
        "/usr/share/man/man1/bootgate-check.1.gz",
        "/usr/share/doc/bootgate/copyright",
    ] {
        assert!(installed.lines().any(|l| l == file), "{file} is not in the package:\n{installed}");
    }
    assert!(!installed.lines().any(|l| l.starts_with("/etc/")), "nothing under /etc (no conffiles):\n{installed}");
    assert!(!installed.lines().any(active_dropin), "a drop-in is active:\n{installed}");
    let state = root.ok(&["systemctl", "--root=/", "is-enabled", "bootgate.service", "bootgate-report.service"], short);
    assert_eq!(state.lines().collect::<Vec<_>>(), ["enabled", "static"], "{state}");
    for link in ["multi-user.target.wants", "boot-complete.target.requires"] {
        let path = root.path().join("etc/systemd/system").join(link).join("bootgate.service");
        assert!(path.is_symlink(), "{} is missing", path.display());
    }
    assert!(!requests().contains("start"), "the maintainer scripts asked to start a unit:\n{}", requests());
    for trace in ["run/bootgate", "var/lib/bootgate"] {
        assert!(!root.path().join(trace).exists(), "/{trace} exists: something ran the gate on install");
    }

    // systemd's own verdict on the installed units, in the root that has their neighbours.
    let verify = root.run(&["systemd-analyze", "verify", "bootgate.service", "bootgate-report.service"], short);
    let said = text(&verify);
    assert!(verify.status.success() && !said.contains("bootgate"), "systemd-analyze verify:\n{said}");
    // The stamp systemd-analyze's own manager writes: this test's tool, not the package.
    let _ = fs::remove_file(root.path().join("run/systemd/systemd-units-load"));

    // The installed binary runs with the libraries apt brought: a verdict on a policy of
    // what a chroot has (its root file system).
    fs::write(shared.path().join("disk.yaml"), "version: 1\nchecks:\n  - {name: root, kind: disk, path: /}\n").unwrap();
    let check = root.run(&["bootgate", "check", "--policy", "/mnt/disk.yaml"], short);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && said.contains("verdict: healthy"),
        "bootgate check: {}\n{}",
        check.status,
        text(&check)
    );

    // What the daemon leaves on a machine: a failed gate writes the verdict and the history.
    fs::write(
        shared.path().join("fail.yaml"),
        "version: 1\ngate: {deadline: 30s, on_failure: stay}\nboot: {backend: none}\nserver: {listen: \"127.0.0.1:0\"}\n\
         checks:\n  - {name: root, kind: disk, path: /, min_free_percent: 100, retries: 0}\n",
    )
    .unwrap();
    let run = root.run(&["bootgate", "run", "--policy", "/mnt/fail.yaml"], short);
    assert_eq!(run.status.code(), Some(2), "bootgate run: {}", text(&run));
    for trace in ["run/bootgate/verdict.json", "var/lib/bootgate/history.jsonl"] {
        assert!(root.path().join(trace).is_file(), "bootgate run wrote no /{trace}:\n{}", text(&run));
    }

    root.ok(&["dpkg", "--purge", "bootgate"], short);
    assert!(requests().contains("bootgate.service stop"), "removal did not stop the gate:\n{}", requests());
    let diff = differences(&pristine, &root.listing(&NOT_THE_PACKAGES));
    assert!(diff.is_empty(), "after dpkg --purge bootgate:\n{}", diff.join("\n"));
}

#[test]
fn rpm_lists_its_files_requires_the_tss_libraries_and_never_starts_the_gate() {
    let rpm_tool = find_binary("rpm", "rpm");
    find_binary("rpmbuild", "rpm");
    let out = tempfile::tempdir().unwrap();
    let rpm = build_package("build/rpm.sh", out.path());
    assert_eq!(rpm.file_name().unwrap().to_string_lossy(), format!("bootgate-{VERSION}-1.x86_64.rpm"));
    let query = |args: &[&str]| stdout(Command::new(&rpm_tool).args(args).arg(&rpm), Duration::from_secs(60));

    let files = query(&["-qlp"]);
    for file in [
        "/usr/bin/bootgate",
        "/usr/lib/systemd/system/bootgate.service",
        "/usr/lib/systemd/system/bootgate-report.service",
        "/usr/lib/systemd/system-preset/50-bootgate.preset",
        "/usr/share/bootgate/policy.yaml",
        "/usr/share/bootgate/schema.json",
        "/usr/share/bootgate/examples/piccolo.yaml",
        "/usr/share/bootgate/examples/web-config.example.yml",
        "/usr/share/bootgate/integrations/mender/ArtifactCommit_Enter_00_bootgate",
        "/usr/share/bootgate/dropins/bootgate.service.d/10-docker.conf",
        "/usr/share/bootgate/dropins/bootgate.service.d/20-network-online.conf",
        "/usr/share/bootgate/dropins/update-engine.service.d/10-bootgate.conf",
        "/usr/share/bash-completion/completions/bootgate",
        "/usr/share/zsh/site-functions/_bootgate",
        "/usr/share/fish/vendor_completions.d/bootgate.fish",
        "/usr/share/man/man1/bootgate.1.gz",
        "/usr/share/man/man1/bootgate-run.1.gz",
        "/usr/share/licenses/bootgate/copyright",
    ] {
        assert!(files.lines().any(|l| l == file), "{file} is not in the rpm:\n{files}");
    }
    assert!(!files.lines().any(active_dropin), "a drop-in is active:\n{files}");

    let requires = query(&["-qpR"]);
    for library in ["libtss2-esys.so.0()(64bit)", "libtss2-tctildr.so.0()(64bit)", "/usr/bin/kill"] {
        assert!(requires.lines().any(|l| l.trim() == library), "no `{library}` in the requires:\n{requires}");
    }

    // Each scriptlet on its own: `postinstall scriptlet (using /bin/sh):`, then its body.
    let scripts = query(&["-qp", "--scripts"]);
    let mut bodies: BTreeMap<String, String> = BTreeMap::new();
    let mut current = String::new();
    for line in scripts.lines() {
        if let Some((name, _)) = line.split_once(" scriptlet (using ") {
            current = name.to_string();
        } else {
            bodies.entry(current.clone()).or_default().push_str(&format!("{line}\n"));
        }
    }
    let post = bodies.get("postinstall").map(String::as_str).unwrap_or_default();
    let commands: Vec<&str> = post.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
    assert!(commands.iter().any(|l| l.contains("systemctl --no-reload preset bootgate.service")), "{scripts}");
    for start in ["start", "restart", "--now"] {
        assert!(!commands.iter().any(|l| l.contains(start)), "the postinstall scriptlet runs `{start}`:\n{post}");
    }
    let preun = bodies.get("preuninstall").map(String::as_str).unwrap_or_default();
    assert!(preun.contains("if [ $1 -eq 0 ]") && preun.contains("disable --now bootgate.service"), "{scripts}");
}
