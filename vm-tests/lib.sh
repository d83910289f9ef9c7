# shellcheck shell=bash
# Shared by vm-tests/run.sh and every scenario script (sourced, not run).
#
# The harness builds a GPT disk image with two Flatcar USR-type slots (USR-A,
# USR-B) holding the same Debian guest with bootgate installed, plus a STATE
# partition for /var, and plays the boot loader: before every boot it applies
# GRUB's gptprio.next rules to the image with cgpt, then boots the chosen slot
# with QEMU's -kernel/-initrd and -no-reboot, so a reboot in the guest hands
# control back to it. UEFI boots are the exception: OVMF starts the real boot
# loader from the ESP, systemd-boot (bless_init), which picks the entry and
# counts its tries, or Debian's GRUB running greenboot's counting script
# (grub_init). Guest-side helpers (vm-tests/guest/) report bootgate's
# verdict and STATUS on the serial console as "vmtests: ..." lines.
#
# Environment:
#   BOOTGATE_BIN         binary to install (default target/debug/bootgate, stripped of debug info)
#   VMTEST_MARK_DELAY    seconds the stand-in update-engine waits before marking (default 5)
#   VMTEST_BOOT_TIMEOUT  seconds from QEMU start to bootgate's verdict (default 360)
#   VMTEST_STEP_TIMEOUT  seconds any other single wait on the guest may take (default 180)
#   VMTEST_KEEP          1: keep every scenario's run directory, not only failed ones
#
# Timing: no assertion races the host's or the guest's speed. What the host
# asserts on is either data the guest has already printed (the observer says
# everything bootgate did, even as the guest goes down), the disk image once
# the guest is down, or a live answer the guest keeps giving until the host is
# done (a failed gate's report: the policies that ask for it reboot only after
# 30 s; a device API the host kills through the control port when it is done
# with it). Every wait is a poll that returns as soon as its condition holds,
# bounded far above what it takes: BOOT_TIMEOUT for a whole boot (idle 25-50 s
# to the verdict), STEP_TIMEOUT for one step (a unit starting, a mark, a report,
# a shutdown: idle 1-10 s). Both hold with both host cores taken by something
# else (VMTEST_CONTEND in run.sh), and only a failing scenario ever waits them out.

set -euo pipefail

VMT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$VMT_DIR/.." && pwd)
OUT=$ROOT/target/vm-tests
CACHE=$OUT/cache

# Flatcar's USR partition type and its USR-A/USR-B partition GUIDs.
USR_TYPE=5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6
USR_A_UUID=7130c94a-213a-4e5a-8e26-6cce9662f132
USR_B_UUID=e03dd35c-7c2d-4a47-b3fe-27f15780a57c
STATE_UUID=3884dd41-8582-4404-b9a8-e9b84f2df50e
# The EFI system partition the UEFI boots start from (systemd-boot or GRUB, the
# kernel, the entries or grub.cfg and its environment block); the other boots
# never look at it.
ESP_TYPE=c12a7328-f81f-11d2-ba4b-00a0c93ec93b
ESP_UUID=9d1b7a2e-53c4-4f0e-a6b8-2c7e1f04d935
SLOT_MB=1024
STATE_MB=256
ESP_MB=64
PARTITIONS=4 # 1 USR-A, 2 USR-B, 3 STATE, 4 ESP

# verdict_id: the gate verdict's MESSAGE_ID, read from the source that logs it.
verdict_id() {
  local id
  id=$(sed -n 's/^pub const GATE_VERDICT_ID: &str = "\([0-9a-f]\{32\}\)";$/\1/p' "$ROOT/src/process/logging.rs")
  [ -n "$id" ] || die "no GATE_VERDICT_ID in src/process/logging.rs"
  echo "$id"
}

# catalog_subject ID: the Subject of ID's entry in the shipped journal catalog.
catalog_subject() {
  awk -v id="-- $1" '$0 == id { on = 1; next } /^-- / { on = 0 } on && sub(/^Subject: /, "") { print; exit }' \
    "$ROOT/systemd/bootgate.catalog"
}

# The UEFI firmware: code read-only, each scenario boots with its own copy of the
# variable store (a fresh one: no boot entries, no LoaderEntryDefault).
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
# What OVMF prints on the serial console as it starts the boot loader.
UEFI_LOADER_LINE='BdsDxe: starting Boot'

# The health document's route, asked from the host through QEMU's forwarded
# port (PORT below); every health assertion is enforced.
HEALTH_ROUTE=/api/v1/system/health

MARK_DELAY=${VMTEST_MARK_DELAY:-5}
BOOT_TIMEOUT=${VMTEST_BOOT_TIMEOUT:-360}
STEP_TIMEOUT=${VMTEST_STEP_TIMEOUT:-180}

log() { printf '  %s\n' "$*"; }
die() {
  printf 'vm-tests: %s\n' "$*" >&2
  exit 1
}

# shellcheck source=SCRIPTDIR/image.sh
. "$VMT_DIR/image.sh"
# shellcheck source=SCRIPTDIR/expect.sh
. "$VMT_DIR/expect.sh"

# ---------------------------------------------------------------------------
# Scenario bookkeeping.

SCENARIO=
RUN=
BOOTS=0
VM_PID=
SWTPM_PID=
TPM=0
# Each slot's gate.reboot_delay in seconds (slot_policy), for expect_reboot's bound.
declare -A REBOOT_DELAY
FAILED=0
DONE=0
TIMINGS=()

# scenario NAME: starts a scenario in a fresh run directory.
scenario() {
  SCENARIO=$1
  mkdir -p "$OUT/runs"
  RUN=$(mktemp -d "$OUT/runs/$SCENARIO.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT TERM HUP
  trap 'fail "unexpected error: \`$BASH_COMMAND\` exited $? (line $LINENO)"' ERR
  SCENARIO_T0=$SECONDS
  image_ready
  cp --sparse=always "$VMTEST_DISK" "$RUN/disk.img"
  local delay
  delay=$(policy_reboot_delay "$VMT_DIR/policies/base.yaml")
  REBOOT_DELAY=([A]=$delay [B]=$delay)
}

# policy_reboot_delay FILE: the policy's gate.reboot_delay in whole seconds
# (written as Ns or Nm in the harness's policies).
policy_reboot_delay() {
  local d
  d=$(sed -n 's/^ *reboot_delay: *\([0-9][0-9]*[sm]\)\b.*/\1/p' "$1" | head -1)
  case $d in
    *s) echo "${d%s}" ;;
    *m) echo $((${d%m} * 60)) ;;
    *) fail "$(basename "$1") has no gate.reboot_delay in seconds or minutes the harness can read" ;;
  esac
}

