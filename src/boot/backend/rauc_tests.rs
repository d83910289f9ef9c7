//! Which RAUC slot a failed gate falls back to, over slot tables as `GetSlotStatus` gives them.

use super::*;

fn slot(name: &str, bootname: &str, state: &str, boot_status: &str) -> Slot {
    Slot {
        name: name.into(),
        class: Some("rootfs".into()),
        bootname: Some(bootname.into()),
        state: Some(state.into()),
        boot_status: Some(boot_status.into()),
    }
}

fn status(booted: &str, primary: Option<&str>, slots: Vec<Slot>) -> Status {
    Status { booted: Some(booted.into()), primary: primary.map(Into::into), slots }
}

fn named(s: &Status) -> Option<&str> {
    fallback(s).map(|s| s.name.as_str())
}

#[test]
fn another_good_slot_is_the_fallback() {
    let s = status(
        "A",
        Some("rootfs.0"),
        vec![slot("rootfs.0", "A", "booted", "bad"), slot("rootfs.1", "B", "inactive", "good")],
    );
    assert_eq!(named(&s), Some("rootfs.1"));
}

#[test]
fn nothing_else_good_means_no_fallback() {
    let s = status("A", None, vec![slot("rootfs.0", "A", "booted", "bad"), slot("rootfs.1", "B", "inactive", "bad")]);
    assert_eq!(named(&s), None);
    // The booted slot itself never counts, even while it still reads good.
    let s = status("A", None, vec![slot("rootfs.0", "A", "booted", "good"), slot("rootfs.1", "B", "inactive", "bad")]);
    assert_eq!(named(&s), None);
    let s = status("A", None, vec![slot("rootfs.0", "A", "booted", "bad")]);
    assert_eq!(named(&s), None);
}

#[test]
fn a_slot_without_bootname_or_status_cannot_boot() {
    let appfs = Slot { bootname: None, ..slot("appfs.1", "", "inactive", "good") };
    let unknown = Slot { boot_status: None, ..slot("rootfs.1", "B", "inactive", "") };
    let s = status("A", None, vec![slot("rootfs.0", "A", "booted", "bad"), appfs, unknown]);
    assert_eq!(named(&s), None);
}

#[test]
fn another_class_is_not_a_fallback() {
    let recovery = Slot { class: Some("recovery".into()), ..slot("recovery.0", "R", "inactive", "good") };
    let s = status("A", None, vec![slot("rootfs.0", "A", "booted", "bad"), recovery]);
    assert_eq!(named(&s), None);
}

#[test]
fn the_primary_is_preferred_among_good_slots() {
    let slots = vec![
        slot("rootfs.0", "A", "booted", "bad"),
        slot("rootfs.1", "B", "inactive", "good"),
        slot("rootfs.2", "C", "inactive", "good"),
    ];
    assert_eq!(named(&status("A", Some("rootfs.2"), slots.clone())), Some("rootfs.2"));
    assert_eq!(named(&status("A", Some("rootfs.0"), slots)), Some("rootfs.1"));
}

#[test]
fn the_booted_slot_is_found_by_bootname_when_state_is_missing() {
    let a = Slot { state: None, ..slot("rootfs.0", "A", "", "good") };
    let b = Slot { state: None, ..slot("rootfs.1", "B", "", "good") };
    assert_eq!(named(&status("B", None, vec![a, b])), Some("rootfs.0"));
}

#[test]
fn a_revert_marks_the_booted_slot_and_names_the_good_one() {
    let s = status(
        "B",
        Some("rootfs.1"),
        vec![slot("rootfs.0", "A", "inactive", "good"), slot("rootfs.1", "B", "booted", "good")],
    );
    let (booted, fallback) = revert_target(&s).unwrap();
    assert_eq!((booted.name.as_str(), fallback.name.as_str()), ("rootfs.1", "rootfs.0"));
    assert_eq!(armed(Some(&s)), Ok(()));
    // With three slots, the good one, not merely "the other".
    let s = status(
        "B",
        None,
        vec![
            slot("rootfs.0", "A", "inactive", "bad"),
            slot("rootfs.1", "B", "booted", "good"),
            slot("rootfs.2", "C", "inactive", "good"),
        ],
    );
    assert_eq!(revert_target(&s).map(|(b, f)| (b.name.as_str(), f.name.as_str())), Some(("rootfs.1", "rootfs.2")));
}

#[test]
fn no_good_slot_to_fall_back_to_refuses_the_revert_and_says_why() {
    let s = status("B", None, vec![slot("rootfs.0", "A", "inactive", "bad"), slot("rootfs.1", "B", "booted", "good")]);
    assert_eq!(revert_target(&s), None);
    let why = armed(Some(&s)).unwrap_err();
    assert!(why.starts_with("not armed: no other slot") && why.contains("good"), "{why}");
}

#[test]
fn an_unknown_booted_slot_is_not_armed_and_an_unread_status_is() {
    let unknown = Status {
        booted: None,
        primary: None,
        slots: vec![slot("rootfs.0", "A", "inactive", "good"), slot("rootfs.1", "B", "inactive", "good")],
    };
    assert_eq!(revert_target(&unknown), None, "RAUC must know which slot it marks bad");
    assert!(armed(Some(&unknown)).unwrap_err().contains("cannot tell which slot is booted"));
    // Unread at start (RAUC slow to start): armed, the revert itself looks again.
    assert_eq!(armed(None), Ok(()));
}
