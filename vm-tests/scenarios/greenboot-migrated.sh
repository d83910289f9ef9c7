#!/usr/bin/env bash
# greenboot migrated: a guest laid out like a greenboot host (vm-tests/
# greenboot-host/, written into both slots: checks in greenboot's /usr/lib and
# /etc trees, mode 644 as greenboot ships them, a wanted.d in each, greenboot.conf
# with GREENBOOT_MAX_BOOT_ATTEMPTS=1 and one disabled check, and /boot, the ESP
# holding GRUB's environment block, mounted read-only) runs bootgate on the policy
# `bootgate migrate greenboot` gives it: checks_from and greenboot.conf only.
# Real: OVMF, Debian's GRUB with greenboot's counting script (as in the grubenv
# scenarios), bash running the scripts, and bootgate.
#
# The update (USR-B) ships a site configuration its required check refuses. The
# updater left boot_counter=1 (greenboot's set-counter, from greenboot.conf).
# Boots 1 and 2: GRUB boots B, 20_site_service.sh fails, bootgate reboots; boot
# 3: GRUB falls back to USR-A (boot_counter=-1), every required check passes,
# the disabled one does not run, bootgate writes boot_success=1 through the
# read-only /boot and leaves it read-only, and its motd and fallback report say
# that B failed.
#
# Not in run.sh's default list: it needs checks_from-only policies, *.sh run
# through bash, the greenboot: section and a grubenv write on a read-only /boot.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario greenboot-migrated

for slot in A B; do
  slot_tree "$slot" "$VMT_DIR/greenboot-host"
  slot_policy "$slot" greenboot-migrated.yaml "$VMT_DIR/greenboot-host"
done
slot_file B /etc/site/service.conf "ready=no"
grub_init boot_counter=1 boot_success=1
expect_grub_env "boot_counter=1 boot_success=1" "as greenboot-grub2-set-counter left it"

for n in 1 0; do
  boot
  expect_boot_slot B "the update, with boot_counter $n"
  expect_grub_said "boot_counter=$n boot_success=0 default=0" "GRUB counts only after a boot that was not marked good"
  wait_verdict
  expect_gate failed
  expect_verdict unhealthy 20_site_service.sh
  expect_check 20_site_service.sh fail
  grep -q 'site service not ready' <<<"$CHECK_LINE" || fail "boot $BOOTS: 20_site_service.sh failed without its message: $CHECK_LINE"
  expect_check 10_vendor_state.sh pass
  expect_reboot
  expect_grub_env "boot_counter=$n boot_success=0" "a failed gate leaves GRUB's block as GRUB wrote it"
done

boot
expect_boot_slot A "the previous deployment, with boot_counter 0"
expect_grub_said "boot_counter=-1 boot_success=0 default=1" "the countdown ended: greenboot's script falls back"
wait_verdict
expect_gate passed
for check in 10_vendor_state.sh 20_site_service.sh 30_vendor_clock.sh 31_site_journal.sh; do
  expect_check "$check" pass
done
expect_check 40_disabled_probe.sh skipped
grep -q 'greenboot.conf' <<<"$CHECK_LINE" ||
  fail "boot $BOOTS: the disabled check does not say greenboot.conf turned it off: $CHECK_LINE"
expect_console 'marked this boot good in /boot/EFI/BOOT/grubenv' "bootgate writes the block although /boot is read-only"
wait_line '^boot-mount ' "$STEP_TIMEOUT" || fail "boot $BOOTS: the guest never said how /boot is mounted"
mount_line=$(guest_line '^boot-mount ')
[[ ,$(field "$mount_line" options), == *,ro,* ]] || fail "boot $BOOTS: /boot is not read-only again after the mark: $mount_line"
wait_line '^motd (1|missing) ' "$STEP_TIMEOUT" || fail "boot $BOOTS: the guest never said bootgate's motd"
motd=$(guest_line '^motd 1 ')
[ -n "$motd" ] || fail "boot $BOOTS: no motd file /run/motd.d/bootgate"
log "boot $BOOTS: motd: $motd / $(guest_line '^motd 2 ')"
grep -qiE 'fallback|fell back|USR-B' <<<"$motd $(guest_line '^motd 2 ')" ||
  fail "boot $BOOTS: bootgate's motd does not say this boot is a fallback from USR-B"
expect_health 200 healthy '.boot.backend == "grubenv"' '.boot.grubenv == "/boot/EFI/BOOT/grubenv"'
expect_fallback B gate_failed 20_site_service.sh
vm_poweroff

expect_grub_env "boot_success=1" "A passed: boot_success=1, boot_counter unset, through the read-only /boot"
expect_history failed failed passed
pass "USR-B's greenboot check failed twice, GRUB fell back to USR-A, A passed and was marked through a read-only /boot, and its motd and fallback report say so"
