#!/usr/bin/env bash
# rauc healthy: as after RAUC installed an update into USR-B (rootfs.1): B is
# the primary, both slots good. The boot loader boots B with rauc.slot=B; the
# gate passes and bootgate marks the booted slot good over RAUC's D-Bus API
# (Mark "good" "booted") before READY=1.
# Real: bootgate, RAUC's own service (Debian's rauc 1.8) on the guest's real
# system bus, started by D-Bus activation on bootgate's first call, and RAUC's
# calls into its custom boot loader backend. Played by the harness: the boot
# loader, which reads the backend's state files on the STATE partition
# (rauc_next) to pick the slot; the GPT attributes play no part.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario rauc-healthy

slot_policy B rauc.yaml
rauc_init B good good

boot
expect_boot_slot B "the primary"
wait_verdict
expect_rauc_activated
expect_gate passed
expect_console 'boot backend rauc: boot.backend is rauc' "bootgate says which backend it uses"
wait_rauc_call "set-state B good"
# READY=1 comes after the mark and the backend's facts are published.
wait_settled
expect_console 'RAUC: marked slot rootfs.1 as good' "bootgate logs RAUC's answer to Mark"
expect_health 200 healthy '.boot.backend == "rauc"' '.boot.booted == "B"' '.boot.primary == "rootfs.1"' \
  '.boot.error == null' \
  '.boot.slots | any(.name == "rootfs.1" and .bootname == "B" and .state == "booted" and .boot_status == "good")' \
  '.boot.slots | any(.name == "rootfs.0" and .bootname == "A" and .boot_status == "good")'
vm_poweroff

got=$(rauc_states)
[ "$got" = "primary=B A=good B=good" ] || fail "the boot loader's state is '$got' after B passed, expected primary=B A=good B=good"
expect_rauc_calls "set-state B good"
expect_history passed
pass "the loader booted USR-B (rauc.slot=B), the gate passed, bootgate marked B good through RAUC's D-Bus API and its custom backend"
