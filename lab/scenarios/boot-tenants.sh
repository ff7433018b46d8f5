# The example repository applied at /var/lib/bitbuilder/current: after boot every enabled
# tenant runs in its own slice, and the slice carries the limits its metadata.json declares.
TIER=container
DESCRIPTION="example repo applied: tenant@ units and slices active, slice limits as declared"

prepare() {
  apply_repo "$ROOT" "$EXAMPLE_REPO"
  tenant_ids "$EXAMPLE_REPO" enabled > "$LAB_DATA/enabled"
  tenant_ids "$EXAMPLE_REPO" disabled > "$LAB_DATA/disabled"
  [ -s "$LAB_DATA/enabled" ] || fail "the example repository has no enabled tenant"
  mkdir -p "$LAB_DATA/limits"
  for id in $(cat "$LAB_DATA/enabled"); do
    expected_limits "$EXAMPLE_REPO/tenants/$id/metadata.json" > "$LAB_DATA/limits/$id"
  done
}

check() {
  expect_running
  for id in $(cat "$LAB_DATA/enabled"); do
    slice=$(slice_of "$id")
    wait_active "tenant@$id.service"
    expect_active "$slice"
    expect_prop "tenant@$id.service" Slice "$slice"
    expect_limits "$slice" "$LAB_DATA/limits/$id"
  done
  for id in $(cat "$LAB_DATA/disabled"); do
    expect_prop "tenant@$id.service" ActiveState inactive
  done
  run systemctl list-units --no-pager --all 'tenant*' 'tenants*'
}
