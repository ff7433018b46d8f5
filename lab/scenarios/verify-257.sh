# Every unit file `bbhv render` produces for the example repository (DIR/units; the
# networkd files in DIR/network are not units and are listed as such), and every installed
# static unit, passes systemd 257's own checker (`systemd-analyze verify`) inside the guest,
# with the installed units (the tenant@ templates, tenants.target, ...) on the unit path.
TIER=container
DESCRIPTION="bbhv render of the example repo passes systemd-analyze verify (systemd 257)"

UNIT_RE='\.(service|socket|target|slice|mount|automount|swap|timer|path|device|scope)$'

prepare() {
  mkdir -p "$ROOT/root/lab"
  repo_copy "$EXAMPLE_REPO" "$ROOT/root/lab/repo"
  install_host_config "$ROOT"
}

check() {
  local out=/root/lab/render units=() dirs=() line type path rel unit n=0 bad=0
  run bbhv render /root/lab/repo --out "$out" || fail "bbhv render failed"
  run find "$out" -printf '%y %P\n'
  # What to verify: unit files by name (so drop-ins and templates resolve as in a boot),
  # drop-in directories as the unit they extend, .wants/.requires links as their instance.
  while read -r type rel; do
    path=$out/$rel
    case $type/$rel in
      # networkd's and nspawn's files are not units (networkd's drop-in for the uplink's
      # .network included); the net-* scenarios prove networkd takes them.
      f/network/*|f/nspawn/*) echo "not a unit file (systemd-analyze verify does not check it): $rel"; continue ;;
      f/*.d/*.conf) unit=$(basename "$(dirname "$rel")" .d); dirs+=("$(dirname "$(dirname "$path")")") ;;
      l/*.wants/*|l/*.requires/*|l/*.upholds/*) unit=$(basename "$rel") ;;
      f/*) if [[ $rel =~ $UNIT_RE ]]; then unit=$(basename "$rel"); dirs+=("$(dirname "$path")")
           else echo "not a unit file (systemd-analyze verify does not check it): $rel"; continue; fi ;;
      *) continue ;;
    esac
    units+=("$unit")
  done < <(in_guest find "$out" -mindepth 1 -printf '%y %P\n' | sort)
  [ ${#units[@]} -gt 0 ] || fail "bbhv render produced no unit files"
  # And the installed static units that no rendered file names.
  units+=(tenants.slice tenants.target tenant-vm@acme_db.service
          bitbuilder-generator-rerun.service bitbuilder-generator-report.service)
  unitpath=$(printf '%s\n' "${dirs[@]}" | sort -u | paste -sd:):
  echo "SYSTEMD_UNIT_PATH=$unitpath"
  for unit in $(printf '%s\n' "${units[@]}" | sort -u); do
    n=$((n + 1))
    # --recursive-errors=no: judge this unit, not the distribution's units it references;
    # with it, warnings such as an unknown key also fail the verification.
    if ! res=$(in_guest env SYSTEMD_UNIT_PATH="$unitpath" \
                 systemd-analyze verify --man=no --recursive-errors=no "$unit" 2>&1) || [ -n "$res" ]; then
      echo "FAILED: $unit"; echo "$res" | sed 's/^/    /'
      bad=$((bad + 1)); first=${first:-$unit: $(echo "$res" | head -1)}
    else
      echo "ok: $unit"
    fi
  done
  # Canary: the same invocation must reject a broken drop-in, or the check proves nothing.
  in_guest mkdir -p /root/lab/canary/tenant@lab-canary.service.d
  echo -e '[Service]\nNotAKey=1' | in_guest tee /root/lab/canary/tenant@lab-canary.service.d/50.conf >/dev/null
  if res=$(in_guest env SYSTEMD_UNIT_PATH=/root/lab/canary: systemd-analyze verify --man=no \
             --recursive-errors=no tenant@lab-canary.service 2>&1) && [ -z "$res" ]; then
    fail "systemd-analyze verify accepted a broken drop-in: the check is vacuous"
  fi
  echo "canary rejected as expected: $res"
  [ $bad = 0 ] || fail "$bad of $n units fail systemd-analyze verify; first: $first"
  echo "check: all $n rendered units pass systemd-analyze verify"
}
