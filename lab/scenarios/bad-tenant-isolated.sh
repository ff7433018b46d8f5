# One tenant with invalid metadata must not take the others down: they still come up, and the
# error is reported in the journal and in the generator report.
TIER=container
DESCRIPTION="invalid tenant: others still up, error in journal and generator report"

BAD=lab-bad

prepare() {
  repo_copy "$EXAMPLE_REPO" "$LAB_DATA/repo"
  mkdir -p "$LAB_DATA/repo/tenants/$BAD"
  # VLAN out of range (1-4094) and a key the schema does not know.
  cat > "$LAB_DATA/repo/tenants/$BAD/metadata.json" <<EOJ
{
  "schemaVersion": 1,
  "id": "$BAD",
  "description": "lab: invalid on purpose",
  "enabled": true,
  "resources": { "memoryMax": "1G", "tasksMax": 64 },
  "network": { "vlan": 5000 },
  "notAKey": true
}
EOJ
  apply_repo "$ROOT" "$LAB_DATA/repo"
  tenant_ids "$EXAMPLE_REPO" enabled > "$LAB_DATA/enabled"
}

check() {
  for id in $(cat "$LAB_DATA/enabled"); do
    wait_active "$(unit_of tenant "$id")"
    expect_active "$(slice_of "$id")"
  done
  expect_prop "$(unit_of tenant "$BAD")" ActiveState inactive
  expect_prop "$(slice_of "$BAD")" ActiveState inactive
  # Only the broken tenant may have failed units.
  failed=$(in_guest systemctl list-units --failed --plain --no-legend | awk '{print $1}' |
           grep -v -e "$BAD" -e "$(systemd-escape "$BAD")")
  [ -z "$failed" ] || fail "units failed besides the invalid tenant: $(echo $failed)"

  log "generator report"
  report=$(in_guest cat /run/bitbuilder/generator-report.json) || fail "no /run/bitbuilder/generator-report.json"
  echo "$report" | jq . || fail "generator report is not JSON"
  expect_eq "report: status of $BAD" \
    "$(echo "$report" | jq -r --arg id "$BAD" '.tenants[] | select(.id == $id) | .status')" failed
  nerr=$(echo "$report" | jq --arg id "$BAD" '[.tenants[] | select(.id == $id) | .errors[]] | length')
  [ "$nerr" -gt 0 ] || fail "report lists no errors for $BAD"
  echo "$report" | jq -e --arg id "$BAD" '[.tenants[] | select(.id == $id) | .errors[]
      | select(.file | test("tenants/\($id)/metadata.json$"))] | length > 0' >/dev/null ||
    fail "no error of $BAD names tenants/$BAD/metadata.json"
  for id in $(cat "$LAB_DATA/enabled"); do
    expect_eq "report: status of $id" \
      "$(echo "$report" | jq -r --arg id "$id" '.tenants[] | select(.id == $id) | .status')" generated
  done

  log "journal"
  in_guest journalctl -b --no-pager -o short-monotonic | grep -F -- "$BAD" > "$LAB_DATA/journal"
  cat "$LAB_DATA/journal"
  [ -s "$LAB_DATA/journal" ] || fail "journalctl -b has no message about $BAD"
  grep -qiE 'vlan|5000|notAKey|unknown|invalid|error' "$LAB_DATA/journal" ||
    fail "the journal mentions $BAD but not its error"
}
