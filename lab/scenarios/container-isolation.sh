# A container sees nothing of the host or of other tenants: a user namespace (its root is
# not host root), a bounding set without CAP_SYS_ADMIN, CAP_MKNOD and CAP_NET_ADMIN, no host
# device nodes, loopback only when its tenant has no network, and no path to another
# tenant's state (which is root-only on the host).
TIER=container
DESCRIPTION="containers: user namespace, reduced capabilities, no host devices, loopback only, other tenants' state unreachable"

ID=lab-iso
OTHER=lab-iso2

prepare() {
  local repo=$LAB_DATA/repo
  mkdir -p "$repo/tenants/$ID" "$repo/tenants/$OTHER" "$repo/images"
  busybox_image "$ROOT" busybox
  tenants_on_tmpfs "$ROOT"
  echo '{ "schemaVersion": 1, "format": "directory", "file": "busybox" }' > "$repo/images/busybox.json"
  cat > "$repo/tenants/$ID/metadata.json" <<'EOJ'
{
  "schemaVersion": 1, "id": "lab-iso", "enabled": false,
  "containers": {
    "probe": {
      "image": "busybox",
      "command": ["/bin/sh", "-c", "echo DEV $(ls /dev | tr '\\n' ' '); grep CapBnd /proc/self/status; echo LINKS $(ip -o link | wc -l) $(ip -o link | grep -c ' lo:'); echo UIDMAP $(cat /proc/self/uid_map); mknod /tmp/n c 1 3 2>/dev/null && echo MKNOD-OK || echo MKNOD-REFUSED; ls /var/lib/tenants 2>/dev/null && echo TENANTS-VISIBLE || echo TENANTS-ABSENT; echo DONE; exec sleep infinity"]
    }
  }
}
EOJ
  cat > "$repo/tenants/$OTHER/metadata.json" <<'EOJ'
{
  "schemaVersion": 1, "id": "lab-iso2", "enabled": false,
  "containers": {
    "other": { "image": "busybox", "command": ["/bin/sh", "-c", "echo secret > /secret; exec sleep infinity"] }
  }
}
EOJ
  apply_repo "$ROOT" "$repo" >/dev/null
}

check() {
  local m=$ID.probe out dev cap bnd
  nspawn_settings "$m" "$OTHER.other"
  # (The containers are named too: starting a tenant returns before its containers ran.)
  run systemctl start "tenant@$ID.service" "tenant@$OTHER.service" \
    "systemd-nspawn@$m.service" "systemd-nspawn@$OTHER.other.service" || fail "the tenants do not start"
  wait_active "systemd-nspawn@$m.service" 60
  wait_active "systemd-nspawn@$OTHER.other.service" 60
  wait_for 30 "the probe's output" sh -c "journalctl -t '$m' -o cat | grep -q DONE"
  out=$(in_guest journalctl -t "$m" -o cat --no-pager | tr -d '\r')
  printf '%s\n' "$out"
  # Only nspawn's own pseudo-devices.
  for dev in $(printf '%s\n' "$out" | sed -n 's/^DEV //p'); do
    case $dev in
      console|core|fd|full|null|ptmx|pts|random|shm|stderr|stdin|stdout|tty|urandom|zero|mqueue|hugepages|net|char|log) ;;
      *) fail "the container sees the host device /dev/$dev" ;;
    esac
  done
  bnd=$(printf '%s\n' "$out" | sed -n 's/^CapBnd:[[:space:]]*//p')
  [ -n "$bnd" ] || fail "no CapBnd line"
  # CAP_SYS_BOOT stays (the stub init's clean power-off needs it; in the container's user
  # namespace it ends only the container: docs/architecture.md, "Capabilities").
  for cap in 21:CAP_SYS_ADMIN 27:CAP_MKNOD 12:CAP_NET_ADMIN 19:CAP_SYS_PTRACE 24:CAP_SYS_RESOURCE; do
    (( (0x$bnd >> ${cap%%:*}) & 1 )) && fail "the container keeps ${cap#*:} (CapBnd $bnd)"
  done
  echo "check: CapBnd $bnd lacks SYS_ADMIN, MKNOD, NET_ADMIN, SYS_PTRACE, SYS_RESOURCE"
  printf '%s\n' "$out" | grep -qx 'LINKS 1 1' || fail "the container has links other than lo: $(printf '%s\n' "$out" | grep ^LINKS)"
  printf '%s\n' "$out" | grep '^UIDMAP' | grep -qv '^UIDMAP 0 0 ' || fail "no user namespace"
  printf '%s\n' "$out" | grep -qx MKNOD-REFUSED || fail "mknod works in the container"
  printf '%s\n' "$out" | grep -qx TENANTS-ABSENT || fail "the container sees /var/lib/tenants"
  # The other tenant's writes are in its own upper directory, root-only on the host.
  wait_for 30 "the other container's write" test -e "/var/lib/tenants/$OTHER/upper/other/secret"
  expect_eq "mode of /var/lib/tenants/$OTHER" "$(in_guest stat -c %a "/var/lib/tenants/$OTHER")" 700
  in_guest nsenter -t "$(in_guest machinectl show -P Leader "$m")" -m -U --preserve-credentials \
    test -e "/var/lib/tenants/$OTHER/upper/other/secret" 2>/dev/null &&
    fail "the probe reaches the other tenant's state"
  run systemctl stop "tenant@$ID.service" "tenant@$OTHER.service"
}
