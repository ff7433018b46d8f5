# After an apply, a signed sysext's binary runs on the host: `bbhv sync` applies a signed
# commit that pins sysext "hello" (images/hello.json, hosts/labguest.json); it pulls the image
# into the store content-addressed after checking digest and signature, then links it into
# /var/lib/extensions and runs `systemd-sysext refresh`.
TIER=vm
DESCRIPTION="an applied, signed sysext is merged and its binary runs on the host"

prepare() {
  . "$LAB_DIR/lib/ext.sh"
  ext_fixture "$ROOT"
}

check() {
  . /usr/local/lib/lab/ext.sh
  ext_git_sync v1 || fail "bbhv sync refused the signed v1 commit"
  run systemd-sysext status --no-pager
  run ls -l /var/lib/extensions /var/lib/bitbuilder/images
  run systemd-dissect --no-pager /var/lib/extensions/hello.raw
  expect_eq "bbhv-hello" "$(ext_hello)" hello-v1
  systemd-sysext list --no-legend | grep -q '^hello ' || fail "systemd-sysext list does not show hello"
  run bbhv ext apply --json || fail "a second apply failed"
  expect_eq "bbhv-hello after a second apply" "$(ext_hello)" hello-v1
  ext_git_sync v1 || fail "a re-sync of v1 failed"
  ext_git_reset || fail "the sync of the commit that pins nothing failed"
  expect_eq "bbhv-hello after the reset" "$(ext_hello)" none
}
