#!/usr/bin/env bash
# A masked gate is off, on purpose: `systemctl mask bootgate.service` in USR-B.
# systemd ignores a Requires= on a masked unit, so the stand-in update-engine
# starts at boot as on stock Flatcar and marks B. An operator who masks the
# gate gets updates kept, not every update rolled back for want of a mark.
# (`systemctl disable` does not turn it off: update-engine's Requires= still
# pulls the gate in.) This pins that the drop-in keeps this behaviour.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario masked-gate-is-off

gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T1 -P2
slot_mask B bootgate.service

boot
expect_boot_slot B
rc=0
wait_line '^marked ' $((BOOT_TIMEOUT + MARK_DELAY)) || rc=$?
[ $rc = 0 ] || fail "with bootgate.service masked, update-engine never marked USR-B (wait_line $rc)"
log "boot $BOOTS: $(guest_line '^marked ')"
[ -z "$(guest_line '^verdict ')" ] || fail "bootgate reached a verdict although its unit is masked: $(guest_line '^verdict ')"
[ -z "$(guest_line '^bootgate .*state=(active|activating)')" ] || fail "bootgate.service ran although masked"
vm_poweroff

expect_gpt B "priority=2 tries=0 successful=1" "update-engine marked it, as without bootgate"
pass "bootgate.service masked: no gate ran, update-engine started and marked USR-B as on stock Flatcar"
