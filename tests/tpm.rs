//! The `tpm` kind through the real binary against a software TPM (swtpm), a
//! missing device, a closed port and a peer that accepts and never answers; and the
//! TSS libraries opened only when a policy has a `tpm` check.

mod support;

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use support::{BIN, HangingListener, Swtpm, bootgate, check, check_with, free_port, message, result, sysext};

#[test]
fn a_software_tpm_passes_and_reports_what_tpm2_tools_report() {
    let tpm = Swtpm::start();
    let extended = tpm.extend_pcr(3);
    let policy = format!(
        "version: 1\nchecks:\n  - {{name: tpm, kind: tpm, tcti: '{}', pcrs: {{sha256: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}, self_test: true}}\n",
        tpm.tcti()
    );
    let (code, v, _) = check(&policy);
    assert_eq!(code, 0, "{v:#}");
    let r = result(&v, "tpm");
    assert_eq!(r["result"], "pass", "{r:#}");
    let seen = &r["observed"];
    assert_eq!(seen["manufacturer"], tpm.manufacturer().as_str(), "{r:#}");
    assert_eq!(seen["family"], "2.0");
    assert_eq!(seen["version"], "2.0");
    assert!(seen["firmware_version"].as_str().is_some_and(|f| f.split('.').count() == 4), "{r:#}");
    assert_eq!(seen["pcr_sha256_0"], tpm.pcr_sha256(0).as_str());
    assert_eq!(seen["pcr_sha256_3"], extended.as_str());
    assert_ne!(extended, "0".repeat(64));
    // Ten PCRs take two TPM2_PCR_Read calls (at most eight digests each).
    assert_eq!(seen["pcr_sha256_9"], tpm.pcr_sha256(9).as_str());
    assert!(message(&v, "tpm").contains("self-test passed"), "{r:#}");
}

/// The shared objects the dynamic loader opened for a `check` of `policy`, by its own
/// account (`LD_DEBUG=files`), with the verdict's exit code.
fn opened_for(policy: &str) -> (i32, String) {
    let (code, v, _, out) = check_with(policy, &[("LD_DEBUG", "files")]);
    let log = String::from_utf8_lossy(&out.stderr);
    let opened: Vec<&str> = log.lines().filter_map(|l| l.split("file=").nth(1)).collect();
    assert!(!opened.is_empty(), "LD_DEBUG=files printed nothing: {log}\n{v:#}");
    (code, opened.join("\n"))
}

#[test]
fn the_tss_libraries_are_opened_only_for_a_tpm_check() {
    let (needed, _) = sysext::dynamic(std::path::Path::new(BIN));
    let linked: Vec<&String> =
        needed.iter().filter(|n| n.starts_with("libtss2") || n.starts_with("libcrypto")).collect();
    assert!(linked.is_empty(), "the binary links {linked:?}: every command would load them");

    let (code, opened) = opened_for("version: 1\nchecks:\n  - {name: storage, kind: disk, path: /}\n");
    assert_eq!(code, 0, "{opened}");
    assert!(!opened.contains("libtss2") && !opened.contains("libcrypto"), "without a tpm check:\n{opened}");
    let (code, opened) =
        opened_for("version: 1\nchecks:\n  - {name: tpm, kind: tpm, device: /nonexistent/tpm, absent: pass}\n");
    assert_eq!(code, 0, "{opened}");
    assert!(!opened.contains("libtss2"), "a tpm check that found no TPM:\n{opened}");

    let tpm = Swtpm::start();
    let (code, opened) =
        opened_for(&format!("version: 1\nchecks:\n  - {{name: tpm, kind: tpm, tcti: '{}'}}\n", tpm.tcti()));
    assert_eq!(code, 0, "{opened}");
    for library in ["libtss2-tctildr.so.0", "libtss2-esys.so.0", "libcrypto.so", "libtss2-tcti-swtpm.so.0"] {
        assert!(opened.contains(library), "a tpm check did not open {library}:\n{opened}");
    }
}

