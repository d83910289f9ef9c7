#!/usr/bin/env bash
# `make run`: runs bootgate in the foreground.
#
#   POLICY=FILE LISTEN=ADDR:PORT build/run.sh [BINARY]
#
# The policy is POLICY, else $BOOTGATE_POLICY, else the built-in default
# (policy/default.yaml, never a policy installed in /etc or /usr/share); LISTEN
# overrides its server.listen. Everything it writes is under target/run (the
# verdict there, the history in target/run/state), and that is all it deletes.
#
# The default policy holds Docker critical, as every Flatcar machine has it. A
# development machine often has Docker installed but no engine running, so
# when none answers this starts a private one (own data dir and socket under
# target/, no networking changes) for the run and stops it afterwards.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:-$root/target/release/bootgate}
state=$root/target/run
# A fresh run dir each time: a boot is judged once, but `make run` is not a
# boot, and a verdict left from the last run would make this one exit at once.
rm -rf "$state"
mkdir -p "$state/state"

args=()
if [ -n "${POLICY:-}" ]; then
  args+=(--policy "$POLICY")
elif [ -z "${BOOTGATE_POLICY:-}" ]; then
  args+=(--policy "$root/policy/default.yaml")
fi
[ -z "${LISTEN:-}" ] || args+=(--listen "$LISTEN")

dockerd_pid=
dir=
cleanup() {
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    kill -TERM "$dockerd_pid"
    for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$dockerd_pid" 2>/dev/null || true
  fi
  if [ -n "$dir" ]; then
    umount -R "$dir/exec" 2>/dev/null || true
    rm -rf "$dir"
  fi
}
trap cleanup EXIT

docker_answers() { /usr/bin/docker -H "$1" version >/dev/null 2>&1; }

if [ -z "${DOCKER_HOST:-}" ] && ! docker_answers unix:///var/run/docker.sock; then
  # A short path: unix socket paths are limited to 107 bytes.
  dir=$(mktemp -d /tmp/bgrun.XXXXXX)
  echo "run: no Docker engine answers; starting a private one in $dir" >&2
  printf '{"deprecated-key-path": "%s/key.json"}\n' "$dir" >"$dir/daemon.json"
  setsid dockerd --config-file "$dir/daemon.json" --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/pid" -H "unix://$dir/sock" --bridge=none --iptables=false --ip6tables=false \
    --ip-forward=false --ip-masq=false --userland-proxy=false >"$state/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 300); do docker_answers "unix://$dir/sock" && break; sleep 0.1; done
  docker_answers "unix://$dir/sock" || { echo "run: the private dockerd did not start; see $state/dockerd.log" >&2; exit 1; }
  export DOCKER_HOST=unix://$dir/sock
fi

# Not exec: the trap must stop the private engine when bootgate ends.
"$bin" run --run-dir "$state" --state-dir "$state/state" "${args[@]}" && rc=0 || rc=$?
exit $rc
