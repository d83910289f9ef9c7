//! The documents bootgate writes, pinned byte for byte by the files in `tests/golden/`,
//! which the version before the records were typed wrote from the same inputs: a
//! verdict file written today must read the same, and one written then must read back
//! and write out unchanged.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::Lenient;
use super::history::{self, Decision, PastBoot, SeenFallback, Slot};
use super::verdict::{VerdictRecord, WindowRecord};
use crate::checks::{Observed, Status};
use crate::engine::{CheckResult, GateState, Snapshot, Timing};
use crate::record::boot::Reason;

fn golden(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

#[allow(clippy::too_many_arguments)]
fn check(
    name: &str,
    kind: &'static str,
    critical: bool,
    status: Status,
    message: &str,
    observed: Observed,
    us: u64,
    attempts: u32,
    last: Option<u64>,
    fails: u32,
) -> CheckResult {
    CheckResult {
        name: name.into(),
        kind,
        critical,
        status,
        message: message.into(),
        observed,
        duration: Duration::from_micros(us),
        attempts,
        last_check: last.map(at),
        consecutive_failures: fails,
        consecutive_successes: u32::from(status.passed()),
        timing: Timing::default(),
        blame: None,
        accepted: false,
    }
}

/// Every result, an observed map, a message with quotes and a newline, a pending check.
fn snapshot() -> Snapshot {
    let mut disk = Observed::new();
    disk.insert("free_space_percent".into(), json!(65.25));
    disk.insert("path".into(), json!("/"));
    disk.insert("io_errors".into(), json!(0));
    let mut docker = Observed::new();
    docker.insert("version".into(), json!("24.0.6"));
    let refused = "http://127.0.0.1:8081/: connection refused (os error 111)";
    Snapshot {
        gate: GateState::Failed,
        checks: vec![
            check("storage", "disk", true, Status::Pass, "65.2% free on /", disk, 1234, 1, Some(1_764_583_330_250), 0),
            check(
                "api",
                "http",
                true,
                Status::Fail,
                refused,
                Observed::new(),
                30_012_500,
                3,
                Some(1_764_583_360_000),
                3,
            ),
            check(
                "docker",
                "docker",
                false,
                Status::Warn,
                "slow \"ping\"\nsecond line",
                docker,
                850,
                1,
                Some(1_764_583_330_100),
                0,
            ),
            check(
                "net",
                "tcp",
                false,
                Status::Skipped,
                "skipped: `docker` did not pass",
                Observed::new(),
                0,
                0,
                Some(1_764_583_330_300),
                1,
            ),
            check("late", "exec", false, Status::Pending, "pending: not run yet", Observed::new(), 0, 0, None, 0),
        ],
        gate_started: at(1_764_583_330_000),
        gate_duration: Some(Duration::from_micros(30_012_345)),
        gate_reason: Some("failed during soak".into()),
        ..Snapshot::new(&[])
    }
}

fn failed_record() -> VerdictRecord {
    let boot = Some("0f3c9d1e2b7a4c5d8e9f0a1b2c3d4e5f".to_string());
    VerdictRecord::of(&snapshot(), "/etc/bootgate/policy.yaml", boot, at(1_764_583_360_500))
}

/// A passed gate with a rollback window, as `run` writes it.
fn passed_record() -> VerdictRecord {
    let mut s = snapshot();
    s.gate = GateState::Passed;
    s.gate_reason = None;
    s.checks.truncate(1);
    let mut record = VerdictRecord::of(&s, "built-in default policy", None, at(1_764_583_331_000));
    record.rollback = Some(WindowRecord { armed: true, ends_since_boot_ms: None, window_ends: at(1_764_583_630_000) });
    record
}

#[test]
fn the_verdict_file_is_written_as_it_always_was() {
    assert_eq!(
        String::from_utf8(failed_record().to_bytes()).unwrap(),
        String::from_utf8(golden("verdict-failed.json")).unwrap()
    );
    assert_eq!(
        String::from_utf8(passed_record().to_bytes()).unwrap(),
        String::from_utf8(golden("verdict-passed.json")).unwrap()
    );
}

#[test]
fn a_verdict_file_reads_back_and_writes_out_unchanged() {
    for name in ["verdict-failed.json", "verdict-passed.json"] {
        let bytes = golden(name);
        let record: VerdictRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(record.to_bytes(), bytes, "{name}");
    }
    let read: VerdictRecord = serde_json::from_slice(&golden("verdict-failed.json")).unwrap();
    assert_eq!(read, failed_record());
}

#[test]
fn a_verdict_file_from_before_the_status_word_reads_the_same_checks() {
    let old: VerdictRecord = serde_json::from_slice(&golden("verdict-failed-v1.json")).unwrap();
    let mut expected = failed_record();
    for c in &mut expected.checks {
        c.status = Lenient::Other;
    }
    assert_eq!(old, expected);
}

fn flatcar() -> Option<String> {
    Some("flatcar".into())
}

fn lines() -> [PastBoot; 3] {
    let slot_b = Slot { label: "USR-B".into(), index: 4, uuid: "7130c94a-213a-4e5a-8e26-6cce9662f132".into() };
    let slot_a = Slot { label: "USR-A".into(), index: 3, uuid: "e03dd35c-7c2d-4a47-b3fe-27f15780a57c".into() };
    let failed = PastBoot::from_verdict(
        &failed_record(),
        Some(slot_b),
        flatcar(),
        Some("4230.0.0".into()),
        Some(Decision::Reboot),
    );
    let mut record = passed_record();
    record.timestamp = Some(super::verdict::Stamp(at(1_764_583_451_000)));
    record.boot_id = Some("9d2f1b63a1c54d1d8b406f1d3e2c7b22".into());
    record.gate_duration_ms = failed_record().gate_duration_ms;
    let mut passed = PastBoot::from_verdict(&record, Some(slot_a), flatcar(), Some("4152.2.0".into()), None);
    passed.fallback = Some(SeenFallback {
        from_uuid: "7130c94a-213a-4e5a-8e26-6cce9662f132".into(),
        reason: Reason::GateFailed.into(),
        from_version: None,
        blame: crate::record::Lenient::Other,
    });
    let mut off_ab = PastBoot::from_verdict(&record, None, None, None, Some(Decision::StayPolicy));
    off_ab.reason = Some("reverted: api (failing for 5m: refused)".into());
    [failed, passed, off_ab]
}

#[test]
fn history_lines_are_written_as_they_always_were_and_read_back_unchanged() {
    let want = String::from_utf8(golden("history.jsonl")).unwrap();
    let written: Vec<String> = lines().iter().map(|b| serde_json::to_string(b).unwrap()).collect();
    assert_eq!(written.join("\n") + "\n", want);
    let read = history::parse(&want, std::path::Path::new("history.jsonl"));
    assert_eq!(read, lines());
    let again: Vec<String> = read.iter().map(|b| serde_json::to_string(b).unwrap()).collect();
    assert_eq!(again, written);
}
