# Images served over http on loopback in the guest: a manifest whose digest is not the
# served file's, and an image signed by a key the host does not trust, are refused by
# `bbhv image pull` (nothing enters the store); a good image is stored content-addressed
# and used: as a sysext its binary runs as a service, and as a container image a tenant's
# container runs on it (its mount verified digest and signature first).
TIER=vm
DESCRIPTION="bbhv image pull over http refuses a wrong digest or signature; a good image is stored and used"

prepare() {
  . "$LAB_DIR/lib/ext.sh"
  ext_fixture "$ROOT"
}

# pull_refused CHECKOUT REASON
pull_refused() {
  local out
  out=$(bbhv image pull --no-collect --checkout "$EXT_LAB/checkouts/$1" 2>&1) && fail "$1 was pulled"
  echo "$out"
  echo "$out" | grep -q "image hello: refused: .*$2" || fail "$1: no refusal naming hello and '$2'"
}

check() {
  . /usr/local/lib/lab/ext.sh
  ext_http_up || fail "cannot start httpd"
  before=$(ls /var/lib/bitbuilder/images 2>/dev/null | wc -l)
  pull_refused wrong-digest-http "has sha256 [0-9a-f]*; images/hello.json pins"
  pull_refused stranger-http "does not trust"
  expect_eq "store entries after the refusals" "$(ls /var/lib/bitbuilder/images 2>/dev/null | wc -l)" "$before"
  run bbhv image pull --checkout "$EXT_LAB/checkouts/v2-http" || fail "the good image was refused"
  sha=$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$EXT_LAB/checkouts/v2-http/images/hello.json")
  [ -f "/var/lib/bitbuilder/images/sha256-$sha" ] || fail "sha256-$sha is not in the store"
  run bbhv image verify hello --repo "$EXT_LAB/checkouts/v2-http" || fail "bbhv image verify refused the pulled image"
  ext_sync "$EXT_LAB/checkouts/v2-http" || fail "v2 refused"
  out=$(systemd-run --wait --pipe --quiet --unit=lab-hello-workload bbhv-hello)
  expect_eq "the service's output" "$out" hello-v2
  ext_reset

  log "a container on a pulled image"
  local unit=systemd-nspawn@lab-pull.c.service
  ext_http_up || fail "cannot start httpd"
  ext_sync "$EXT_LAB/checkouts/workload" || fail "the workload's checkout was refused"
  sha=$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$EXT_LAB/checkouts/workload/images/pulled-busybox.json")
  [ -f "/var/lib/bitbuilder/images/sha256-$sha" ] || fail "the container image is not in the store"
  run systemctl start tenant@lab-pull.service "$unit" || fail "the tenant on the pulled image does not start"
  wait_active "$unit" 120
  wait_for 30 "the container's output" sh -c "journalctl -t lab-pull.c -o cat | grep -q PULLED-IMAGE-OK"
  run journalctl -u bitbuilder-image@pulled-busybox.service -o cat --no-pager
  journalctl -u bitbuilder-image@pulled-busybox.service -o cat --no-pager | grep -q "verified, signed by lab@bitbuilder" ||
    fail "bitbuilder-image@pulled-busybox did not check the signature"
  run systemctl stop tenant@lab-pull.service
  ext_sync "$EXT_LAB/checkouts/workload-gone" || fail "cannot remove the workload"
  ext_http_down
  systemctl reset-failed
}
