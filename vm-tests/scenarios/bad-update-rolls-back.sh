#!/usr/bin/env bash
# Bad update rolls back: USR-B's policy has a critical check that cannot pass
# (its API never comes up). USR-B is never marked; during its 30s reboot delay
# the host sees the failed gate on the endpoint; bootgate reboots by itself,
# the harness's gptprio falls back to USR-A, and USR-A boots healthy and
# reports that it is a fallback from USR-B, which failed on api.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario bad-update-rolls-back

slot_policy B bad.yaml
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T1 -P2

boot
expect_boot_slot B "the update"
wait_verdict
expect_gate failed
expect_report api
expect_verdict unhealthy api
expect_check api fail
expect_reboot
expect_not_marked
expect_console 'rebooting in 30s to fall back to partition 1 USR-A' "bootgate announces the fallback"
expect_gpt B "priority=2 tries=0 successful=0" "the bad slot spent its one try and was never marked"

boot
expect_boot_slot A "the fallback after the failed USR-B"
wait_verdict
expect_gate passed
expect_verdict healthy ""
wait_marked
expect_health 200 healthy
expect_fallback B gate_failed api
vm_poweroff

expect_gpt A "priority=1 tries=0 successful=1" "the fallback slot stays good"
expect_gpt B "priority=2 tries=0 successful=0" "the bad slot is still unmarked and out of tries"
expect_history failed passed
expect_history_command passed failed
pass "USR-B failed its gate and was never marked, bootgate rebooted, USR-A booted healthy"
