# shellcheck shell=bash
# The guest image, sourced by lib.sh: a cached root file system (rootfs.sh),
# then a disk image rebuilt whenever the binary or what the harness puts
# next to it changes.

# Debian packages providing the binary's shared libraries, plus the TPM2
# software stack: tss-esapi loads the device TCTI (libtss2-tcti-device) at run
# time, which ldd does not show.
lib_packages() {
  local bin=$1 lib pkg
  {
    printf '%s\n' libtss2-esys-3.0.2-0 libtss2-tctildr0 libtss2-mu0 libtss2-sys1 libtss2-rc0 libtss2-tcti-device0
    for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
      pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null) ||
        die "no Debian package ships $lib, which $bin links"
      echo "${pkg%%:*}"
    done
  } | sort -u
}

# Sets VMTEST_DISK, VMTEST_KERNEL, VMTEST_INITRD, VMTEST_BIN (exported, so
# scenario scripts started by run.sh reuse them). Builds what is missing.
image_ready() {
  if [ -n "${VMTEST_DISK:-}" ] && [ -f "$VMTEST_DISK" ]; then return 0; fi
  mkdir -p "$CACHE"
  exec {lock}>"$CACHE/lock"
  flock "$lock"

  local src=${BOOTGATE_BIN:-$ROOT/target/debug/bootgate}
  [ -x "$src" ] || die "no bootgate binary at $src: run \`cargo build\` (or set BOOTGATE_BIN)"
  local bin=$CACHE/bootgate
  objcopy --strip-debug "$src" "$bin.tmp"
  mv "$bin.tmp" "$bin"

  local list
  list=$(lib_packages "$bin")
  local -a pkgs
  mapfile -t pkgs <<<"$list"
  local rkey rootfs
  rkey=$(printf '%s\n' "${pkgs[@]}" | cat "$VMT_DIR/rootfs.sh" - | sha256sum | cut -c1-16)
  rootfs=$CACHE/rootfs-$rkey
  if [ ! -d "$rootfs" ]; then
    log "building the guest root file system (mmdebstrap, about a minute; cached as $(basename "$rootfs"))"
    rm -rf "$rootfs.tmp"
    "$VMT_DIR/rootfs.sh" "$rootfs.tmp" "${pkgs[@]}" >"$CACHE/rootfs.log" 2>&1 ||
      die "rootfs.sh failed; see $CACHE/rootfs.log"
    mv "$rootfs.tmp" "$rootfs"
    find "$CACHE" -maxdepth 1 -name 'rootfs-*' ! -name "rootfs-$rkey" -exec rm -rf {} +
  fi

  # Everything that goes into the disk besides the root file system, and how.
  local dkey disk
  dkey=$({
    echo "$rkey $SLOT_MB $STATE_MB $ESP_MB"
    declare -f build_esp
    declare -f build_disk
    cat "$bin" "$ROOT/build/install.sh" "$ROOT/policy/default.yaml" "$VMT_DIR/policies/base.yaml"
    find "$VMT_DIR/guest" "$ROOT/systemd" -type f | sort | xargs cat
  } | sha256sum | cut -c1-16)
  disk=$CACHE/disk-$dkey.img
  if [ ! -f "$disk" ]; then
    local t0=$SECONDS
    build_disk "$rootfs" "$bin" "$disk.tmp"
    mv "$disk.tmp" "$disk"
    find "$CACHE" -maxdepth 1 -name 'disk-*.img' ! -name "disk-$dkey.img" -delete
    log "disk image built in $((SECONDS - t0))s (cached as $(basename "$disk"))"
  fi
  cp "$rootfs"/boot/vmlinuz-* "$CACHE/vmlinuz"
  cp "$rootfs"/boot/initrd.img-* "$CACHE/initrd.img"
  export VMTEST_DISK=$disk VMTEST_KERNEL=$CACHE/vmlinuz VMTEST_INITRD=$CACHE/initrd.img VMTEST_BIN=$bin
  exec {lock}>&-
}