cleanup() {
  local rc=$?
  if [ "$DONE" = 0 ] && [ -n "$SCENARIO" ]; then
    printf 'FAIL %s: the harness stopped with exit code %s (see the messages above)\n' "$SCENARIO" "$rc"
    [ "$rc" != 0 ] || rc=1
  fi
  vm_kill
  tpm_stop
  if [ -n "$RUN" ] && [ -d "$RUN" ]; then
    [ ! -f "$RUN/disk.img" ] || cgpt show "$RUN/disk.img" >"$RUN/gpt.txt" 2>&1 || true
    [ ! -f "$RUN/disk.img" ] || [ "${LOADER:-}" != grubenv ] || grub_env >"$RUN/grubenv.txt" 2>&1 || true
    rm -f "$RUN/disk.img" "$RUN"/mon-*
    if [ "$FAILED" = 1 ] || [ "$DONE" = 0 ] || [ "${VMTEST_KEEP:-0}" = 1 ]; then
      local keep=$OUT/failed/$SCENARIO
      [ "$FAILED" = 1 ] || [ "$DONE" = 0 ] || keep=$OUT/kept/$SCENARIO
      rm -rf "$keep"
      mkdir -p "$(dirname "$keep")"
      mv "$RUN" "$keep"
      [ "$DONE" = 1 ] && [ "$FAILED" = 0 ] || printf '    logs: %s\n' "${keep#"$ROOT"/}"
    else
      rm -rf "$RUN"
    fi
  fi
  exit "$rc"
}

timings() { [ ${#TIMINGS[@]} -eq 0 ] || printf ' [%s]' "$(IFS=';'; echo "${TIMINGS[*]}")"; }

fail() {
  trap - ERR
  FAILED=1
  DONE=1
  printf 'FAIL %s: %s (%ss)%s\n' "$SCENARIO" "$*" $((SECONDS - SCENARIO_T0)) "$(timings)"
  # What the guest said, for a first look without opening the logs.
  if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then
    tr -d '\r' <"$LOG" | grep -E '^vmtests: (verdict|settled|bootgate|marked|check .* result=(fail|skipped|pending))' |
      tail -10 | sed 's/^/    /'
  fi
  exit 1
}

pass() {
  trap - ERR
  DONE=1
  printf 'PASS %s: %s (%ss)%s\n' "$SCENARIO" "$*" $((SECONDS - SCENARIO_T0)) "$(timings)"
  exit 0
}

# ---------------------------------------------------------------------------
# GPT attributes, on the scenario's own copy of the disk.

slot_index() {
  case $1 in A | 1) echo 1 ;; B | 2) echo 2 ;; *) die "unknown slot $1" ;; esac
}

# gpt_set SLOT CGPT_FLAGS...: e.g. gpt_set B -S0 -T1 -P2
gpt_set() {
  local i
  i=$(slot_index "$1")
  shift
  cgpt add -i "$i" "$@" "$RUN/disk.img"
}

# gpt_attrs SLOT: "priority=P tries=T successful=S"
gpt_attrs() {
  local i d=$RUN/disk.img
  i=$(slot_index "$1")
  echo "priority=$(cgpt show -i "$i" -P "$d") tries=$(cgpt show -i "$i" -T "$d") successful=$(cgpt show -i "$i" -S "$d")"
}

# gptprio_next: GRUB's gptprio.next over the disk image. Prints the chosen
# slot (A or B) after taking one try from it; prints nothing when no slot is
# bootable. Among USR-type partitions with tries > 0 or successful, the
# strictly highest priority above 0 wins, the lower index on a tie.
gptprio_next() {
  local d=$RUN/disk.img i best=0 best_prio=0 type prio tries ok
  for ((i = 1; i <= PARTITIONS; i++)); do
    type=$(cgpt show -i "$i" -t "$d")
    [ "${type,,}" = "$USR_TYPE" ] || continue
    prio=$(cgpt show -i "$i" -P "$d")
    tries=$(cgpt show -i "$i" -T "$d")
    ok=$(cgpt show -i "$i" -S "$d")
    if { [ "$tries" -gt 0 ] || [ "$ok" = 1 ]; } && [ "$prio" -gt "$best_prio" ]; then
      best=$i best_prio=$prio
    fi
  done
  [ "$best" -gt 0 ] || return 0
  tries=$(cgpt show -i "$best" -T "$d")
  [ "$tries" -eq 0 ] || cgpt add -i "$best" -T $((tries - 1)) "$d"
  [ "$best" = 1 ] && echo A || echo B
}

# GRUB with greenboot's script (the grubenv scenarios): Debian's own GRUB EFI
# image under OVMF runs greenboot's counting (vm-tests/grub/grub.cfg) and picks
# the entry; the harness only writes the ESP before the first boot and reads the
# environment block back while the guest is down. The block is on the ESP beside
# GRUB's configuration, where GRUB reads and writes it and where both slots'
# policies point boot.grubenv (the guest mounts the ESP on /efi).
GRUBENV=EFI/BOOT/grubenv
# The modules built into the GRUB image: every command grub.cfg and
# embedded.cfg use, since the image has no prefix to load more from.
GRUB_MODULES="part_gpt fat loadenv echo test halt normal search search_fs_file configfile linux"
# Where grub-mkstandalone finds them (Debian's grub-efi-amd64-bin, on the host).
GRUB_EFI_DIR=/usr/lib/grub/x86_64-efi

