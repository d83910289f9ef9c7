#!/usr/bin/env bash
# An outage keeps the update: USR-A (version 1.0) runs with its device API
# answering, and records that (last-seen.json). The update USR-B (1.1) is
# staged, and the API goes down before it boots (the outage file on the STATE
# partition, which both slots share: the environment, not an image). B's gate
# fails, blaming its API failure on the update (regression), and bootgate falls
# back to A. A's gate fails on the same check: its second verdict blames the
# environment, and as a confirmed slot it stays up. The host ends the outage;
# once the API has answered for 20s, `bootgate serve` re-arms B (one try,
# priority above A) and reboots into it; B passes and update-engine marks it.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario outage-keeps-update

update_of outage.yaml
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T0 -P0

# USR-A before the update: healthy, and recorded so.
boot
expect_boot_slot A "the confirmed image before the update"
wait_verdict
expect_gate passed
wait_marked
wait_last_seen api pass
vm_poweroff
expect_last_seen api pass

# The update is staged; then the outage begins.
gpt_set B -S0 -T1 -P2
state_outage

boot
expect_boot_slot B "the update"
wait_verdict
expect_gate failed
expect_report api
expect_verdict unhealthy api
expect_check api fail
[ "$(field "$CHECK_LINE" blame)" = regression ] || fail "boot $BOOTS: the verdict does not blame api on the update: $CHECK_LINE"
jq -e '.components.api.blame == "regression"' "$RUN/report-$BOOTS.json" >/dev/null ||
  fail "boot $BOOTS: the report does not blame api on the update (regression): $(jq -c '.components | map_values({result, blame})' "$RUN/report-$BOOTS.json")"
expect_metric 'bootgate_check_blame\{blame="regression",check="api"\} 1' "B's api failure is blamed on the update"
expect_reboot
expect_not_marked
expect_gpt B "priority=2 tries=0 successful=0" "the update spent its one try and was never marked"

boot
expect_boot_slot A "the fallback after the failed USR-B"
wait_verdict
expect_gate failed
expect_verdict unhealthy api
wait_settled
expect_unit_failed 2
expect_not_marked
# bootgate-report.service (bootgate serve) answers from here on.
# (An environment blame is followed by the retry's first word: waiting.)
wait_health '.boot.fallback.blame != null and (.boot.fallback.blame != "environment" or .boot.fallback.retry != null)' "$STEP_TIMEOUT"
expect_fallback B gate_failed api environment
expect_health 503 unhealthy '.boot.fallback.from_version == "1.1"' '.boot.fallback.retry.done == false' \
  '.boot.fallback.retry.text | test("waiting for api to pass here for 20s")'

# The outage ends; after 20s of the API answering, serve re-arms B and reboots.
guest_ctl api-back
back_at=$EPOCHREALTIME
# Until then the retry is shown waiting (done false); once made, bootgate waits
# the policy's 30s reboot delay, while the host looks.
wait_health '.boot.fallback.retry.done == true' $((20 + STEP_TIMEOUT))
jq -e '.boot.fallback.retry.attempt == 1 and .boot.fallback.retry.max == 1 and (.boot.fallback.retry.at | length > 0) and .boot.fallback.blame == "environment"' \
  "$RUN/health-wait-$BOOTS.json" >/dev/null || fail "boot $BOOTS: the re-arm is reported as $(jq -c .boot.fallback "$RUN/health-wait-$BOOTS.json")"
expect_reboot
TIMINGS+=("API back→reboot $(secs "$EPOCHREALTIME - $back_at") (host clock)")
expect_console 'retry 1 of 1 of the update to 1\.1: api passed here for 20s.*USR-B armed to boot once more' "bootgate says it re-armed the update"
expect_gpt B "priority=2 tries=1 successful=0" "the update re-armed: one try, above USR-A"
expect_gpt A "priority=1 tries=0 successful=1" "the fallback slot stays good"

boot
expect_boot_slot B "the re-armed update"
wait_verdict
expect_gate passed
expect_verdict healthy ""
wait_marked
expect_health 200 healthy '.boot.fallback == null'
vm_poweroff

expect_gpt B "priority=2 tries=0 successful=1" "the update survived the outage and is marked good"
expect_gpt A "priority=1 tries=0 successful=1" "the old slot is untouched"
expect_history passed failed failed passed
expect_history_line 3 '.blame.api == "regression" and .os_version == "1.1"' "B's failure blamed on the update"
expect_history_line 2 '.fallback.blame == "environment" and .fallback.from_version == "1.1" and .retry.done == true and .retry.attempt == 1' \
  "A's fallback blamed the environment and re-armed the update"
pass "USR-B failed in an outage, USR-A blamed the environment, serve re-armed USR-B once the API was back, USR-B passed and was marked"
