#!/usr/bin/env bash
# Unconfirmed, no fallback: USR-A is unbootable (no tries, not successful),
# the updated USR-B fails its gate. A reboot could only come back to nothing,
# so bootgate stays down with "manual intervention needed": exactly one boot.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario no-fallback

slot_policy B bad.yaml
gpt_set A -S0 -T0 -P1
gpt_set B -S0 -T1 -P2

boot
expect_boot_slot B
wait_verdict
expect_gate failed
expect_report api
expect_verdict unhealthy api
wait_settled
expect_status 'manual intervention needed'
expect_unit_failed 2
expect_stays_up 10
expect_not_marked
vm_poweroff

expect_gpt B "priority=2 tries=0 successful=0" "the failed slot is never marked"
expect_gpt A "priority=1 tries=0 successful=0" "the unbootable slot is untouched"
boot
expect_boot_slot none "the failed USR-B is spent and USR-A was never bootable"
pass "USR-B failed with no fallback: bootgate stayed down (manual intervention needed), one boot only"
