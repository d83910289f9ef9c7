#!/usr/bin/env bash
# Degraded: an optional check fails (nothing listens on the guest's loopback
# port 9), the critical ones pass. The gate passes, USR-B is still marked, and
# health says degraded.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario degraded

slot_policy B degraded.yaml
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T1 -P2

boot
expect_boot_slot B "the update"
wait_verdict
expect_gate passed
expect_verdict degraded ""
expect_check mirror fail
wait_marked
expect_health 200 degraded '.components.mirror.status == "degraded"' '.components.storage.status == "healthy"'
vm_poweroff

expect_gpt B "priority=2 tries=0 successful=1" "an optional failure must not hold back the mark"
pass "optional check failed, gate passed, USR-B marked successful, health degraded"
