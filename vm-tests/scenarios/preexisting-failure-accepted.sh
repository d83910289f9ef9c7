#!/usr/bin/env bash
# A failure that was there before is no reason to roll back (gate.judge:
# regression): USR-A (version 1.0) passes its gate, then its device API goes
# down while it runs, and A records that (last-seen.json). The update USR-B
# (1.1) is staged and boots with the API still down: its gate fails nothing
# the old image did not fail, so it passes as degraded, the api check blamed
# preexisting, and update-engine marks B.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario preexisting-failure-accepted

update_of preexisting.yaml
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T0 -P0

# USR-A before the update: it passes its gate, then its API goes down.
boot
expect_boot_slot A "the confirmed image before the update"
wait_verdict
expect_gate passed
wait_marked
guest_ctl api-down
wait_last_seen api fail
vm_poweroff
expect_last_seen api fail

# The update is staged; the outage goes on.
gpt_set B -S0 -T1 -P2

boot
expect_boot_slot B "the update"
wait_verdict
expect_gate passed
expect_verdict degraded ""
expect_check api fail
[ "$(field "$CHECK_LINE" blame)" = preexisting ] && [ "$(field "$CHECK_LINE" accepted)" = true ] ||
  fail "boot $BOOTS: the verdict does not accept api's failure as preexisting: $CHECK_LINE"
wait_marked
expect_health 200 degraded '.startup_health_check == "passed"' \
  '.components.api.blame == "preexisting" and .components.api.accepted == true' \
  '.startup_reason == "accepted: preexisting failure of api"'
expect_metric 'bootgate_check_blame\{blame="preexisting",check="api"\} 1' "B's api failure was there on A too"
expect_metric 'bootgate_gate_passed 1' "the gate passed"
vm_poweroff

expect_gpt B "priority=2 tries=0 successful=1" "the update is accepted and marked good"
expect_gpt A "priority=1 tries=0 successful=1" "the old slot is untouched"
expect_history passed passed
expect_history_line 1 '.blame.api == "preexisting" and .status == "degraded" and .os_version == "1.1"' "B accepted with a preexisting failure"
pass "USR-B booted with the API failing as it did on USR-A: accepted as degraded (preexisting) and marked"
