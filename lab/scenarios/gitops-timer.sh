# With only bitbuilder-sync.timer enabled (its period from host.toml's [sync] interval,
# through tenant-generator's drop-in), a new signed commit on the remote is applied within
# one interval, without anyone running bbhv.
TIER=container
DESCRIPTION="only the timer enabled: a new signed commit is applied within one interval"

GITOPS_INTERVAL=5s
# shellcheck source=../lib/gitops.sh
. "$LAB_DIR/lib/gitops.sh"

prepare() {
  gitops_init "$ROOT"
  gitops_tenant alpha
  gitops_commit base
  gitops_tenant beta
  gitops_commit add-beta
  gitops_publish "$ROOT" base
}

# The sync service has ended: it is `activating` while it works (READY=1
# comes with its outcome), so `systemctl is-active` alone would not wait.
sync_ended() {
  wait_for 60 "$1" sh -c \
    'case $(systemctl show -P ActiveState bitbuilder-sync.service) in activating | active | deactivating) exit 1 ;; esac'
}

check() {
  local t0 took interval=${GITOPS_INTERVAL%s}
  gitops_daemon
  expect_eq "the interval drop-in" \
    "$(in_guest grep -h '^OnUnitInactiveSec=[0-9]' /run/systemd/generator/bitbuilder-sync.timer.d/50-interval.conf)" \
    "OnUnitInactiveSec=${interval}000ms"
  run systemctl enable --now bitbuilder-sync.timer || fail "cannot enable the timer"
  wait_for 30 "the first apply" sh -c "readlink /var/lib/bitbuilder/current | grep -q $(gitops_ref base)"
  # `current` flips before the sync queues its start jobs: the sync's own
  # end (after its health gate) is when the tenant must be active, and the
  # timer's interval counts from there.
  sync_ended "the first sync to end"
  wait_active tenant@alpha.service
  in_guest systemctl list-timers --no-pager bitbuilder-sync.timer

  log "push a new signed commit; nobody runs bbhv"
  gitops_push add-beta
  t0=$(now)
  wait_for $((interval * 2 + 10)) "the timer's sync to apply add-beta" \
    sh -c "readlink /var/lib/bitbuilder/current | grep -q $(gitops_ref add-beta)"
  took=$(elapsed "$t0")
  log "applied $took s after the push (interval ${interval} s)"
  sync_ended "the timer's sync to end"
  wait_active tenant@beta.service
  awk -v t="$took" -v i="$interval" 'BEGIN { exit !(t <= i + 3) }' ||
    fail "applied $took s after the push: more than one interval (${interval} s) and 3 s"
  in_guest journalctl -u bitbuilder-sync.service --no-pager | grep -q "applied generation" ||
    fail "the journal of bitbuilder-sync.service does not show the apply"
}
