#!/usr/bin/env bash
# grubenv healthy: greenboot's GRUB handshake. The updater left boot_counter=3
# (and the previous healthy boot boot_success=1); the harness plays GRUB with
# greenboot's script and boots the new deployment (USR-B). Its gate passes and
# bootgate writes boot_success=1 and unsets boot_counter before READY=1.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario grubenv-healthy

slot_policy B grubenv.yaml
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T1 -P2
grub_init boot_counter=3 boot_success=1

boot
expect_boot_slot B "the new deployment"
[ "$(grub_env | paste -sd' ' -)" = "boot_counter=3 boot_success=0" ] || fail "GRUB left $(grub_env | paste -sd' ' -)"
wait_verdict
expect_gate passed
expect_console 'boot backend grubenv: boot.backend is grubenv' "bootgate says which backend it uses"
wait_marked
expect_health 200 healthy '.boot.backend == "grubenv"' '.boot.boot_success == true' '.boot.boot_counter == null'
vm_poweroff

got=$(grub_env | paste -sd' ' -)
[ "$got" = "boot_success=1" ] || fail "the GRUB environment block is '$got' after a passed gate, expected boot_success=1 and no boot_counter"
log "GRUB environment after the boot: $got"
pass "GRUB booted USR-B with boot_counter=3, the gate passed, bootgate wrote boot_success=1 and unset boot_counter"
