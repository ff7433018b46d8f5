# A tenant's VM runs as tenant-vm@<tenant>_<vm>.service: qemu (TCG: no usable KVM here) is the
# unit's main process, in the tenant's slice; the guest (the rootfs's own kernel and a tiny
# busybox initramfs built here) boots to its init, which prints a marker to the serial
# console (the unit's journal); its tap is on the tenant's bridge; `systemctl stop` presses
# the ACPI power button (busybox acpid in the guest powers off) and finishes within the
# deadline, without a kill. A tampered kernel is refused, naming both digests.
TIER=container
DESCRIPTION="a VM boots under tenant-vm@ (qemu in the tenant's slice, TCG), tap on the bridge, clean ACPI stop within the deadline, digest mismatch refused"

ID=lab-vm
BAD=lab-vmbad

prepare() {
  local repo=$LAB_DATA/repo img=$ROOT/var/lib/bitbuilder/images/tiny-vm bb=$ROOT/bin/busybox
  local initrd=$LAB_DATA/initrd kernels ver mod a
  must_be_under "$img" "$LAB_VAR"
  mkdir -p "$repo/tenants/$ID" "$repo/tenants/$BAD" "$repo/images" "$img"
  [ -x "$bb" ] || fail "no busybox-static in the guest rootfs"
  [ -x "$ROOT/usr/bin/qemu-system-x86_64" ] || fail "no qemu-system-x86_64 in the guest rootfs (lab/rootfs/packages)"
  kernels=("$ROOT"/boot/vmlinuz-*)
  [ -e "${kernels[-1]}" ] || fail "no kernel in the guest rootfs"
  ver=${kernels[-1]##*/vmlinuz-}
  cp -- "${kernels[-1]}" "$img/vmlinuz"
  # The initramfs: busybox, /init, acpid's configuration, and the two modules the power
  # button needs when they are not built in (evdev: /dev/input; button: the ACPI button).
  mkdir -p "$initrd/bin" "$initrd/etc/acpi" "$initrd/proc" "$initrd/sys" "$initrd/dev" "$initrd/modules"
  cp -- "$bb" "$initrd/bin/busybox"
  for a in sh mount echo sleep insmod poweroff cat ip ping tr ifconfig route; do ln -sf busybox "$initrd/bin/$a"; done
  for mod in kernel/drivers/input/evdev kernel/drivers/acpi/button kernel/net/core/failover \
             kernel/drivers/net/net_failover kernel/drivers/net/virtio_net; do
    if grep -q "^$mod.ko" "$ROOT/lib/modules/$ver/modules.builtin"; then continue; fi
    if [ -e "$ROOT/lib/modules/$ver/$mod.ko.xz" ]; then
      xz -dc "$ROOT/lib/modules/$ver/$mod.ko.xz" > "$initrd/modules/${mod##*/}.ko"
    elif [ -e "$ROOT/lib/modules/$ver/$mod.ko" ]; then
      cp -- "$ROOT/lib/modules/$ver/$mod.ko" "$initrd/modules/"
    else
      fail "no $mod module for kernel $ver"
    fi
  done
  cat > "$initrd/init" <<'EOI'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in evdev button failover net_failover virtio_net; do
  [ -e "/modules/$m.ko" ] && insmod "/modules/$m.ko"
done
echo "LAB-VM-MARKER init is up: $(cat /proc/cmdline)"
# The ACPI power button: acpid runs the action of PWRF (below), which powers off. -d keeps
# it in the foreground logging to the console (daemonized, it did not act on the event here;
# -f alone wants /var/log/acpid.log).
busybox acpid -d -c /etc/acpi -a /etc/acpid.conf &
# ip=<client>::<gateway>:<netmask>::<device>:off, as bbhv vm run writes it (Debian's kernel
# has no IP_PNP; initramfs-tools reads the same parameter in a real guest).
for arg in $(cat /proc/cmdline); do
  case $arg in ip=*)
    set -- $(echo "${arg#ip=}" | tr ':' ' ')
    ip link set lo up
    ifconfig "$4" "$1" netmask "$3" up && route add default gw "$2" &&
      echo "LAB-VM-NET $4 $(cat /sys/class/net/$4/address) $1 via $2" &&
      ping -c 3 -W 3 "$2" >/dev/null && echo "LAB-VM-NET-OK gateway $2 answers" ;;
  esac
done
while :; do sleep 3600; done
EOI
  printf 'PWRF poweroff\n' > "$initrd/etc/acpid.conf"
  printf '#!/bin/sh\necho "LAB-VM-POWEROFF power button: powering off"\nexec busybox poweroff -f\n' \
    > "$initrd/etc/acpi/poweroff"
  chmod 755 "$initrd/init" "$initrd/etc/acpi/poweroff"
  (cd "$initrd" && find . | "$bb" cpio -o -H newc 2>/dev/null) | gzip -1 > "$img/initrd.img"
  sha256sum "$img/vmlinuz" | cut -c1-64 > "$LAB_DATA/kernel.sha256"
  sha256sum "$img/initrd.img" | cut -c1-64 > "$LAB_DATA/initrd.sha256"
  printf '{ "schemaVersion": 1, "format": "vm", "kernel": "tiny-vm/vmlinuz", "kernelSha256": "%s", "initrd": "tiny-vm/initrd.img", "initrdSha256": "%s", "cmdline": "quiet" }\n' \
    "$(cat "$LAB_DATA/kernel.sha256")" "$(cat "$LAB_DATA/initrd.sha256")" > "$repo/images/tiny-vm.json"
  printf '{ "schemaVersion": 1, "format": "vm", "kernel": "tiny-vm/vmlinuz", "kernelSha256": "%s", "initrd": "tiny-vm/initrd.img", "initrdSha256": "%s" }\n' \
    "0000000000000000000000000000000000000000000000000000000000000bad" "$(cat "$LAB_DATA/initrd.sha256")" > "$repo/images/tampered-vm.json"
  cat > "$repo/tenants/$ID/metadata.json" <<EOJ
{
  "schemaVersion": 1, "id": "$ID", "enabled": false,
  "network": { "ipv4": "10.78.0.1/24" },
  "vms": { "tiny": { "image": "tiny-vm", "cpus": 1, "memory": "256M", "address": "10.78.0.20" } }
}
EOJ
  cat > "$repo/tenants/$BAD/metadata.json" <<EOJ
{
  "schemaVersion": 1, "id": "$BAD", "enabled": false,
  "vms": { "tiny": { "image": "tampered-vm", "memory": "128M" } }
}
EOJ
  apply_repo "$ROOT" "$repo" >/dev/null
}

