# Strings from git are data, never syntax, as systemd 257 itself reads them: a tenant whose
# description is full of unit-file syntax (%-specifiers, $variables, quotes, backslashes,
# comment and section markers) gets exactly that text back from `systemctl show`, and its
# units carry no setting the generator did not write.
TIER=container
DESCRIPTION="hostile metadata strings come back verbatim from systemctl show, nothing injected"

ID=lab-hostile
# The JSON text of the description, and what it means.
HOSTILE_JSON='100% %i %n %% ${HOME} $USER \"q\" back\\slash ; # [Service] ExecStartPre=/bin/false é'
HOSTILE='100% %i %n %% ${HOME} $USER "q" back\slash ; # [Service] ExecStartPre=/bin/false é'

prepare() {
  repo_copy "$EXAMPLE_REPO" "$LAB_DATA/repo"
  mkdir -p "$LAB_DATA/repo/tenants/$ID"
  cat > "$LAB_DATA/repo/tenants/$ID/metadata.json" <<EOJ
{
  "schemaVersion": 1,
  "id": "$ID",
  "description": "$HOSTILE_JSON",
  "resources": { "memoryMax": "256M", "tasksMax": 16 }
}
EOJ
  # The scenario's own reading of the JSON must agree with the shell's idea of it.
  [ "$(jq -r .description "$LAB_DATA/repo/tenants/$ID/metadata.json")" = "$HOSTILE" ] ||
    fail "test set-up: the JSON does not hold the intended string"
  apply_repo "$ROOT" "$LAB_DATA/repo"
}

check() {
  local slice unit; slice=$(slice_of "$ID") unit=$(unit_of tenant "$ID")
  wait_active "$unit"
  expect_prop "$slice" Description "Tenant $ID: $HOSTILE"
  expect_prop "$unit" Description "Tenant $ID: $HOSTILE"
  expect_prop "$unit" Slice "$slice"
  # Nothing injected: the slice carries only what the generator wrote, the tenant unit
  # runs no command at start.
  expect_eq "ExecStartPre of $unit" "$(unit_prop "$unit" ExecStartPre)" ""
  expect_eq "ExecStart of $unit" "$(unit_prop "$unit" ExecStart)" ""
  expect_prop "$slice" MemoryMax 268435456
  expect_prop "$slice" TasksMax 16
  run systemctl cat "$slice" "$unit"
}
