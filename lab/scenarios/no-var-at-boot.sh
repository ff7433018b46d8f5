# /var/lib/bitbuilder is not there when the generators run (here: bind-mounted from /srv by
# fstab, i.e. after local-fs.target starts). The generator must still succeed and arrange a
# re-run, so the tenants come up once the state is mounted.
TIER=container
DESCRIPTION="/var/lib/bitbuilder mounted after the generators: tenants still come up"

prepare() {
  local state=$ROOT/srv/lab-state gen
  mkdir -p "$state"
  gen=$(add_generation "$ROOT" "$EXAMPLE_REPO" 1) || fail "cannot add a generation"
  # add_generation writes under var/lib/bitbuilder; move it to the real state directory.
  mv "$ROOT/var/lib/bitbuilder/generations" "$state/"
  set_current "$ROOT" "$gen" "$state"
  # What the generators see: an empty mount point.
  safe_rm "$ROOT/var/lib/bitbuilder"; mkdir -p "$ROOT/var/lib/bitbuilder"
  echo "/srv/lab-state /var/lib/bitbuilder none bind 0 0" >> "$ROOT/etc/fstab"
  tenant_ids "$EXAMPLE_REPO" enabled > "$LAB_DATA/enabled"
}

check() {
  expect_active var-lib-bitbuilder.mount
  for id in $(cat "$LAB_DATA/enabled"); do
    wait_active "$(unit_of tenant "$id")" 120
    expect_active "$(slice_of "$id")"
  done
  # The re-run started more units after the boot had settled: let them settle too.
  expect_eq is-system-running "$(in_guest timeout 60 systemctl is-system-running --wait)" running
}