check() {
  local unit=tenant-vm@${ID}_tiny.service slice pid cg t0 t1 out tap
  slice=$(slice_of "$ID")
  out=$(in_guest systemd-analyze verify --man=no "$unit" 2>&1)
  expect_eq "systemd-analyze verify $unit" "$out" ""
  t0=$(date +%s.%N)
  run systemctl start "tenant@$ID.service" "$unit" || fail "tenant@$ID or $unit does not start"
  wait_active "$unit" 60
  expect_prop "$unit" Slice "$slice"
  expect_prop "$unit" PartOf "tenant@$ID.service"
  # qemu is the main process, in the tenant's slice.
  pid=$(unit_prop "$unit" MainPID)
  expect_eq "main process" "$(in_guest cat "/proc/$pid/comm")" qemu-system-x86
  cg=$(in_guest cat "/proc/$pid/cgroup")
  echo "qemu $pid: $cg"
  in_guest grep -qF "/$slice/$unit" "/proc/$pid/cgroup" || fail "qemu's cgroup is $cg, not under $slice"
  run journalctl -u "$unit" -o cat --no-pager
  in_guest journalctl -u "$unit" -o cat --no-pager | grep -q 'TCG (no KVM)' ||
    fail "the journal does not say which accelerator (TCG) and why"
  wait_for 180 "the guest's init marker in the journal" \
    sh -c "journalctl -u $unit -o cat --no-pager | grep -q LAB-VM-MARKER"
  t1=$(date +%s.%N)
  printf 'timing: start to guest init marker %.1f s\n' "$(awk "BEGIN { print $t1 - $t0 }")"
  # The tap is on the tenant's bridge.
  tap=$(in_guest journalctl -u "$unit" -o cat --no-pager | sed -n 's/^attached tap \(tv-[a-z0-9]*\) on .*/\1/p' | tail -1)
  [ -n "$tap" ] || fail "no tap attached"
  run ip -o link show "$tap"
  in_guest ip -o link show "$tap" | grep -q "master bt-$ID" || fail "$tap is not on bt-$ID"
  in_guest journalctl -u "$unit" -o cat --no-pager | grep -q 'ip=10.78.0.20::10.78.0.1:255.255.255.0::eth0:off' ||
    fail "the guest's command line lacks its address"
  # The guest's own view: its interface has the unit's MAC, and the gateway (the tenant's
  # bridge, through the tap) answers its pings.
  wait_for 60 "the guest's network check" sh -c "journalctl -u $unit -o cat --no-pager | grep -q 'LAB-VM-NET-OK'"
  run sh -c "journalctl -u $unit -o cat --no-pager | grep LAB-VM-NET"
  in_guest journalctl -u "$unit" -o cat --no-pager | grep -q "^LAB-VM-NET eth0 $(in_guest systemctl show -P ExecStart "$unit" | grep -o -- '--mac [0-9a-f:]*' | cut -d' ' -f2) 10.78.0.20 via 10.78.0.1" ||
    fail "the guest's eth0 does not have the unit's MAC and address"
  t0=$(date +%s.%N)
  run systemctl stop "$unit" || fail "systemctl stop $unit failed"
  t1=$(date +%s.%N)
  printf 'timing: systemctl stop %.1f s (deadline: TimeoutStopSec=%s)\n' \
    "$(awk "BEGIN { print $t1 - $t0 }")" "$(unit_prop "$unit" TimeoutStopUSec)"
  run journalctl -u "$unit" -o cat --no-pager -n 15
  out=$(in_guest journalctl -u "$unit" -o cat --no-pager)
  printf '%s\n' "$out" | grep -q LAB-VM-POWEROFF || fail "the guest did not see the power button"
  printf '%s\n' "$out" | grep -q 'guest powered off cleanly' || fail "bbhv vm stop did not see a clean power-off"
  printf '%s\n' "$out" | grep -q 'quitting qemu\|terminating on signal' && fail "the stop was a kill, not a power-off"
  expect_eq "result" "$(unit_prop "$unit" Result)" success
  in_guest ip link show "$tap" >/dev/null 2>&1 && fail "$tap is still there after the stop"

  # A tampered kernel: refused before qemu runs, naming both digests.
  local bad=tenant-vm@${BAD}_tiny.service
  in_guest systemctl start "$bad" || true
  wait_for 30 "$bad to fail" sh -c "systemctl show -P Result $bad | grep -qv success"
  in_guest systemctl stop "$bad" || true
  out=$(in_guest journalctl -u "$bad" -o cat --no-pager)
  printf '%s\n' "$out" | tail -5
  printf '%s\n' "$out" | grep -q "the kernel /var/lib/bitbuilder/images/tiny-vm/vmlinuz has sha256 $(cat "$LAB_DATA/kernel.sha256"), but images/tampered-vm.json (commit [0-9a-f]*) declares 0000000000000000000000000000000000000000000000000000000000000bad; refusing to start" ||
    fail "the mismatch is not reported with both digests"
}
