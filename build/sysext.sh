#!/usr/bin/env bash
# Builds the Flatcar systemd-sysext image of an already-built bootgate:
#
#   build/sysext.sh OUTDIR        -> OUTDIR/bootgate-<version>-x86-64.raw
#
# The binary comes from $BOOTGATE_BIN, else
# ${CARGO_TARGET_DIR:-target}/release/bootgate. The image holds only usr/:
# the binary, the units, the default policy and the extension-release file.
# On the machine it must be reachable as /etc/extensions/bootgate.raw (a
# symlink is fine): systemd-sysext takes the extension's name from that file
# name and requires usr/lib/extension-release.d/extension-release.<name>.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 64
fi
outdir=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BOOTGATE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/bootgate}

if ! command -v mksquashfs >/dev/null; then
  echo "sysext.sh: mksquashfs not found; install squashfs-tools (build/deps.sh does)" >&2
  exit 1
fi

# The package version: the first version key of the [package] table.
version=$(awk '
  /^\[/ { in_package = ($0 == "[package]") }
  in_package && /^version[ \t]*=/ { sub(/^[^"]*"/, ""); sub(/".*$/, ""); print; exit }
' "$root/Cargo.toml")
if [ -z "$version" ]; then
  echo "sysext.sh: no version in $root/Cargo.toml [package]" >&2
  exit 1
fi

# The image declares ARCHITECTURE=x86-64, so it must not carry anything else:
# check the ELF header (magic, then e_machine 62 = EM_X86_64).
if [ ! -x "$bin" ]; then
  echo "sysext.sh: no executable bootgate at '$bin'; build it first or set BOOTGATE_BIN" >&2
  exit 1
fi
if [ "$(head -c 4 "$bin" | od -An -c | tr -d ' ')" != '177ELF' ] ||
   [ "$(od -An -tu2 -j18 -N2 "$bin" | tr -d ' ')" != 62 ]; then
  echo "sysext.sh: $bin is not an x86-64 ELF executable" >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
umask 022

BOOTGATE_BIN=$bin "$root/build/install.sh" "$stage" /usr

# Matched against the host's /etc/os-release. Flatcar defines SYSEXT_LEVEL
# 1.0 for images that do not depend on one OS release, so the image survives
# OS updates. EXTENSION_RELOAD_MANAGER=1 makes systemd 255 and later reload
# units after merging; older releases ignore it and rely on Flatcar's
# ensure-sysext.service for the same.
install -d -m 0755 "$stage/usr/lib/extension-release.d"
cat >"$stage/usr/lib/extension-release.d/extension-release.bootgate" <<RELEASE
ID=flatcar
SYSEXT_LEVEL=1.0
ARCHITECTURE=x86-64
EXTENSION_RELOAD_MANAGER=1
RELEASE

# Units from an extension are never "enabled" (no symlinks in /etc), so the
# target starts the service itself. Upholds= rather than Wants=: it also
# acts when the image is merged after multi-user.target was reached. It
# restarts the unit whenever it finds it stopped or failed, a failed gate
# included (RestartPreventExitStatus= does not apply): a restarted bootgate
# answers from the boot's verdict kept in /run/bootgate, and
# StartLimitBurst= in bootgate.service then leaves the unit failed.
install -d -m 0755 "$stage/usr/lib/systemd/system/multi-user.target.d"
cat >"$stage/usr/lib/systemd/system/multi-user.target.d/10-bootgate.conf" <<'DROPIN'
# Start bootgate with multi-user.target: units shipped in a sysext image
# cannot be enabled, so this drop-in stands in for WantedBy=.
[Unit]
Upholds=bootgate.service
DROPIN
chmod 0644 "$stage/usr/lib/extension-release.d/extension-release.bootgate" \
  "$stage/usr/lib/systemd/system/multi-user.target.d/10-bootgate.conf"

# Overlaid directories take the image's modes: keep every one 0755.
find "$stage/usr" -type d -exec chmod 0755 {} +

mkdir -p "$outdir"
image=$outdir/bootgate-$version-x86-64.raw
# -all-root: the build user's ids mean nothing on the target.
# -noappend: replace, never extend, an image from an earlier run.
# -no-xattrs: the staging directory's labels (SELinux, btrfs) are the build
# host's, not the target's.
# Reproducible: two builds of one commit are byte-identical. Every time stamp
# (files and the file system itself) is the commit's time, or
# $SOURCE_DATE_EPOCH when the caller sets one; mksquashfs sorts entries itself.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
env -u SOURCE_DATE_EPOCH mksquashfs "$stage" "$image.tmp" -all-root -noappend -no-xattrs -quiet \
  -mkfs-time "$epoch" -all-time "$epoch" >/dev/null
mv -f "$image.tmp" "$image"
echo "$image"
