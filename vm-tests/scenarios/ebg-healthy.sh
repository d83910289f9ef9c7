#!/usr/bin/env bash
# EFI Boot Guard healthy: an update confirmed by bootgate. Real: OVMF, Debian's
# efibootguardx64.efi on the ESP choosing between two configurations, each a
# BGENV.DAT on its own FAT partition (config A boots USR-A, config B USR-B), the
# q35 machine's Intel TCO watchdog it arms, and bootgate with bg_printenv and
# bg_setenv in the guest. The harness only writes the environments before the
# boot, as an updater leaves them (A OK at revision 1, B INSTALLED at revision
# 2), and reads them back after the power-off. EFI Boot Guard writes B TESTING
# and boots it; the gate passes and bootgate confirms B (ustate OK) before READY=1.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario ebg-healthy

slot_policy B ebg.yaml
ebg_init 1:OK 2:INSTALLED
expect_ebg_env A "revision=1 ustate=0 in_progress=0" "as the updater left it"
expect_ebg_env B "revision=2 ustate=1 in_progress=0" "as the updater left it"

boot
expect_boot_slot B "the configuration with the highest revision"
expect_ebg_said "revision=2 ustate=2" "EFI Boot Guard writes an INSTALLED configuration TESTING and boots it"
wait_verdict
expect_gate passed
expect_console 'boot backend efibootguard: boot.backend is efibootguard' "bootgate says which backend it uses"
expect_console 'confirmed EFI Boot Guard config #1 \(revision 2\): ustate TESTING → OK' \
  "bootgate confirms the booted configuration"
wait_marked
expect_health 200 healthy '.boot.backend == "efibootguard"' \
  '[.boot.configs[] | {source, revision, ustate, booted}] == [
     {"source": "config partition #0", "revision": 1, "ustate": "OK", "booted": false},
     {"source": "config partition #1", "revision": 2, "ustate": "OK", "booted": true}]'
vm_poweroff

expect_ebg_env B "revision=2 ustate=0 in_progress=0" "a passed gate confirms B: ustate OK"
expect_ebg_env A "revision=1 ustate=0 in_progress=0" "A stays the fallback"
expect_history passed
pass "EFI Boot Guard tested config B (USR-B), the gate passed and bootgate confirmed it (ustate OK) on its partition"
