# shellcheck shell=bash
# Assertions for scenario checks. Sourced on the host (container tier, where in_guest enters
# the container) and copied into the guest (VM tier, where in_guest just runs the command),
# so a check reads the same in both tiers. A failing assertion writes its reason to
# $LAB_REASON and ends the check (it runs in a subshell).

fail() {
  echo "FAIL: $*"
  printf '%s\n' "$*" > "${LAB_REASON:-/dev/null}"
  exit 1
}

log() { echo "--- $*"; }

# Run a command in the guest, echoing it and its output into the scenario log.
run() {
  echo "\$ $*"
  in_guest "$@"
  local rc=$?
  echo "[rc=$rc]"
  return $rc
}

# unit_prop UNIT PROPERTY -> the property's value as systemctl shows it.
unit_prop() { in_guest systemctl show -P "$2" "$1"; }

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
  echo "check: $1 = '$2' (want '$3')"
  [ "$2" = "$3" ] || fail "$1 is '$2', expected '$3'"
}

# expect_prop UNIT PROPERTY EXPECTED
expect_prop() { expect_eq "$1 $2" "$(unit_prop "$1" "$2")" "$3"; }

expect_active() { expect_prop "$1" ActiveState active; }

# wait_for SECONDS DESCRIPTION COMMAND... : poll until COMMAND succeeds (inside the guest).
wait_for() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until in_guest "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.5
  done
}

# Wait for a unit to leave the transitional states, then expect it active.
wait_active() {
  local unit=$1 secs=${2:-60} end state
  end=$((SECONDS + secs))
  while :; do
    state=$(unit_prop "$unit" ActiveState)
    case $state in
      activating|deactivating|reloading|refreshing) ;;
      # Inactive with a job queued (a --no-block start waiting for what it is ordered after).
      inactive) [ -n "$(unit_prop "$unit" Job)" ] || break ;;
      *) break ;;
    esac
    [ $SECONDS -lt $end ] || break
    sleep 0.5
  done
  [ "$state" = active ] || {
    in_guest systemctl status --no-pager -l -n 20 "$unit"
    fail "$unit is '$state', expected active"
  }
  echo "check: $unit active"
}

# systemd timespan as printed by systemctl show ("2s", "500ms", "1.500000s", "1min 30s",
# "infinity") -> microseconds, so limits compare as numbers.
timespan_usec() {
  awk -v t="$1" 'BEGIN{
    if (t == "infinity" || t == "") { print t; exit }
    n = split(t, parts, " "); us = 0
    for (i = 1; i <= n; i++) {
      p = parts[i]; match(p, /^[0-9.]+/); v = substr(p, 1, RLENGTH); u = substr(p, RLENGTH + 1)
      f = (u=="us")?1:(u=="ms")?1e3:(u=="s"||u=="")?1e6:(u=="min")?6e7:(u=="h")?3.6e9:-1
      if (f < 0) { print "bad:" t; exit }
      us += v * f
    }
    printf "%d\n", us + 0.5 }'
}

# The boot settled in "running" (lab/run waited for it: LAB_SYSTEM_STATE).
expect_running() {
  [ "$LAB_SYSTEM_STATE" = running ] && { echo "check: is-system-running = running"; return; }
  in_guest systemctl list-units --failed --no-pager
  fail "is-system-running is '$LAB_SYSTEM_STATE', expected running (failed: $(in_guest \
    systemctl list-units --failed --plain --no-legend | awk '{print $1}' | xargs))"
}

# expect_limits UNIT FILE: FILE has "Property=value" lines as `systemctl show` prints them,
# except CPUQuotaPerSecUSec in microseconds.
expect_limits() {
  local unit=$1 prop want have
  while IFS='=' read -r prop want; do
    [ -n "$prop" ] || continue
    have=$(unit_prop "$unit" "$prop")
    [ "$prop" = CPUQuotaPerSecUSec ] && have=$(timespan_usec "$have")
    expect_eq "$unit $prop" "$have" "$want"
  done < "$2"
}

# expect_unloaded UNIT: not loaded any more, or at most a not-found leftover that is inactive
# (`systemctl show` would load a template instance again, so ask list-units).
expect_unloaded() {
  local line
  line=$(in_guest systemctl list-units --all --plain --no-legend --no-pager "$1")
  echo "check: $1 gone: '${line}'"
  [ -z "$line" ] && return
  # shellcheck disable=SC2086 # split into unit, load, active, sub, description
  set -- "$1" $line
  if [ "$3" != not-found ] || [ "$4" != inactive ]; then fail "$1 is still loaded: ${*:2}"; fi
}
