#!/usr/bin/env bash
# grubenv healthy: greenboot's GRUB handshake on a UEFI boot. Real: OVMF,
# Debian's GRUB EFI image running greenboot's counting script (vm-tests/grub/
# grub.cfg) over the environment block on the ESP, and bootgate. The harness
# only writes the ESP before the boot, as an updater and a previous healthy boot
# leave it (boot_counter=3 boot_success=1), and reads it back after the
# power-off. GRUB does not count (boot_success=1), resets boot_success=0 and
# boots the new deployment (USR-B, entry 0); its gate passes and bootgate writes
# boot_success=1 and unsets boot_counter before READY=1.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario grubenv-healthy

slot_policy B grubenv.yaml
grub_init boot_counter=3 boot_success=1
expect_grub_env "boot_counter=3 boot_success=1" "as the updater left it"

boot
expect_boot_slot B "the new deployment"
expect_grub_said "boot_counter=3 boot_success=0 default=0" "no count after a good boot, boot_success reset"
wait_verdict
expect_gate passed
expect_console 'boot backend grubenv: boot.backend is grubenv' "bootgate says which backend it uses"
expect_console 'marked this boot good: boot_success=1, boot_counter unset, in /efi/EFI/BOOT/grubenv' \
  "bootgate marks the boot in the block GRUB reads"
wait_marked
expect_health 200 healthy '.boot.backend == "grubenv"' '.boot.grubenv == "/efi/EFI/BOOT/grubenv"' \
  '.boot.boot_success == true' '.boot.boot_counter == null'
vm_poweroff

expect_grub_env "boot_success=1" "a passed gate writes boot_success=1 and unsets boot_counter"
expect_history passed
pass "GRUB booted USR-B with boot_counter=3, the gate passed, bootgate wrote boot_success=1 and unset boot_counter on the ESP"
