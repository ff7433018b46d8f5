# The operator's verbs in the booted example: `bbhv status`, `logs`, `why` and `doctor` say
# what systemd and the journal say. Every answer is checked against systemd's own
# (`systemctl show`, `journalctl`), including after a unit is stopped and host.toml broken.
TIER=container
DESCRIPTION="bbhv status/logs/why/doctor in the booted example agree with systemctl show and journalctl; a stopped network and a broken host.toml show up"

prepare() {
  apply_repo "$ROOT" "$EXAMPLE_REPO" > "$LAB_DATA/generation" || fail "cannot apply the example repository"
  tenant_ids "$EXAMPLE_REPO" enabled > "$LAB_DATA/enabled"
  [ -s "$LAB_DATA/enabled" ] || fail "the example repository has no enabled tenant"
  : > "$LAB_DATA/networked"
  local id
  for id in $(cat "$LAB_DATA/enabled"); do
    if has_key "$EXAMPLE_REPO/tenants/$id/metadata.json" .network; then echo "$id" >> "$LAB_DATA/networked"; fi
  done
  [ -s "$LAB_DATA/networked" ] || fail "no enabled example tenant has a network"
}

# systemd's view of a unit as bbhv status names it; "-" when the unit does not exist,
# "skipped" when inactive because a condition failed.
step_state() {
  local load active cond
  load=$(unit_prop "$1" LoadState) active=$(unit_prop "$1" ActiveState) cond=$(unit_prop "$1" ConditionResult)
  # ConditionResult is "no" too for a unit whose conditions were never checked.
  [ -n "$(unit_prop "$1" ConditionTimestamp)" ] || cond=unchecked
  case $load/$active/$cond in
    not-found/*) echo - ;;
    */active/*) echo ok ;;
    */failed/*) echo failed ;;
    */activating/*|*/deactivating/*|*/reloading/*) echo pending ;;
    */inactive/no) echo skipped ;;
    *) echo inactive ;;
  esac
}

# status_step JSON ID STEP FIELD
status_step() { jq -r --arg id "$2" --arg s "$3" ".tenants[] | select(.id == \$id) | .steps[] | select(.step == \$s) | .$4 // \"null\"" "$1"; }

# worst STATE...: the step's state from its units' (failed > pending > inactive > ok;
# skipped when every unit was).
worst() {
  local s
  [ $# -gt 0 ] || { echo none; return; }
  for s in failed pending inactive ok; do
    case " $* " in *" $s "*) echo "$s"; return ;; esac
  done
  echo skipped
}

check_status() {
  local json=$1 id unit want step units states since sd
  for id in $(jq -r '.tenants[].id' "$json"); do
    # validated: the generator's report.
    want=$(jq -r --arg id "$id" '.tenants[] | select(.id == $id) | .status' "$LAB_DATA/report.json")
    case $want in generated) want=ok ;; disabled) want=inactive ;; *) want=failed ;; esac
    expect_eq "status $id validated" "$(status_step "$json" "$id" validated state)" "$want"
    # Every other step: what systemctl says of each of the step's units.
    for step in units network overlays workloads; do
      units=$(jq -r --arg id "$id" --arg s "$step" '.tenants[] | select(.id == $id) | .steps[] | select(.step == $s) | .units[]' "$json")
      states=""
      for unit in $units; do states="$states $(step_state "$unit")"; done
      # shellcheck disable=SC2086 # one word per unit
      expect_eq "status $id $step ($(echo "$units" | xargs))" "$(status_step "$json" "$id" "$step" state)" "$(worst $states)"
    done
    if [ "$want" = ok ]; then
      jq -e --arg id "$id" '.tenants[] | select(.id == $id) | .steps[] | select(.step == "units") | .units | index("tenant@\($id).service")' "$json" >/dev/null ||
        fail "bbhv status does not count tenant@$id.service among $id's units"
    fi
    unit=tenant-network@$id.service
    if [ "$(step_state "$unit")" = ok ]; then
      # since: systemd's StateChangeTimestamp of the unit, in seconds; the commit: the generation's.
      sd=$(in_guest systemctl show --timestamp=unix -P StateChangeTimestamp "$unit")
      since=$(status_step "$json" "$id" network since)
      expect_eq "status $id network since" "@$((since / 1000000))" "$sd"
      expect_eq "status $id network commit" "$(status_step "$json" "$id" network commit)" "$SHA"
    fi
  done
}

