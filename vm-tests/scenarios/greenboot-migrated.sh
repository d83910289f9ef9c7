#!/usr/bin/env bash
# greenboot migrated: a guest laid out like a greenboot host (vm-tests/
# greenboot-host/, written into both slots: checks in greenboot's /usr/lib and
# /etc trees, mode 644 as greenboot ships them, a wanted.d in each, a green.d and
# a red.d hook, greenboot.conf with GREENBOOT_MAX_BOOT_ATTEMPTS=1 and one disabled
# check, /boot, the ESP holding GRUB's environment block, mounted read-only, and
# the unit's read-only /boot drop-in as docs/boot-integration.md gives it) runs
# bootgate on the policy `bootgate migrate greenboot` prints for that tree.
# Real: OVMF, Debian's GRUB with greenboot's counting script (as in the grubenv
# scenarios), bash running the scripts and hooks, the remount, and bootgate.
# A stand-in: the rollback that makes the fallback permanent (guest/rollback),
# since neither bootc nor rpm-ostree exists in a Debian guest.
#
# The update (USR-B) ships a site configuration its required check refuses. The
# updater left boot_counter=1 (greenboot's set-counter, from greenboot.conf).
# Boots 1 and 2: GRUB boots B, 20_site_service.sh fails, the red hook runs, then
# bootgate reboots; boot 3: GRUB falls back to USR-A (boot_counter=-1), every
# required check passes, the disabled one passes without running, bootgate runs
# the rollback once, writes boot_success=1 through the read-only /boot and leaves
# it read-only, the green hook runs, and its motd and fallback report say so.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario greenboot-migrated

HOST_TREE=$VMT_DIR/greenboot-host
ROLLBACK=/usr/local/lib/vm-tests/rollback

# migrated_policy MIGRATED: the slots' policy from what `bootgate migrate
# greenboot --root HOST_TREE` printed: its paths (printed under --root) made the
# guest's, plus only the harness's own keys: gate.reboot_delay (the harness waits
# for the reboot), boot.grubenv (the block GRUB reads is on the ESP, mounted on
# /boot here, not /boot/grub2/grubenv), boot.fallback_command (the stand-in
# rollback) and server.listen (reached through QEMU's forwarded port).
migrated_policy() {
  awk -v root="$HOST_TREE" -v rollback="$ROLLBACK" '
    function unroot(s, prefix,   i) {
      while ((i = index(s, prefix)) > 0) s = substr(s, 1, i - 1) "/" substr(s, i + length(prefix))
      return s
    }
    { $0 = unroot(unroot($0, root "/"), root) }
    $0 == "gate:" {
      print
      print "  reboot_delay: 1s   # vm-tests: the harness waits for the reboot; 10s would only slow it down"
      anchors++
      next
    }
    $0 == "  grubenv: /boot/grub2/grubenv" {
      print "  grubenv: /boot/EFI/BOOT/grubenv   # vm-tests: the block GRUB reads, on the ESP mounted on /boot"
      print "  # vm-tests: a stand-in, neither bootc nor rpm-ostree is in the guest"
      print "  fallback_command: [" rollback ", rollback]"
      anchors++
      next
    }
    { print }
    END {
      print "server:"
      print "  listen: 0.0.0.0:8080   # vm-tests: reached from the host through QEMU'"'"'s forwarded port"
      exit anchors == 2 ? 0 : 1
    }' "$1"
}

"$VMTEST_BIN" migrate greenboot --root "$HOST_TREE" >"$RUN/migrated.yaml" ||
  fail "bootgate migrate greenboot refused the host tree: $(cat "$RUN/migrated.yaml")"
migrated_policy "$RUN/migrated.yaml" >"$RUN/greenboot-migrated.yaml" ||
  fail "migrate's policy no longer has the gate: and boot.grubenv lines the harness adds its keys to: $(cat "$RUN/migrated.yaml")"
! grep -qF "$HOST_TREE" "$RUN/greenboot-migrated.yaml" || fail "the slots' policy still names the host tree"
log "the slots' policy: migrate's, with the harness's keys: $(grep -v '^ *#' "$RUN/greenboot-migrated.yaml" | paste -sd' ' -)"

for slot in A B; do
  slot_tree "$slot" "$HOST_TREE"
  slot_policy "$slot" "$RUN/greenboot-migrated.yaml" "$HOST_TREE"
done
slot_file B /etc/site/service.conf "ready=no"
grub_init boot_counter=1 boot_success=1
expect_grub_env "boot_counter=1 boot_success=1" "as greenboot-grub2-set-counter left it"

# journal_line REGEX: the number of the first relayed bootgate journal line of this
# boot's console matching REGEX (empty when none).
journal_line() { console_text | { grep -anE -- "^journal: .*$1" || true; } | head -1 | cut -d: -f1; }

