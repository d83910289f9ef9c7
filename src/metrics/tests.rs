//! The registry's series after results, reloads and boot facts.

use std::time::Duration;

use super::*;

fn result(name: &str, critical: bool, status: Status) -> CheckResult {
    CheckResult::finished(name, critical, status)
        .with_kind("disk")
        .with_message("")
        .with_attempts(1, Duration::from_millis(3))
        .with_last_check(SystemTime::now())
}

fn snapshot(gate: GateState, checks: Vec<CheckResult>) -> Snapshot {
    Snapshot {
        gate,
        checks,
        gate_started: SystemTime::now(),
        gate_duration: Some(Duration::from_millis(1500)),
        gate_failing: Vec::new(),
        ..Snapshot::new(&[])
    }
}

fn text(m: &Metrics, s: &Snapshot, boot: Option<&BootFacts>) -> String {
    String::from_utf8(m.render(s, boot).unwrap()).unwrap()
}

#[test]
fn gauges_follow_the_snapshot() {
    let s =
        snapshot(GateState::Passed, vec![result("storage", true, Status::Pass), result("docker", false, Status::Fail)]);
    let m = Metrics::new(&s).unwrap();
    let t = text(&m, &s, None);
    assert!(t.contains("bootgate_check_up{check=\"storage\",critical=\"true\"} 1\n"), "{t}");
    assert!(t.contains("bootgate_check_up{check=\"docker\",critical=\"false\"} 0\n"), "{t}");
    assert!(t.contains("bootgate_check_consecutive_failures{check=\"docker\"} 1\n"), "{t}");
    assert!(t.contains("bootgate_gate_passed 1\n"), "{t}");
    assert!(t.contains("bootgate_gate_duration_seconds 1.5\n"), "{t}");
    assert!(t.contains("bootgate_health_status{status=\"degraded\"} 1\n"), "{t}");
    assert!(t.contains("bootgate_health_status{status=\"healthy\"} 0\n"), "{t}");
    assert!(t.contains(&format!("bootgate_build_info{{version=\"{}\"}} 1\n", env!("CARGO_PKG_VERSION"))));
    assert!(t.contains("bootgate_check_runs_total{check=\"docker\",result=\"skipped\"} 0\n"), "{t}");
    assert!(t.contains("process_resident_memory_bytes"), "{t}");
    assert!(!t.contains("bootgate_boot_partition"), "no boot facts yet: {t}");
}

#[test]
fn a_reload_takes_away_the_series_of_removed_checks_and_of_a_changed_criticality() {
    let s = snapshot(GateState::Passed, vec![result("api", true, Status::Fail), result("gone", true, Status::Fail)]);
    let m = Metrics::new(&s).unwrap();
    m.observe(&s.checks[1]);
    let t = text(&m, &s, None);
    assert!(t.contains("bootgate_check_up{check=\"gone\",critical=\"true\"} 0"), "{t}");
    let after =
        snapshot(GateState::Passed, vec![result("api", false, Status::Fail), result("new", true, Status::Pass)]);
    let t = text(&m, &after, None);
    assert!(!t.contains("check=\"gone\""), "{t}");
    assert!(!t.contains("bootgate_check_up{check=\"api\",critical=\"true\"}"), "{t}");
    assert!(t.contains("bootgate_check_up{check=\"api\",critical=\"false\"} 0"), "{t}");
    assert!(t.contains("bootgate_check_runs_total{check=\"new\",result=\"fail\"} 0"), "{t}");
}

