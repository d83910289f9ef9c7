#!/usr/bin/env bash
# Builds the Flatcar systemd-sysext image of an already-built bootgate:
#
#   build/sysext.sh OUTDIR   -> OUTDIR/bootgate-<version>-x86-64.raw
#                               OUTDIR/bootgate.conf   (systemd-sysupdate transfer)
#                               OUTDIR/SHA256SUMS
#
# The binary comes from $BOOTGATE_BIN, else
# ${CARGO_TARGET_DIR:-target}/release/bootgate. The image holds only usr/:
# the binary, every shared library it needs beyond glibc (usr/lib/bootgate/,
# found through the copied binary's run path), the units, the default policy
# and the extension-release file. The input binary is never modified.
# On the machine it must be reachable as /etc/extensions/bootgate.raw (a
# symlink is fine): systemd-sysext takes the extension's name from that file
# name and requires usr/lib/extension-release.d/extension-release.<name>.
# docs/packages.md says which Flatcar releases the image runs on.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=build/pkglib.sh
. "$root/build/pkglib.sh"
want_outdir "$@"
outdir=$1
bin=${BOOTGATE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/bootgate}

need mksquashfs squashfs-tools
need patchelf patchelf
need readelf binutils
need objdump binutils
need ldconfig libc-bin
need sha256sum coreutils

version=$(crate_version "$root")

# The image declares ARCHITECTURE=x86-64, so it must not carry anything else:
# check the ELF header (magic, then e_machine 62 = EM_X86_64).
need_binary "$bin"
if [ "$(package_arch rpm "$bin" 2>/dev/null)" != x86_64 ]; then
  echo "sysext.sh: $bin is not an x86-64 ELF executable" >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
umask 022

BOOTGATE_BIN=$bin "$root/build/install.sh" "$stage" /usr

# Shared libraries. Everything the binary needs beyond glibc travels in the
# image, so a Flatcar update that renames or drops a TSS or OpenSSL library
# cannot stop the gate (and with it update-engine, which Requires= it).
# glibc stays the host's: it is the one ABI every Flatcar release keeps, and
# its loader must match its libc. These sonames are never bundled:
glibc=" ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libmvec.so.1 libpthread.so.0 libdl.so.2 librt.so.1 libutil.so.1 libresolv.so.2 libanl.so.1 "
# libtss2-tctildr dlopens a TCTI module by name when a TPM is opened, so no
# NEEDED entry names these; ship the ones the policy's `device` and `tcti`
# keys reach. tabrmd is left out: it needs D-Bus and the tpm2-abrmd daemon,
# which Flatcar does not ship (the kernel's /dev/tpmrm0 does that job).
tctis=(libtss2-tcti-device.so.0 libtss2-tcti-swtpm.so.0 libtss2-tcti-mssim.so.0)
# Private to bootgate: the image's usr/ is overlaid onto the host's /usr, and
# no host file lives under /usr/lib/bootgate. Never usr/lib itself.
libdir=usr/lib/bootgate
# The newest glibc the image may need: the build host's (Debian 12), which
# docs/packages.md promises Flatcar has. A newer build host fails here.
glibc_floor=2.36

needed() {
  readelf -d "$1" | sed -n 's/^.*(NEEDED).*\[\(.*\)\]$/\1/p'
}

# The host's copy of a soname, as the dynamic loader would find it. awk reads
# to the end: leaving early would kill ldconfig with SIGPIPE (and pipefail).
resolve() {
  ldconfig -p | awk -v name="$1" '$1 == name && /x86-64/ && !found { print $NF; found = 1 }'
}

# The TSS libraries are opened at run time too (dlopen, on the first TPM check),
# through the binary's run path set below.
dlopened=(libtss2-esys.so.0 libtss2-tctildr.so.0)

# The closure: the binary's NEEDED entries, the libraries it opens and the TCTI
# modules, then theirs.
mapfile -t queue < <(needed "$stage/usr/bin/bootgate")
queue+=("${dlopened[@]}" "${tctis[@]}")
bundle=" "
while [ ${#queue[@]} -gt 0 ]; do
  name=${queue[0]}
  queue=("${queue[@]:1}")
  case "$glibc$bundle" in *" $name "*) continue ;; esac
  path=$(resolve "$name")
  if [ -z "$path" ]; then
    echo "sysext.sh: bootgate needs $name, which is not installed here (ldconfig -p does not list it); install the library (build/deps.sh does) and run again" >&2
    exit 1
  fi
  bundle="$bundle$name "
  mapfile -t -O ${#queue[@]} queue < <(needed "$path")
  # Copied under its soname, which is the name the loader and dlopen ask for.
  install -D -m 0644 "$path" "$stage/$libdir/$name"
done

# DT_RUNPATH of each object covers only its own NEEDED entries and dlopen
# calls, so every bundled library points at its own directory too: that is
# how libtss2-tctildr finds the TCTI modules beside it. $ORIGIN is the
# loader's to expand, never the shell's.
# shellcheck disable=SC2016
for name in $bundle; do
  patchelf --set-rpath '$ORIGIN' "$stage/$libdir/$name"
done
# shellcheck disable=SC2016
patchelf --set-rpath '$ORIGIN/../lib/bootgate' "$stage/usr/bin/bootgate"

for elf in "$stage/usr/bin/bootgate" "$stage/$libdir"/*; do
  newest=$(objdump -T "$elf" | sed -n 's/.*GLIBC_\(2\.[0-9.]*\).*/\1/p' | sort -V | tail -n 1)
  if [ -n "$newest" ] && [ "$(printf '%s\n%s\n' "$glibc_floor" "$newest" | sort -V | tail -n 1)" != "$glibc_floor" ]; then
    echo "sysext.sh: ${elf#"$stage"/} needs glibc $newest, newer than the $glibc_floor this image promises (docs/packages.md); build on Debian 12" >&2
    exit 1
  fi
done

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

# Beside the image, what a release directory serves to systemd-sysupdate: the
# transfer file (operators copy it to /etc/sysupdate.bootgate.d/) and one
# SHA256SUMS covering every image in OUTDIR, so building several versions
# into one directory yields a directory sysupdate can choose from.
install -m 0644 "$root/build/flatcar/sysupdate.bootgate.d/bootgate.conf" "$outdir/bootgate.conf"
(
  cd "$outdir"
  export LC_ALL=C # the glob's order, so the file is reproducible
  sha256sum -- bootgate.conf bootgate-*-x86-64.raw >SHA256SUMS.tmp
  mv -f SHA256SUMS.tmp SHA256SUMS
)
echo "$image"
