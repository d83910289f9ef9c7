# shellcheck shell=bash
# Waiting for and asserting on what the guest reports (its "vmtests: ..."
# lines on the serial console), the disk image and the health endpoint.
# Sourced by lib.sh; every assertion ends the scenario with fail on a mismatch.
# Every wait polls until its condition holds, bounded by BOOT_TIMEOUT or
# STEP_TIMEOUT (see lib.sh), never by how fast an idle host is.

# expect_gpt SLOT "priority=P tries=T successful=S" WHY
expect_gpt() {
  local got
  got=$(gpt_attrs "$1")
  [ "$got" = "$2" ] || fail "USR-$1 is $got on the disk image, expected $2 ($3)"
}

# boot_loader: who picked this boot's slot, as boot ran it (see LOADER).
boot_loader() {
  case ${LOADER:-gptprio} in
    grubenv) echo "GRUB with greenboot's script" ;;
    rauc) echo "the RAUC boot loader" ;;
    efibootguard) echo "EFI Boot Guard (${EBG_SAID:-?})" ;;
    uboot) echo "U-Boot's bootcount logic (played by the harness)" ;;
    # systemd-boot picks an entry; the slot is the root that entry mounted.
    bless-boot) echo "systemd-boot (entry ${BOOT_ENTRY:-?})" ;;
    *) echo gptprio ;;
  esac
}

# expect_boot_slot SLOT [WHY]: the boot loader picked USR-SLOT for this boot
# (none: no slot was bootable); WHY says what that slot is to the scenario,
# e.g. "the fallback after the failed USR-B".
expect_boot_slot() {
  local want=USR-$1
  [ "$1" != none ] || want="no bootable slot"
  [ "${BOOT_SLOT:-none}" = "$1" ] ||
    fail "boot $BOOTS: $(boot_loader) picked ${BOOT_SLOT:+USR-}${BOOT_SLOT:-nothing}, expected $want${2:+ ($2)}"
}

# expect_uefi_boot SLOT COUNTING [ENTRY]: systemd-boot started USR-SLOT, with
# LoaderBootCountPath COUNTING (none: not counted) and, when given, entry ENTRY.
expect_uefi_boot() {
  expect_boot_slot "$1"
  [ "$BOOT_COUNTING" = "$2" ] || fail "boot $BOOTS: LoaderBootCountPath is '$BOOT_COUNTING', expected '$2'"
  [ -z "${3:-}" ] || [ "$BOOT_ENTRY" = "$3" ] || fail "boot $BOOTS: systemd-boot started entry $BOOT_ENTRY, expected $3"
}

