# A tenant's confext (an /etc tree of the repository, extensions/<name>/etc/..., that a
# container of the tenant names in "extensions") is visible in that tenant's container, and
# in no other tenant's container nor on the host: mount-generator layers it into the
# container's overlay root, above the image. The tree passes `bbhv ext build --kind
# confext`'s checks (only etc/, no device nodes, no setuid).
# Applied by the real `bbhv sync` of a signed commit (lab/lib/gitops.sh: made on the host,
# fetched over git:// from the guest's git daemon).
TIER=container
DESCRIPTION="a tenant's confext, applied by bbhv sync of a signed commit, is in its own container's /etc, not in another tenant's nor the host's"

# shellcheck source=../lib/gitops.sh
. "$LAB_DIR/lib/gitops.sh"

A=lab-cfa
B=lab-cfb

prepare() {
  local repo=$LAB_DATA/work t ext
  gitops_init "$ROOT"
  gitops_busybox "$ROOT"
  mkdir -p "$repo/extensions/cfa-conf/etc/lab-confext"
  echo "confext of $A" > "$repo/extensions/cfa-conf/etc/lab-confext/motd"
  # The same tree as a confext image: the build's tree checks accept it.
  "$ROOT/usr/bin/bbhv" ext build "$repo/extensions/cfa-conf" --kind confext --name cfa-conf \
    --output "$LAB_DATA/cfa-conf.raw"
  for t in $A $B; do
    ext='[]'
    [ "$t" = "$A" ] && ext='["cfa-conf"]'
    gitops_tenant "$t" ', "enabled": false, "containers": { "c": { "image": "busybox", "extensions": '"$ext"',
      "command": ["/bin/sh", "-c", "echo \"MOTD $(cat /etc/lab-confext/motd 2>/dev/null || echo none)\"; exec sleep infinity"] } }'
  done
  gitops_commit confexts
  gitops_publish "$ROOT" confexts
}

# motd_of TENANT: what the tenant's container found in /etc/lab-confext/motd.
motd_of() {
  local m=$1.c
  wait_for 30 "$m's output" sh -c "journalctl -t '$m' -o cat | grep -q '^MOTD'"
  in_guest journalctl -t "$m" -o cat --no-pager | tr -d '\r' | sed -n 's/^MOTD //p' | tail -1
}

check() {
  gitops_daemon
  expect_sync 0
  expect_current confexts
  nspawn_settings "$A.c" "$B.c"
  run systemctl start "tenant@$A.service" "systemd-nspawn@$A.c.service" "tenant@$B.service" \
    "systemd-nspawn@$B.c.service" || fail "the tenants do not start"
  wait_active "systemd-nspawn@$A.c.service" 60
  wait_active "systemd-nspawn@$B.c.service" 60
  expect_eq "$A's /etc/lab-confext/motd" "$(motd_of $A)" "confext of $A"
  expect_eq "$B's /etc/lab-confext/motd" "$(motd_of $B)" none
  in_guest test -e /etc/lab-confext/motd && fail "the tenant's confext reached the host's /etc"
  run systemctl stop "tenant@$A.service" "tenant@$B.service"
  run systemctl reset-failed
}