RED='red hook /etc/greenboot/red.d/50_site_alert.sh: exit 0: site alerted: this boot failed its health checks'
GREEN='green hook /usr/lib/greenboot/green.d/50_vendor_report.sh: exit 0: vendor told: this boot passed its health checks'
STANDIN='vmtests rollback stand-in ran: argv=rollback'

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
  red=$(journal_line "$RED")
  rebooting=$(journal_line 'gate failed \(failing: 20_site_service.sh\); rebooting in ')
  [ -n "$red" ] || fail "boot $BOOTS: bootgate's log does not show the red hook's output"
  [ -n "$rebooting" ] || fail "boot $BOOTS: bootgate's log does not say it reboots"
  ((red < rebooting)) || fail "boot $BOOTS: the red hook ran after bootgate decided to reboot (lines $red, $rebooting)"
  ! console_has "$GREEN" || fail "boot $BOOTS: the green hook ran on a failed boot"
  ! console_has "$STANDIN" || fail "boot $BOOTS: the rollback ran on a boot that is no fallback"
  log "boot $BOOTS: the red hook ran before the reboot"
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
expect_check 40_disabled_probe.sh pass
grep -qF 'disabled by /etc/greenboot/greenboot.conf (DISABLED_HEALTHCHECKS)' <<<"$CHECK_LINE" ||
  fail "boot $BOOTS: the disabled check does not say greenboot.conf turned it off: $CHECK_LINE"
[ "$(field "$CHECK_LINE" critical)" = false ] || fail "boot $BOOTS: the disabled check is still critical: $CHECK_LINE"
! console_has '40_disabled_probe.sh ran although' || fail "boot $BOOTS: the disabled check ran"
expect_console 'marked this boot good: boot_success=1, boot_counter unset, in /boot/EFI/BOOT/grubenv \(/boot remounted read-write for the write, then read-only\)' \
  "bootgate writes the block although /boot is read-only"
expect_console "fallback made permanent by .*: $STANDIN" "bootgate runs boot.fallback_command on GRUB's fallback boot"
expect_console "$GREEN" "the green hook runs after the passed gate"
wait_line '^boot-mount ' "$STEP_TIMEOUT" || fail "boot $BOOTS: the guest never said how /boot is mounted"
mount_line=$(guest_line '^boot-mount ')
[[ ,$(field "$mount_line" options), == *,ro,* ]] || fail "boot $BOOTS: /boot is not read-only again after the mark: $mount_line"
# The motd is rewritten once the fallback is made permanent (after READY=1): wait
# for that version; the guest says each version it sees.
wait_line '^motd 2 .*fallback made permanent' "$STEP_TIMEOUT" ||
  fail "boot $BOOTS: bootgate's motd never said the fallback was made permanent: $(guest_line '^motd (1|missing) ') / $(guest_line '^motd 2 ')"
motd1=$(guest_line '^motd 1 ')
motd2=$(guest_line '^motd 2 ')
log "boot $BOOTS: motd: $motd1 / $motd2"
grep -qE '^motd 1 bootgate: boot healthy — all 5 checks passed \(gate [^,]*, marked good\)$' <<<"$motd1" ||
  fail "boot $BOOTS: bootgate's motd does not say the boot passed and was marked good: $motd1"
grep -qF "fell back from USR-B" <<<"$motd2" ||
  fail "boot $BOOTS: bootgate's motd does not say this boot fell back from USR-B: $motd2"
grep -qF "fallback made permanent by \`$ROLLBACK rollback\`" <<<"$motd2" ||
  fail "boot $BOOTS: bootgate's motd does not name the rollback that made the fallback permanent: $motd2"
# The health document shows the rollback last, once every file records it.
wait_health '.boot.permanent != null' "$STEP_TIMEOUT"
expect_health 200 healthy '.boot.backend == "grubenv"' '.boot.grubenv == "/boot/EFI/BOOT/grubenv"' \
  '.boot.permanent.done == true' \
  ".boot.permanent.command == \"$ROLLBACK rollback\"" \
  ".boot.permanent.note == \"$STANDIN\"" \
  '.components | any(.name == "40_disabled_probe.sh" and .result == "pass" and .critical == false and .observed.disabled == true)'
expect_fallback B gate_failed 20_site_service.sh
vm_poweroff
ran=$(console_text | grep -acF "$STANDIN" || true)
[ "$ran" = 1 ] || fail "boot $BOOTS: the rollback stand-in ran $ran times, expected once"
! console_has "$RED" || fail "boot $BOOTS: the red hook ran on a passed boot"

expect_grub_env "boot_success=1" "A passed: boot_counter unset, boot_success=1, through the read-only /boot"
expect_history failed failed passed
pass "USR-B's greenboot check failed twice (red hook each time), GRUB fell back to USR-A, A passed, was marked through a read-only /boot and kept by the rollback once, the green hook ran, and its motd and fallback report say so"
