#!/usr/bin/env bash
# rauc bad update falls back: RAUC installed an update into USR-B (rootfs.1),
# the primary, both slots good; B fails its gate. Boot 1: the boot loader boots
# B, the gate fails, bootgate marks the booted slot bad over RAUC's D-Bus API
# (Mark "bad" "booted"), finds in GetSlotStatus that rootfs.0 (A) is still good
# and reboots. Boot 2: the loader skips the bad primary and boots A, whose gate
# passes; bootgate marks A good and reports the fallback from USR-B.
# Real: bootgate, RAUC's own service (Debian's rauc 1.8) on the guest's real
# system bus, started by D-Bus activation on bootgate's first call, RAUC's
# calls into its custom boot loader backend, and the reboot through logind.
# Played by the harness: the boot loader, which reads the backend's state files
# on the STATE partition (rauc_next) to pick the slot; the GPT attributes play
# no part.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario rauc-bad-falls-back

slot_policy B rauc-bad.yaml
slot_policy A rauc.yaml
rauc_init B good good

boot
expect_boot_slot B "the primary"
wait_verdict
expect_rauc_activated
expect_gate failed
expect_verdict unhealthy api
wait_rauc_call "set-state B bad"
expect_reboot
expect_console 'marked the booted slot bad, rebooting in 1s to fall back to RAUC slot rootfs\.0' \
  "bootgate says it marked B bad and which slot RAUC falls back to"

boot
expect_boot_slot A "the fallback, with USR-B bad"
wait_verdict
expect_gate passed
wait_rauc_call "set-state A good"
wait_settled
expect_health 200 healthy '.boot.backend == "rauc"' '.boot.booted == "A"' '.boot.error == null' \
  '.boot.slots | any(.name == "rootfs.0" and .state == "booted" and .boot_status == "good")' \
  '.boot.slots | any(.name == "rootfs.1" and .boot_status == "bad")'
expect_fallback B gate_failed api
vm_poweroff

got=$(rauc_states)
[ "$got" = "primary=B A=good B=bad" ] || fail "the boot loader's state is '$got' after the fallback, expected primary=B A=good B=bad"
expect_rauc_calls "set-state B bad" "set-state A good"
expect_history failed passed
pass "USR-B failed, bootgate marked it bad through RAUC and rebooted, the loader fell back to USR-A, A passed, was marked good and reports the fallback"
