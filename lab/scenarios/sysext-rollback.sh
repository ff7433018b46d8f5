# A rollback restores the previous version with no network: `bbhv sync` applies v1 then v2
# (signed commits, images pulled over http); the server is stopped and its files are out of
# reach; `bbhv rollback` flips back to the previous generation and links v1 again from the
# store.
TIER=vm
DESCRIPTION="rolling back to the previous generation restores the previous sysext offline"

prepare() {
  . "$LAB_DIR/lib/ext.sh"
  ext_fixture "$ROOT"
}

check() {
  . /usr/local/lib/lab/ext.sh
  ext_http_up || fail "cannot start httpd"
  ext_git_sync v1-http || fail "v1 refused"
  expect_eq "bbhv-hello" "$(ext_hello)" hello-v1
  ext_git_sync v2-http || fail "v2 refused"
  expect_eq "bbhv-hello" "$(ext_hello)" hello-v2
  ext_http_down
  busybox wget -q -T 2 -O /dev/null "http://$EXT_HTTP/serve/SHA256SUMS" && fail "the server still answers"
  run ls -l /var/lib/bitbuilder/images
  ext_git_rollback || fail "bbhv rollback failed"
  expect_eq "bbhv-hello after the rollback" "$(ext_hello)" hello-v1
  run systemd-sysext status --no-pager
  ext_git_reset || fail "the sync of the commit that pins nothing failed"
}
