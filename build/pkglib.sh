# shellcheck shell=bash
# Shared by build/deb.sh, build/rpm.sh and build/sysext.sh (sourced): their one
# argument, the tools and binary they need, the version and architecture, both
# read from the source of truth rather than the build host.

# Exits 64 with the usage unless the script was given exactly one OUTDIR.
want_outdir() {
  if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 64
  fi
}

# Exits unless tool $1 is on the PATH, naming the Debian package $2 that has it.
need() {
  if ! command -v "$1" >/dev/null; then
    echo "$(basename "$0"): $1 not found; install the Debian package $2 (build/deps.sh does)" >&2
    exit 1
  fi
}

# Exits unless $1, the bootgate to package, is an executable.
need_binary() {
  if [ ! -x "$1" ]; then
    echo "$(basename "$0"): no executable bootgate at '$1'; build it first or set BOOTGATE_BIN" >&2
    exit 1
  fi
}

# The crate's version: the first version key of Cargo.toml's [package] table.
crate_version() {
  local v
  v=$(awk '
    /^\[/ { in_package = ($0 == "[package]") }
    in_package && /^version[ \t]*=/ { sub(/^[^"]*"/, ""); sub(/".*$/, ""); print; exit }
  ' "$1/Cargo.toml")
  if [ -z "$v" ]; then
    echo "no version in $1/Cargo.toml [package]" >&2
    return 1
  fi
  echo "$v"
}

# The crate's version with a pre-release's "-" as "~", which sorts before the
# release in both dpkg and rpm: 0.2.0-rc.1 becomes 0.2.0~rc.1.
package_version() {
  local v
  v=$(crate_version "$1") || return 1
  echo "${v/-/\~}"
}

# The architecture of ELF executable $2 in the naming of $1 (deb or rpm), from
# its e_machine field: a cross-built binary is packaged as what it is.
package_arch() {
  local machine
  if [ "$(head -c 4 "$2" | od -An -c | tr -d ' ')" != '177ELF' ]; then
    echo "$2 is not an ELF executable" >&2
    return 1
  fi
  machine=$(od -An -tu2 -j18 -N2 "$2" | tr -d ' ')
  case $1:$machine in
    deb:62) echo amd64 ;;
    deb:183) echo arm64 ;;
    rpm:62) echo x86_64 ;;
    rpm:183) echo aarch64 ;;
    *) echo "$2: ELF machine $machine is neither x86-64 (62) nor aarch64 (183)" >&2; return 1 ;;
  esac
}
