#!/usr/bin/env bash
# bless-boot healthy: systemd-boot's boot counting on a UEFI boot. Real: OVMF,
# systemd-boot (the guest's own, from the ESP) choosing the entry and counting
# its try, systemd's systemd-bless-boot-generator and systemd-bless-boot.service,
# and bootgate. The harness only writes the two entries before the boot, as an
# updater leaves them (the new OS USR-B with 3 tries, the previous one USR-A
# without counting), and reads the ESP back after the power-off. systemd-boot
# starts B as bootgate-2+2-1.conf, the gate passes, boot-complete.target is
# reached and systemd-bless-boot renames the entry to bootgate-2.conf.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario bless-boot-healthy

slot_policy B bless-boot.yaml
bless_init bootgate-2+3.conf=B bootgate-1.conf=A
expect_entries bootgate-1.conf bootgate-2+3.conf "as the updater left them"

boot
expect_uefi_boot B '\loader\entries\bootgate-2+2-1.conf'
wait_verdict
expect_gate passed
expect_console 'READY=1: systemd-bless-boot.service marks bootgate-2.conf good once boot-complete.target is reached' \
  "bootgate leaves the blessing to systemd"
expect_health 200 healthy '.boot.backend == "bless-boot"' '.boot.counting == true' '.boot.esp == "/efi"' \
  '.boot.entry == "bootgate-2.conf"' '.boot.tries_left == 2' '.boot.tries_done == 1'
wait_blessed
vm_poweroff

expect_entries bootgate-1.conf bootgate-2.conf "systemd-bless-boot blessed B's entry after the gate passed"
expect_history passed
pass "systemd-boot booted USR-B counting its try, the gate passed, systemd-bless-boot blessed bootgate-2.conf"
