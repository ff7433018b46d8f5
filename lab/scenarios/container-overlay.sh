# A container's root is an overlay (mount-generator): the image below (read-only), the
# tenant's extensions above it, and a per-tenant upper directory that keeps the container's
# writes across restarts while the image stays untouched; the mount stops with the tenant.
# An image whose file does not match its images/<name>.json digest is refused: its
# verification unit fails naming the image and both digests, and the container does not start.
TIER=container
DESCRIPTION="overlay root: image + extension below, writes kept in the tenant's upper dir, image untouched; a digest mismatch refuses the container"

ID=lab-ov
BAD=lab-badimg

prepare() {
  local repo=$LAB_DATA/repo img=$ROOT/var/lib/bitbuilder/images
  mkdir -p "$repo/tenants/$ID" "$repo/tenants/$BAD" "$repo/images" "$repo/extensions/tools/usr/share/lab-ext"
  busybox_image "$ROOT" busybox
  tenants_on_tmpfs "$ROOT"
  echo "hello from the tools extension" > "$repo/extensions/tools/usr/share/lab-ext/hello"
  echo '{ "schemaVersion": 1, "format": "directory", "file": "busybox" }' > "$repo/images/busybox.json"
  # A real squashfs of the same tree; its json declares another digest.
  command -v mksquashfs >/dev/null || fail "mksquashfs is missing on the host (lab/setup installs squashfs-tools)"
  mksquashfs "$img/busybox" "$img/busybox.squashfs" -quiet -noappend -all-root >/dev/null
  sha256sum "$img/busybox.squashfs" | cut -c1-64 > "$LAB_DATA/actual"
  echo 0000000000000000000000000000000000000000000000000000000000000bad > "$LAB_DATA/declared"
  printf '{ "schemaVersion": 1, "format": "squashfs", "file": "busybox.squashfs", "sha256": "%s" }\n' \
    "$(cat "$LAB_DATA/declared")" > "$repo/images/tampered.json"
  printf '{ "schemaVersion": 1, "format": "squashfs", "file": "busybox.squashfs", "sha256": "%s" }\n' \
    "$(cat "$LAB_DATA/actual")" > "$repo/images/busybox-sq.json"
  cat > "$repo/tenants/$ID/metadata.json" <<'EOJ'
{
  "schemaVersion": 1, "id": "lab-ov", "enabled": false,
  "resources": { "storageQuota": "256M" },
  "containers": {
    "c": {
      "image": "busybox", "extensions": ["tools"],
      "command": ["/bin/sh", "-c", "cat /usr/share/lab-ext/hello; [ -e /persist ] && echo \"PERSIST $(cat /persist)\"; echo written > /persist && echo WROTE; touch /usr/share/lab-ext/new && echo EXT-WRITABLE-IN-UPPER; exec sleep infinity"]
    }
  }
}
EOJ
  cat > "$repo/tenants/$BAD/metadata.json" <<'EOJ'
{
  "schemaVersion": 1, "id": "lab-badimg", "enabled": false,
  "containers": {
    "c": { "image": "tampered", "command": ["/bin/sleep", "infinity"] }
  }
}
EOJ
  apply_repo "$ROOT" "$repo" >/dev/null
}

check() {
  local m=$ID.c unit=systemd-nspawn@$ID.c.service mount out
  mount=$(in_guest systemd-escape --path --suffix=mount "/var/lib/tenants/$ID/root/c")
  nspawn_settings "$m" "$BAD.c"
  run systemctl cat "$mount" || fail "mount-generator wrote no $mount"
  # (The container is named too: starting the tenant returns before its containers ran.)
  run systemctl start "tenant@$ID.service" "$unit" || fail "tenant@$ID does not start"
  wait_active "$unit" 60
  expect_active "$mount"
  # storageQuota: the tenant's state is a 256M ext4 where loop devices exist; a
  # container (this tier) has none, so the mount is skipped by its condition and the
  # tenant runs without a quota.
  local state
  state=$(in_guest systemd-escape --path --suffix=mount "/var/lib/tenants/$ID")
  if in_guest test -e /dev/loop-control; then
    expect_active "$state"
    expect_eq "size of /var/lib/tenants/$ID" "$(in_guest df -B1M --output=size "/var/lib/tenants/$ID" | tail -1 | tr -d ' ')" 256
  else
    expect_prop "$state" ConditionResult no
    expect_prop "bitbuilder-storage@$ID.service" ConditionResult no
  fi
  wait_for 30 "the container's output" sh -c "journalctl -t '$m' -o cat | grep -q EXT-WRITABLE"
  out=$(in_guest journalctl -t "$m" -o cat --no-pager | tr -d '\r')
  printf '%s\n' "$out"
  printf '%s\n' "$out" | grep -qx "hello from the tools extension" || fail "the extension is not in the container's root"
  printf '%s\n' "$out" | grep -q '^PERSIST' && fail "a fresh container found /persist"
  # The writes are in the tenant's upper directory; the image and the extension are untouched.
  expect_eq "upper/c/persist" "$(in_guest cat "/var/lib/tenants/$ID/upper/c/persist")" written
  in_guest test -e /var/lib/bitbuilder/images/busybox/persist && fail "the write reached the image"
  # nspawn gives the image's files to the container's UID range (a chown: overlayfs
  # cannot be idmapped); with metacopy=on that copies inodes up, never the image's data.
  run find "/var/lib/tenants/$ID/upper/c" -printf '%M %u %b %p\n'
  expect_eq "data blocks of upper/c/bin/busybox" \
    "$(in_guest stat -c %b "/var/lib/tenants/$ID/upper/c/bin/busybox" 2>/dev/null || echo none)" 0
  in_guest sh -c 'test -e /var/lib/bitbuilder/current/extensions/tools/usr/share/lab-ext/new' &&
    fail "the write reached the extension"
  # Restarted, the container keeps its writes.
  run systemctl restart "$unit"
  wait_for 30 "the restarted container's output" sh -c "journalctl -t '$m' -o cat | grep -q '^PERSIST written'"
  # Stopping the tenant stops the container and unmounts its root.
  run systemctl stop "tenant@$ID.service"
  wait_for 30 "$mount to stop" sh -c "! systemctl is-active -q '$mount'"

  # The right digest verifies; a wrong one is refused, naming the image and both digests.
  run systemctl start bitbuilder-image@busybox-sq.service || fail "a correct image does not verify"
  run systemctl start "tenant@$BAD.service"
  wait_for 30 "the verification of tampered to fail" sh -c \
    "systemctl show -P ActiveState bitbuilder-image@tampered.service | grep -qx failed"
  run journalctl -u bitbuilder-image@tampered.service -o cat --no-pager
  out=$(in_guest journalctl -u bitbuilder-image@tampered.service -o cat --no-pager)
  printf '%s\n' "$out" | grep -q "image tampered: .* has sha256 $(cat "$LAB_DATA/actual"), but images/tampered.json (commit [0-9a-f]*) declares $(cat "$LAB_DATA/declared"); refusing to use it" ||
    fail "the refusal does not name the image and both digests"
  # The container's start job failed on its dependency: it never ran.
  expect_prop "systemd-nspawn@$BAD.c.service" ActiveState inactive
  expect_prop "systemd-nspawn@$BAD.c.service" InactiveExitTimestampMonotonic 0
  in_guest systemctl is-active -q "$(in_guest systemd-escape --path --suffix=mount /run/bitbuilder/images/tampered)" &&
    fail "the tampered image was mounted"
  run systemctl stop "tenant@$BAD.service"
  run systemctl reset-failed
}
