#!/usr/bin/env bash
# Installs an already-built bootgate into a DESTDIR tree:
#
#   build/install.sh DESTDIR [PREFIX [BINARY]]
#
# PREFIX defaults to /usr, BINARY to $BOOTGATE_BIN, then to
# ${CARGO_TARGET_DIR:-target}/release/bootgate. Installing over an earlier run
# replaces the same files, so it can be repeated. Nothing is built here: the
# caller (make install, build/sysext.sh) builds first.
set -euo pipefail

usage() {
  echo "usage: $0 DESTDIR [PREFIX [BINARY]]  (BINARY also from \$BOOTGATE_BIN)" >&2
  exit 64
}

[ $# -ge 1 ] && [ $# -le 3 ] && [ -n "$1" ] || usage
destdir=${1%/}
prefix=${2:-/usr}
prefix=${prefix%/}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${3:-${BOOTGATE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/bootgate}}

case $prefix in
  /*) ;;
  *) echo "install.sh: PREFIX must be absolute, got '$prefix'" >&2; exit 64 ;;
esac
if [ ! -x "$bin" ]; then
  echo "install.sh: no executable bootgate at '$bin'; build it first (cargo build --release) or set BOOTGATE_BIN" >&2
  exit 1
fi
for f in systemd/bootgate.service systemd/bootgate-report.service systemd/bootgate.service.d/10-docker.conf \
  systemd/bootgate.service.d/20-network-online.conf systemd/update-engine.service.d/10-bootgate.conf systemd/bootgate.catalog policy/default.yaml policy/schema.json \
  integrations/mender/ArtifactCommit_Enter_00_bootgate; do
  if [ ! -f "$root/$f" ]; then
    echo "install.sh: $root/$f is missing" >&2
    exit 1
  fi
done

# Directories that install -D creates must be world-readable whatever the
# caller's umask: in a sysext image they are overlaid onto /usr, and a 0700
# usr/lib there would lock every user out of the host's /usr/lib.
umask 022

unitdir=$prefix/lib/systemd/system

install -D -m 0755 "$bin" "$destdir$prefix/bin/bootgate"
install -D -m 0644 "$root/policy/default.yaml" "$destdir$prefix/share/bootgate/policy.yaml"
# Where the shipped policies' `yaml-language-server` line points editors.
install -D -m 0644 "$root/policy/schema.json" "$destdir$prefix/share/bootgate/schema.json"
# The Mender state script, for `mender-artifact write … -s` (docs/integrations.md). Data
# here, not a command: Mender stores an Artifact's state scripts executable itself.
install -D -m 0644 "$root/integrations/mender/ArtifactCommit_Enter_00_bootgate" \
  "$destdir$prefix/share/bootgate/integrations/mender/ArtifactCommit_Enter_00_bootgate"
install -D -m 0644 "$root/systemd/update-engine.service.d/10-bootgate.conf" \
  "$destdir$unitdir/update-engine.service.d/10-bootgate.conf"
install -D -m 0644 "$root/systemd/bootgate.service.d/10-docker.conf" \
  "$destdir$unitdir/bootgate.service.d/10-docker.conf"
# Off as shipped: where systemd does not read it, for an administrator to link into
# /etc when the policy's critical checks reach the network (see its comment).
install -D -m 0644 "$root/systemd/bootgate.service.d/20-network-online.conf" \
  "$destdir$prefix/share/bootgate/dropins/bootgate.service.d/20-network-online.conf"
# What `journalctl -x` says about bootgate's MESSAGE_IDs.
install -D -m 0644 "$root/systemd/bootgate.catalog" "$destdir$prefix/lib/systemd/catalog/bootgate.catalog"

# The units name the binary by absolute path; point them at this prefix.
# bootgate itself only looks for /usr/share/bootgate/policy.yaml, and
# otherwise uses its embedded copy of the same default policy.
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for unit in bootgate.service bootgate-report.service; do
  sed "s|^ExecStart=/usr/bin/bootgate |ExecStart=$prefix/bin/bootgate |" "$root/systemd/$unit" >"$tmp"
  install -D -m 0644 "$tmp" "$destdir$unitdir/$unit"
done
