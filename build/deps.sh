#!/usr/bin/env bash
# The Debian packages bootgate needs, in three sets:
#
#   build/deps.sh [--check] build   what the build links (make build), and Rust >= 1.85
#   build/deps.sh [--check] run     the build set and what `make run` uses (make run)
#   build/deps.sh [--check] test    everything the tests need (make test, make vm-test; the default)
#
# As root it installs the packages of the set that are missing (idempotent: nothing
# is fetched when none is, so `make test` can call it on every run). As another
# user, or with --check, it only reports: the missing packages and the apt command
# that installs them, exiting 1 while any is missing. Rust itself comes from rustup
# in every case: Debian 12's own rustc (1.63) is too old for the crate.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The oldest toolchain that builds the crate.
rust_min=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")

build=(
  # compile: tss-esapi links the TPM2 software stack
  build-essential pkg-config libtss2-dev
)
# `make run` runs what `make build` built; Docker is optional for it (see below).
run=("${build[@]}")
# Optional for `make run`: the default policy's Docker check passes only with an
# engine, and build/run.sh starts a private one when Docker is installed.
run_optional=(docker.io)
tests=(
  "${build[@]}"
  # TPM check tests: a software TPM and the reference client
  swtpm swtpm-tools tpm2-tools
  # Docker check tests: a private engine and a registry-free image
  docker.io busybox-static
  # the same checks against podman's Docker-compatible API (rootful: no uidmap; it
  # pulls in conmon, and uses docker.io's runc)
  podman
  # metrics tests and benchmarks
  prometheus wrk hyperfine nginx-light
  # fleet monitoring test: alerts from the shipped rules reach the Alertmanager example (and amtool)
  prometheus-alertmanager
  # boot integration: GPT tools, sysext images, unit verification, the journal catalog
  gdisk cgpt squashfs-tools systemd
  # sysext image: bundling its libraries, and the systemd-pull that sysupdate runs
  patchelf systemd-container
  # provisioning: the Ignition config is checked with ignition-validate
  ignition
  # vm-tests
  qemu-system-x86 mmdebstrap e2fsprogs
  # vm-tests' UEFI boots: the firmware, and the ESP built and read back without
  # loop mounts (systemd-boot itself comes from the guest's own packages)
  ovmf mtools dosfstools
  # vm-tests' grubenv boots: Debian's GRUB EFI modules, made into one image by
  # grub-mkstandalone (grub-common) on the host; the guest never runs GRUB's tools
  grub-efi-amd64-bin
  # test helpers; script (bsdutils) gives a command a real terminal
  curl procps iproute2 python3 jq bsdutils
  # endpoint TLS tests: the CA, server and client certificates are made by openssl,
  # the basic auth users' bcrypt hashes by htpasswd
  openssl apache2-utils
  # policy schema tests: a real JSON Schema validator (Draft 2020-12)
  python3-jsonschema
  # grubenv backend tests: the environment block is checked against grub-editenv, and
  # a read-only /boot is a mount in a namespace of the test's own (unshare, nsenter,
  # findmnt; mount, which the daemon runs to remount it)
  grub-common util-linux mount
  # rauc backend tests: the real RAUC service on a private system bus
  rauc dbus-daemon
  # efibootguard backend: EFI Boot Guard's loader and bg_setenv/bg_printenv
  efibootguard
  # uboot backend: libubootenv's fw_printenv/fw_setenv, and mkenvimage for environments
  libubootenv-tool u-boot-tools
  # Mender's ArtifactCommit_Enter script, tested with the real standalone client
  mender-client mender-artifact
  # status page tests: a real browser (headless-shell lays out at phone width) and a font
  chromium chromium-headless-shell fonts-dejavu-core
  rpm zsh fish groff-base man-db dpkg-dev  # package tests: rpmbuild/rpm, shells and man for completions and pages, dpkg-shlibdeps
)

usage() {
  echo "usage: $0 [--check] [build|run|test]" >&2
  exit 64
}

check=0
set_name=
for arg in "$@"; do
  case $arg in
    --check) check=1 ;;
    build | run | test) [ -z "$set_name" ] || usage; set_name=$arg ;;
    *) usage ;;
  esac
done
set_name=${set_name:-test}
case $set_name in
  build) packages=("${build[@]}") ;;
  run) packages=("${run[@]}") ;;
  test) packages=("${tests[@]}") ;;
esac

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Rust: present and new enough, else how to get it. Returns 1 when it is not.
rust_ok() {
  local version
  if ! version=$(cargo --version 2>/dev/null); then
    echo "deps.sh: cargo not found: install Rust through rustup (https://rustup.rs);" \
      "bootgate needs Rust $rust_min or newer, and Debian 12's own rustc is 1.63" >&2
    return 1
  fi
  version=$(awk '{ print $2 }' <<<"$version")
  if [ "$(printf '%s\n' "$rust_min" "${version%%-*}" | sort -V | head -1)" != "$rust_min" ]; then
    echo "deps.sh: cargo $version is older than $rust_min: install Rust through rustup" \
      "(https://rustup.rs), or \`rustup update\` if it came from there" >&2
    return 1
  fi
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
rc=0
rust_ok || rc=1
if [ "$set_name" = run ]; then
  for p in "${run_optional[@]}"; do
    installed "$p" ||
      echo "deps.sh: optional for make run: $p (the default policy's Docker check needs an engine; build/run.sh starts a private one when Docker is installed)" >&2
  done
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit $rc
fi

if [ "$check" = 1 ] || [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: the $set_name set lacks ${#missing[@]} Debian packages: ${missing[*]}" >&2
  echo "deps.sh: install them as root with:" >&2
  echo "  apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "deps.sh: installing the $set_name set's missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
exit $rc
