# Images served over http on loopback in the guest: a manifest whose digest is not the
# served file's, and an image signed by a key the host does not trust, are refused by
# `bbhv image pull` (nothing enters the store); a good image is stored content-addressed
# and used: its binary runs as a transient service.
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
  expect_eq "the workload's output" "$out" hello-v2
  ext_reset
}
