# The example repository applied at /var/lib/bitbuilder/current: after boot every enabled
# tenant runs in its own slice, and the slice carries the limits its metadata.json declares.
TIER=container
DESCRIPTION="example repo applied: tenants up in their slices with the declared limits, netns and state dirs made"

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
    # tenant-infra@ and tenant-network@ did their work, inside the tenant's slice.
    for unit in "tenant-infra@$id.service" "tenant-network@$id.service"; do
      expect_active "$unit"
      expect_prop "$unit" Slice "$slice"
    done
    expect_eq "network namespace of $id" "$(in_guest ip netns list | grep -o "^tenant-$id\b")" "tenant-$id"
    expect_eq "/var/lib/tenants/$id" "$(in_guest stat -c '%a %U' "/var/lib/tenants/$id")" "700 root"
    for dir in systemd upper work; do
      in_guest test -d "/var/lib/tenants/$id/$dir" || fail "/var/lib/tenants/$id/$dir missing"
    done
  done
  for id in $(cat "$LAB_DATA/disabled"); do
    expect_prop "tenant@$id.service" ActiveState inactive
    # Disabled means not started, not unknown: its slice is there, and it starts by hand.
    run systemctl start "tenant@$id.service" || fail "a disabled tenant does not start by hand"
    expect_active "tenant@$id.service"
    expect_prop "tenant@$id.service" Slice "$(slice_of "$id")"
  done
  # A tenant the repository does not declare is skipped, not run outside any slice.
  run systemctl start tenant@lab-undeclared.service
  expect_prop tenant@lab-undeclared.service ActiveState inactive
  expect_prop tenant@lab-undeclared.service ConditionResult no
  in_guest test ! -e /run/netns/tenant-lab-undeclared || fail "an undeclared tenant got a network namespace"
  run systemctl list-units --no-pager --all 'tenant*' 'tenants*'
}
