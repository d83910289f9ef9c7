#!/usr/bin/env bash
# rauc late failure reverts: RAUC installed an update into USR-B (rootfs.1), the
# primary, both slots good. B passes its gate and bootgate marks it good over
# RAUC's D-Bus API; the host sees it healthy and armed, then B's device API dies
# (the host says when, through the control port). Inside the policy's rollback
# window (3m, failing_for 6s) bootgate reverts the update through RAUC: it marks
# the booted slot bad (Mark "bad" "booted") and rootfs.0 active (Mark "active"
# "rootfs.0"), records `decision: reverted` and reboots; the boot loader boots
# A, the new primary, which reports the fallback with reason reverted naming api.
# Real: bootgate, RAUC's own service on the guest's system bus and its calls
# into its custom boot loader backend. Played by the harness: the boot loader,
# which reads the backend's state files on the STATE partition (rauc_next).
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario rauc-late-failure-reverts

slot_policy B rauc-late.yaml
slot_policy A rauc.yaml
slot_api_dies B host
rauc_init B good good

boot
expect_boot_slot B "the primary, the update"
wait_verdict
expect_gate passed
wait_rauc_call "set-state B good"
wait_settled
expect_health 200 healthy '.boot.backend == "rauc"' '.rollback.armed == true' '.rollback.remaining_seconds > 60'
guest_ctl api-dies
wait_line '^api died ' "$STEP_TIMEOUT" || fail "boot $BOOTS: the device API never died"
died=$(field "$(guest_line '^api died ')" t)
# failing_for 6s, seen by a round every 2s (rauc-late.yaml), then the step's bound.
wait_line '^rauc set-state B bad t=' $((10 + STEP_TIMEOUT)) ||
  fail "boot $BOOTS: the API died at ${died}s, but bootgate never marked B bad through RAUC"
TIMINGS+=("api death→RAUC marks B bad $(secs "$(field "$(guest_line '^rauc set-state B bad t=')" t) - $died")")
wait_rauc_call "set-primary A"
expect_reboot
expect_console 'reverted RAUC slot rootfs\.1 after its gate: api \(failing for [0-9]+s.*to fall back to RAUC slot rootfs\.0' \
  "bootgate says what it reverted, why, and which slot boots next"
rebooted_at=$EPOCHREALTIME
got=$(rauc_states)
[ "$got" = "primary=A A=good B=bad" ] || fail "the boot loader's state is '$got' after the revert, expected primary=A A=good B=bad"

boot
expect_boot_slot A "the new primary after B was reverted"
wait_verdict
TIMINGS+=("reboot→USR-A verdict $(secs "$EPOCHREALTIME - $rebooted_at") (host clock)")
expect_gate passed
wait_rauc_call "set-state A good"
wait_settled
expect_health 200 healthy '.boot.backend == "rauc"' '.boot.booted == "A"' '.boot.primary == "rootfs.0"' \
  '.boot.slots | any(.name == "rootfs.1" and .boot_status == "bad")'
expect_fallback B reverted api
vm_poweroff

got=$(rauc_states)
[ "$got" = "primary=A A=good B=bad" ] || fail "the boot loader's state is '$got' after A passed, expected primary=A A=good B=bad"
expect_rauc_calls "set-state B good" "set-state B bad" "set-primary A" "set-state A good"
expect_history passed passed
state_file /lib/bootgate/history.jsonl | tail -2 | sed -n 1p | jq -e '.decision == "reverted" and (.failing | any(.name == "api")) and (.reason | startswith("reverted: api"))' >/dev/null ||
  fail "USR-B's history line does not record the revert: $(state_file /lib/bootgate/history.jsonl | tail -2 | sed -n 1p)"
pass "USR-B passed and was marked good through RAUC, its API died, bootgate marked it bad and rootfs.0 active, the loader booted USR-A, which reports the revert"