#[test]
fn a_missing_device_fails_unless_absence_is_allowed() {
    let (code, v, took) = check(
        "version: 1\nchecks:
  - {name: required, kind: tpm, device: /nonexistent/tpm, retries: 0, critical: false}
  - {name: optional, kind: tpm, device: /nonexistent/tpm, absent: pass}\n",
    );
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(result(&v, "required")["result"], "fail");
    assert_eq!(message(&v, "required"), "no TPM device (/nonexistent/tpm absent)");
    assert_eq!(result(&v, "optional")["result"], "pass");
    assert_eq!(message(&v, "optional"), "no TPM present");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_closed_port_fails_fast_with_the_reason() {
    let port = free_port();
    let (code, v, took) = check(&format!(
        "version: 1\nchecks:\n  - {{name: tpm, kind: tpm, tcti: 'swtpm:host=127.0.0.1,port={port}', retries: 0}}\n"
    ));
    assert_eq!(code, 2, "{v:#}");
    let msg = message(&v, "tpm");
    assert!(msg.starts_with(&format!("cannot connect to TPM at swtpm:host=127.0.0.1,port={port}: ")), "{msg}");
    assert!(msg.contains("Connection refused"), "{msg}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// A TPM simulator address whose command port (a [`HangingListener`]) and control
/// port (a listener that never accepts) both take connections and never answer.
fn silent_tpm() -> (HangingListener, TcpListener) {
    for _ in 0..50 {
        let command = HangingListener::tcp();
        if let Ok(control) = TcpListener::bind((Ipv4Addr::LOCALHOST, command.port() + 1)) {
            return (command, control);
        }
    }
    panic!("found no free port next to a hanging listener in 50 tries");
}

#[test]
fn a_silent_tpm_fails_at_the_timeout_and_a_hung_call_is_not_repeated() {
    let (command, _control) = silent_tpm();
    let tcti = format!("swtpm:host=127.0.0.1,port={}", command.port());

    let (code, v, took) =
        check(&format!("version: 1\nchecks:\n  - {{name: tpm, kind: tpm, tcti: '{tcti}', timeout: 1s, retries: 0}}\n"));
    assert_eq!(code, 2, "{v:#}");
    let msg = message(&v, "tpm");
    assert!(msg.contains("timed out after 1s"), "{msg}");
    println!("silent TPM, timeout 1 s: verdict after {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(took >= Duration::from_millis(900), "took {took:?}: it cannot have waited for the timeout");

    // With a retry, the second attempt finds the first call still stuck in the TSS
    // and fails at once instead of starting another thread behind it.
    let before = command.accepted();
    let (code, v, took) = check(&format!(
        "version: 1\ngate: {{deadline: 10s}}\nchecks:\n  - {{name: tpm, kind: tpm, tcti: '{tcti}', timeout: 1s, retries: 1}}\n"
    ));
    assert_eq!(code, 2, "{v:#}");
    let r = result(&v, "tpm");
    assert_eq!(r["attempts"], 2, "{r:#}");
    assert!(message(&v, "tpm").starts_with("previous TPM call still hung"), "{r:#}");
    assert_eq!(command.accepted() - before, 1, "the retry opened another connection");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn pcrs_nonzero_fails_on_a_fresh_tpm_and_passes_once_extended() {
    let tpm = Swtpm::start();
    let policy = format!(
        "version: 1\nchecks:\n  - {{name: measured, kind: tpm, tcti: '{}', pcrs_nonzero: [0], retries: 0}}\n",
        tpm.tcti()
    );
    let (code, v, _) = check(&policy);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(message(&v, "measured"), "PCR 0 (sha256) is all zeros: nothing was measured into it");

    let value = tpm.extend_pcr(0);
    let (code, v, _) = check(&policy);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(result(&v, "measured")["observed"]["pcr_sha256_0"], value.as_str());
}

#[test]
fn a_bad_tcti_is_a_located_policy_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(
        &path,
        "version: 1\nchecks:\n  - name: tpm\n    kind: tpm\n    tcti: 'swtpm:host=127.0.0.1,port=huge'\n",
    )
    .unwrap();
    let out = bootgate(&["validate", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(78), "{text}");
    assert!(text.contains(&format!("{}:5:11: checks[0].tcti", path.display())), "{text}");
    assert!(text.contains("not a usable TCTI"), "{text}");
}
