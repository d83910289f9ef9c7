#!/usr/bin/env bash
# grubenv late failure reverts: the new deployment (USR-B) passes its gate and
# bootgate writes greenboot's handshake (boot_success=1, boot_counter unset);
# the host sees it healthy and armed, then B's device API dies (the host says
# when, through the control port). Inside the policy's rollback window (3m,
# failing_for 6s) bootgate reverts the update: it writes boot_success=0 and
# boot_counter=0 into the block on the ESP, records `decision: reverted` and
# reboots; greenboot's script in GRUB sees a used-up count, sets
# boot_counter=-1 and boots the previous deployment (USR-A, entry 1), which
# reports the fallback with reason reverted naming api.
# Real: OVMF, Debian's GRUB EFI image running greenboot's counting script
# (vm-tests/grub/grub.cfg) over the block on the ESP, and bootgate; the harness
# only writes the ESP before the first boot and reads it back while the guest is
# down.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario grubenv-late-failure-reverts

slot_policy B grubenv-late.yaml
slot_policy A grubenv.yaml
slot_api_dies B host
grub_init boot_counter=3 boot_success=1
expect_grub_env "boot_counter=3 boot_success=1" "as the updater left it"

boot
expect_boot_slot B "the new deployment"
expect_grub_said "boot_counter=3 boot_success=0 default=0" "no count after a good boot, boot_success reset"
wait_verdict
expect_gate passed
wait_settled
expect_health 200 healthy '.boot.backend == "grubenv"' '.boot.boot_success == true' '.boot.boot_counter == null' \
  '.rollback.armed == true' '.rollback.remaining_seconds > 60'
guest_ctl api-dies
wait_line '^api died ' "$STEP_TIMEOUT" || fail "boot $BOOTS: the device API never died"
expect_reboot
expect_console 'reverted the booted deployment after its gate: api \(failing for [0-9]+s.*to fall back to the previous deployment \(boot_success=0, boot_counter=0, in /efi/EFI/BOOT/grubenv' \
  "bootgate says what it reverted, why, and what GRUB boots next"
rebooted_at=$EPOCHREALTIME
expect_grub_env "boot_success=0 boot_counter=0" "the revert leaves GRUB a used-up count on a boot not marked good"

boot
expect_boot_slot A "the previous deployment, after B was reverted"
expect_grub_said "boot_counter=-1 boot_success=0 default=1" "greenboot's script falls back"
wait_verdict
TIMINGS+=("reboot→USR-A verdict $(secs "$EPOCHREALTIME - $rebooted_at") (host clock)")
expect_gate passed
wait_settled
expect_health 200 healthy '.boot.backend == "grubenv"'
expect_fallback B reverted api
vm_poweroff

expect_grub_env "boot_success=1" "A passed: boot_success=1, boot_counter unset"
expect_history passed passed
state_file /lib/bootgate/history.jsonl | tail -2 | sed -n 1p | jq -e '.decision == "reverted" and (.failing | any(.name == "api")) and (.reason | startswith("reverted: api"))' >/dev/null ||
  fail "USR-B's history line does not record the revert: $(state_file /lib/bootgate/history.jsonl | tail -2 | sed -n 1p)"
pass "USR-B passed and was marked good, its API died, bootgate left GRUB a used-up count, GRUB fell back to USR-A, which reports the revert"
