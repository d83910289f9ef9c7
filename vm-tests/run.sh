#!/usr/bin/env bash
# The QEMU A/B image test: boots a real systemd guest from a GPT disk with
# two Flatcar USR slots and asserts bootgate's gate, the marking and the
# rollback from outside (the disk image) and inside (the health endpoint).
#
#   vm-tests/run.sh [SCENARIO...]     (default: all, in the order below)
#
# One VM at a time (TCG takes a core per VM). Each scenario prints PASS or
# FAIL with its reason and timings; the last line is "N passed, N failed" and
# the exit code is non-zero on any failure. Serial logs of failed scenarios
# stay in target/vm-tests/failed/SCENARIO/. The guest root file system and the
# disk image are cached in target/vm-tests/cache/ (see lib.sh).
set -euo pipefail

dir=$(cd "$(dirname "$0")" && pwd)
all=(healthy-update degraded bad-update-rolls-back crash-falls-back no-tpm no-fallback masked-gate-is-off late-failure-reverts soak-flap-fails grubenv-healthy grubenv-bad-falls-back rauc-healthy rauc-bad-falls-back bless-boot-healthy bless-boot-bad-falls-back)
scenarios=("${@:-${all[@]}}")
for s in "${scenarios[@]}"; do
  [ -f "$dir/scenarios/$s.sh" ] || { echo "vm-tests: no scenario '$s' (have: ${all[*]})" >&2; exit 64; }
done

passed=0
failed=0
t0=$SECONDS
summary() {
  local rc=$?
  ((passed + failed == ${#scenarios[@]})) || failed=$((${#scenarios[@]} - passed))
  echo "vm-tests: ${#scenarios[@]} scenarios in $((SECONDS - t0))s"
  echo "$passed passed, $failed failed"
  ((failed == 0)) && exit "$rc" || exit 1
}
trap summary EXIT

. "$dir/lib.sh"

missing=()
for tool in qemu-system-x86_64 mmdebstrap cgpt sgdisk mkfs.ext4 debugfs swtpm objcopy curl jq ss flock grub-editenv \
  mkfs.vfat mmd mcopy mdir mtype; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -f "$OVMF_CODE" ] && [ -f "$OVMF_VARS" ] || missing+=("$OVMF_CODE and $OVMF_VARS (ovmf)")
[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (make deps installs them)"
[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap, chroot and ownership in the guest image)"

mkdir -p "$OUT"
exec {runlock}>"$OUT/run.lock"
flock -n "$runlock" || die "another vm-tests run is in progress (one VM at a time)"
rm -rf "$OUT/failed" "$OUT/kept" "$OUT/runs"

echo "vm-tests: image"
image_ready
for s in "${scenarios[@]}"; do
  if bash "$dir/scenarios/$s.sh"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done
