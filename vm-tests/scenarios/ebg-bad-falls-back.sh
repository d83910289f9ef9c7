#!/usr/bin/env bash
# EFI Boot Guard bad update falls back: USR-B fails its gate. Real: OVMF,
# Debian's efibootguardx64.efi over two configurations on their own FAT
# partitions, the q35 watchdog, and bootgate with EFI Boot Guard's tools in the
# guest. The harness writes the environments before the first boot (A OK at
# revision 1, B INSTALLED at revision 2) and reads them back while the guest is
# down. Boot 1: EFI Boot Guard writes B TESTING and boots it; the gate fails,
# and bootgate reboots because B is under test and A is OK. Boot 2: EFI Boot
# Guard finds B still TESTING, writes it FAILED with revision 0 and boots A;
# A passes (already OK: nothing to confirm) and reports the fallback from USR-B.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario ebg-bad-falls-back

slot_policy B ebg-bad.yaml
slot_policy A ebg.yaml
ebg_init 1:OK 2:INSTALLED

boot
expect_boot_slot B "the configuration with the highest revision"
expect_ebg_said "revision=2 ustate=2" "EFI Boot Guard writes an INSTALLED configuration TESTING and boots it"
wait_verdict
expect_gate failed
expect_verdict unhealthy api
expect_reboot
expect_console 'rebooting in 1s to fall back to config #0 \(revision 1, OK\): config #1 is TESTING, so EFI Boot Guard marks it FAILED \(revision 0\) and boots the next' \
  "bootgate says why EFI Boot Guard will fall back"
expect_ebg_env B "revision=2 ustate=2 in_progress=0" "bootgate leaves the failed test for EFI Boot Guard to mark"

boot
expect_boot_slot A "EFI Boot Guard falls back from the untested-again configuration"
expect_ebg_said "revision=2 ustate=0" "EFI Boot Guard saw revision 2 TESTING again and booted the OK one"
wait_verdict
expect_gate passed
expect_console 'EFI Boot Guard config #0 \(revision 1, OK\) is already confirmed' "nothing to confirm on the fallback"
wait_marked
expect_health 200 healthy '.boot.backend == "efibootguard"' \
  '[.boot.configs[] | {revision, ustate, booted}] == [
     {"revision": 1, "ustate": "OK", "booted": true}, {"revision": 0, "ustate": "FAILED", "booted": false}]'
expect_fallback B gate_failed api
vm_poweroff

expect_ebg_env B "revision=0 ustate=3 in_progress=0" "EFI Boot Guard marked the failed test: FAILED, revision 0"
expect_ebg_env A "revision=1 ustate=0 in_progress=0" "A boots from now on"
expect_history failed passed
pass "USR-B failed its gate under test, bootgate rebooted, EFI Boot Guard marked config B FAILED (revision 0) and booted USR-A, which passed"