# expect_history GATE...: the last boots in bootgate's boot history on the
# STATE partition (/var/lib/bootgate/history.jsonl), oldest first, by gate
# result, e.g. expect_history failed passed.
expect_history() {
  local got
  got=$(state_file /lib/bootgate/history.jsonl | jq -r .gate | tail -n $# | paste -sd' ' -) || true
  [ "$got" = "$*" ] || fail "boot history on the STATE partition ends with '${got}', expected '$*'"
  log "boot history on the STATE partition: $(state_file /lib/bootgate/history.jsonl | jq -c '{gate, status, failing}' | paste -sd' ' -)"
}

# expect_fallback FROM REASON [CHECK [BLAME]]: this boot knows it is a fallback
# from USR-FROM and why: boot.fallback in the health document (with CHECK among
# its failing checks, if given, and its second verdict BLAME: image,
# environment or unknown) and the bootgate_boot_fallback metric (with BLAME).
expect_fallback() {
  local url=http://127.0.0.1:$PORT body=$RUN/fallback-$BOOTS.json
  # (--max-time: one answer of a guest that stays up; idle it takes milliseconds.)
  curl -sS --max-time 30 -o "$body" "$url$HEALTH_ROUTE" 2>/dev/null || fail "boot $BOOTS: no health document"
  jq -e --arg p "USR-$1" --arg r "$2" '.boot.fallback.from_partition == $p and .boot.fallback.reason == $r' "$body" >/dev/null ||
    fail "boot $BOOTS: boot.fallback is $(jq -c '.boot.fallback' "$body"), expected from USR-$1, reason $2"
  if [ -n "${3:-}" ]; then
    jq -e --arg c "$3" '.boot.fallback.failing | any(.name == $c and (.message | length > 0))' "$body" >/dev/null ||
      fail "boot $BOOTS: boot.fallback does not name $3 with its message: $(jq -c '.boot.fallback' "$body")"
  fi
  local blame=${4:+blame=\"$4\"}
  if [ -n "${4:-}" ]; then
    jq -e --arg b "$4" '.boot.fallback.blame == $b' "$body" >/dev/null ||
      fail "boot $BOOTS: boot.fallback blames $(jq -c '.boot.fallback.blame' "$body"), expected $4: $(jq -c '.boot.fallback' "$body")"
  fi
  curl -sS --max-time 30 "$url/metrics" 2>/dev/null |
    grep -E "^bootgate_boot_fallback\{" | grep -F "from_partition=\"USR-$1\"" | grep -F "reason=\"$2\"" | grep -F "$blame" | grep -E ' 1$' >/dev/null ||
    fail "boot $BOOTS: /metrics has no bootgate_boot_fallback{from_partition=\"USR-$1\",reason=\"$2\"${blame:+,$blame}} 1"
  log "boot $BOOTS: fallback reported: $(jq -c '.boot.fallback' "$body" | head -c 400)"
}

# expect_metric REGEX WHY: a line of the guest's /metrics, asked from the host
# now, matches REGEX (whole line), e.g. 'bootgate_update_held\{version="1.1"\} 1';
# with REGEX starting with !, no line does (a series that must be absent).
expect_metric() {
  local re=${1#!} got
  got=$(curl -sS --max-time 30 "http://127.0.0.1:$PORT/metrics" 2>"$RUN/curl-$BOOTS.err") ||
    fail "boot $BOOTS: no /metrics ($(cat "$RUN/curl-$BOOTS.err")) ($2)"
  if [ "$re" != "$1" ]; then
    ! grep -xE -- "$re" <<<"$got" >/dev/null || fail "boot $BOOTS: /metrics has $(grep -xE -- "$re" <<<"$got" | head -1) ($2)"
    log "boot $BOOTS: /metrics has no line like $re"
  else
    grep -xE -- "$re" <<<"$got" >/dev/null ||
      fail "boot $BOOTS: /metrics has no line like $re ($2); of its name: $(grep -E "^${re%%[\\{ ]*}" <<<"$got" | head -3 | paste -sd' ' -)"
    log "boot $BOOTS: /metrics: $(grep -xE -- "$re" <<<"$got" | head -1)"
  fi
}

# wait_last_seen CHECK STATUS: waits for bootgate to record, in this boot,
# that the booted image last saw CHECK with STATUS (pass, warn, fail): the
# observer's "last-seen" line, said when its record changes.
wait_last_seen() {
  wait_line "^last-seen .*slot=USR-$BOOT_SLOT .* $1=$2( |\$)" "$STEP_TIMEOUT" ||
    fail "boot $BOOTS: bootgate never recorded $1 $2 on USR-$BOOT_SLOT (last: $(guest_line '^last-seen '))"
  log "boot $BOOTS: $(guest_line '^last-seen ')"
}

# expect_last_seen CHECK STATUS: last-seen.json on the STATE partition (read
# while the guest is down) has, for this boot's slot, CHECK with STATUS.
expect_last_seen() {
  local doc
  ! vm_alive || fail "boot $BOOTS: the harness reads the STATE partition only while the guest is down"
  doc=$(state_file /lib/bootgate/last-seen.json) || true
  jq -e --arg s "USR-$BOOT_SLOT" --arg c "$1" --arg r "$2" \
    'any(.images[]; .image.slot == $s and .checks[$c].status == $r)' <<<"$doc" >/dev/null 2>&1 ||
    fail "last-seen.json does not record $1 $2 on USR-$BOOT_SLOT: $(jq -c '[.images[] | {image, checks: (.checks | map_values(.status))}]' <<<"$doc" 2>/dev/null || head -c 300 <<<"$doc")"
  log "last-seen.json on the STATE partition: $(jq -c '[.images[] | {slot: .image.slot, version: .image.os_version, checks: (.checks | map_values(.status))}]' <<<"$doc")"
}

# expect_history_line N JQ_TEST WHY: the Nth line from the end of the boot
# history on the STATE partition (1: the last boot) satisfies JQ_TEST.
expect_history_line() {
  local line
  line=$(state_file /lib/bootgate/history.jsonl | tail -n "$1" | head -1) || true
  jq -e "$2" <<<"$line" >/dev/null 2>&1 || fail "boot history line $1 from the end fails \`$2\` ($3): $(head -c 600 <<<"$line")"
}

# expect_history_command GATE...: `bootgate history --format json` over the
# STATE partition's history, newest first, lists boots with these gate results
# (e.g. passed failed), each with its partition and version.
expect_history_command() {
  local dir=$RUN/history-state out
  mkdir -p "$dir"
  state_file /lib/bootgate/history.jsonl >"$dir/history.jsonl"
  out=$("$VMTEST_BIN" history --format json --state-dir "$dir") || fail "bootgate history failed: $out"
  local got
  got=$(jq -r '.[].gate' <<<"$out" | sed -n "1,${#}p" | paste -sd' ' -)
  [ "$got" = "$*" ] || fail "bootgate history lists '$got' newest first, expected '$*': $out"
  jq -e 'all(.[]; (.partition.label | startswith("USR-")) and (.version | length > 0))' <<<"$out" >/dev/null ||
    fail "bootgate history lacks partition or version: $out"
  log "bootgate history: $(jq -c '[.[] | {gate, partition: .partition.label, decision}]' <<<"$out")"
}

# guest_line REGEX: the last complete "vmtests: " line of this boot matching
# REGEX (without the prefix), empty if none.
guest_line() { guest_lines "$1" | tail -1; }

# guest_lines REGEX: every complete "vmtests: " line of this boot matching REGEX
# (without the prefix), in order.
guest_lines() {
  # Only whole lines: the console may be in the middle of writing the last one.
  # QEMU only appends, so the first SIZE bytes read now are what every read below
  # sees; reading the file's end and its lines separately raced the console, which
  # could finish a line in between (or start one: "booted " without its fields).
  local size partial=cat
  size=$(stat -c %s "$LOG" 2>/dev/null) || return 0
  ((size > 0)) || return 0
  # shellcheck disable=SC2016 # sed's own $: the last line
  [ -z "$(head -c "$size" "$LOG" | tail -c1)" ] || partial='sed $d'
  # systemd's status lines may leave an escape (`ESC[K`) in front of a guest line.
  head -c "$size" "$LOG" | tr -d '\r' | $partial | sed -n -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/^vmtests: //p' |
    grep -E -- "$1" || true
}

# wait_line REGEX SECONDS: waits for a guest line. Returns 0 when it is
# there, 1 when QEMU ended without it, 2 on timeout.
wait_line() {
  local end=$((SECONDS + $2))
  while :; do
    [ -z "$(guest_line "$1")" ] || return 0
    if ! vm_alive; then
      [ -z "$(guest_line "$1")" ] || return 0
      return 1
    fi
    ((SECONDS < end)) || return 2
    sleep 0.2
  done
}

# field LINE KEY: value of key=value (a quoted value may hold spaces).
field() {
  local v
  v=$(grep -oE "(^| )$2=(\"[^\"]*\"|[^ ]*)" <<<"$1" | head -1) || true
  v=${v# }
  v=${v#"$2="}
  v=${v#\"}
  echo "${v%\"}"
}

# wait_verdict: waits for bootgate's verdict in this boot; sets VERDICT_LINE,
# GATE (passed|failed|none) and VERDICT_T (seconds since kernel start).
wait_verdict() {
  local rc=0
  wait_line '^verdict ' "$BOOT_TIMEOUT" || rc=$?
  case $rc in
    1) fail "boot $BOOTS (USR-$BOOT_SLOT): QEMU ended before bootgate's verdict$(qemu_said)" ;;
    2) fail "boot $BOOTS (USR-$BOOT_SLOT): no verdict from bootgate within ${BOOT_TIMEOUT}s of starting QEMU" ;;
  esac
  VERDICT_LINE=$(guest_line '^verdict ')
  GATE=$(field "$VERDICT_LINE" gate)
  VERDICT_T=$(field "$VERDICT_LINE" t)
  local gate_ms first
  gate_ms=$(field "$VERDICT_LINE" gate_ms)
  [[ $gate_ms =~ ^[0-9.]+$ ]] || gate_ms=0
  # When the gate started its checks; none when bootgate wrote no verdict.
  first=$(field "$VERDICT_LINE" first_check_t)
  [[ $first =~ ^-?[0-9.]+$ ]] && first="first check $(secs "$first"), →" || first=
  TIMINGS+=("USR-$BOOT_SLOT kernel→${first}verdict $(secs "$VERDICT_T") (gate $(secs "$gate_ms / 1000"))")
  log "boot $BOOTS: verdict at $(secs "$VERDICT_T") after kernel start: $VERDICT_LINE"
}

# log_boot_chain: what bootgate.service waited for in this boot, in the log: the
# observer's boot-times line and systemd-analyze critical-chain bootgate.service,
# which it prints once the boot's start-up jobs are done. Reported, not asserted.
log_boot_chain() {
  if ! wait_line '^critical-chain-end ' "$STEP_TIMEOUT"; then
    log "boot $BOOTS: no critical chain from the guest (its start-up jobs never finished)"
    return 0
  fi
  log "boot $BOOTS: $(guest_line '^boot-times ')"
  log "boot $BOOTS: systemd-analyze critical-chain bootgate.service:"
  guest_lines '^critical-chain: ' | sed 's/^critical-chain: /    /' | while IFS= read -r line; do log "$line"; done
}

qemu_said() {
  local out
  out=$(tr -d '\r' 2>/dev/null <"$RUN/qemu-$BOOTS.out" | grep -v -e '^QEMU .* monitor' -e '^(qemu)' | tail -2 | tr '\n' ' ') || true
  [ -z "$out" ] || echo "; QEMU: $out"
}

calc() { awk "BEGIN { printf \"%.1f\", $* }"; }
secs() { printf '%ss' "$(calc "$1")"; }

expect_gate() {
  [ "$GATE" = "$1" ] || fail "boot $BOOTS (USR-$BOOT_SLOT): gate $GATE, expected $1: $VERDICT_LINE"
}

# wait_settled: waits for the unit to leave activating; sets SETTLED_LINE and STATUS_TEXT.
wait_settled() {
  wait_line '^settled ' "$STEP_TIMEOUT" || fail "boot $BOOTS (USR-$BOOT_SLOT): bootgate.service never settled after its verdict"
  SETTLED_LINE=$(guest_line '^settled ')
  STATUS_TEXT=$(field "$SETTLED_LINE" status)
}

# wait_marked: waits for the stand-in update-engine to mark the booted slot.
wait_marked() {
  local rc=0
  wait_line '^marked ' $((MARK_DELAY + STEP_TIMEOUT)) || rc=$?
  [ $rc = 0 ] || fail "boot $BOOTS (USR-$BOOT_SLOT): the gate passed but update-engine did not mark the slot"
  local line
  line=$(guest_line '^marked ')
  local t
  t=$(field "$line" t)
  TIMINGS+=("verdict→marked $(secs "$(calc "$t - $VERDICT_T")")")
  log "boot $BOOTS: $line"
  [ "$(field "$line" partition)" = "$(slot_index "$BOOT_SLOT")" ] ||
    fail "update-engine marked partition $(field "$line" partition), but USR-$BOOT_SLOT was booted"
}

# expect_not_marked: the stand-in update-engine never ran in this boot.
expect_not_marked() {
  [ -z "$(guest_line '^(update-engine started|marked) ')" ] ||
    fail "boot $BOOTS (USR-$BOOT_SLOT): update-engine ran although the gate failed: $(guest_line '^(update-engine|marked)')"
}

# expect_check NAME RESULT: a check's result in this boot's verdict.
expect_check() {
  local line
  line=$(guest_line "^check name=$1 ")
  [ -n "$line" ] || fail "boot $BOOTS: no check $1 in the verdict"
  [ "$(field "$line" result)" = "$2" ] || fail "boot $BOOTS: check $1 is $(field "$line" result), expected $2: $line"
  # shellcheck disable=SC2034 # for the scenario's own look at the message
  CHECK_LINE=$line
}

# expect_verdict STATUS FAILING: this boot's verdict (status and the
# comma-separated critical checks that failed).
expect_verdict() {
  local status failing
  status=$(field "$VERDICT_LINE" status)
  failing=$(field "$VERDICT_LINE" failing)
  if [ "$status" != "$1" ] || [ "$failing" != "$2" ]; then
    fail "boot $BOOTS (USR-$BOOT_SLOT): verdict status=$status failing=$failing, expected status=$1 failing=$2"
  fi
}

# expect_unit_failed EXIT_CODE: bootgate.service ended failed with this exit
# code (see wait_settled), so Requires= on it fails.
expect_unit_failed() {
  local state code
  state=$(field "$SETTLED_LINE" state)
  code=$(field "$SETTLED_LINE" exit)
  if [ "$state" != failed ] || [ "$code" != "$1" ]; then
    fail "boot $BOOTS (USR-$BOOT_SLOT): bootgate.service is $state with exit code $code, expected failed with $1"
  fi
}

# expect_console REGEX WHY: the serial log of this boot (bootgate's own log
# is there too, relayed from its journal) has a line matching REGEX. While the
# guest runs, waits for it (the relay may be behind the observer's lines); once
# the guest is down the log is complete (the observer's stop says what the
# relay had not) and is read once.
expect_console() {
  local end=$((SECONDS + STEP_TIMEOUT))
  until console_has "$1"; do
    if ! vm_alive; then
      console_has "$1" && return 0
      fail "boot $BOOTS (USR-$BOOT_SLOT): nothing on the console matches /$1/ ($2)"
    fi
    ((SECONDS < end)) || fail "boot $BOOTS (USR-$BOOT_SLOT): nothing on the console matched /$1/ within ${STEP_TIMEOUT}s ($2)"
    sleep 0.2
  done
}

# console_has REGEX: a line of this boot's serial log matches REGEX.
# Never `grep -q` at the end of a pipe here: under pipefail, the writer it stops
# early dies of SIGPIPE and the pipe fails although grep found the line.
console_has() { tr -d '\r' <"$LOG" | grep -aE -- "$1" >/dev/null; }

# expect_journal CHECK VERDICT_REGEX: bootgate's journal entries as an
# operator queries them: `journalctl -p warning CHECK=CHECK RESULT=fail` finds
# the failing check (priority and fields), and the entry with the verdict's
# MESSAGE_ID matches VERDICT_REGEX.
expect_journal() {
  local line msg
  if [ -n "$1" ]; then
    wait_line "^journal check=$1 " "$STEP_TIMEOUT" || fail "boot $BOOTS: the observer never queried the journal for $1"
    line=$(guest_line "^journal check=$1 ")
    msg=$(field "$line" message)
    grep -q -- "$1: fail" <<<"$msg" ||
      fail "boot $BOOTS: journalctl -p warning CHECK=$1 RESULT=fail found no entry for it: $line"
    log "boot $BOOTS: journalctl -p warning CHECK=$1: $msg"
  fi
  wait_line '^journal-verdict ' "$STEP_TIMEOUT" || fail "boot $BOOTS: the observer never queried the journal for the verdict"
  msg=$(field "$(guest_line '^journal-verdict ')" message)
  grep -qE -- "$2" <<<"$msg" || fail "boot $BOOTS: the verdict's MESSAGE_ID entry is \"$msg\", expected /$2/"
  log "boot $BOOTS: journalctl MESSAGE_ID=<verdict>: $msg"
}

# expect_catalog: `journalctl -x MESSAGE_ID=<verdict>` in the guest shows the
# explanation of the shipped journal catalog (systemd/bootgate.catalog) beside it.
expect_catalog() {
  local want got
  want=$(catalog_subject "$(verdict_id)")
  [ -n "$want" ] || fail "systemd/bootgate.catalog has no Subject for the verdict's MESSAGE_ID $(verdict_id)"
  wait_line '^journal-catalog ' "$STEP_TIMEOUT" || fail "boot $BOOTS: the observer never asked journalctl -x for the verdict"
  got=$(field "$(guest_line '^journal-catalog ')" subject)
  [ "$got" = "$want" ] || fail "boot $BOOTS: journalctl -x shows the subject \"$got\", expected the catalog's \"$want\""
  log "boot $BOOTS: journalctl -x MESSAGE_ID=<verdict>: Subject: $got"
}

# expect_status REGEX: the STATUS= bootgate.service ended with (see wait_settled).
expect_status() {
  grep -qE -- "$1" <<<"$STATUS_TEXT" ||
    fail "boot $BOOTS (USR-$BOOT_SLOT): bootgate's STATUS is \"$STATUS_TEXT\", expected it to match /$1/"
}

# expect_booted_tpm VALUE: what the guest found under /dev/tpm* (none, or a list).
expect_booted_tpm() {
  local tpm
  wait_line '^booted ' "$BOOT_TIMEOUT" || fail "boot $BOOTS (USR-$BOOT_SLOT): the guest never reached its observer$(qemu_said)"
  tpm=$(field "$(guest_line '^booted ')" tpm)
  [ "$tpm" = "$1" ] || fail "boot $BOOTS: the guest has TPM devices '$tpm', expected '$1'"
}

# expect_health CODE STATUS [JQ_TEST...]: asks the guest's health endpoint
# from the host through the forwarded port. Checks the HTTP code, the
# document's status, the booted partition it reports, and each JQ_TEST (a jq
# expression that must be true).
expect_health() {
  local url=http://127.0.0.1:$PORT$HEALTH_ROUTE body=$RUN/health-$BOOTS.json code
  # (--max-time: one answer of a guest that stays up; idle it takes milliseconds.)
  code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 30 "$url" 2>"$RUN/curl-$BOOTS.err") || code=000
  [ "$code" = "$1" ] || fail "boot $BOOTS: GET $HEALTH_ROUTE answered HTTP $code, expected $1 ($(head -c 300 "$body" 2>/dev/null; cat "$RUN/curl-$BOOTS.err"))"
  local status partition
  status=$(jq -r .status "$body" 2>/dev/null) || fail "boot $BOOTS: health document is not JSON: $(head -c 300 "$body")"
  [ "$status" = "$2" ] || fail "boot $BOOTS: health status is $status, expected $2"
  partition=$(jq -r '.boot.partition // empty' "$body")
  [ "$partition" = "USR-$BOOT_SLOT" ] ||
    fail "boot $BOOTS: health document reports boot partition '${partition}', expected USR-$BOOT_SLOT"
  local test
  for test in "${@:3}"; do
    jq -e "$test" "$body" >/dev/null || fail "boot $BOOTS: health document fails \`$test\`: $(jq -c . "$body" | head -c 600)"
  done
  log "boot $BOOTS: GET $HEALTH_ROUTE through port $PORT: HTTP $code, status $status, partition $partition"
}

# wait_health JQ_TEST SECONDS: polls the guest's health document from the host
# until JQ_TEST holds, for at most SECONDS.
wait_health() {
  local url=http://127.0.0.1:$PORT$HEALTH_ROUTE body=$RUN/health-wait-$BOOTS.json end=$((SECONDS + $2))
  until curl -sS -o "$body" --max-time 10 "$url" 2>/dev/null && jq -e "$1" "$body" >/dev/null 2>&1; do
    ((SECONDS < end)) || fail "boot $BOOTS: the health document never showed \`$1\` within $2 s: $(jq -c .boot "$body" 2>/dev/null | head -c 400)"
    sleep 0.5
  done
  log "boot $BOOTS: the health document shows \`$1\`"
}

# expect_service UNIT CODE [JQ_TEST...]: asks the guest's endpoint for one systemd
# unit (GET /api/v1/system/services/UNIT, answered from the guest's real systemd
# over D-Bus) from the host; checks the HTTP code and each JQ_TEST.
expect_service() {
  local unit=$1 url=http://127.0.0.1:$PORT/api/v1/system/services/$1 body=$RUN/service-$BOOTS-$1.json code
  code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 30 "$url" 2>"$RUN/curl-$BOOTS.err") || code=000
  [ "$code" = "$2" ] || fail "boot $BOOTS: GET /api/v1/system/services/$unit answered HTTP $code, expected $2 ($(head -c 300 "$body" 2>/dev/null; cat "$RUN/curl-$BOOTS.err"))"
  local test
  for test in "${@:3}"; do
    jq -e "$test" "$body" >/dev/null || fail "boot $BOOTS: the answer for $unit fails \`$test\`: $(jq -c . "$body" | head -c 600)"
  done
  log "boot $BOOTS: GET /api/v1/system/services/$unit: HTTP $code $(jq -c . "$body" | head -c 300)"
}

# expect_report CHECK: a failed gate stays observable from the host. The
# endpoint (bootgate itself during a reboot delay, then bootgate-report.service
# running `bootgate serve`) answers 503 with startup_health_check failed and
# CHECK among startup_failing with its message; /readyz fails and /metrics has
# bootgate_gate_passed 0. Polls from when the verdict was seen while the guest
# is up, up to STEP_TIMEOUT, and records how long that took. A gate that
# reboots answers only during its reboot delay: the policies that are asked
# for this (bad.yaml, soakflap.yaml) wait 30 s, many times what the host needs
# even with both cores busy; a guest that goes down first fails here, saying so.
expect_report() {
  local check=$1 url=http://127.0.0.1:$PORT body=$RUN/report-$BOOTS.json code ready metrics last
  local t0=$EPOCHREALTIME end=$((SECONDS + STEP_TIMEOUT))
  # All three answers in one pass: `run` answers until it exits, the report unit
  # from when it has started, and a request may fall into the hand-over between.
  while :; do
    code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 10 "$url$HEALTH_ROUTE" 2>/dev/null) || code=000
    ready=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$url/readyz" 2>/dev/null) || ready=000
    metrics=$(curl -sS --max-time 10 "$url/metrics" 2>/dev/null) || metrics=
    if [ "$code" = 503 ] && jq -e '.startup_health_check == "failed"' "$body" >/dev/null 2>&1 &&
      [ "$ready" = 503 ] && grep -qx 'bootgate_gate_passed 0' <<<"$metrics"; then
      break
    fi
    last="last: health HTTP $code $(head -c 300 "$body" 2>/dev/null || true), readyz HTTP $ready, gate_passed line: $(grep '^bootgate_gate_passed' <<<"$metrics" || true)"
    vm_alive || fail "boot $BOOTS: the guest went down $(calc "$EPOCHREALTIME - $t0")s after the verdict, before the host saw the failed gate reported ($last): its reboot_delay of ${REBOOT_DELAY[$BOOT_SLOT]}s is too short"
    ((SECONDS < end)) || fail "boot $BOOTS: the failed gate was not reported within ${STEP_TIMEOUT}s ($last)"
    sleep 0.1
  done
  local took
  took=$(calc "$EPOCHREALTIME - $t0")
  jq -e --arg c "$check" '.startup_failing | any(.name == $c and (.message | length > 0))' "$body" >/dev/null ||
    fail "boot $BOOTS: the report does not name $check with its message: $(jq -c '{startup_failing}' "$body")"
  [ "$(jq -r .status "$body")" = unhealthy ] || fail "boot $BOOTS: the report says $(jq -r .status "$body"), expected unhealthy"
  TIMINGS+=("verdict→report answering ${took}s")
  log "boot $BOOTS: the failed gate is reported ${took}s after the verdict: HTTP 503, readyz 503, gate_passed 0, failing $(jq -c '[.startup_failing[] | .name + ": " + .message]' "$body" | head -c 300)"
}

# expect_stays_up SECONDS: after a failed gate that must not reboot, QEMU is
# still running SECONDS later. Only a first look: wait_settled has already
# seen bootgate.service end (a process that has exited reboots nothing), and
# vm_poweroff fails the scenario on any reboot that slipped in later.
expect_stays_up() {
  if ! vm_wait_exit "$1"; then
    log "boot $BOOTS: no reboot within ${1}s of bootgate settling"
    # shellcheck disable=SC2034 # vm_poweroff checks that no reboot slipped in later
    STAYS_UP=$BOOTS
    return 0
  fi
  fail "boot $BOOTS (USR-$BOOT_SLOT): the guest went down although bootgate must stay up (status: ${STATUS_TEXT:-?})"
}

# expect_reboot: after a failed gate (or a revert), bootgate itself reboots
# the guest: within the slot's reboot_delay and STEP_TIMEOUT for the shutdown
# (idle 3-4 s).
expect_reboot() {
  local bound=$((${REBOOT_DELAY[$BOOT_SLOT]} + STEP_TIMEOUT))
  vm_wait_exit "$bound" || fail "boot $BOOTS (USR-$BOOT_SLOT): the guest did not reboot within ${bound}s (status: $(field "$(guest_line '^bootgate ')" status))"
  local line
  line=$(tr -d '\r' <"$LOG" | grep -a 'reboot: Restarting system' | tail -1) ||
    fail "boot $BOOTS (USR-$BOOT_SLOT): QEMU ended, but not through a reboot: $(tr -d '\r' <"$LOG" | tail -3 | tr '\n' ' ')"
  # The kernel's own time stamp of the restart, seconds since kernel start.
  local t
  t=$(sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p' <<<"$line")
  [ -z "$t" ] || TIMINGS+=("verdict→reboot $(secs "$t - $VERDICT_T")")
  log "boot $BOOTS: the guest rebooted by itself${t:+ at ${t}s}"
}

# wait_rauc_call CALL: waits for RAUC's custom boot loader backend to be called
# with CALL in this boot (its "rauc CALL t=..." console line, e.g. CALL
# "set-state B good"), and records the time from the verdict to it.
wait_rauc_call() {
  wait_line "^rauc $1 t=" "$STEP_TIMEOUT" || fail "boot $BOOTS (USR-$BOOT_SLOT): RAUC never called its boot loader backend with '$1'"
  local line
  line=$(guest_line "^rauc $1 t=")
  TIMINGS+=("verdict→RAUC $1 $(secs "$(field "$line" t) - $VERDICT_T")")
  log "boot $BOOTS: $line"
}

# expect_rauc_calls REGEX...: the backend's call log on the STATE partition
# has a line matching each REGEX (whole line), in this order.
expect_rauc_calls() {
  local calls re rest
  calls=$(rauc_calls) || true
  rest=$calls
  for re in "$@"; do
    grep -xE -- "$re" <<<"$rest" >/dev/null || fail "the RAUC boot loader's call log lacks /$re/ (in order): $(paste -sd, - <<<"$calls")"
    rest=$(sed -n "/^$re\$/,\$p" <<<"$rest" | sed 1d)
  done
  log "RAUC boot loader calls: $(grep -v '^get-' <<<"$calls" | paste -sd, -) (and $(grep -c '^get-' <<<"$calls" || true) get-… calls)"
}

# expect_rauc_activated: in this boot the system bus started RAUC (rauc.service,
# which nothing else starts) on bootgate's call to its name.
expect_rauc_activated() {
  expect_console "Activating via systemd: service name='de\.pengutronix\.rauc' unit='rauc\.service' requested by .*comm=\"/usr/bin/bootgate run\"" \
    "the system bus starts RAUC on bootgate's call (D-Bus activation)"
}