# build_disk ROOTFS BINARY OUT: the guest tree (the cached root file system,
# hard-linked, plus only new files), two identical slots and the STATE partition.
build_disk() {
  local rootfs=$1 bin=$2 out=$3 stage=$CACHE/stage
  rm -rf "$stage" "$CACHE"/disk-*.tmp "$CACHE"/slot.img "$CACHE"/state.img
  # Hard links are safe: nothing below writes to a file that already exists.
  cp -al "$rootfs" "$stage"

  # The product, exactly as shipped: binary, units and their drop-ins, default policy.
  "$ROOT/build/install.sh" "$stage" /usr "$bin"
  systemctl --root="$stage" --quiet enable bootgate.service
  # The harness's own guest side.
  install -D -m 0755 -t "$stage/usr/local/lib/vm-tests" "$VMT_DIR/guest/mark-booted" "$VMT_DIR/guest/observe" \
    "$VMT_DIR/guest/api" "$VMT_DIR/guest/api-dies" "$VMT_DIR/guest/ctl" "$VMT_DIR/guest/greenboot-report" \
    "$VMT_DIR/guest/rollback"
  install -m 0644 -t "$stage/etc/systemd/system" "$VMT_DIR/guest/update-engine.service" "$VMT_DIR/guest/vmtests-observe.service" \
    "$VMT_DIR/guest/vmtests-api.socket" "$VMT_DIR/guest/vmtests-api@.service" "$VMT_DIR/guest/vmtests-api-dies.service" \
    "$VMT_DIR/guest/vmtests-ctl.socket" "$VMT_DIR/guest/vmtests-ctl@.service" "$VMT_DIR/guest/vmtests-greenboot.service"
  systemctl --root="$stage" --quiet enable update-engine.service vmtests-observe.service vmtests-api.socket \
    vmtests-api-dies.service vmtests-ctl.socket vmtests-greenboot.service
  mkdir -p "$stage/etc/vm-tests"
  # The verdict's MESSAGE_ID, for the observer's journal queries, from the source.
  verdict_id >"$stage/etc/vm-tests/verdict-id"
  # What a package manager's trigger does after install.sh put the catalog in place:
  # compile it, so `journalctl -x` in the guest explains bootgate's entries.
  journalctl --root="$stage" --update-catalog
  install -D -m 0644 "$VMT_DIR/policies/base.yaml" "$stage/etc/bootgate/policy.yaml"
  # RAUC (the rauc scenarios): its config and the harness's custom boot loader
  # backend, whose state directory is on the STATE partition (/var).
  install -D -m 0644 "$VMT_DIR/guest/rauc-system.conf" "$stage/etc/rauc/system.conf"
  install -m 0755 -t "$stage/usr/local/lib/vm-tests" "$VMT_DIR/guest/rauc-bootloader"
  mkdir -p "$stage/var/lib/vm-tests/rauc"

  local missing
  missing=$(chroot "$stage" ldd /usr/bin/bootgate | grep 'not found' || true)
  [ -z "$missing" ] || die "the guest lacks libraries bootgate needs: $missing"

  mkfs.ext4 -q -F -d "$stage" "$CACHE/slot.img" "${SLOT_MB}M" >/dev/null
  mkfs.ext4 -q -F -d "$stage/var" "$CACHE/state.img" "${STATE_MB}M" >/dev/null
  build_esp "$rootfs" "$CACHE/esp.img"
  truncate -s $((SLOT_MB * 2 + STATE_MB + ESP_MB + 2))M "$out"
  # (sgdisk -q does not write the table: keep it talkative and discard that.)
  sgdisk -o \
    -n "1:2048:+${SLOT_MB}M" -t "1:$USR_TYPE" -c 1:USR-A -u "1:$USR_A_UUID" \
    -n "2:0:+${SLOT_MB}M" -t "2:$USR_TYPE" -c 2:USR-B -u "2:$USR_B_UUID" \
    -n "3:0:+${STATE_MB}M" -t 3:8300 -c 3:STATE -u "3:$STATE_UUID" \
    -n "4:0:+${ESP_MB}M" -t "4:$ESP_TYPE" -c 4:ESP -u "4:$ESP_UUID" \
    "$out" >/dev/null
  local n img
  for n in 1 2 3 4; do
    case $n in 3) img=$CACHE/state.img ;; 4) img=$CACHE/esp.img ;; *) img=$CACHE/slot.img ;; esac
    dd if="$img" of="$out" bs=1M seek=$(($(cgpt show -i $n -b "$out") / 2048)) conv=notrunc,sparse status=none
  done
  rm -rf "$stage" "$CACHE"/slot.img "$CACHE"/state.img "$CACHE"/esp.img
}

# build_esp ROOTFS OUT: the EFI system partition the UEFI boots start from (FAT32,
# written with mtools, no loop mount): the guest's own systemd-boot as the removable
# media loader EFI/BOOT/BOOTX64.EFI, the kernel and initramfs, and loader.conf with
# `timeout 0` and no `default`, so systemd-boot's own ordering of the entries decides.
# The entries themselves are each scenario's (bless_init in lib.sh); boots with
# QEMU's -kernel never look at this partition.
build_esp() {
  local rootfs=$1 out=$2 efi=$1/usr/lib/systemd/boot/efi/systemd-bootx64.efi
  [ -f "$efi" ] || die "the guest has no $efi (rootfs.sh installs systemd-boot)"
  rm -f "$out"
  mkfs.vfat -F 32 -n ESP -C "$out" $((ESP_MB * 1024)) >/dev/null
  mmd -i "$out" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
  mcopy -i "$out" "$efi" ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$out" "$rootfs"/boot/vmlinuz-* ::/vmlinuz
  mcopy -i "$out" "$rootfs"/boot/initrd.img-* ::/initrd.img
  printf 'timeout 0\n' >"$out.conf"
  mcopy -i "$out" "$out.conf" ::/loader/loader.conf
  rm -f "$out.conf"
}
