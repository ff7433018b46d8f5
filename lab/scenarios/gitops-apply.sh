# A signed commit that adds a tenant, fetched over git:// from the guest's git daemon, is
# applied by `bbhv sync`: the new tenant runs, the tenant that did not change is not touched
# (its container keeps its PID, its tenant@ its invocation), and the time from the start of
# the sync to convergence is printed (target: under 5 s).
TIER=container
DESCRIPTION="bbhv sync applies a signed commit over git://: new tenant up, unchanged tenant untouched (same PID), time printed"

# shellcheck source=../lib/gitops.sh
. "$LAB_DIR/lib/gitops.sh"

prepare() {
  gitops_init "$ROOT"
  gitops_busybox "$ROOT"
  gitops_tenant alpha ', "containers": { "app": { "image": "busybox", "command": ["/bin/sleep", "infinity"] } }'
  gitops_commit base
  gitops_tenant beta ', "resources": { "tasksMax": 64 }'
  gitops_commit add-beta
  gitops_tenant alpha ', "resources": { "memoryMax": "300M", "tasksMax": 77 }, "containers": { "app": { "image": "busybox", "command": ["/bin/sleep", "infinity"] } }'
  gitops_commit limits
  gitops_publish "$ROOT" base
}

check() {
  local pid invocation t0 took ct=systemd-nspawn@alpha.app.service
  gitops_daemon
  log "first sync: nothing applied yet"
  expect_sync 0
  expect_current base
  wait_active tenant@alpha.service
  wait_active "$ct"
  pid=$(unit_prop "$ct" MainPID) invocation=$(unit_prop tenant@alpha.service InvocationID)
  [ "${pid:-0}" -gt 0 ] || fail "the container has no main PID"

  log "push a signed commit that adds beta"
  gitops_push add-beta
  run bbhv plan --brief || fail "bbhv plan failed"
  t0=$(now)
  expect_sync 0
  took=$(elapsed "$t0")
  log "sync start to converged: $took s (target: under 5 s)"
  echo "gitops-apply: sync to converged in $took s" > "$LAB_DATA/.timing"
  expect_current add-beta
  expect_active tenant@beta.service
  expect_prop "$(slice_of beta)" TasksMax 64
  log "the unchanged tenant was not touched"
  expect_prop "$ct" MainPID "$pid"
  expect_prop tenant@alpha.service InvocationID "$invocation"
  expect_history applied add-beta 'tenants changed'
  grep -q 'applied generation' "$LAB_DATA/sync.out" || fail "bbhv sync did not say what it applied"
  log "again: up to date"
  expect_sync 0
  grep -q 'up to date' "$LAB_DATA/sync.out" || fail "a second sync is not 'up to date'"

  log "a limits-only change: the reload applies it, nothing restarts"
  gitops_push limits
  expect_sync 0
  expect_prop "$(slice_of alpha)" MemoryMax $((300 * 1024 * 1024))
  expect_prop "$(slice_of alpha)" TasksMax 77
  expect_prop "$ct" MainPID "$pid"
  run bbhv history || fail "bbhv history failed"
  in_guest bbhv history --json | jq -e '.records | length == 3' >/dev/null ||
    fail "bbhv history --json does not hold the three applies"
  awk -v t="$took" 'BEGIN { exit !(t < 5) }' || fail "the sync took $took s, the target is under 5 s"
}
