#!/usr/bin/env bash
# Builds the RPM of an already-built bootgate with rpmbuild (Debian's `rpm`
# package has it) from build/bootgate.spec:
#
#   build/rpm.sh OUTDIR        -> OUTDIR/bootgate-<version>-1.<arch>.rpm
#
# The binary comes from $BOOTGATE_BIN, else ${CARGO_TARGET_DIR:-target}/release/bootgate.
# The files are laid out by build/stage.sh in Fedora's places; rpmbuild's
# dependency generator reads the libraries bootgate links from the binary.
# Prints the package's path.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=build/pkglib.sh
. "$root/build/pkglib.sh"
want_outdir "$@"
outdir=$1
bin=${BOOTGATE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/bootgate}

need rpmbuild rpm
need_binary "$bin"
version=$(package_version "$root")
arch=$(package_arch rpm "$bin")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
umask 022
BOOTGATE_BIN=$bin "$root/build/stage.sh" "$work/stage" rpm
with_catalog=0
[ -f "$work/stage/usr/lib/systemd/catalog/bootgate.catalog" ] && with_catalog=1

# Reproducible: build time and file times are the commit's, or $SOURCE_DATE_EPOCH.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
# Everything rpmbuild writes stays in the work directory, none of it in ~/rpmbuild;
# and its own database is never touched.
SOURCE_DATE_EPOCH=$epoch rpmbuild -bb --quiet \
  --target "$arch" \
  --define "_topdir $work/top" \
  --define "_dbpath $work/db" \
  --define "pkg_version $version" \
  --define "pkg_arch $arch" \
  --define "stage $work/stage" \
  --define "with_catalog $with_catalog" \
  --define "use_source_date_epoch_as_buildtime 1" \
  --define "clamp_mtime_to_source_date_epoch 1" \
  "$root/build/bootgate.spec" >"$work/rpmbuild.log" 2>&1 || {
  cat "$work/rpmbuild.log" >&2
  echo "rpm.sh: rpmbuild failed" >&2
  exit 1
}

mkdir -p "$outdir"
rpm=$outdir/bootgate-$version-1.$arch.rpm
mv -f "$work/top/RPMS/$arch/bootgate-$version-1.$arch.rpm" "$rpm"
echo "$rpm"