# grub_init KEY=VALUE...: later boots go through OVMF and GRUB, with a fresh
# environment block holding these variables (as an updater and a previous
# healthy boot leave it). The GRUB image (grub-mkstandalone, a fraction of a
# second) replaces systemd-boot as the ESP's removable-media loader.
grub_init() {
  local img env=$RUN/grubenv
  img=$(esp_image)
  grub-mkstandalone -O x86_64-efi -d "$GRUB_EFI_DIR" -o "$RUN/grubx64.efi" --install-modules="$GRUB_MODULES" --modules="$GRUB_MODULES" \
    --locales= --fonts= --themes= "boot/grub/grub.cfg=$VMT_DIR/grub/embedded.cfg" >"$RUN/grub-mkstandalone.out" 2>&1 ||
    fail "grub-mkstandalone failed: $(tail -3 "$RUN/grub-mkstandalone.out")"
  sed -e "s|@CMDLINE_A@|$(kernel_cmdline A)|" -e "s|@CMDLINE_B@|$(kernel_cmdline B)|" "$VMT_DIR/grub/grub.cfg" >"$RUN/grub.cfg"
  rm -f "$env"
  grub-editenv "$env" create
  grub-editenv "$env" set "$@"
  if ! mcopy -o -i "$img" "$RUN/grubx64.efi" ::/EFI/BOOT/BOOTX64.EFI ||
    ! mcopy -o -i "$img" "$RUN/grub.cfg" ::/EFI/BOOT/grub.cfg || ! mcopy -o -i "$img" "$env" "::/$GRUBENV"; then
    fail "could not write GRUB, its configuration and its environment block on the ESP"
  fi
  cp "$OVMF_VARS" "$RUN/ovmf-vars.fd"
  LOADER=grubenv
}

# grub_env: `grub-editenv list` of the block on the ESP, read while the guest is
# down (the guest's page cache may hold writes a running guest has not flushed).
grub_env() {
  rm -f "$RUN/grubenv.now"
  mcopy -i "$(esp_image)" "::/$GRUBENV" "$RUN/grubenv.now" 2>/dev/null && grub-editenv "$RUN/grubenv.now" list
}

# expect_grub_env VARS WHY: the block on the ESP holds exactly VARS (space-separated
# name=value, in the block's order), e.g. "boot_counter=1 boot_success=0".
expect_grub_env() {
  local got
  ! vm_alive || fail "boot $BOOTS: the harness reads the ESP only while the guest is down"
  got=$(grub_env | paste -sd' ' -) || true
  [ "$got" = "$1" ] || fail "the GRUB environment block on the ESP is '$got', expected '$1' ($2)"
  log "GRUB environment on the ESP: $got"
}

# The rauc scenarios' boot loader: the state RAUC's custom backend in the guest
# (guest/rauc-bootloader) keeps on the STATE partition, one word a file:
# primary (A or B), state.A and state.B (good or bad), and calls, its call log.
RAUC_DIR=/lib/vm-tests/rauc

# rauc_init PRIMARY STATE_A STATE_B: the boot loader's state as an update left
# it (e.g. B good good after RAUC installed B), and later boots pick their slot
# with it.
rauc_init() {
  local name value
  for name in primary state.A state.B; do
    case $name in primary) value=$1 ;; state.A) value=$2 ;; state.B) value=$3 ;; esac
    echo "$value" >"$RUN/rauc-$name"
    state_write "$RAUC_DIR/$name" "$RUN/rauc-$name"
  done
  LOADER=rauc
}

# rauc_states: "primary=P A=STATE B=STATE" from the STATE partition.
rauc_states() {
  echo "primary=$(state_file "$RAUC_DIR/primary") A=$(state_file "$RAUC_DIR/state.A") B=$(state_file "$RAUC_DIR/state.B")"
}

# rauc_calls: the custom backend's call log, one call a line ("set-state B good").
rauc_calls() { state_file "$RAUC_DIR/calls"; }

# rauc_next: plays the boot loader over the backend's state: the primary if it
# is good, else the other slot if that is good; prints nothing when neither is.
# Nothing is counted down: a slot stays good until RAUC marks it bad.
rauc_next() {
  local primary other
  primary=$(state_file "$RAUC_DIR/primary")
  case $primary in A) other=B ;; B) other=A ;; *) return 0 ;; esac
  if [ "$(state_file "$RAUC_DIR/state.$primary")" = good ]; then
    echo "$primary"
  elif [ "$(state_file "$RAUC_DIR/state.$other")" = good ]; then
    echo "$other"
  fi
}

# U-Boot's bootcount (the uboot scenarios). u-boot-qemu on x86 has no saved
# environment and no bootcount command, so the harness plays U-Boot: a redundant
# environment (two copies, as mkenvimage -r makes them) lives at raw offsets of
# the disk, in the gap between the GPT and the first partition, where many boards
# keep theirs; the guest's /etc/fw_env.config names it on /dev/vda, and the host
# reads and writes the same bytes of the disk image with the real fw_printenv and
# fw_setenv (libubootenv). Before each boot, uboot_next does what U-Boot's
# CONFIG_BOOTCOUNT_LIMIT with CONFIG_BOOTCOUNT_ENV does, then boots boot_slot.
UBOOT_ENV_OFFSETS=(0x80000 0x84000)
UBOOT_ENV_SIZE=0x4000
# What the environment's altbootcmd says, as a board's U-Boot would run it; the
# harness plays exactly this (uboot_next).
UBOOT_ALTBOOTCMD='if test ${boot_slot} = A; then setenv boot_slot B; else setenv boot_slot A; fi; setenv upgrade_available 0; setenv bootcount 0; saveenv; run bootcmd'

# uboot_init NAME=VALUE...: later boots go through the harness's U-Boot, with a
# fresh environment holding these variables (plus bootcmd and altbootcmd), and
# both slots get the fw_env.config that names it.
uboot_init() {
  local off guest=''
  printf '%s\n' "bootcmd=boot \${boot_slot}" "altbootcmd=$UBOOT_ALTBOOTCMD" "$@" >"$RUN/uboot-env.txt"
  mkenvimage -r -s "$UBOOT_ENV_SIZE" -o "$RUN/uboot-env.bin" "$RUN/uboot-env.txt" || fail "mkenvimage failed"
  : >"$RUN/fw_env.config"
  for off in "${UBOOT_ENV_OFFSETS[@]}"; do
    dd if="$RUN/uboot-env.bin" of="$RUN/disk.img" bs=512 seek=$((off / 512)) conv=notrunc status=none
    echo "$RUN/disk.img $off $UBOOT_ENV_SIZE" >>"$RUN/fw_env.config"
    guest+="/dev/vda $off $UBOOT_ENV_SIZE"$'\n'
  done
  slot_file A /etc/fw_env.config "${guest%$'\n'}"
  slot_file B /etc/fw_env.config "${guest%$'\n'}"
  LOADER=uboot
}

# uboot_var NAME: a variable of the environment on the disk image, empty when unset.
uboot_var() { fw_printenv -c "$RUN/fw_env.config" -n "$1" 2>>"$RUN/uboot.err"; }

# uboot_set NAME=VALUE...: U-Boot's saveenv of these variables, in one write.
uboot_set() {
  printf '%s\n' "$@" >"$RUN/uboot-set.txt"
  fw_setenv -c "$RUN/fw_env.config" -s "$RUN/uboot-set.txt" 2>>"$RUN/uboot.err"
}