check() {
  local id net gen rc json deps kind other u owner
  expect_running
  gen=$(cat "$LAB_DATA/generation") SHA=${gen#*-}
  for id in $(cat "$LAB_DATA/enabled"); do wait_active "tenant@$id.service"; done
  in_guest cat /run/bitbuilder/generator-report.json > "$LAB_DATA/report.json" || fail "no generator report"
  expect_eq "report commit" "$(jq -r .commit "$LAB_DATA/report.json")" "$SHA"

  log "bbhv status"
  json=$LAB_DATA/status.json
  in_guest bbhv status --json > "$json"
  jq -e '.tenants | length > 0' "$json" >/dev/null || fail "bbhv status --json lists no tenant"
  check_status "$json"
  in_guest bbhv status > "$LAB_DATA/status.txt"
  cat "$LAB_DATA/status.txt"
  if grep -q $'\e' "$LAB_DATA/status.txt"; then fail "colour codes in bbhv status written to a pipe"; fi
  for id in $(cat "$LAB_DATA/enabled"); do
    grep -q "^$id " "$LAB_DATA/status.txt" || fail "bbhv status does not list $id"
  done

  # A stopped network: status says inactive and unhealthy, exit 1, like systemctl.
  net=$(head -1 "$LAB_DATA/networked")
  run systemctl stop "tenant-network@$net.service" || fail "cannot stop tenant-network@$net"
  rc=0; in_guest bbhv status "$net" --json > "$json" || rc=$?
  expect_eq "bbhv status $net exit status with its network stopped" "$rc" 1
  check_status "$json"
  expect_eq "status $net network" "$(status_step "$json" "$net" network state)" inactive
  expect_eq "status $net healthy" "$(jq -r '.tenants[0].healthy' "$json")" false
  run bbhv status "$net"
  # The stop took tenant@ down with it (it binds to its network): start both again.
  run systemctl start "tenant@$net.service" "tenant-network@$net.service" || fail "cannot start tenant $net again"
  wait_active "tenant-network@$net.service"
  in_guest bbhv status "$net" --json > "$json" || fail "bbhv status $net fails once its network is back"
  expect_eq "status $net healthy again" "$(jq -r '.tenants[0].healthy' "$json")" true

  log "bbhv logs"
  id=$(head -1 "$LAB_DATA/enabled") other=$(sed -n 2p "$LAB_DATA/enabled")
  in_guest journalctl -o cat "BITBUILDER_TENANT=$id" > "$LAB_DATA/field.txt"
  cat "$LAB_DATA/field.txt"
  grep -qx "tenant $id: generated from tenants/$id/metadata.json (commit $SHA)" "$LAB_DATA/field.txt" ||
    fail "journalctl BITBUILDER_TENANT=$id has no generator record"
  expect_eq "BITBUILDER_COMMIT of $id's record" \
    "$(in_guest journalctl -o json "BITBUILDER_TENANT=$id" | jq -r 'select(.SYSLOG_IDENTIFIER == "tenant-generator") | .BITBUILDER_COMMIT' | tail -1)" "$SHA"
  in_guest bbhv logs "$id" -o json > "$LAB_DATA/logs.json" || fail "bbhv logs $id failed"
  jq -r .__CURSOR "$LAB_DATA/logs.json" | sort > "$LAB_DATA/logs.cursors"
  # Everything journalctl has for the tenant's field and for systemd's messages about tenant@.
  { in_guest journalctl -o json "BITBUILDER_TENANT=$id"; in_guest journalctl -o json "UNIT=tenant@$id.service"; } |
    jq -r .__CURSOR | sort -u > "$LAB_DATA/want.cursors"
  [ -s "$LAB_DATA/want.cursors" ] || fail "journalctl has nothing about $id"
  expect_eq "journal entries of $id missing from bbhv logs" "$(comm -23 "$LAB_DATA/want.cursors" "$LAB_DATA/logs.cursors" | wc -l)" 0
  if [ -n "$other" ] && jq -e --arg o "$other" 'select(.BITBUILDER_TENANT == $o)' "$LAB_DATA/logs.json" >/dev/null; then
    fail "bbhv logs $id shows records of $other"
  fi
  run bbhv logs "$id" -n 5
  # The hooks' and workloads' own lines carry the tenant too (LogExtraFields=): every
  # record a tenant unit's processes wrote names that unit's tenant.
  in_guest journalctl -F _SYSTEMD_UNIT | grep -E '^(tenant-network|tenant-infra|tenant-vm|bitbuilder-storage|systemd-nspawn)@' \
    > "$LAB_DATA/hook-units" || true
  grep -q "^tenant-network@$net.service$" "$LAB_DATA/hook-units" || fail "no journal lines from tenant-network@$net's processes"
  while read -r u; do
    owner=${u#*@} owner=${owner%.service} owner=${owner%%[._]*}
    expect_eq "records of $u without BITBUILDER_TENANT=$owner" \
      "$(in_guest journalctl -o json "_SYSTEMD_UNIT=$u" | jq -r --arg t "$owner" 'select(.BITBUILDER_TENANT != $t) | .MESSAGE' | wc -l)" 0
  done < "$LAB_DATA/hook-units"

  log "bbhv why"
  unit=tenant@$id.service
  in_guest bbhv why "$unit" --json > "$json" || fail "bbhv why $unit failed"
  expect_eq "why tenant" "$(jq -r .tenant "$json")" "$id"
  expect_eq "why file" "$(jq -r .file "$json")" "tenants/$id/metadata.json"
  expect_eq "why commit" "$(jq -r .commit "$json")" "$SHA"
  expect_eq "why generation" "$(jq -r .generation "$json")" "$gen"
  for kind in Requires Wants BindsTo; do
    deps=$(in_guest systemctl show -P "$kind" "$unit" | tr ' ' '\n' | sed '/^$/d' | sort | xargs)
    expect_eq "why $unit $kind" "$(jq -r --arg k "$kind" '[.tree.children[] | select(.via == $k) | .unit] | sort | join(" ")' "$json")" "$deps"
  done
  run bbhv why "$unit"
  if in_guest bbhv why lab-no-such-unit.service; then fail "bbhv why accepts a unit systemd does not know"; fi

  log "bbhv doctor"
  rc=0; in_guest bbhv doctor --json > "$json" || rc=$?
  jq . "$json"
  expect_eq "doctor exit status vs its ok" "$rc" "$(jq -r 'if .ok then 0 else 1 end' "$json")"
  expect_eq "doctor systemd version" "$(jq -r '.checks[] | select(.check == "systemd") | .detail' "$json")" \
    "systemd $(in_guest systemctl --version | awk 'NR == 1 {print $2}')"
  expect_eq "doctor current" "$(jq -r '.checks[] | select(.check == "current") | .detail' "$json")" "current -> generation $gen"
  if in_guest grep -qw memory /sys/fs/cgroup/cgroup.controllers; then want=ok; else want=fail; fi
  expect_eq "doctor cgroup2 (memory controller)" "$(jq -r '.checks[] | select(.check == "cgroup2") | .level' "$json")" "$want"
  # A broken host.toml is a problem, with a fix, and exit status 1.
  in_guest cp /etc/bitbuilder/host.toml /run/host.toml.lab || fail "no host.toml to break"
  in_guest sh -c 'printf "[network\n" >> /etc/bitbuilder/host.toml'
  rc=0; in_guest bbhv doctor --json > "$json" || rc=$?
  in_guest cp /run/host.toml.lab /etc/bitbuilder/host.toml
  expect_eq "doctor exit status with a broken host.toml" "$rc" 1
  expect_eq "doctor host.toml" "$(jq -r '.checks[] | select(.check == "host.toml") | .level' "$json")" fail
  jq -e '.checks[] | select(.check == "host.toml") | .fix | length > 0' "$json" >/dev/null || fail "no fix for host.toml"
  run bbhv doctor || true
}
