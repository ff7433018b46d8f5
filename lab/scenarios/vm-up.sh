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
  local repo=$LAB_DATA/repo img=$ROOT/var/lib/bitbuilder/images/tiny-vm
  mkdir -p "$repo/tenants/$ID" "$repo/tenants/$BAD" "$repo/images"
  tiny_vm_image "$ROOT" "$img" "$LAB_DATA/initrd" || fail "cannot build the tiny VM image"
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
  # qemu's own seccomp filter (on top of the unit's sandbox).
  in_guest journalctl -u "$unit" -o cat --no-pager | grep -q '^VM [^ ]*: exec .* -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny ' ||
    fail "qemu runs without -sandbox on"
  run grep -E '^Seccomp' "/proc/$pid/status"
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
