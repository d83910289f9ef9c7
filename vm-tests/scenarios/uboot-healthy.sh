#!/usr/bin/env bash
# uboot healthy: as after SWUpdate installed an update into USR-B and armed
# U-Boot's bootcount: boot_slot=B, upgrade_available=1, bootcount=0,
# bootlimit=3. U-Boot counts the boot (bootcount 1 ≤ 3) and boots B; the gate
# passes and bootgate writes upgrade_available=0 and bootcount=0 with fw_setenv
# before READY=1.
# Real: bootgate, and libubootenv's fw_printenv/fw_setenv on both sides: in the
# guest on /dev/vda (the redundant environment at raw offsets before the first
# partition, as /etc/fw_env.config says), on the host over the same bytes of the
# disk image. Played by the harness: U-Boot (uboot_next in lib.sh), since
# u-boot-qemu on x86 has no saved environment and no bootcount command: before
# each boot it applies U-Boot's bootcount logic to the environment and boots
# boot_slot with -kernel/-initrd and root=PARTUUID.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario uboot-healthy

slot_policy B uboot.yaml
uboot_init boot_slot=B upgrade_available=1 bootcount=0 bootlimit=3
expect_uboot_env "boot_slot=B upgrade_available=1 bootcount=0 bootlimit=3" "as the updater left it"

boot
expect_boot_slot B "the updated slot, bootcount 1 of bootlimit 3"
[ "$(cat "$RUN/uboot-said")" = "bootcount 1, bootlimit 3: bootcmd" ] || fail "U-Boot did: $(cat "$RUN/uboot-said")"
wait_verdict
expect_gate passed
expect_console 'boot backend uboot: boot.backend is uboot \(/etc/fw_env.config\)' "bootgate says which backend it uses"
# READY=1 comes after the mark and the backend's facts are published.
wait_settled
expect_console 'marked this boot good: upgrade_available=0, bootcount=0 in /etc/fw_env.config \(was upgrade_available=1, bootcount=1, bootlimit=3\)' \
  "bootgate says what it wrote and what U-Boot had counted"
expect_health 200 healthy '.boot.backend == "uboot"' '.boot.config == "/etc/fw_env.config"' '.boot.upgrade_available == false' \
  '.boot.bootcount == 0' '.boot.bootlimit == 3' '.boot.error == null' '.boot.mark.done == true'
vm_poweroff

expect_uboot_env "boot_slot=B upgrade_available=0 bootcount=0 bootlimit=3" "B passed: bootgate cleared upgrade_available and bootcount"
expect_history passed
pass "U-Boot counted USR-B's boot (1 of 3), the gate passed, bootgate wrote upgrade_available=0 and bootcount=0 with fw_setenv"
