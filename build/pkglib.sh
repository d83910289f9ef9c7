# shellcheck shell=bash
# Shared by build/deb.sh and build/rpm.sh (sourced): the package's version and
# architecture, both read from the source of truth rather than the build host.

# The crate's version (the first version key of Cargo.toml's [package] table),
# with a pre-release's "-" as "~", which sorts before the release in both dpkg
# and rpm: 0.2.0-rc.1 becomes 0.2.0~rc.1.
package_version() {
  local v
  v=$(awk '
    /^\[/ { in_package = ($0 == "[package]") }
    in_package && /^version[ \t]*=/ { sub(/^[^"]*"/, ""); sub(/".*$/, ""); print; exit }
  ' "$1/Cargo.toml")
  if [ -z "$v" ]; then
    echo "no version in $1/Cargo.toml [package]" >&2
    return 1
  fi
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
