# Switching `current` to another checkout and reloading: the new tenant comes up, and the
# removed tenant's units disappear once it is stopped: `systemctl stop tenant@<id>.service
# tenants-<id>.slice` (tenant@ takes its -infra@ and -network@ along; the slice must be
# named too: after the reload its units no longer point at it, and an active slice stays).
TIER=container
DESCRIPTION="current switched + daemon-reload: new tenant up, removed tenant's units gone"

NEW=lab-new

prepare() {
  tenant_ids "$EXAMPLE_REPO" enabled > "$LAB_DATA/enabled"
  local removed; removed=$(head -1 "$LAB_DATA/enabled")
  [ -n "$removed" ] || fail "the example repository has no enabled tenant"
  echo "$removed" > "$LAB_DATA/removed"
  # Generation 2: the first tenant leaves and $NEW arrives. $NEW takes over the leaving
  # tenant's metadata (only its id changes), so VLANs and subnets stay unique.
  repo_copy "$EXAMPLE_REPO" "$LAB_DATA/repo2"
  mv "$LAB_DATA/repo2/tenants/$removed" "$LAB_DATA/repo2/tenants/$NEW"
  jq --arg id "$NEW" '.id = $id' "$EXAMPLE_REPO/tenants/$removed/metadata.json" \
    > "$LAB_DATA/repo2/tenants/$NEW/metadata.json"
  apply_repo "$ROOT" "$EXAMPLE_REPO" > "$LAB_DATA/gen1"
  add_generation "$ROOT" "$LAB_DATA/repo2" 2 > "$LAB_DATA/gen2"
}

check() {
  local removed gen2 u
  removed=$(cat "$LAB_DATA/removed") gen2=$(cat "$LAB_DATA/gen2")
  for id in $(cat "$LAB_DATA/enabled"); do wait_active "$(unit_of tenant "$id")"; done

  log "switch current to $gen2, reload"
  run ln -sfn "generations/$gen2" /var/lib/bitbuilder/current.lab-new || fail "ln failed"
  run mv -T /var/lib/bitbuilder/current.lab-new /var/lib/bitbuilder/current || fail "mv failed"
  run systemctl daemon-reload || fail "daemon-reload failed"
  run systemctl start tenants.target || fail "systemctl start tenants.target failed"
  wait_active "$(unit_of tenant "$NEW")"
  expect_active "$(slice_of "$NEW")"
  expect_prop "$(unit_of tenant "$NEW")" Slice "$(slice_of "$NEW")"
  for id in $(grep -vx "$removed" "$LAB_DATA/enabled"); do expect_active "$(unit_of tenant "$id")"; done

  log "stop the removed tenant $removed and its slice"
  run systemctl stop "$(unit_of tenant "$removed")" "$(slice_of "$removed")" ||
    fail "systemctl stop $(unit_of tenant "$removed") $(slice_of "$removed") failed"
  sleep 1
  run systemctl list-units --all --no-pager "*$removed*" "*$(systemd-escape "$removed")*"
  for u in "$(unit_of tenant "$removed")" "$(unit_of tenant-infra "$removed")" \
           "$(unit_of tenant-network "$removed")" "$(slice_of "$removed")"; do
    expect_unloaded "$u"
  done
}
