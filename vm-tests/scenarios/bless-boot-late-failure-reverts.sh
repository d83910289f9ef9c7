#!/usr/bin/env bash
# bless-boot late failure reverts: systemd-boot counts the new entry
# (bootgate-2+3.conf, USR-B) down to +2-1 and boots it; B passes its gate,
# boot-complete.target is reached and systemd's own systemd-bless-boot renames
# the entry bootgate-2.conf. The host sees B healthy and armed, then B's device
# API dies (the host says when, through the control port). Inside the policy's
# rollback window (3m, failing_for 6s) bootgate reverts the update: it renames
# the blessed entry bootgate-2+0-1.conf, as `systemd-bless-boot bad` names it,
# records `decision: reverted` and reboots; systemd-boot sorts the bad entry
# last and boots bootgate-1.conf (USR-A), which reports the fallback with
# reason reverted naming api.
# Real: OVMF, systemd-boot, systemd-bless-boot and bootgate; the harness only
# writes the entries before the first boot and reads the ESP back while the
# guest is down.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario bless-boot-late-failure-reverts

slot_policy B bless-boot-late.yaml
slot_policy A bless-boot.yaml
slot_api_dies B host
bless_init bootgate-2+3.conf=B bootgate-1.conf=A
expect_entries bootgate-1.conf bootgate-2+3.conf "as the updater left them"

boot
expect_uefi_boot B '\loader\entries\bootgate-2+2-1.conf'
wait_verdict
expect_gate passed
wait_blessed
expect_health 200 healthy '.boot.backend == "bless-boot"' '.rollback.armed == true' '.rollback.remaining_seconds > 60'
guest_ctl api-dies
wait_line '^api died ' "$STEP_TIMEOUT" || fail "boot $BOOTS: the device API never died"
expect_reboot
expect_console 'reverted boot entry bootgate-2\.conf after its gate: api \(failing for [0-9]+s.*to fall back to bootgate-1\.conf' \
  "bootgate says what it reverted, why, and what systemd-boot boots next"
rebooted_at=$EPOCHREALTIME
expect_entries bootgate-1.conf bootgate-2+0-1.conf "the blessed entry is renamed bad, as systemd-bless-boot bad names it"

boot
expect_uefi_boot A none bootgate-1.conf
wait_verdict
TIMINGS+=("reboot→USR-A verdict $(secs "$EPOCHREALTIME - $rebooted_at") (host clock)")
expect_gate passed
expect_health 200 healthy '.boot.backend == "bless-boot"' '.boot.entry == "bootgate-1.conf"'
expect_fallback B reverted api
vm_poweroff

expect_entries bootgate-1.conf bootgate-2+0-1.conf "B's entry stays bad"
expect_history passed passed
state_file /lib/bootgate/history.jsonl | tail -2 | sed -n 1p | jq -e '.decision == "reverted" and (.failing | any(.name == "api")) and (.reason | startswith("reverted: api"))' >/dev/null ||
  fail "USR-B's history line does not record the revert: $(state_file /lib/bootgate/history.jsonl | tail -2 | sed -n 1p)"
pass "USR-B passed and was blessed, its API died, bootgate renamed its entry bad, systemd-boot fell back to USR-A, which reports the revert"
