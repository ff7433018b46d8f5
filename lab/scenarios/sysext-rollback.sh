# A rollback restores the previous version with no network: v1 then v2 are pulled over http
# and applied; the server is stopped and its files are out of reach; `current` flips back
# to the previous generation and `bbhv ext apply` links v1 again from the store.
TIER=vm
DESCRIPTION="rolling back to the previous generation restores the previous sysext offline"

prepare() {
  . "$LAB_DIR/lib/ext.sh"
  ext_fixture "$ROOT"
}

check() {
  . /usr/local/lib/lab/ext.sh
  ext_http_up || fail "cannot start httpd"
  ext_sync "$EXT_LAB/checkouts/v1-http" || fail "v1 refused"
  expect_eq "bbhv-hello" "$(ext_hello)" hello-v1
  ext_sync "$EXT_LAB/checkouts/v2-http" || fail "v2 refused"
  expect_eq "bbhv-hello" "$(ext_hello)" hello-v2
  ext_http_down
  busybox wget -q -T 2 -O /dev/null "http://$EXT_HTTP/serve/SHA256SUMS" && fail "the server still answers"
  run ls -l /var/lib/bitbuilder/images
  ext_rollback || fail "the rollback failed"
  expect_eq "bbhv-hello after the rollback" "$(ext_hello)" hello-v1
  run systemd-sysext status --no-pager
  ext_reset
}
