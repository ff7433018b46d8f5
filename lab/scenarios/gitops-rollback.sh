# A signed commit whose new tenant cannot start (its container's image is missing) and which
# also changes a running tenant is applied, found unhealthy within host.toml's
# health_deadline, and rolled back by the sync itself: `current` is the previous generation
# again, the changed tenant runs its previous units, the bad tenant's units are stopped, and
# the reason is recorded. The bad commit is not tried again until the branch moves.
TIER=container
DESCRIPTION="a signed commit whose tenant fails to start is rolled back within the deadline; the previous tenants run again"

# shellcheck source=../lib/gitops.sh
. "$LAB_DIR/lib/gitops.sh"

prepare() {
  gitops_init "$ROOT"
  gitops_busybox "$ROOT"
  echo '{ "schemaVersion": 1, "format": "directory", "file": "no-such-image" }' > "$LAB_DATA/work/images/ghost.json"
  gitops_tenant alpha ', "description": "good", "containers": { "app": { "image": "busybox", "command": ["/bin/sleep", "infinity"] } }'
  gitops_commit good
  gitops_tenant alpha ', "description": "changed by the bad commit", "containers": { "app": { "image": "busybox", "command": ["/bin/sleep", "1000000"] } }'
  gitops_tenant broken ', "containers": { "app": { "image": "ghost", "command": ["/bin/true"] } }'
  gitops_commit bad
  gitops_publish "$ROOT" good
}

check() {
  local t0 took ct=systemd-nspawn@alpha.app.service
  gitops_daemon
  expect_sync 0
  wait_active "$ct"
  expect_prop tenant@alpha.service Description "Tenant alpha: good"

  log "push the bad commit"
  gitops_push bad
  t0=$(now)
  expect_sync 1
  took=$(elapsed "$t0")
  log "applied, unhealthy, rolled back in $took s (health_deadline $GITOPS_HEALTH_DEADLINE)"
  grep -q "rolled back $(gitops_ref bad): not healthy within" "$LAB_DATA/sync.out" ||
    fail "bbhv sync does not say it rolled back and why"
  expect_current good
  expect_history rolled-back bad 'systemd-nspawn@broken.app.service'
  log "the previous tenants run again"
  wait_active "$ct"
  expect_prop tenant@alpha.service Description "Tenant alpha: good"
  in_guest systemctl show -P ExecStart "$ct" | grep -q 1000000 &&
    fail "$ct still runs the bad commit's command"
  in_guest systemctl show -P ExecStart "$ct"
  for u in systemd-nspawn@broken.app.service tenant@broken.service; do
    expect_eq "$u" "$(unit_prop "$u" ActiveState | sed 's/failed/inactive/')" inactive
  done
  log "not tried again until the branch moves"
  expect_sync 1
  grep -q 'not tried again' "$LAB_DATA/sync.out" || fail "the rolled-back commit is tried again"
  expect_current good
  awk -v t="$took" -v d="${GITOPS_HEALTH_DEADLINE%s}" 'BEGIN { exit !(t < d + 20) }' ||
    fail "the rollback took $took s, more than the deadline and 20 s"
}
