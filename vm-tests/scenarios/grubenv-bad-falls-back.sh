#!/usr/bin/env bash
# grubenv bad update falls back: the new deployment (USR-B) fails its gate on
# every boot. Real: OVMF, Debian's GRUB EFI image running greenboot's counting
# script (vm-tests/grub/grub.cfg) over the environment block on the ESP, and
# bootgate; the harness only writes the ESP before the first boot (the updater
# left boot_counter=1) and reads it back while the guest is down. Boot 1: GRUB
# boots B without counting (the previous boot was good), the gate fails,
# bootgate reboots (boot_counter 1). Boot 2: GRUB counts down to 0 and boots B,
# it fails again, bootgate reboots (at 0 GRUB falls back). Boot 3: GRUB sets
# boot_counter=-1 and boots the previous deployment (USR-A, entry 1); A passes,
# writes greenboot's handshake and reports the fallback from USR-B.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario grubenv-bad-falls-back

slot_policy B grubenv-bad.yaml
slot_policy A grubenv.yaml
grub_init boot_counter=1 boot_success=1
expect_grub_env "boot_counter=1 boot_success=1" "as the updater left it"

for n in 1 0; do
  boot
  expect_boot_slot B "the new deployment, with boot_counter $n"
  expect_grub_said "boot_counter=$n boot_success=0 default=0" "GRUB counts only after a boot that was not marked good"
  wait_verdict
  expect_gate failed
  expect_verdict unhealthy api
  expect_reboot
  expect_console "rebooting in 1s: GRUB's boot_counter is $n" "bootgate says what GRUB will do"
  expect_grub_env "boot_counter=$n boot_success=0" "a failed gate leaves GRUB's block as GRUB wrote it"
done

boot
expect_boot_slot A "the previous deployment, with boot_counter 0"
expect_grub_said "boot_counter=-1 boot_success=0 default=1" "the countdown ended: greenboot's script falls back"
wait_verdict
expect_gate passed
wait_marked
expect_health 200 healthy '.boot.backend == "grubenv"'
expect_fallback B gate_failed api
vm_poweroff

expect_grub_env "boot_success=1" "A passed: boot_success=1, boot_counter unset"
expect_history failed failed passed
pass "USR-B failed twice while GRUB counted down, GRUB fell back to USR-A, A passed and reports the fallback"
