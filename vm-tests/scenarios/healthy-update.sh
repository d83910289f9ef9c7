#!/usr/bin/env bash
# Healthy update: USR-B was just written by an update (successful=0, one try,
# priority above USR-A). It boots with a software TPM, passes a TPM-critical
# gate and its 5s soak, update-engine marks it, health says healthy.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario healthy-update

slot_policy B tpm.yaml
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T1 -P2
with_tpm

boot
expect_boot_slot B "the update"
wait_verdict
expect_gate passed
[ -n "$(guest_line '^bootgate .*status="soaking: ')" ] || fail "boot $BOOTS: STATUS never said the gate was soaking"
expect_journal '' 'boot gate passed'
expect_check tpm pass
wait_marked
# update_engine marked the slot after bootgate read the table: the page and the
# health document follow within bootgate's 10 s re-read.
wait_health '.boot.successful == true' 30
expect_health 200 healthy
expect_service bootgate.service 200 '.success == true' '.data.healthy == true' '.data.active_state == "active"' \
  '.data.load_state == "loaded"' '.data.main_pid > 1' '.data.name == "bootgate.service"'
expect_service no-such-unit.service 404 '.status == 404' '.name == "no-such-unit.service"'
log_boot_chain
vm_poweroff

expect_gpt B "priority=2 tries=0 successful=1" "the updated slot is marked good"
expect_gpt A "priority=1 tries=0 successful=1" "the old slot is untouched"
pass "USR-B booted with a TPM, gate passed, USR-B marked successful"
