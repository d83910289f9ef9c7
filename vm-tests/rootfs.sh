#!/usr/bin/env bash
# Builds the guest's Debian bookworm root file system (kernel and initramfs in
# its /boot) into DIR, with any EXTRA packages bootgate's binary links against:
#
#   vm-tests/rootfs.sh DIR [EXTRA_PACKAGE...]
#
# This is the slow step (about a minute), so lib.sh caches its output keyed on
# this file's content and the package list. Only things that rarely change
# belong here; bootgate itself and the harness's guest units are added per run
# (lib.sh, build_disk), so editing them never rebuilds this.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 DIR [EXTRA_PACKAGE...]" >&2; exit 64; }
dir=$1
shift

packages=(
  systemd-sysv udev kmod dbus   # init, device nodes, logind and the system bus for the reboot request
  linux-image-amd64 initramfs-tools
  systemd-boot                  # the UEFI boots: systemd-boot for the ESP, systemd-bless-boot and its generator
  iproute2 curl                 # curl: the guest can query its own health endpoint
  cgpt                          # the stand-in update-engine marks the booted slot with it
  jq                            # the observer reads bootgate's verdict.json with it
  rauc rauc-service             # the rauc scenarios: RAUC's service, D-Bus-activated on the system bus
  efibootguard                  # the efibootguard scenarios: bg_setenv/bg_printenv
  libubootenv-tool              # the uboot scenarios: fw_printenv/fw_setenv
  "$@"
)

# The initramfs only has to find an ext4 root on a virtio disk. A short module
# list keeps it small, and so quick to unpack under TCG; the root file system
# has every module for what udev finds later (network card, TPM).
# shellcheck disable=SC2016 # $1 is the hook's argument, expanded by mmdebstrap
initramfs_hook='
  mkdir -p "$1/etc/initramfs-tools/conf.d"
  echo MODULES=list >"$1/etc/initramfs-tools/conf.d/vm-tests.conf"
  printf "%s\n" virtio_pci virtio_blk ext4 crc32c_generic >"$1/etc/initramfs-tools/modules"
'

mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
  --essential-hook="$initramfs_hook" \
  bookworm "$dir"

# A fixed machine id: with none, every boot is a "first boot" and systemd
# applies presets, which could enable units behind the harness's back.
echo 0f3c5e7a9b1d4c2e8f6a0b3d5c7e9f1a >"$dir/etc/machine-id"
echo bootgate-vm >"$dir/etc/hostname"

# /var is the shared state partition (label STATE) that both slots mount, as on
# Flatcar, so bootgate's boot history survives a fallback from B to A.
echo 'PARTLABEL=STATE /var ext4 defaults 0 0' >"$dir/etc/fstab"
# The ESP (partition 4, on every scenario's disk) at /efi, where systemd-bless-boot
# and bootgate look for the boot loader entries. No nofail: that would stop ordering
# the mount before local-fs.target, and so before both of them. No fsck pass: the
# guest has no fsck.vfat, and the host writes the ESP only while the guest is down.
mkdir -p "$dir/efi"
echo 'PARTLABEL=ESP /efi vfat umask=0077 0 0' >>"$dir/etc/fstab"

# Static address on QEMU's user-mode network: no DHCP wait before
# network-online.target, which bootgate.service pulls in and the policies'
# optional network check asks about. The host reaches the guest only through
# QEMU's forwarded port.
cat >"$dir/etc/systemd/network/10-vm.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
Address=10.0.2.15/24
EOF
ln -sf /lib/systemd/system/systemd-networkd.service "$dir/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
mkdir -p "$dir/etc/systemd/system/network-online.target.wants"
ln -sf /lib/systemd/system/systemd-networkd-wait-online.service \
  "$dir/etc/systemd/system/network-online.target.wants/systemd-networkd-wait-online.service"

# Nobody logs in on the serial console; its login prompt is noise in the log.
ln -sf /dev/null "$dir/etc/systemd/system/serial-getty@ttyS0.service"

# Weight nobody reads: documentation, manuals, translations.
rm -rf "$dir"/usr/share/{doc,man,info,locale}/* "$dir"/var/cache/apt/*.bin "$dir"/var/lib/apt/lists/*

# Boot time under TCG is spent on every unit: drop the periodic maintenance
# and the local login prompt, none of which a test boot needs.
for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
  fstrim.timer e2scrub_reap.service getty@tty1.service systemd-pstore.service modprobe@drm.service; do
  ln -sf /dev/null "$dir/etc/systemd/system/$unit"
done
