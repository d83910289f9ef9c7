#!/usr/bin/env bash
# The QEMU A/B image test: boots a real systemd guest from a GPT disk with
# two Flatcar USR slots and asserts bootgate's gate, the marking and the
# rollback from outside (the disk image) and inside (the health endpoint).
#
#   vm-tests/run.sh [SCENARIO...]     (default: all, in the order below)
#   VMTEST_CONTEND=2 vm-tests/run.sh   (the same with two CPU-bound busy loops
#                                       beside it: both cores of a 2-core host taken)
#   VMTEST_JOBS=N vm-tests/run.sh      (N scenarios at once; default 2)
#
# Two VMs at a time by default: TCG keeps a core busy only while a guest boots,
# and a scenario spends much of its time waiting on the guest's own timers
# (reboot delays, soaks, rollback windows), so a second VM uses what the first
# leaves idle. Each scenario's output is printed whole when it ends, in the
# order they end. Each scenario prints PASS or
# FAIL with its reason and timings; the last line is "N passed, N failed" and
# the exit code is non-zero on any failure. Serial logs of failed scenarios
# stay in target/vm-tests/failed/SCENARIO/. The guest root file system and the
# disk image are cached in target/vm-tests/cache/ (see lib.sh).
set -euo pipefail

dir=$(cd "$(dirname "$0")" && pwd)
all=(healthy-update degraded bad-update-rolls-back crash-falls-back no-tpm no-fallback masked-gate-is-off late-failure-reverts soak-flap-fails grubenv-healthy grubenv-bad-falls-back grubenv-late-failure-reverts rauc-healthy rauc-bad-falls-back rauc-late-failure-reverts greenboot-migrated bless-boot-healthy bless-boot-bad-falls-back bless-boot-late-failure-reverts ebg-healthy ebg-bad-falls-back uboot-healthy uboot-bad-falls-back outage-keeps-update preexisting-failure-accepted bad-image-held)
scenarios=("${@:-${all[@]}}")
for s in "${scenarios[@]}"; do
  [ -f "$dir/scenarios/$s.sh" ] || { echo "vm-tests: no scenario '$s' (have: ${all[*]})" >&2; exit 64; }
done

contend=${VMTEST_CONTEND:-0}
[[ $contend =~ ^[0-9]+$ ]] || { echo "vm-tests: VMTEST_CONTEND is a number of busy loops, not '$contend'" >&2; exit 64; }
jobs=${VMTEST_JOBS:-2}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "vm-tests: VMTEST_JOBS is a number of scenarios at once, not '$jobs'" >&2; exit 64; }

passed=0
failed=0
t0=$SECONDS
busy_pgid=
# The running scenarios: pid → name.
declare -A running=()
summary() {
  local rc=$?
  stop_busy
  ((passed + failed == ${#scenarios[@]})) || failed=$((${#scenarios[@]} - passed))
  echo "vm-tests: ${#scenarios[@]} scenarios in $((SECONDS - t0))s, $jobs at a time${contend_note:-}"
  echo "$passed passed, $failed failed"
  ((failed == 0)) && exit "$rc" || exit 1
}
trap summary EXIT
# A signal stops the running scenario (its own traps stop QEMU and swtpm), then
# the run, whose EXIT trap stops the busy loops.
on_signal() {
  local pid
  for pid in "${!running[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${!running[@]}"; do
    wait "$pid" 2>/dev/null || true
    show "${running[$pid]}"
  done
  exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

# The busy loops of VMTEST_CONTEND: a session and process group of their own
# (setsid in a process that leads no group keeps its pid, which becomes the
# group's id), killed by that id on every way out of the run. Each loop also
# ends by itself once this run's process is gone, should it be killed outright.
start_busy() {
  # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
  setsid sh -c 'i=0
    while [ "$i" -lt "$1" ]; do
      (while [ -e "/proc/$2" ]; do :; done) &
      i=$((i + 1))
    done
    wait' vm-tests-busy "$contend" "$$" &
  busy_pgid=$!
  # Its group id, from /proc (field 5 after the command name in parentheses),
  # once setsid has run: before that the child is still in this run's group.
  local pgid='' end=$((SECONDS + 30))
  while ((SECONDS < end)); do
    pgid=$(sed 's/.*) //' "/proc/$busy_pgid/stat" 2>/dev/null | cut -d' ' -f3) || pgid=
    [ "$pgid" != "$busy_pgid" ] || break
    sleep 0.05
  done
  if [ "$pgid" != "$busy_pgid" ]; then
    kill "$busy_pgid" 2>/dev/null || true
    busy_pgid=
    echo "vm-tests: the busy loops did not get a process group of their own" >&2
    exit 1
  fi
  contend_note=", contended by $contend busy loops"
  echo "vm-tests: contending: $contend CPU-bound busy loops beside the run, process group $busy_pgid (killed when the run ends)"
}
stop_busy() {
  [ -n "$busy_pgid" ] || return 0
  kill -- "-$busy_pgid" 2>/dev/null || true
  echo "vm-tests: stopped the busy loops (process group $busy_pgid)"
  busy_pgid=
}

. "$dir/lib.sh"

missing=()
for tool in qemu-system-x86_64 mmdebstrap cgpt sgdisk mkfs.ext4 debugfs swtpm objcopy curl jq ss flock grub-editenv \
  mkfs.vfat mmd mcopy mdir mtype grub-mkstandalone fw_printenv fw_setenv mkenvimage; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -f "$OVMF_CODE" ] && [ -f "$OVMF_VARS" ] || missing+=("$OVMF_CODE and $OVMF_VARS (ovmf)")
[ -f "$GRUB_EFI_DIR/linux.mod" ] || missing+=("GRUB's EFI modules in $GRUB_EFI_DIR (grub-efi-amd64-bin)")
[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (make deps installs them)"
[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap, chroot and ownership in the guest image)"

mkdir -p "$OUT"
exec {runlock}>"$OUT/run.lock"
flock -n "$runlock" || die "another vm-tests run is in progress (one run at a time)"
rm -rf "$OUT/failed" "$OUT/kept" "$OUT/runs"

((contend == 0)) || start_busy
echo "vm-tests: image"
image_ready
# show NAME: a finished scenario's output, whole.
show() {
  [ ! -f "$OUT/runs/$1.out" ] || cat "$OUT/runs/$1.out"
}
# reap: waits for one running scenario to end and counts it.
reap() {
  local pid rc=0
  wait -n -p pid "${!running[@]}" || rc=$?
  show "${running[$pid]}"
  if ((rc == 0)); then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  unset "running[$pid]"
}
mkdir -p "$OUT/runs"
for s in "${scenarios[@]}"; do
  while ((${#running[@]} >= jobs)); do reap; done
  # In the background and waited for, so that a signal reaches on_signal at once;
  # its output goes to a file of its own, shown whole when it ends.
  bash "$dir/scenarios/$s.sh" >"$OUT/runs/$s.out" 2>&1 &
  running[$!]=$s
done
while ((${#running[@]} > 0)); do reap; done
