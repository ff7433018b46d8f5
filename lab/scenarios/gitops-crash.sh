# `bbhv sync` is killed (SIGKILL, through BBHV_FAULT) at every fault point of the apply and
# of the rollback; after each kill a plain `bbhv sync` converges: `current` is a complete
# generation, the mirror is usable, no half-made checkout is left, and the right tenants run.
# Then a full disk during the checkout: the sync fails (exit 2) and leaves nothing behind.
TIER=container
DESCRIPTION="the sync killed at every fault point converges afterwards; a full disk during checkout leaves nothing half-applied"

GITOPS_HEALTH_DEADLINE=4s
# shellcheck source=../lib/gitops.sh
. "$LAB_DIR/lib/gitops.sh"

APPLY_POINTS="after-fetch during-checkout after-checkout before-flip between-links after-flip after-reload after-jobs"
ROLLBACK_POINTS="before-rollback after-rollback-flip"

prepare() {
  local p i=0 dir=$ROOT/etc/systemd/system
  must_be_under "$dir" "$LAB_VAR" || return 1
  # /var/lib/bitbuilder on a small file system, for the full-disk case.
  mkdir -p "$dir/local-fs.target.wants"
  printf '%s\n' '[Unit]' 'Description=git-ops state on a 24 MB tmpfs (lab: a disk that fills)' \
    '[Mount]' 'What=tmpfs' 'Where=/var/lib/bitbuilder' 'Type=tmpfs' 'Options=mode=0755,size=24m' \
    > "$dir/var-lib-bitbuilder.mount"
  ln -sf ../var-lib-bitbuilder.mount "$dir/local-fs.target.wants/var-lib-bitbuilder.mount"
  gitops_init "$ROOT"
  mkdir -p "$LAB_DATA/work/images"
  echo '{ "schemaVersion": 1, "format": "directory", "file": "no-such-image" }' > "$LAB_DATA/work/images/ghost.json"
  gitops_tenant base
  gitops_commit base
  for p in $APPLY_POINTS; do
    i=$((i + 1))
    gitops_tenant "t$i"
    gitops_commit "p-$p"
  done
  for p in $ROLLBACK_POINTS; do
    gitops_tenant broken ', "containers": { "app": { "image": "ghost", "command": ["/bin/true"] } }'
    gitops_commit "bad-$p"
    gitops_drop broken
    gitops_tenant "fix-$p"
    gitops_commit "fix-$p"
  done
  head -c 14M /dev/urandom > "$LAB_DATA/work/big.bin"
  gitops_commit big
  rm -f "$LAB_DATA/work/big.bin"
  gitops_commit unbig
  gitops_publish "$ROOT" base
}

# killed_at POINT: a sync with BBHV_FAULT=POINT dies there.
killed_at() {
  echo "\$ BBHV_FAULT=$1 bbhv sync"
  in_guest env BBHV_FAULT="$1" bbhv sync > "$LAB_DATA/sync.out" 2>&1
  local rc=$?
  sed 's/^/    /' "$LAB_DATA/sync.out"
  echo "[rc=$rc]"
  grep -q "fault injection: killed at $1" "$LAB_DATA/sync.out" || fail "the sync did not reach $1 (rc $rc)"
  [ "$rc" -ge 128 ] || fail "the sync was not killed at $1 (rc $rc)"
}

# converged: current is a complete generation, nothing half-made, the mirror is sound.
converged() {
  local gen
  gen=$(in_guest readlink /var/lib/bitbuilder/current)
  in_guest test -f "/var/lib/bitbuilder/$gen/tenants/base/metadata.json" ||
    fail "current ($gen) is not a complete generation"
  in_guest sh -c 'ls -a /var/lib/bitbuilder/generations | grep -q "^\.new-"' &&
    fail "a half-made checkout is left: $(in_guest ls -a /var/lib/bitbuilder/generations | tr '\n' ' ')"
  in_guest git --git-dir=/var/lib/bitbuilder/mirror.git fsck --connectivity-only --no-progress ||
    fail "the mirror is not sound"
}

check() {
  local p i=0 t0
  t0=$(now)
  gitops_daemon
  expect_sync 0
  for p in $APPLY_POINTS; do
    i=$((i + 1))
    log "kill at $p"
    gitops_push "p-$p"
    killed_at "$p"
    expect_sync 0
    expect_current "p-$p"
    converged
    wait_active "tenant@t$i.service"
  done
  for p in $ROLLBACK_POINTS; do
    log "kill at $p (a commit that is rolled back)"
    gitops_push "bad-$p"
    killed_at "$p"
    expect_sync 1
    converged
    [ "$(gitops_current)" != "$(gitops_ref "bad-$p")" ] || fail "still at the bad commit after $p"
    expect_eq "tenant@broken after $p" "$(unit_prop tenant@broken.service ActiveState | sed 's/failed/inactive/')" inactive
    gitops_push "fix-$p"
    expect_sync 0
    expect_current "fix-$p"
    wait_active "tenant@fix-$p.service"
  done
  log "all fault points in $(elapsed "$t0") s"

  log "a full disk during the checkout"
  run df -h /var/lib/bitbuilder
  gitops_push big
  expect_sync 2
  grep -q 'checkout' "$LAB_DATA/sync.out" || fail "the failure does not name the checkout"
  expect_current "fix-after-rollback-flip"
  converged
  in_guest sh -c 'ls -a /var/lib/bitbuilder/generations' | grep -q "$(gitops_ref big)" &&
    fail "the failed checkout is left in generations/"
  run df -h /var/lib/bitbuilder
  gitops_push unbig
  expect_sync 0
  expect_current unbig
  converged
}