#[test]
fn observations_count_runs_and_durations() {
    let s = snapshot(GateState::Running, vec![result("storage", true, Status::Pending)]);
    let m = Metrics::new(&s).unwrap();
    m.observe(&result("storage", true, Status::Pending));
    m.observe(&result("storage", true, Status::Fail));
    m.observe(&result("storage", true, Status::Pass));
    m.observe(&result("storage", true, Status::Pass));
    let t = text(&m, &s, None);
    assert!(t.contains("bootgate_check_runs_total{check=\"storage\",result=\"pass\"} 2\n"), "{t}");
    assert!(t.contains("bootgate_check_runs_total{check=\"storage\",result=\"fail\"} 1\n"), "{t}");
    assert!(t.contains("bootgate_check_duration_seconds_count{check=\"storage\"} 3\n"), "{t}");
    assert!(t.contains("bootgate_check_duration_seconds_bucket{check=\"storage\",le=\"0.005\"} 3\n"), "{t}");
    assert!(t.contains("bootgate_check_duration_seconds_bucket{check=\"storage\",le=\"0.001\"} 0\n"), "{t}");
    assert!(t.contains("bootgate_gate_passed 0\n"), "{t}");
    assert!(t.contains("bootgate_health_status{status=\"unhealthy\"} 1\n"), "{t}");
}

#[test]
fn boot_gauges_appear_and_vanish_with_boot_facts() {
    let s = snapshot(GateState::Passed, vec![result("storage", true, Status::Pass)]);
    let m = Metrics::new(&s).unwrap();
    let slot = crate::record::boot::SlotFacts {
        partition: "USR-B".into(),
        index: 4,
        uuid: "u4".into(),
        disk: None,
        priority: 2,
        tries: 0,
        successful: true,
    };
    let boot = BootFacts { slot: Some(slot), ..BootFacts::default() };
    let t = text(&m, &s, Some(&boot));
    assert!(!text(&m, &s, Some(&BootFacts::default())).contains("bootgate_boot_partition"), "no slot, no gauges");
    assert!(t.contains("bootgate_boot_partition_successful 1\n"), "{t}");
    assert!(t.contains("bootgate_boot_partition_tries 0\n"), "{t}");
    assert!(t.contains("bootgate_boot_partition_priority 2\n"), "{t}");
    assert!(!text(&m, &s, None).contains("bootgate_boot_partition"));
}

#[test]
fn boot_info_fallback_and_timestamps() {
    let mut s = snapshot(GateState::Running, vec![result("storage", true, Status::Pending)]);
    s.checks[0].last_check = None;
    let m = Metrics::new(&s).unwrap();
    let t = text(&m, &s, None);
    for absent in [
        "bootgate_boot_info{",
        "bootgate_boot_fallback{",
        "bootgate_gate_completed_timestamp_seconds ",
        "bootgate_check_last_run_timestamp_seconds{",
    ] {
        assert!(!t.contains(absent), "{absent}: {t}");
    }
    m.set_boot_info("USR-B", "u4", "flatcar", "4152.2.0");
    s.gate = GateState::Failed;
    s.gate_started = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
    s.checks[0] = result("storage", true, Status::Fail);
    s.checks[0].last_check = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1001));
    let mut facts = crate::record::boot::BootFacts {
        fallback: Some(crate::record::boot::Fallback {
            from_version: Some("4152.2.0".into()),
            ..crate::record::boot::Fallback::sample()
        }),
        ..Default::default()
    };
    let t = text(&m, &s, Some(&facts));
    assert!(
        t.contains("bootgate_boot_info{os_id=\"flatcar\",os_version=\"4152.2.0\",partition=\"USR-B\",uuid=\"u4\"} 1\n"),
        "{t}"
    );
    let fallback = |blame: &str| {
        format!(
            "bootgate_boot_fallback{{blame=\"{blame}\",from_partition=\"USR-B\",from_version=\"4152.2.0\",reason=\"gate_failed\"}} 1\n"
        )
    };
    assert!(t.contains(&fallback("pending")), "before the second verdict: {t}");
    facts.fallback.as_mut().unwrap().blame = Some(crate::record::boot::FallbackBlame::Environment);
    let t = text(&m, &s, Some(&facts));
    assert!(t.contains(&fallback("environment")) && !t.contains("blame=\"pending\""), "{t}");
    assert_eq!(t.matches("bootgate_boot_fallback{").count(), 1, "one series per boot: {t}");
    assert!(!t.contains("bootgate_update_held{") && !t.contains("bootgate_check_blame{"), "{t}");
    facts.hold = Some(crate::record::boot::HoldFacts {
        version: "4230.0.0".into(),
        until: "2026-12-08T10:00:00Z".into(),
        failures: 2,
        text: String::new(),
    });
    s.checks[0].blame = Some(crate::engine::Blame::Regression);
    let t = text(&m, &s, Some(&facts));
    assert!(t.contains("bootgate_update_held{version=\"4230.0.0\"} 1\n"), "{t}");
    assert!(t.contains("bootgate_check_blame{blame=\"regression\",check=\"storage\"} 1\n"), "{t}");
    facts.hold = None;
    let t = text(&m, &s, Some(&facts));
    assert!(!t.contains("bootgate_update_held{"), "a released hold leaves no series: {t}");
    assert!(t.contains("bootgate_gate_completed_timestamp_seconds 1001.5\n"), "{t}");
    assert!(t.contains("bootgate_check_last_run_timestamp_seconds{check=\"storage\"} 1001\n"), "{t}");
}

