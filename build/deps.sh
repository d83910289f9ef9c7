#!/usr/bin/env bash
# Installs every system package that building and testing bootgate needs.
# Idempotent: packages already present are not fetched again, so `make test`
# can call it on every run.
set -euo pipefail

packages=(
  # compile: tss-esapi links the TPM2 software stack
  build-essential pkg-config libtss2-dev
  # TPM check tests: a software TPM and the reference client
  swtpm swtpm-tools tpm2-tools
  # Docker check tests: a private engine and a registry-free image
  docker.io busybox-static
  # metrics tests and benchmarks
  prometheus wrk hyperfine nginx-light
  # fleet monitoring test: alerts from the shipped rules reach a real Alertmanager
  prometheus-alertmanager
  # boot integration: GPT tools, sysext images, unit verification
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
  # test helpers
  curl procps iproute2 python3 jq
  # policy schema tests: a real JSON Schema validator (Draft 2020-12)
  python3-jsonschema
  # grubenv backend tests: the environment block is checked against grub-editenv
  grub-common
  # rauc backend tests: the real RAUC service on a private system bus
  rauc dbus-daemon
  # status page tests: a real browser (headless-shell lays out at phone width) and a font
  chromium chromium-headless-shell fonts-dejavu-core
  rpm zsh fish groff-base man-db dpkg-dev  # package tests: rpmbuild/rpm, shells and man for completions and pages, dpkg-shlibdeps
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
