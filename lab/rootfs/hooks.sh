#!/bin/bash
# mmdebstrap hooks for the lab rootfs. Usage: hooks.sh essential|customize ROOTFS
# Everything here is baked into the cached rootfs, so keep it to the OS itself; the
# project and the scenarios are installed per run on top of a copy.
set -euo pipefail
R=${2:?rootfs}
# Only the tree rootfs/build is making (its rootfs-<key>.tmp), never the host itself: these
# hooks chroot into it, empty its password and remove its logs.
case ${R##*/} in rootfs-*.tmp) ;; *) echo "hooks.sh: refusing '$R' (not a rootfs-<key>.tmp build tree)" >&2; exit 1 ;; esac
if [ ! -d "$R" ] || [ -L "$R" ] || [ "$(realpath -e -- "$R")" = / ]; then
  echo "hooks.sh: refusing '$R'" >&2; exit 1
fi

essential() {
  # Before the kernel is installed: make its postinst build a small initramfs (virtio + ext4
  # only), which saves seconds on every TCG boot and a second mkinitramfs run here.
  # conf.d/ and hooks/ are not conffiles of initramfs-tools, so dpkg leaves them alone.
  mkdir -p "$R/etc/initramfs-tools/conf.d" "$R/etc/initramfs-tools/hooks"
  printf 'MODULES=list\nCOMPRESS=zstd\n' > "$R/etc/initramfs-tools/conf.d/lab.conf"
  cat > "$R/etc/initramfs-tools/hooks/lab-virtio" <<'EOH'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
for m in virtio_pci virtio_blk virtio_console ext4; do manual_add_modules "$m"; done
EOH
  chmod 755 "$R/etc/initramfs-tools/hooks/lab-virtio"
}

customize() {
  echo labguest > "$R/etc/hostname"
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n127.0.1.1 labguest\n' > "$R/etc/hosts"
  # No root entry: the VM tier passes root=/dev/vda rw on the kernel command line, and in the
  # container tier a /dev/vda line would fail systemd-remount-fs (state "degraded").
  echo '# <file system> <mount point> <type> <options> <dump> <pass>' > "$R/etc/fstab"
  # Empty machine-id: every boot gets a fresh one; systemd.firstboot=off on the command line
  # keeps systemd-firstboot from prompting.
  : > "$R/etc/machine-id"
  chroot "$R" passwd -d root >/dev/null            # root login on the console for debugging
  chroot "$R" systemctl enable -q systemd-networkd.service systemd-resolved.service
  # Mark /etc and /var as up to date with /usr: otherwise every boot of a fresh copy runs
  # ldconfig, hwdb and catalog updates (ConditionNeedsUpdate=), ~20 s under TCG.
  local ts; ts=$(date +%s%N)
  printf 'TIMESTAMP_NSEC=%s\n' "$ts" | tee "$R/etc/.updated" > "$R/var/.updated"
  compgen -G "$R/boot/initrd.img-*" >/dev/null || die "no initramfs was built"
  rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/archives/*.deb "$R"/var/log/*.log
}

die() { echo "hooks.sh: $*" >&2; exit 1; }
"$1"
