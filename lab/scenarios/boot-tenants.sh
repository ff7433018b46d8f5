# The example repository applied at /var/lib/bitbuilder/current: after boot every enabled
# tenant runs in its own slice, and the slice carries the limits its metadata.json declares.
TIER=container
DESCRIPTION="example repo applied: tenants up in their (bucketed) slices with the declared limits; tenant-network@ only where declared, nothing run at boot"

prepare() {
  apply_repo "$ROOT" "$EXAMPLE_REPO"
  tenant_ids "$EXAMPLE_REPO" enabled > "$LAB_DATA/enabled"
  tenant_ids "$EXAMPLE_REPO" disabled > "$LAB_DATA/disabled"
  [ -s "$LAB_DATA/enabled" ] || fail "the example repository has no enabled tenant"
  mkdir -p "$LAB_DATA/limits" "$LAB_DATA/needs"
  local id m
  for id in $(cat "$LAB_DATA/enabled"); do
    m=$EXAMPLE_REPO/tenants/$id/metadata.json
    expected_limits "$m" > "$LAB_DATA/limits/$id"
    : > "$LAB_DATA/needs/$id"
    if has_key "$m" .network; then echo tenant-network >> "$LAB_DATA/needs/$id"; fi
  done
  grep -qx tenant-network "$LAB_DATA"/needs/* || fail "no enabled example tenant has a network"
}

check() {
  local id slice unit
  expect_running
  for id in $(cat "$LAB_DATA/enabled"); do
    slice=$(slice_of "$id")
    wait_active "$(unit_of tenant "$id")"
    expect_active "$slice"
    expect_prop "$(unit_of tenant "$id")" Slice "$slice"
    expect_limits "$slice" "$LAB_DATA/limits/$id"
    # The slice sits in its bucket, a child of tenants.slice.
    expect_prop "$slice" Slice "$(echo "$slice" | cut -d- -f1-2).slice"
    # tenant-network@ is up where the tenant declares a network, and not even loaded
    # where it does not; tenant-infra@ waits for the tenant's workloads.
    unit=$(unit_of tenant-network "$id")
    if grep -qx tenant-network "$LAB_DATA/needs/$id"; then
      expect_active "$unit"
    else
      expect_unloaded "$unit"
    fi
    expect_unloaded "$(unit_of tenant-infra "$id")"
    # Starting a tenant ran no process (tenant@ has no start command).
    expect_prop "$(unit_of tenant "$id")" ExecMainPID 0
  done
  # tenant-infra@ makes the state directories when started (by a workload, later).
  id=$(head -1 "$LAB_DATA/enabled")
  run systemctl start "$(unit_of tenant-infra "$id")" || fail "tenant-infra@$id does not start"
  expect_eq "/var/lib/tenants/$id" "$(in_guest stat -c '%a %U' "/var/lib/tenants/$id")" "700 root"
  for dir in systemd upper work; do
    in_guest test -d "/var/lib/tenants/$id/$dir" || fail "/var/lib/tenants/$id/$dir missing"
  done
  # No per-tenant network namespace, so no mount per tenant in the host's mount table.
  expect_eq "named network namespaces" "$(in_guest ip netns list | wc -l)" 0
  for id in $(cat "$LAB_DATA/disabled"); do
    unit=$(unit_of tenant "$id")
    expect_prop "$unit" ActiveState inactive
    # Disabled means not started, not unknown: its slice is there, and it starts by hand.
    run systemctl start "$unit" || fail "a disabled tenant does not start by hand"
    expect_active "$unit"
    expect_prop "$unit" Slice "$(slice_of "$id")"
  done
  # A tenant the repository does not declare is skipped, not run outside any slice.
  for unit in tenant@lab-undeclared.service tenant-network@lab-undeclared.service; do
    run systemctl start "$unit"
    expect_prop "$unit" ActiveState inactive
    expect_prop "$unit" ConditionResult no
  done
  run systemctl list-units --no-pager --all 'tenant*' 'tenants*'
}
