#!/usr/bin/env bash
# Crash falls back: the updated USR-B crashes before bootgate runs (its init
# exits, the kernel panics and reboots), so it never reaches a verdict and
# nothing marks it. gptprio falls back to USR-A (B spent its one try), and
# USR-A reports the fallback from USR-B with reason no_verdict: the GPT shows
# B tried and unconfirmed, and the shared history has no verdict of it.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario crash-falls-back

slot_crash B
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T1 -P2

boot
expect_boot_slot B "the update"
vm_wait_exit "$BOOT_TIMEOUT" || fail "boot $BOOTS (USR-B): the crashing slot did not end by itself within ${BOOT_TIMEOUT}s"
tr -d '\r' <"$LOG" | grep -a 'Attempted to kill init' >/dev/null || fail "boot $BOOTS: USR-B ended, but not by the init crash"
[ -z "$(guest_line '^(verdict|booted) ')" ] || fail "boot $BOOTS: USR-B got as far as userspace"
log "boot $BOOTS: USR-B crashed before any service ran (kernel panic, reboot)"
expect_gpt B "priority=2 tries=0 successful=0" "the crashed slot spent its one try and was never marked"

boot
expect_boot_slot A "the fallback after the crashed USR-B"
wait_verdict
expect_gate passed
expect_health 200 healthy
expect_fallback B no_verdict
vm_poweroff
pass "USR-B crashed before its gate, the harness fell back, USR-A reports the fallback (no_verdict)"
