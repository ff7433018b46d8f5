# vm-up's proof with systemd-vmspawn: in the second lab image (Debian sid, systemd >= 256,
# whose systemd-container ships /usr/bin/systemd-vmspawn), `bbhv vm run --monitor auto`
# (the unit's default) picks vmspawn for a VM it can run (an image with a disk, no tap on a
# tenant bridge: vmspawn makes its own), and the VM boots to its init under tenant-vm@,
# in the tenant's slice, registered with machined; `systemctl stop` powers the guest off
# (machinectl poweroff: vmspawn presses the ACPI power button) within the deadline and the
# unit ends inactive. The same tenant on trixie's 257 (no vmspawn) runs
# qemu: vm-up.
TIER=container
ROOTFS=sid
DESCRIPTION="(sid rootfs) a VM boots under tenant-vm@ with systemd-vmspawn: in the tenant's slice, registered, guest init reached, clean ACPI stop via machinectl poweroff"

ID=lab-vs

prepare() {
  local repo=$LAB_DATA/repo img=$ROOT/var/lib/bitbuilder/images/tiny-vm
  mkdir -p "$repo/tenants/$ID" "$repo/images"
  tiny_vm_image "$ROOT" "$img" "$LAB_DATA/initrd" || fail "cannot build the tiny VM image"
  # vmspawn boots an --image= and dissects it first: a bare file system or an empty file is
  # refused ("Couldn't identify a suitable partition table or file system"), so a GPT disk
  # with an (empty) ext4 root partition, made by the host's systemd-repart. The guest's init
  # does not use it.
  command -v systemd-repart >/dev/null || fail "no systemd-repart on the host (to make the VM's disk)"
  mkdir -p "$LAB_DATA/repart"
  printf '[Partition]\nType=root\nFormat=ext4\n' > "$LAB_DATA/repart/10-root.conf"
  systemd-repart --empty=create --size=16M --definitions="$LAB_DATA/repart" --dry-run=no \
    "$img/disk.raw" >/dev/null 2>&1 || fail "systemd-repart could not make the disk"
  printf '{ "schemaVersion": 1, "format": "vm", "kernel": "tiny-vm/vmlinuz", "kernelSha256": "%s", "initrd": "tiny-vm/initrd.img", "initrdSha256": "%s", "disk": "tiny-vm/disk.raw", "diskSha256": "%s", "cmdline": "quiet" }\n' \
    "$(sha256sum < "$img/vmlinuz" | cut -c1-64)" "$(sha256sum < "$img/initrd.img" | cut -c1-64)" \
    "$(sha256sum < "$img/disk.raw" | cut -c1-64)" > "$repo/images/tiny-vm.json"
  cat > "$repo/tenants/$ID/metadata.json" <<EOJ
{
  "schemaVersion": 1, "id": "$ID", "enabled": false,
  "vms": { "tiny": { "image": "tiny-vm", "cpus": 1, "memory": "256M" } }
}
EOJ
  apply_repo "$ROOT" "$repo" >/dev/null
}

check() {
  local unit=tenant-vm@${ID}_tiny.service slice pid cg t0 t1 out v
  slice=$(slice_of "$ID")
  v=$(in_guest systemd-vmspawn --version | head -1)
  echo "guest: $v"
  [ "$(echo "$v" | awk '{ print $2 }')" -ge 256 ] 2>/dev/null || fail "the sid guest's systemd-vmspawn is not >= 256: '$v'"
  t0=$(date +%s.%N)
  run systemctl start "tenant@$ID.service" "$unit" || fail "tenant@$ID or $unit does not start"
  wait_active "$unit" 60
  wait_for 30 "bbhv vm run's choice of monitor" \
    sh -c "journalctl -u $unit -o cat --no-pager | grep -q '^VM [^ ]*: exec '"
  run journalctl -u "$unit" -o cat --no-pager
  in_guest journalctl -u "$unit" -o cat --no-pager | grep -q '^VM [^ ]*: exec /usr/bin/systemd-vmspawn ' ||
    fail "bbhv vm run did not pick systemd-vmspawn: $(in_guest journalctl -u "$unit" -o cat --no-pager | grep -m1 '^VM [^ ]*: qemu')"
  expect_prop "$unit" Slice "$slice"
  pid=$(unit_prop "$unit" MainPID)
  expect_eq "main process" "$(in_guest cat "/proc/$pid/comm")" systemd-vmspawn
  run systemd-cgls --no-pager -u "$unit"
  # qemu, vmspawn's child, in the unit's cgroup in the tenant's slice (--keep-unit).
  local qpid
  qpid=$(in_guest pgrep -P "$pid" -f qemu-system | head -1)
  [ -n "$qpid" ] || fail "no qemu process under systemd-vmspawn ($pid)"
  cg=$(in_guest cat "/proc/$qpid/cgroup")
  echo "qemu $qpid: $cg"
  in_guest grep -qF "/$slice/$unit" "/proc/$qpid/cgroup" || fail "qemu's cgroup is $cg, not under $slice/$unit"
  run machinectl status --no-pager "$ID.tiny" || fail "machined does not know $ID.tiny"
  wait_for 180 "the guest's init marker in the journal" \
    sh -c "journalctl -u $unit -o cat --no-pager | grep -q LAB-VM-MARKER"
  t1=$(date +%s.%N)
  printf 'timing: start to guest init marker %.1f s\n' "$(awk "BEGIN { print $t1 - $t0 }")"
  t0=$(date +%s.%N)
  run systemctl stop "$unit" || fail "systemctl stop $unit failed"
  t1=$(date +%s.%N)
  printf 'timing: systemctl stop %.1f s (deadline: TimeoutStopSec=%s)\n' \
    "$(awk "BEGIN { print $t1 - $t0 }")" "$(unit_prop "$unit" TimeoutStopUSec)"
  run journalctl -u "$unit" -o cat --no-pager -n 15
  # A clean stop: bbhv vm stop has no QMP socket of its own here, so it asks machined
  # (machinectl poweroff), vmspawn presses the ACPI power button, the guest powers off.
  out=$(in_guest journalctl -u "$unit" -o cat --no-pager)
  printf '%s\n' "$out" | grep -q LAB-VM-POWEROFF || fail "the guest did not see the power button"
  printf '%s\n' "$out" | grep -q 'guest powered off cleanly after .* (machinectl poweroff)' ||
    fail "bbhv vm stop did not see a clean power-off"
  expect_prop "$unit" ActiveState inactive
  expect_prop "$unit" Result success
}
