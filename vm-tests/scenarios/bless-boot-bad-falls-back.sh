#!/usr/bin/env bash
# bless-boot bad update falls back: systemd-boot's boot counting on UEFI boots,
# the new OS (USR-B) fails its gate. Real: OVMF, systemd-boot (the guest's own,
# from the ESP) choosing and counting, systemd-bless-boot, and bootgate. The
# harness only writes the two entries before the first boot (B as
# bootgate-2+3.conf, the previous OS A as bootgate-1.conf without counting) and
# reads the ESP back while the guest is down. Boot 1: systemd-boot starts B
# (bootgate-2+2-1.conf), the gate fails, bootgate runs `systemd-bless-boot bad`
# (bootgate-2+0-1.conf) and reboots, since A's entry can boot. Boot 2:
# systemd-boot sorts the entry without tries left last and starts A, which
# passes and reports the fallback from USR-B.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario bless-boot-bad-falls-back

slot_policy B bless-boot-bad.yaml
slot_policy A bless-boot.yaml
bless_init bootgate-2+3.conf=B bootgate-1.conf=A
expect_entries bootgate-1.conf bootgate-2+3.conf "as the updater left them"

boot
expect_uefi_boot B '\loader\entries\bootgate-2+2-1.conf'
wait_verdict
expect_gate failed
expect_verdict unhealthy api
expect_reboot
expect_console 'gate failed \(failing: api\); marked boot entry bootgate-2\.conf bad, rebooting in 1s to fall back to bootgate-1\.conf' \
  "bootgate says what it marked and what systemd-boot will boot"
expect_entries bootgate-1.conf bootgate-2+0-1.conf "bootgate marked B's entry bad with systemd-bless-boot"

boot
expect_uefi_boot A none bootgate-1.conf
wait_verdict
expect_gate passed
expect_health 200 healthy '.boot.backend == "bless-boot"' '.boot.counting == false' '.boot.entry == "bootgate-1.conf"'
expect_fallback B gate_failed api
vm_poweroff

expect_entries bootgate-1.conf bootgate-2+0-1.conf "nothing blesses A's entry, which has no counter, and B's stays bad"
expect_history failed passed
pass "USR-B failed, bootgate marked its entry bad and rebooted, systemd-boot fell back to USR-A, A passed and reports the fallback"
