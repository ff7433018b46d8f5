# An unsigned commit, and one signed by a key that is not in allowed_signers, are refused:
# nothing changes on the host, and the reason is in the journal and in `bbhv history`.
TIER=container
DESCRIPTION="unsigned and untrusted-key commits are refused; nothing changes; the reason is in the journal and bbhv history"

# shellcheck source=../lib/gitops.sh
. "$LAB_DIR/lib/gitops.sh"

prepare() {
  gitops_init "$ROOT"
  gitops_tenant alpha
  gitops_commit base
  gitops_tenant evil ', "resources": { "tasksMax": 10 }'
  gitops_commit unsigned unsigned
  gitops_reset base
  gitops_tenant mallory
  gitops_commit untrusted untrusted
  gitops_publish "$ROOT" base
}

check() {
  gitops_daemon
  expect_sync 0
  expect_current base
  wait_active tenant@alpha.service

  log "an unsigned commit"
  gitops_push unsigned
  run systemctl start bitbuilder-sync.service
  expect_prop bitbuilder-sync.service Result exit-code
  expect_current base
  in_guest test -e /run/systemd/generator/tenant@evil.service && fail "tenant evil was generated"
  expect_eq "tenant@evil" "$(unit_prop tenant@evil.service ActiveState)" inactive
  expect_history refused unsigned 'not signed'
  in_guest journalctl -u bitbuilder-sync.service --no-pager | grep -q "refused $(gitops_ref unsigned): the commit is not signed" ||
    fail "the journal of bitbuilder-sync.service does not say why the commit was refused"
  in_guest systemctl show -P StatusText bitbuilder-sync.service

  log "a commit signed by an untrusted key"
  gitops_push untrusted
  expect_sync 1
  expect_current base
  in_guest test -e /run/systemd/generator/tenant@mallory.service && fail "tenant mallory was generated"
  expect_eq "tenant@mallory" "$(unit_prop tenant@mallory.service ActiveState)" inactive
  expect_history refused untrusted 'signing key SHA256:[^ ]+ is not in /etc/bitbuilder/allowed_signers'
  run bbhv history
  in_guest bbhv history | grep -q 'refused' || fail "bbhv history does not show the refusals"
  log "remembered: not tried again until the branch moves"
  expect_sync 1
  grep -q 'not tried again until the branch moves' "$LAB_DATA/sync.out" || fail "the refusal is not remembered"
  expect_active tenant@alpha.service
}