# uboot_ulong VALUE: U-Boot's env_get_ulong(…, 10, 0): the leading digits, else 0.
uboot_ulong() {
  local n=${1%%[!0-9]*}
  echo $((10#${n:-0}))
}

# uboot_next: one boot of U-Boot over the environment, played: with
# upgrade_available set it counts bootcount up and saves it; when bootlimit is
# set and the count exceeds it, it runs altbootcmd (UBOOT_ALTBOOTCMD: the other
# slot, upgrade_available=0, bootcount=0, saveenv), else bootcmd. Prints the slot
# it boots; says what it did in $RUN/uboot-said.
uboot_next() {
  local testing count limit slot cmd=bootcmd
  testing=$(uboot_ulong "$(uboot_var upgrade_available)") || return 1
  count=$(uboot_ulong "$(uboot_var bootcount)") || return 1
  limit=$(uboot_ulong "$(uboot_var bootlimit)") || return 1
  slot=$(uboot_var boot_slot) || return 1
  if [ "$testing" != 0 ]; then
    count=$((count + 1))
    uboot_set "bootcount=$count" || return 1
  else
    count=1
  fi
  if [ "$limit" -gt 0 ] && [ "$count" -gt "$limit" ]; then
    cmd=altbootcmd
    case $slot in A) slot=B ;; *) slot=A ;; esac
    uboot_set "boot_slot=$slot" upgrade_available=0 bootcount=0 || return 1
  fi
  echo "bootcount $count, bootlimit $limit: $cmd" >"$RUN/uboot-said"
  case $slot in A | B) echo "$slot" ;; *) return 1 ;; esac
}

# uboot_env NAME...: "NAME=VALUE ..." of the environment on the disk image (read
# while the guest is down: its writes may still be in its page cache).
uboot_env() {
  local name out=()
  for name; do out+=("$name=$(uboot_var "$name")"); done
  echo "${out[*]}"
}

# expect_uboot_env "NAME=VALUE ..." WHY: the environment on the disk image holds these.
expect_uboot_env() {
  local names got
  ! vm_alive || fail "boot $BOOTS: the harness reads U-Boot's environment only while the guest is down"
  names=$(sed 's/=[^ ]*//g' <<<"$1")
  # shellcheck disable=SC2086 # one word per name
  got=$(uboot_env $names)
  [ "$got" = "$1" ] || fail "U-Boot's environment on the disk is '$got', expected '$1' ($2)"
  log "U-Boot's environment on the disk: $got"
}

# state_write PATH FILE: FILE becomes PATH on the STATE partition.
state_write() {
  local offset
  offset=$(($(cgpt show -i 3 -b "$RUN/disk.img") * 512))
  # mkdir: bootgate's state directory exists only once bootgate has run.
  printf 'mkdir %s\nrm %s\nwrite %s %s\n' "$(dirname "$1")" "$1" "$2" "$1" |
    debugfs -w -f - "$RUN/disk.img?offset=$offset" >/dev/null 2>&1
  cmp -s "$2" <(state_file "$1") || fail "could not write $1 on the STATE partition"
}

