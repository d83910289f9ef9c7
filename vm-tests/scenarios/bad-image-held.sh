#!/usr/bin/env bash
# A version that fails on its own is held (rollback.hold_after: 2): the update
# USR-B (version 1.1) breaks the device API (its image has the API's socket
# masked); USR-A (1.0) has it. B fails its gate and bootgate falls back to A,
# whose second verdict blames the image (the API passes there). A's
# update-engine marks A and installs 1.1 again (the stand-in's postinst: B one
# try, above A). B fails again; A blames the image a second time and holds
# updates: /run/bootgate/hold-updates exists before READY=1, so update-engine
# does not start (its drop-in's condition) and B stays spent. `bootgate
# release` lifts the hold, and update-engine then runs and installs B again.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
scenario bad-image-held

update_of held.yaml
slot_symlink B /etc/systemd/system/vmtests-api.socket /dev/null "mask vmtests-api.socket" rm
slot_file A /etc/vm-tests/reinstall 2
gpt_set A -S1 -T0 -P1
gpt_set B -S0 -T1 -P2

for round in 1 2; do
  boot
  expect_boot_slot B "the update, try $round"
  wait_verdict
  expect_gate failed
  expect_verdict unhealthy api
  expect_reboot
  expect_not_marked
  expect_gpt B "priority=2 tries=0 successful=0" "the update spent its try"

  boot
  expect_boot_slot A "the fallback after the update's failure $round"
  wait_verdict
  expect_gate passed
  wait_health '.boot.fallback.blame != null' "$STEP_TIMEOUT"
  expect_fallback B gate_failed api image
  if [ "$round" = 1 ]; then
    expect_health 200 healthy '.boot.hold == null'
    expect_metric '!bootgate_update_held\{.*' "one image-blamed failure holds nothing yet"
    wait_marked
    wait_line '^installed ' "$STEP_TIMEOUT" || fail "boot $BOOTS: update-engine never installed the update again"
    log "boot $BOOTS: $(guest_line '^installed ')"
    vm_poweroff
    expect_gpt B "priority=2 tries=1 successful=0" "update-engine installed 1.1 again"
  fi
done

# The second image-blamed failure of 1.1: updates are held.
expect_health 200 healthy '.boot.hold.version == "1.1"' '.boot.hold.failures == 2' '.boot.hold.until | length > 0'
expect_metric 'bootgate_update_held\{version="1.1"\} 1' "1.1 failed on its own twice"
guest_ctl update-engine-state
ue=$(guest_line '^update-engine active=')
[ "$(field "$ue" active)" = inactive ] && [ "$(field "$ue" condition)" = no ] && [ "$(field "$ue" checked)" = yes ] ||
  fail "boot $BOOTS: update-engine.service should not have started (its condition failed): $ue"
log "boot $BOOTS: $ue"
expect_not_marked
expect_console 'updates held until .*version 1\.1 failed 2 time' "bootgate says it holds updates"

# An operator lifts the hold; update-engine then runs.
guest_ctl release
released=$(guest_line '^released ')
[ "$(field "$released" rc)" = 0 ] && [ "$(field "$released" hold-file)" = absent ] ||
  fail "boot $BOOTS: bootgate release did not lift the hold: $released; it said: $(guest_line '^release: ')"
log "boot $BOOTS: bootgate release: $(guest_line '^release: ')"
guest_ctl start-update-engine
wait_marked
wait_line '^installed ' "$STEP_TIMEOUT" || fail "boot $BOOTS: update-engine never installed the update again after the release"
vm_poweroff

expect_gpt B "priority=2 tries=1 successful=0" "after the release update-engine installed 1.1 again"
expect_gpt A "priority=1 tries=0 successful=1" "the fallback slot stays good"
[ -n "$(state_file /lib/bootgate/released.json)" ] || fail "bootgate release recorded nothing in released.json"
log "released.json: $(state_file /lib/bootgate/released.json | jq -c .)"
expect_history failed passed failed passed
expect_history_line 3 '.fallback.blame == "image" and .fallback.from_version == "1.1"' "the first fallback blamed the image"
expect_history_line 1 '.fallback.blame == "image" and .fallback.from_version == "1.1"' "the second fallback blamed the image"
pass "1.1 failed on its own twice: updates held, update-engine not started, bootgate release lifted the hold"
