# A force-push to an older commit is refused; with --allow-rollback it is applied. Then
# `bbhv rollback` goes back to the generation before, and the sync does not re-apply the
# commit it left.
TIER=container
DESCRIPTION="a force-push to an older commit is refused without --allow-rollback, applied with it; bbhv rollback goes back and stays"

# shellcheck source=../lib/gitops.sh
. "$LAB_DIR/lib/gitops.sh"

prepare() {
  gitops_init "$ROOT"
  gitops_tenant alpha
  gitops_commit old
  gitops_tenant beta
  gitops_commit new
  gitops_publish "$ROOT" old
}

check() {
  gitops_daemon
  expect_sync 0
  gitops_push new
  expect_sync 0
  expect_current new
  wait_active tenant@beta.service

  log "force-push back to the old commit"
  gitops_push old
  expect_sync 1
  grep -q 'does not descend from the applied commit' "$LAB_DATA/sync.out" ||
    fail "the refusal does not say why"
  expect_current new
  expect_active tenant@beta.service
  expect_history refused old 'does not descend'

  log "the operator allows it"
  expect_sync 0 --allow-rollback
  expect_current old
  expect_eq "tenant@beta" "$(unit_prop tenant@beta.service ActiveState)" inactive
  expect_active tenant@alpha.service
  rollback_check
}

# Appended to check (see below): bbhv rollback.
rollback_check() {
  log "bbhv rollback: back to the previous generation, offline"
  run bbhv rollback || fail "bbhv rollback failed"
  expect_current new
  wait_active tenant@beta.service
  log "the commit left is remembered: the sync does not re-apply it"
  expect_sync 1
  grep -q 'not tried again' "$LAB_DATA/sync.out" || fail "the sync re-applies the commit rolled back from"
  expect_current new
  in_guest bbhv history | grep -q 'manual rollback' || fail "bbhv history does not show the rollback"
}