# slot_policy SLOT FILE [ROOT]: the slot's /etc/bootgate/policy.yaml becomes
# vm-tests/policies/FILE, or FILE itself when it is an absolute path (a policy the
# scenario made), written into the slot's ext4 inside the image. It is
# validated with the same binary first. validate reads the check directories
# (checks_from) and the greenboot.conf a policy names: with ROOT, the tree the
# slot gets them from (slot_tree), the host validates a copy whose `dir:` and
# `config:` paths are under ROOT.
slot_policy() {
  local policy=$2 out
  [[ $policy == /* ]] || policy=$VMT_DIR/policies/$2
  local checked=$policy
  if [ -n "${3:-}" ]; then
    checked=$RUN/policy-$1.yaml
    sed -E "s#((dir|config): )/#\1$3/#" "$policy" >"$checked"
  fi
  out=$("$VMTEST_BIN" validate "$checked" 2>&1) || fail "policy $2 does not validate with this bootgate: $out"
  slot_file "$1" /etc/bootgate/policy.yaml "$(cat "$policy")"
  REBOOT_DELAY[$1]=$(policy_reboot_delay "$policy")
}

# slot_file SLOT PATH TEXT: the slot's file PATH (in an existing directory)
# holds TEXT and a newline, written into the slot's ext4 inside the image.
slot_file() {
  local i offset src=$RUN/slot-file
  i=$(slot_index "$1")
  printf '%s\n' "$3" >"$src"
  offset=$(($(cgpt show -i "$i" -b "$RUN/disk.img") * 512))
  printf 'rm %s\nwrite %s %s\n' "$2" "$src" "$2" | debugfs -w -f - "$RUN/disk.img?offset=$offset" >/dev/null 2>&1
  [ "$(debugfs -R "cat $2" "$RUN/disk.img?offset=$offset" 2>/dev/null)" = "$3" ] || fail "could not write $2 into USR-$1"
}

# slot_tree SLOT DIR: every file under DIR becomes the file at the same path in
# the slot's ext4 (replacing what is there, with DIR's file modes; directories
# are made as needed), e.g. a greenboot host's layout.
slot_tree() {
  local i offset rel
  local -a dirs files
  i=$(slot_index "$1")
  offset=$(($(cgpt show -i "$i" -b "$RUN/disk.img") * 512))
  mapfile -t dirs < <(cd "$2" && find . -mindepth 1 -type d | sort)
  mapfile -t files < <(cd "$2" && find . -type f | sort)
  {
    # debugfs makes one level at a time (parents first, as sorted) and only
    # complains about the ones that exist.
    for rel in "${dirs[@]}"; do printf 'mkdir %s\n' "${rel#.}"; done
    for rel in "${files[@]}"; do printf 'rm %s\nwrite %s %s\n' "${rel#.}" "$2/${rel#./}" "${rel#.}"; done
  } | debugfs -w -f - "$RUN/disk.img?offset=$offset" >/dev/null 2>&1
  for rel in "${files[@]}"; do
    cmp -s "$2/${rel#./}" <(debugfs -R "cat ${rel#.}" "$RUN/disk.img?offset=$offset" 2>/dev/null) ||
      fail "could not write ${rel#.} into USR-$1"
  done
}

# slot_version SLOT VERSION: the slot's image becomes version VERSION, as an
# image-based OS names it: its /etc/os-release (in place of the symlink to
# /usr/lib/os-release) is Debian's plus IMAGE_ID=vmtests and IMAGE_VERSION.
slot_version() {
  local i offset release
  i=$(slot_index "$1")
  offset=$(($(cgpt show -i "$i" -b "$RUN/disk.img") * 512))
  release=$(debugfs -R "cat /usr/lib/os-release" "$RUN/disk.img?offset=$offset" 2>/dev/null)
  [ -n "$release" ] || fail "USR-$1 has no /usr/lib/os-release"
  slot_file "$1" /etc/os-release "$release"$'\n'"IMAGE_ID=vmtests"$'\n'"IMAGE_VERSION=$2"
}

# update_of POLICY: both slots run POLICY (so the fallback re-runs the update's
# checks under their names), USR-A as image version 1.0 and USR-B, the update,
# as 1.1: the images bootgate judges one against the other.
update_of() {
  slot_policy A "$1"
  slot_policy B "$1"
  slot_version A 1.0
  slot_version B 1.1
}

# state_outage: the device API is down from the next boot on (the outage file
# guest/api answers 503 for, on the STATE partition that both slots mount),
# until the host ends it with `guest_ctl api-back`.
state_outage() {
  echo "outage" >"$RUN/api-outage"
  state_write /lib/vm-tests/api-outage "$RUN/api-outage"
}

# slot_api_dies SLOT WHEN [SECONDS]: the slot's device API dies SECONDS after
# WHEN (soaking: bootgate began its soak; host: the host said so with
# `guest_ctl api-dies`); see vm-tests/guest/api-dies.
slot_api_dies() { slot_file "$1" /etc/vm-tests/api-dies "$2 ${3:-0}"; }

# guest_ctl NAME: tells the running guest NAME now, through the control port
# (vm-tests/guest/ctl); e.g. api-dies, for a slot_api_dies SLOT host.
guest_ctl() {
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time "$STEP_TIMEOUT" "http://127.0.0.1:$CTL_PORT/$1" 2>"$RUN/ctl.err") || code=000
  [ "$code" = 200 ] || fail "boot $BOOTS: the guest's control port did not take '$1' (HTTP $code $(cat "$RUN/ctl.err"))"
  log "boot $BOOTS: told the guest: $1"
}

# slot_crash SLOT: the slot's init exits at once (/usr/sbin/init -> /bin/false,
# written into its ext4), so the kernel panics when it starts, before any
# service runs: a boot that crashes before bootgate can reach a verdict.
# panic=1 on the kernel command line turns that into a reboot, which ends QEMU.
slot_crash() { slot_symlink "$1" /usr/sbin/init /bin/false "break init" rm; }

# slot_symlink SLOT LINK TARGET WHAT [rm]: LINK in the slot's ext4 becomes a
# symlink to TARGET (with rm: after removing what is there); WHAT names it in
# the failure.
slot_symlink() {
  local i offset
  i=$(slot_index "$1")
  offset=$(($(cgpt show -i "$i" -b "$RUN/disk.img") * 512))
  { [ "${5:-}" != rm ] || printf 'rm %s\n' "$2"; printf 'symlink %s %s\n' "$2" "$3"; } |
    debugfs -w -f - "$RUN/disk.img?offset=$offset" >/dev/null 2>&1
  debugfs -R "stat $2" "$RUN/disk.img?offset=$offset" 2>/dev/null | grep "Fast link dest: \"$3\"" >/dev/null ||
    fail "could not $4 in USR-$1"
}

# EFI Boot Guard (the ebg scenarios, ebg_init): OVMF starts Debian's
# efibootguardx64.efi from the ESP, which picks one of two configurations, each a
# BGENV.DAT on its own FAT partition (5: config A, 6: config B, added to the
# scenario's copy of the disk), and loads the kernel (an EFI stub) from the ESP
# with the configuration's kernelparams, initrd= included. The harness writes the
# environments before the first boot and reads them back while the guest is down.
EBG_EFI=/usr/lib/x86_64-linux-gnu/efibootguard/efibootguardx64.efi
EBG_MB=16
# How long EFI Boot Guard arms the watchdog (q35's Intel TCO); the guest's
# iTCO_wdt driver keeps it fed until userspace opens it (nothing here does).
EBG_WATCHDOG=120

# ebg_partition SLOT: the config partition of SLOT's configuration.
ebg_partition() { case $1 in A) echo 5 ;; B) echo 6 ;; *) die "unknown EFI Boot Guard config $1" ;; esac; }

# ebg_image SLOT: SLOT's config partition, as mtools' IMAGE@@OFFSET.
ebg_image() { echo "$RUN/disk.img@@$(($(cgpt show -i "$(ebg_partition "$1")" -b "$RUN/disk.img") * 512))"; }

# ebg_init REVISION_A:USTATE_A REVISION_B:USTATE_B: later boots go through OVMF and
# EFI Boot Guard, with config A booting USR-A and config B USR-B in these states
# (as an updater leaves them: e.g. 1:OK 2:INSTALLED). Both slots mount the config
# partitions (fstab), where bg_printenv and bg_setenv find them.
ebg_init() {
  local disk=$RUN/disk.img slot spec n fat start
  mcopy -o -i "$(esp_image)" "$EBG_EFI" ::/EFI/BOOT/BOOTX64.EFI || fail "could not write EFI Boot Guard on the ESP"
  truncate -s +$((EBG_MB * 2 + 1))M "$disk"
  sgdisk -e "$disk" >/dev/null
  sgdisk -n "5:0:+${EBG_MB}M" -t 5:0700 -c 5:EBG-A -n "6:0:+${EBG_MB}M" -t 6:0700 -c 6:EBG-B "$disk" >/dev/null ||
    fail "could not add the config partitions"
  for slot in A B; do
    spec=$1
    shift
    n=$(ebg_partition "$slot")
    fat=$RUN/ebg-$slot.img
    rm -f "$fat" "$RUN/BGENV.DAT"
    mkfs.fat -F 16 -n "EBG$slot" -C "$fat" $((EBG_MB * 1024)) >/dev/null
    bg_setenv -f "$RUN/BGENV.DAT" -r "${spec%%:*}" -s "${spec#*:}" -w "$EBG_WATCHDOG" -k "L:ESP:vmlinuz" \
      -a "$(kernel_cmdline "$slot") initrd=\\initrd.img" >/dev/null || fail "bg_setenv could not write config $slot"
    mcopy -i "$fat" "$RUN/BGENV.DAT" ::/BGENV.DAT || fail "could not write config $slot's BGENV.DAT"
    start=$(cgpt show -i "$n" -b "$disk")
    dd if="$fat" of="$disk" bs=512 seek="$start" conv=notrunc,sparse status=none
    rm -f "$fat" "$RUN/BGENV.DAT"
  done
  for slot in A B; do
    slot_file "$slot" /etc/fstab "$(printf '%s\n' 'PARTLABEL=STATE /var ext4 defaults 0 0' 'PARTLABEL=ESP /efi vfat umask=0077 0 0' \
      'PARTLABEL=EBG-A /boot/efibootguard/a vfat umask=0077 0 0' 'PARTLABEL=EBG-B /boot/efibootguard/b vfat umask=0077 0 0')"
  done
  cp "$OVMF_VARS" "$RUN/ovmf-vars.fd"
  LOADER=efibootguard
}

# ebg_env SLOT: "revision=R ustate=S in_progress=I" of SLOT's configuration, read
# back from its partition with mtools and the real bg_printenv, while the guest is down.
ebg_env() {
  local f=$RUN/ebg-$1.dat
  rm -f "$f"
  mcopy -i "$(ebg_image "$1")" ::/BGENV.DAT "$f" 2>/dev/null &&
    bg_printenv -f "$f" -r -o revision,ustate,in_progress |
    awk -F= '{ v[$1] = $2 } END { printf "revision=%s ustate=%s in_progress=%s\n", v["REVISION"], v["USTATE"], v["IN_PROGRESS"] }'
}

# expect_ebg_env SLOT STATE WHY: SLOT's configuration reads STATE ("revision=2 ustate=0 in_progress=0").
expect_ebg_env() {
  local got
  ! vm_alive || fail "boot $BOOTS: the harness reads the config partitions only while the guest is down"
  got=$(ebg_env "$1") || true
  [ "$got" = "$2" ] || fail "EFI Boot Guard config $1 reads '$got', expected '$2' ($3)"
  log "EFI Boot Guard config $1: $got"
}

# systemd-boot's boot counting (the bless-boot scenarios): OVMF and systemd-boot
# are real, so the harness only writes the entries before the first boot and
# reads the ESP back while the guest is down (mtools on the image, no mount).

# esp_image: the scenario's ESP, as mtools' IMAGE@@OFFSET.
esp_image() { echo "$RUN/disk.img@@$(($(cgpt show -i 4 -b "$RUN/disk.img") * 512))"; }

# bless_init FILE=SLOT...: later boots go through OVMF and systemd-boot, with these
# Type #1 entries on the ESP (FILE with its counter, e.g. bootgate-2+3.conf=B:
# USR-B with 3 tries; bootgate-1.conf=A: USR-A, no counting).
bless_init() {
  local spec file slot img
  img=$(esp_image)
  for spec; do
    file=${spec%=*} slot=${spec##*=}
    printf 'title bootgate USR-%s\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' \
      "$slot" "$(kernel_cmdline "$slot")" >"$RUN/entry"
    mcopy -o -i "$img" "$RUN/entry" "::/loader/entries/$file" || fail "could not write $file on the ESP"
  done
  rm -f "$RUN/entry"
  cp "$OVMF_VARS" "$RUN/ovmf-vars.fd"
  LOADER=bless-boot
}

# esp_entries: the entries on the scenario's ESP, sorted, on one line.
esp_entries() {
  mdir -b -i "$(esp_image)" ::/loader/entries 2>/dev/null | sed 's|.*/||' | grep -v '^$' | sort | paste -sd' ' - || true
}

# expect_entries FILE... WHY: the ESP holds exactly these entries (sorted).
expect_entries() {
  local want got
  want=$(printf '%s\n' "${@:1:$#-1}" | sort | paste -sd' ' -)
  got=$(esp_entries)
  [ "$got" = "$want" ] || fail "the ESP holds '$got', expected '$want' (${*: -1})"
  log "ESP entries: $got"
}

# wait_blessed: waits for systemd's own systemd-bless-boot.service to finish (it
# runs after boot-complete.target, so only after a passed gate). Its journal, relayed
# by the observer, names it in full; the status lines on the console are shortened.
wait_blessed() {
  local end=$((SECONDS + STEP_TIMEOUT))
  until tr -d '\r' <"$LOG" | grep -a 'Finished systemd-bless-boot.service' >/dev/null; do
    if ! vm_alive || ((SECONDS >= end)); then fail "boot $BOOTS (USR-$BOOT_SLOT): systemd-bless-boot.service never finished"; fi
    sleep 0.2
  done
  log "boot $BOOTS: systemd-bless-boot.service finished"
}

# slot_mask SLOT UNIT: `systemctl mask UNIT` in the slot (a /dev/null symlink
# in its /etc/systemd/system, written into its ext4).
slot_mask() { slot_symlink "$1" "/etc/systemd/system/$2" /dev/null "mask $2"; }

# state_file PATH: a file from the STATE partition (the guest's /var).
state_file() {
  local offset
  offset=$(($(cgpt show -i 3 -b "$RUN/disk.img") * 512))
  debugfs -R "cat $1" "$RUN/disk.img?offset=$offset" 2>/dev/null
}


# ---------------------------------------------------------------------------
# The VM.

# with_tpm: later boots of this scenario get a software TPM (tpm-tis).
with_tpm() { TPM=1; }

tpm_start() {
  mkdir -p "$RUN/tpm"
  swtpm socket --tpm2 --tpmstate dir="$RUN/tpm" --ctrl type=unixio,path="$RUN/tpm/sock" \
    --log file="$RUN/tpm/swtpm.log" &
  SWTPM_PID=$!
  local end=$((SECONDS + STEP_TIMEOUT))
  until [ -S "$RUN/tpm/sock" ]; do
    ((SECONDS < end)) || fail "swtpm did not create its socket within ${STEP_TIMEOUT}s"
    sleep 0.1
  done
}

tpm_stop() {
  if [ -n "$SWTPM_PID" ]; then
    kill "$SWTPM_PID" 2>/dev/null || true
    wait "$SWTPM_PID" 2>/dev/null || true
    SWTPM_PID=
  fi
}

# free_port [NOT]: a loopback port no TCP socket of the host uses, other than NOT
# (QEMU fails to start if it is taken meanwhile). Below the kernel's ephemeral
# range when that leaves room: the host's outgoing connections take their ports
# from that range and leave them in TIME-WAIT, where QEMU cannot bind either (a
# busy host, e.g. one running benchmarks, has thousands), while a port below it
# is only ever taken by someone binding it on purpose.
free_port() {
  local p low=0 base=20000 span=40000
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  if ((low > 15000)); then
    base=10000
    span=$((low - base))
  fi
  for _ in $(seq 100); do
    p=$((base + RANDOM % span))
    [ "$p" != "${1:-}" ] || continue
    [ -z "$(ss -Htan "sport = :$p")" ] && { echo "$p"; return 0; }
  done
  die "no free port found"
}

# kernel_cmdline SLOT: the kernel command line that boots SLOT (QEMU's -append, or
# the options of a systemd-boot entry).
kernel_cmdline() {
  local uuid
  uuid=$(cgpt show -i "$(slot_index "$1")" -u "$RUN/disk.img")
  # cgpt prints upper case; /dev/disk/by-partuuid is lower case
  local args="console=ttyS0 root=PARTUUID=${uuid,,} rw quiet systemd.show_status=1 panic=1 vmtests.mark_delay=$MARK_DELAY"
  # RAUC finds the booted slot from rauc.slot= on the kernel command line.
  [ "${LOADER:-}" != rauc ] || args+=" rauc.slot=$1"
  echo "$args"
}

# boot: runs the harness's boot loader and starts QEMU on the slot it picks.
# Sets BOOT_SLOT (A, B, or empty when no slot is bootable), LOG (the serial
# log), PORT (host port forwarded to the guest's 8080), CTL_PORT (to the
# guest's control port 8082, see guest_ctl) and VM_PID. UEFI boots
# (LOADER=bless-boot) leave the choice to systemd-boot: boot waits for the
# guest to come up and takes BOOT_SLOT from the root it mounted, BOOT_ENTRY
# from the entry systemd-boot says it started, BOOT_COUNTING from its
# LoaderBootCountPath (the entry file as renamed for this try, or none).
boot() {
  BOOTS=$((BOOTS + 1))
  LOG=$RUN/boot-$BOOTS.log
  local -a loader
  case ${LOADER:-gptprio} in
    rauc) BOOT_SLOT=$(rauc_next) ;;
    uboot) BOOT_SLOT=$(uboot_next) || fail "boot $((BOOTS)): the harness's U-Boot could not read or write the environment: $(tail -3 "$RUN/uboot.err")" ;;
    grubenv | bless-boot | efibootguard) BOOT_SLOT=UEFI ;;
    *) BOOT_SLOT=$(gptprio_next) ;;
  esac
  if [ -z "$BOOT_SLOT" ]; then
    log "boot $BOOTS: ${LOADER:-gptprio}: no bootable slot"
    return 0
  fi
  if [ "$BOOT_SLOT" = UEFI ]; then
    case $LOADER in
      grubenv) log "boot $BOOTS: OVMF and GRUB, grubenv $(grub_env | paste -sd' ' -), serial log boot-$BOOTS.log" ;;
      efibootguard) log "boot $BOOTS: OVMF and EFI Boot Guard, config A $(ebg_env A), config B $(ebg_env B), serial log boot-$BOOTS.log" ;;
      *) log "boot $BOOTS: OVMF and systemd-boot, ESP entries $(esp_entries), serial log boot-$BOOTS.log" ;;
    esac
    # shellcheck disable=SC2054 # commas belong to QEMU's option syntax
    loader=(-drive if=pflash,format=raw,readonly=on,file="$OVMF_CODE" -drive if=pflash,format=raw,file="$RUN/ovmf-vars.fd")
  else
    loader=(-kernel "$VMTEST_KERNEL" -initrd "$VMTEST_INITRD" -append "$(kernel_cmdline "$BOOT_SLOT")")
  fi
  local -a tpm=()
  if [ "$TPM" = 1 ]; then
    tpm_start
    # shellcheck disable=SC2054 # commas belong to QEMU's option syntax
    tpm=(-chardev socket,id=chrtpm,path="$RUN/tpm/sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0)
  fi
  PORT=$(free_port)
  CTL_PORT=$(free_port "$PORT")
  local mon=$RUN/mon-$BOOTS
  mkfifo "$mon"
  # Held open read-write so QEMU's monitor never sees end-of-file.
  exec {MON_FD}<>"$mon"
  BOOT_T0=$EPOCHREALTIME
  # -nodefaults: no VGA, CD-ROM or parallel port for the guest to probe
  # (seconds under TCG); virtio-rng: the kernel's random pool is ready at once.
  qemu-system-x86_64 -accel tcg -machine q35 -m 1024 -smp 2 -nodefaults -display none -no-reboot \
    -serial file:"$LOG" -monitor stdio -device virtio-rng-pci \
    "${loader[@]}" \
    -drive file="$RUN/disk.img",if=virtio,format=raw \
    -netdev user,id=net0,hostfwd=tcp:127.0.0.1:"$PORT"-:8080,hostfwd=tcp:127.0.0.1:"$CTL_PORT"-:8082 \
    -device virtio-net-pci,netdev=net0,romfile= \
    "${tpm[@]}" \
    <"$mon" >"$RUN/qemu-$BOOTS.out" 2>&1 &
  VM_PID=$!
  case ${LOADER:-gptprio} in
    grubenv) uefi_booted && grub_booted ;;
    efibootguard) uefi_booted && ebg_booted ;;
    uboot) log "boot $BOOTS: U-Boot (played by the harness): $(cat "$RUN/uboot-said"), booted USR-$BOOT_SLOT, serial log boot-$BOOTS.log" ;;
    rauc) log "boot $BOOTS: the RAUC boot loader picked USR-$BOOT_SLOT ($(rauc_states)), rauc.slot=$BOOT_SLOT, serial log boot-$BOOTS.log" ;;
    bless-boot) uefi_booted ;;
    *) log "boot $BOOTS: gptprio picked USR-$BOOT_SLOT ($(gpt_attrs "$BOOT_SLOT") after taking its try), serial log boot-$BOOTS.log" ;;
  esac
}

