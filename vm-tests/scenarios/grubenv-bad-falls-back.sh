#!/usr/bin/env bash
# grubenv bad update falls back: the new deployment (USR-B) fails its gate on
# every boot. The updater left boot_counter=1. Boot 1: GRUB boots B, the gate
# fails, bootgate reboots (boot_counter 1). Boot 2: GRUB counts down to 0 and
# boots B, it fails again, bootgate reboots (at 0 GRUB falls back). Boot 3:
# GRUB boots the previous deployment (USR-A) with boot_counter=-1; A passes,
# writes greenboot's handshake and reports the fallback from USR-B.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario grubenv-bad-falls-back

slot_policy B grubenv-bad.yaml
slot_policy A grubenv.yaml
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T1 -P2
grub_init boot_counter=1 boot_success=1

for n in 1 0; do
  boot
  expect_boot_slot B "the new deployment, with boot_counter $n"
  wait_verdict
  expect_gate failed
  expect_verdict unhealthy api
  expect_reboot
  expect_console "rebooting in 1s: GRUB's boot_counter is $n" "bootgate says what GRUB will do"
done

boot
expect_boot_slot A "the previous deployment, with boot_counter 0"
[ "$(grub_env | paste -sd' ' -)" = "boot_counter=-1 boot_success=0" ] || fail "GRUB left $(grub_env | paste -sd' ' -)"
wait_verdict
expect_gate passed
wait_marked
expect_health 200 healthy '.boot.backend == "grubenv"'
expect_fallback B gate_failed api
vm_poweroff

got=$(grub_env | paste -sd' ' -)
[ "$got" = "boot_success=1" ] || fail "the GRUB environment block is '$got' after A passed, expected boot_success=1"
expect_history failed failed passed
pass "USR-B failed twice while GRUB counted down, GRUB fell back to USR-A, A passed and reports the fallback"
