# One flipped byte gets an image refused, and the previous one stays active: `bbhv sync`
# refuses a signed commit whose image was changed after signing, one whose image is signed
# by a key the host does not trust, and one whose image has no signature, each naming the
# image and the reason; a stored image changed on disk is refused at verification (the check
# `bbhv sync` runs before a commit).
TIER=vm
DESCRIPTION="a tampered, unsigned or untrusted sysext is refused by name; the previous one stays merged"

prepare() {
  . "$LAB_DIR/lib/ext.sh"
  ext_fixture "$ROOT"
}

# refused NAME REASON: bbhv sync refuses the commit NAME with REASON, and hello-v1 stays.
refused() {
  local out
  out=$(ext_git_sync "$1" 2>&1) && fail "commit $1 was accepted"
  echo "$out"
  echo "$out" | grep -q "image hello: refused: .*$2" || fail "checkout $1: no refusal naming hello and '$2'"
  expect_eq "bbhv-hello after refusing $1" "$(ext_hello)" hello-v1
}

check() {
  . /usr/local/lib/lab/ext.sh
  ext_http_up || fail "cannot start httpd"
  ext_git_sync v1 || fail "bbhv sync refused the signed v1 commit"
  expect_eq "bbhv-hello" "$(ext_hello)" hello-v1
  cur=$(readlink /var/lib/bitbuilder/current)
  refused flipped "has sha256 [0-9a-f]*; images/hello.json pins"
  refused stranger-http "does not trust"
  refused unsigned "no signature"
  expect_eq "current after the refusals" "$(readlink /var/lib/bitbuilder/current)" "$cur"
  # The store: v2 pulled, then one byte of the stored file flipped.
  run bbhv image pull --no-collect --checkout "$EXT_LAB/checkouts/v2" || fail "cannot pull v2"
  sha=$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$EXT_LAB/checkouts/v2/images/hello.json")
  printf '\x01' | dd of="/var/lib/bitbuilder/images/sha256-$sha" bs=1 seek=300 conv=notrunc status=none
  out=$(bbhv ext verify --checkout "$EXT_LAB/checkouts/v2" 2>&1) && fail "a changed stored image verified"
  echo "$out"
  echo "$out" | grep -q "image hello: refused: .*the file was changed" || fail "no refusal naming the changed file"
  out=$(bbhv image verify hello --repo "$EXT_LAB/checkouts/v2" 2>&1) && fail "bbhv image verify accepted it"
  echo "$out"
  expect_eq "bbhv-hello at the end" "$(ext_hello)" hello-v1
  rm -f "/var/lib/bitbuilder/images/sha256-$sha"*
  ext_git_reset || fail "the sync of the commit that pins nothing failed"
}