#[test]
fn the_gate_state_is_one_hot_and_soaking_is_its_own() {
    let mut s = snapshot(GateState::Running, vec![result("storage", true, Status::Pass)]);
    let m = Metrics::new(&s).unwrap();
    let states = |m: &Metrics, s: &Snapshot| -> Vec<String> {
        let t = text(m, s, None);
        t.lines().filter(|l| l.starts_with("bootgate_gate_state{")).map(str::to_string).collect()
    };
    let one_hot = |on: &str| -> Vec<String> {
        ["failed", "passed", "running", "soaking"]
            .map(|st| format!("bootgate_gate_state{{state=\"{st}\"}} {}", i32::from(st == on)))
            .to_vec()
    };
    assert_eq!(states(&m, &s), one_hot("running"));
    s.soak = Some(crate::engine::Soak { total: Duration::from_secs(60), ends: SystemTime::now() });
    assert_eq!(states(&m, &s), one_hot("soaking"));
    s.soak = None;
    s.gate = GateState::Passed;
    assert_eq!(states(&m, &s), one_hot("passed"));
    s.gate = GateState::Failed;
    s.gate_reason = Some("failed during soak".into());
    assert_eq!(states(&m, &s), one_hot("failed"), "a reason does not make a state of its own");
}

#[test]
fn each_check_interval_is_exported_and_a_rescheduled_one_replaces_the_old() {
    let s = snapshot(GateState::Passed, vec![result("storage", true, Status::Pass), result("api", true, Status::Pass)]);
    let m = Metrics::new(&s).unwrap();
    assert!(!text(&m, &s, None).contains("bootgate_check_interval_seconds{"), "absent until scheduled");
    m.set_intervals([("storage", Duration::from_secs(600)), ("api", Duration::from_millis(1500))]);
    let t = text(&m, &s, None);
    assert!(t.contains("bootgate_check_interval_seconds{check=\"storage\"} 600\n"), "{t}");
    assert!(t.contains("bootgate_check_interval_seconds{check=\"api\"} 1.5\n"), "{t}");
    m.set_intervals([("storage", Duration::from_secs(60))]);
    let t = text(&m, &s, None);
    assert!(t.contains("bootgate_check_interval_seconds{check=\"storage\"} 60\n"), "{t}");
    assert!(!t.contains("bootgate_check_interval_seconds{check=\"api\"}"), "{t}");
}

#[test]
fn registries_are_private() {
    let s = snapshot(GateState::Passed, vec![result("storage", true, Status::Pass)]);
    let (a, b) = (Metrics::new(&s).unwrap(), Metrics::new(&s).unwrap());
    a.observe(&result("storage", true, Status::Pass));
    assert!(text(&b, &s, None).contains("bootgate_check_runs_total{check=\"storage\",result=\"pass\"} 0\n"));
}
