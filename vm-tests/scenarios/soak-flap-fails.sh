#!/usr/bin/env bash
# Soak flap fails: USR-B's API answers through the gate's first round, then
# dies 8s into the 60s soak. Two failed soak rounds fail the gate before
# READY=1: update-engine never marks USR-B, bootgate reboots, the harness
# falls back to USR-A, which reports the failed gate naming api.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario soak-flap-fails

slot_policy B soakflap.yaml
slot_api_dies B soaking 8
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T1 -P2

boot
expect_boot_slot B "the update"
wait_verdict
expect_gate failed
expect_verdict unhealthy api
expect_report api
expect_reboot
# The guest is down: its console is complete, whatever order the observer
# and the API's death wrote their lines in.
[ -n "$(guest_line '^bootgate .*status="soaking: ')" ] || fail "boot $BOOTS: STATUS never said the gate was soaking"
[ -n "$(guest_line '^api died ')" ] || fail "boot $BOOTS: the gate failed, but the API never died: $VERDICT_LINE"
died=$(field "$(guest_line '^api died ')" t)
awk "BEGIN { exit !($died < $VERDICT_T) }" || fail "boot $BOOTS: the gate failed (verdict seen at ${VERDICT_T}s) before the API died (${died}s)"
TIMINGS+=("api death→failed verdict $(secs "$VERDICT_T - $died")")
expect_not_marked
expect_console 'gate failed during soak' "bootgate says the soak failed"
expect_gpt B "priority=2 tries=0 successful=0" "the flapping slot was never marked"

boot
expect_boot_slot A "the fallback after the failed soak"
wait_verdict
expect_gate passed
expect_fallback B gate_failed api
vm_poweroff

expect_gpt A "priority=1 tries=0 successful=1" "the fallback slot stays good"
expect_history failed passed
state_file /lib/bootgate/history.jsonl | tail -2 | sed -n 1p | jq -e '.reason == "failed during soak"' >/dev/null ||
  fail "USR-B's history line does not say the soak failed: $(state_file /lib/bootgate/history.jsonl | tail -2 | sed -n 1p)"
pass "USR-B passed its first round, its API died during the soak, the gate failed unmarked, USR-A booted"