# uefi_booted: waits for a UEFI boot to reach the guest's observer, then sets
# BOOT_SLOT from the root it mounted (/dev/vda1: A, /dev/vda2: B), BOOT_ENTRY and
# BOOT_COUNTING (systemd-boot's, none under GRUB), and records when the firmware
# started the boot loader and when the kernel started (the guest's uptime at its
# "booted" line, back from when the host saw it).
uefi_booted() {
  local rc=0 loader_t='' line root bootloader=systemd-boot
  [ "$LOADER" != grubenv ] || bootloader=GRUB
  [ "$LOADER" != efibootguard ] || bootloader="EFI Boot Guard"
  local end=$((SECONDS + BOOT_TIMEOUT))
  while [ -z "$loader_t" ] && vm_alive && ((SECONDS < end)); do
    tr -d '\r' 2>/dev/null <"$LOG" | grep -a "$UEFI_LOADER_LINE" >/dev/null && loader_t=$(calc "$EPOCHREALTIME - $BOOT_T0")
    sleep 0.2
  done
  wait_line '^booted ' $((end - SECONDS)) || rc=$?
  [ $rc = 0 ] || fail "boot $BOOTS (UEFI): the guest never reached its observer (firmware started $bootloader: ${loader_t:-never})$(qemu_said)"
  line=$(guest_line '^booted ')
  local kernel_t
  kernel_t=$(calc "$EPOCHREALTIME - $BOOT_T0 - $(field "$line" t)")
  root=$(field "$line" root)
  case $root in /dev/vda1) BOOT_SLOT=A ;; /dev/vda2) BOOT_SLOT=B ;; *) fail "boot $BOOTS (UEFI): the guest's root is '$root', neither slot" ;; esac
  BOOT_ENTRY=$(field "$line" entry)
  BOOT_COUNTING=$(field "$line" counting)
  TIMINGS+=("UEFI QEMU→$bootloader ${loader_t:-?}s →kernel ${kernel_t}s")
  if [ "$bootloader" != systemd-boot ]; then
    log "boot $BOOTS: USR-$BOOT_SLOT is root; QEMU start → $bootloader ${loader_t:-?}s, → kernel ${kernel_t}s"
  else
    log "boot $BOOTS: systemd-boot started entry $BOOT_ENTRY (counting: $BOOT_COUNTING), USR-$BOOT_SLOT is root; QEMU start → systemd-boot ${loader_t:-?}s, → kernel ${kernel_t}s"
  fi
}

