#!/usr/bin/env bash
# Builds the Debian package of an already-built bootgate with dpkg-deb:
#
#   build/deb.sh OUTDIR        -> OUTDIR/bootgate_<version>_<arch>.deb
#
# The binary comes from $BOOTGATE_BIN, else ${CARGO_TARGET_DIR:-target}/release/bootgate.
# The files are laid out by build/stage.sh; Depends: comes from dpkg-shlibdeps,
# the maintainer scripts from packaging/deb/. Nothing goes under /etc, so there
# are no conffiles. Prints the package's path.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=build/pkglib.sh
. "$root/build/pkglib.sh"
want_outdir "$@"
outdir=$1
bin=${BOOTGATE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/bootgate}

need dpkg-deb dpkg
need dpkg-shlibdeps dpkg-dev
need_binary "$bin"
version=$(package_version "$root")
arch=$(package_arch deb "$bin")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
umask 022
# dpkg-shlibdeps expects debhelper's layout: debian/control, the files in debian/<package>.
pkg=$work/debian/bootgate
BOOTGATE_BIN=$bin "$root/build/stage.sh" "$pkg" deb

# The libraries the binary links, as the Debian packages (and minimum versions)
# that provide them: libc, libgcc.
printf 'Source: bootgate\n\nPackage: bootgate\nArchitecture: any\n' >"$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O -e debian/bootgate/usr/bin/bootgate 2>"$work/shlibdeps.err") || {
  cat "$work/shlibdeps.err" >&2
  echo "deb.sh: dpkg-shlibdeps failed: the libraries bootgate links must come from installed Debian packages" >&2
  exit 1
}
depends=${depends#shlibs:Depends=}
# libtss2-esys and libtss2-tctildr are opened at run time, on the first TPM
# check, so no NEEDED entry names them and dpkg-shlibdeps cannot see them: each
# is depended on as its package's shlibs entry declares, as for a linked library.
for soname in libtss2-esys.so.0 libtss2-tctildr.so.0; do
  package=$(dpkg-query -S "*/$soname" 2>/dev/null | sed -n '1s/:.*//p')
  entry=$(dpkg-query --control-show "$package" shlibs 2>/dev/null |
    awk -v lib="${soname%.so.*}" -v ver="${soname##*.so.}" '$1 == lib && $2 == ver { $1 = $2 = ""; sub(/^ +/, ""); print; exit }')
  if [ -z "$entry" ]; then
    echo "deb.sh: bootgate opens $soname, which no installed Debian package declares (install it: build/deps.sh does)" >&2
    exit 1
  fi
  depends="$depends, $entry"
done
# The units' ExecReload= runs /usr/bin/kill, which Debian ships in procps.
depends="$depends, procps"

install -d "$pkg/DEBIAN"
install -m 0755 "$root"/packaging/deb/postinst "$root"/packaging/deb/prerm "$root"/packaging/deb/postrm "$pkg/DEBIAN/"
# What `dpkg --verify` checks the installed files against.
(cd "$pkg" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: bootgate
Version: $version
Architecture: $arch
Maintainer: bootgate developers <dev@bootgate.invalid>
Installed-Size: $size
Depends: $depends
Recommends: systemd
Section: admin
Priority: optional
Description: boot health gate for A/B-partitioned immutable operating systems
 bootgate runs the checks of a YAML policy (TPM, disk, Docker, network, HTTP,
 systemd units, commands) when a machine boots and tells systemd the boot is
 good only once every critical check has passed; afterwards it keeps checking
 and serves a health endpoint and Prometheus metrics. On an A/B system a
 failed gate leaves the new slot unconfirmed and reboots into the fallback.
 .
 The package enables bootgate.service (see its preset) without starting it:
 the gate runs from the next boot on. Drop-ins for Docker, for waiting for the
 network and for Flatcar's update_engine are in /usr/share/bootgate/dropins, off
 until linked.
CONTROL

# Reproducible: every time stamp is the commit's time, or $SOURCE_DATE_EPOCH.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
find "$pkg" -exec touch -h -d "@$epoch" {} +

mkdir -p "$outdir"
deb=$outdir/bootgate_${version}_${arch}.deb
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb.tmp" >/dev/null
mv -f "$deb.tmp" "$deb"
echo "$deb"
