#!/usr/bin/env bash
# No TPM: a TPM-critical policy (kind tpm, default absent: fail) on a guest
# without a TPM device. The gate fails with a STATUS naming the TPM check; the
# booted USR-A is already confirmed, so bootgate stays down instead of
# rebooting, and nothing is marked. `journalctl -x` explains the verdict's entry
# from the shipped journal catalog.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario no-tpm

slot_policy A tpm.yaml
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T0 -P0

boot
expect_boot_slot A
expect_booted_tpm none
wait_verdict
expect_gate failed
expect_report tpm
expect_journal tpm 'boot gate failed.*failing: tpm'
expect_catalog
expect_verdict unhealthy tpm
expect_check tpm fail
grep -qi tpm <<<"$(field "$CHECK_LINE" message)" || fail "the tpm check's message does not mention the TPM: $CHECK_LINE"
wait_settled
expect_status 'tpm'
expect_unit_failed 2
expect_stays_up 10
expect_not_marked
vm_poweroff

expect_gpt A "priority=1 tries=0 successful=1" "the confirmed slot is left as it was"
pass "no TPM device: gate failed on tpm (STATUS: $STATUS_TEXT), no reboot, nothing marked"