# console_text: this boot's serial log without carriage returns and ANSI escapes
# (GRUB draws its screen with them, even on a serial console).
console_text() { tr -d '\r' 2>/dev/null <"$LOG" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g'; }

# grub_booted: after uefi_booted, what GRUB said on the console: GRUB_SAID, the
# variables greenboot's script left ("boot_counter=N boot_success=0 default=D",
# grub.cfg echoes them), and the entry GRUB started ("Booting `USR-B'"), which
# must be the slot the guest mounted as root. BOOT_SLOT is that entry's.
grub_booted() {
  local entry
  GRUB_SAID=$(console_text | sed -n 's/^greenboot: //p' | tail -1)
  [ -n "$GRUB_SAID" ] || fail "boot $BOOTS: GRUB never said what greenboot's script decided (no 'greenboot:' line)"
  entry=$(console_text | sed -n "s/^ *Booting \`\(.*\)'.*/\1/p" | tail -1)
  [ "$entry" = "USR-$BOOT_SLOT" ] ||
    fail "boot $BOOTS: GRUB said it booted '${entry:-nothing}', but the guest's root is USR-$BOOT_SLOT"
  BOOT_SLOT=${entry#USR-}
  log "boot $BOOTS: GRUB (greenboot's script: $GRUB_SAID) booted $entry"
}

# ebg_booted: after uefi_booted, what EFI Boot Guard said on the console: EBG_SAID,
# "revision=R ustate=S" of the configuration it chose (its "Config Revision: R:" and
# " ustate: S" lines; a fallback prints the failed one's revision and the booted
# one's state), and its own version line, which must be there.
ebg_booted() {
  local text
  text=$(console_text)
  grep -a '^EFI Boot Guard v' <<<"$text" >/dev/null || fail "boot $BOOTS: EFI Boot Guard never said its version: not started"
  EBG_SAID="revision=$(sed -n 's/^Config Revision: \([0-9]*\):.*/\1/p' <<<"$text" | tail -1) ustate=$(sed -n 's/^ ustate: \([0-9]*\).*/\1/p' <<<"$text" | tail -1)"
  log "boot $BOOTS: EFI Boot Guard ($EBG_SAID) booted USR-$BOOT_SLOT"
}

# expect_ebg_said STATE WHY: EFI Boot Guard said STATE this boot (see ebg_booted).
expect_ebg_said() {
  [ "$EBG_SAID" = "$1" ] || fail "boot $BOOTS: EFI Boot Guard said '$EBG_SAID', expected '$1' ($2)"
}

# expect_grub_said VARS WHY: greenboot's script in GRUB left VARS this boot
# ("boot_counter=N boot_success=0 default=D", see grub_booted).
expect_grub_said() {
  [ "$GRUB_SAID" = "$1" ] || fail "boot $BOOTS: greenboot's script in GRUB left '$GRUB_SAID', expected '$1' ($2)"
}

vm_alive() {
  [ -n "$VM_PID" ] || return 1
  local state
  state=$(cut -d' ' -f3 "/proc/$VM_PID/stat" 2>/dev/null) || return 1
  [ "$state" != Z ]
}

# vm_wait_exit SECONDS: waits for QEMU to end; false if it is still running.
vm_wait_exit() {
  local end=$((SECONDS + $1))
  while vm_alive; do
    ((SECONDS < end)) || return 1
    sleep 0.2
  done
  wait "$VM_PID" 2>/dev/null || true
  VM_PID=
  exec {MON_FD}>&-
  tpm_stop
}

vm_kill() {
  if [ -n "$VM_PID" ]; then
    kill "$VM_PID" 2>/dev/null || true
    wait "$VM_PID" 2>/dev/null || true
    VM_PID=
  fi
}

# vm_poweroff: the ACPI power button (a clean shutdown flushes /var), then
# the plug after a bounded wait (idle the guest is down in 2-5 s).
vm_poweroff() {
  vm_alive || return 0
  echo system_powerdown >&"$MON_FD"
  if ! vm_wait_exit "$STEP_TIMEOUT"; then
    log "the guest ignored the power button for ${STEP_TIMEOUT}s; stopping QEMU"
    vm_kill
  fi
  if [ "${STAYS_UP:-}" = "$BOOTS" ] && tr -d '\r' <"$LOG" | grep -a 'reboot: Restarting system' >/dev/null; then
    fail "boot $BOOTS (USR-$BOOT_SLOT): the guest rebooted although bootgate must stay down"
  fi
}
