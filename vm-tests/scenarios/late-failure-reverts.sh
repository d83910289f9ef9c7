#!/usr/bin/env bash
# Late failure reverts: USR-B passes its gate and update-engine marks it good,
# the host sees it healthy, then its device API dies (the host says when,
# through the control port: nothing races the host's health check). Inside the
# policy's rollback window
# (5m, failing_for 20s) bootgate reverts the update: it marks USR-B bad with
# cgpt, records `decision: reverted` and reboots; the harness's gptprio boots
# USR-A, which reports the fallback with reason reverted naming api.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario late-failure-reverts

slot_policy B late.yaml
slot_api_dies B host
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T1 -P2

boot
expect_boot_slot B "the update"
wait_verdict
expect_gate passed
wait_marked
# The window is 5m from READY=1; the host asks within seconds of the mark.
expect_health 200 healthy '.rollback.armed == true' '.rollback.remaining_seconds > 200'
guest_ctl api-dies
wait_line '^api died ' "$STEP_TIMEOUT" || fail "boot $BOOTS: the device API never died"
died=$(field "$(guest_line '^api died ')" t)
# failing_for 20s, seen by a round every 5s (late.yaml), then the step's bound.
wait_line '^unmarked ' $((25 + STEP_TIMEOUT)) || fail "boot $BOOTS: the API died at ${died}s, but bootgate never reverted USR-B"
unmarked=$(guest_line '^unmarked ')
TIMINGS+=("api death→revert $(secs "$(field "$unmarked" t) - $died")")
log "boot $BOOTS: $unmarked"
expect_reboot
expect_console 'reverted USR-B after its gate: api \(failing for [0-9]+s' "bootgate says why it reverted"
rebooted_at=$EPOCHREALTIME
expect_gpt B "priority=0 tries=0 successful=0" "the reverted slot is marked bad, below USR-A"

boot
expect_boot_slot A "the fallback after USR-B was reverted"
wait_verdict
TIMINGS+=("reboot→USR-A verdict $(secs "$EPOCHREALTIME - $rebooted_at") (host clock)")
expect_gate passed
expect_health 200 healthy
expect_fallback B reverted api
vm_poweroff

expect_gpt A "priority=1 tries=0 successful=1" "the fallback slot stays good"
expect_history passed passed
state_file /lib/bootgate/history.jsonl | tail -2 | sed -n 1p | jq -e '.decision == "reverted" and (.failing | any(.name == "api")) and (.reason | startswith("reverted: api"))' >/dev/null ||
  fail "USR-B's history line does not record the revert: $(state_file /lib/bootgate/history.jsonl | tail -2 | sed -n 1p)"
pass "USR-B passed its gate and was marked, its API died, bootgate reverted it, USR-A booted and reports the revert"
