#!/usr/bin/env bash
# uboot bad update falls back: SWUpdate installed an update into USR-B and
# armed U-Boot's bootcount (boot_slot=B, upgrade_available=1, bootcount=0,
# bootlimit=2); B fails its gate on every boot. Boot 1: U-Boot counts 1 ≤ 2 and
# boots B, the gate fails, bootgate reboots (one more try of B, then
# altbootcmd). Boot 2: U-Boot counts 2 ≤ 2 and boots B, it fails again,
# bootgate reboots (the next count exceeds the limit). Boot 3: U-Boot counts
# 3 > 2 and runs altbootcmd, which switches boot_slot to A and clears
# upgrade_available and bootcount; A passes and reports the fallback from USR-B.
# Real: bootgate and libubootenv's fw_printenv/fw_setenv, in the guest on
# /dev/vda and on the host over the disk image. Played by the harness: U-Boot
# (uboot_next in lib.sh), its bootcount logic and the environment's altbootcmd,
# since u-boot-qemu on x86 has no saved environment and no bootcount command.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario uboot-bad-falls-back

slot_policy B uboot-bad.yaml
slot_policy A uboot.yaml
uboot_init boot_slot=B upgrade_available=1 bootcount=0 bootlimit=2

for n in 1 2; do
  boot
  expect_boot_slot B "the updated slot, bootcount $n of bootlimit 2"
  [ "$(cat "$RUN/uboot-said")" = "bootcount $n, bootlimit 2: bootcmd" ] || fail "U-Boot did: $(cat "$RUN/uboot-said")"
  wait_verdict
  expect_gate failed
  expect_verdict unhealthy api
  expect_reboot
  case $n in
    1) expect_console "rebooting in 1s to fall back to U-Boot's altbootcmd after 1 more try of this image: upgrade_available=1, bootcount 1 of bootlimit 2" \
      "bootgate reboots: U-Boot tries B once more, then runs altbootcmd" ;;
    2) expect_console "rebooting in 1s to fall back to U-Boot's altbootcmd: upgrade_available=1 and bootcount 2 = bootlimit 2: U-Boot counts the next boot 3 > 2" \
      "bootgate reboots: the next count exceeds the limit" ;;
  esac
  expect_uboot_env "boot_slot=B upgrade_available=1 bootcount=$n" "a failed gate leaves U-Boot's count as U-Boot saved it"
done

boot
expect_boot_slot A "altbootcmd's slot, with the count past the limit"
[ "$(cat "$RUN/uboot-said")" = "bootcount 3, bootlimit 2: altbootcmd" ] || fail "U-Boot did: $(cat "$RUN/uboot-said")"
wait_verdict
expect_gate passed
wait_settled
expect_console 'nothing to mark: U-Boot does not count this boot' "altbootcmd cleared upgrade_available: nothing to write"
expect_health 200 healthy '.boot.backend == "uboot"' '.boot.upgrade_available == false' '.boot.bootcount == 0' '.boot.bootlimit == 2'
expect_fallback B gate_failed api
vm_poweroff

expect_uboot_env "boot_slot=A upgrade_available=0 bootcount=0 bootlimit=2" "altbootcmd switched to A and cleared the count"
expect_history failed failed passed
pass "USR-B failed twice while U-Boot counted to its limit, bootgate rebooted each time, altbootcmd booted USR-A, A passed and reports the fallback"
