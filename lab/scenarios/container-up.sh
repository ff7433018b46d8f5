# A tenant's containers run as systemd-nspawn@<tenant>.<name>.service: started with the
# tenant, in its slice, with their command and environment exactly as metadata.json declares
# them (printed from inside the container), journal lines tagged with the tenant and the
# container, restarted with back-off when the command fails; machinectl knows them; a stop of
# the tenant ends them inactive, not failed. Then a
# tenant with a network: each container has its address and reaches the other one
# (this part needs `bbhv net attach`, the network runtime's, and says so when it is missing).
TIER=container
DESCRIPTION="containers start with their tenant, in its slice, argv/env verbatim, journal fields, restart back-off, a stop ends them inactive (not failed); with a network they reach each other"

ID=lab-ct
NET=lab-ctnet
# Hostile argument and value: quotes, backslashes, $, %, spaces, tab, a comment marker.
ARG_JSON='a \"b\" '"'"'c'"'"' \\\\d $HOME %i ;# [Exec] e\tf'
ARG='a "b" '"'"'c'"'"' \\d $HOME %i ;# [Exec] e	f'

prepare() {
  local repo=$LAB_DATA/repo
  mkdir -p "$repo/tenants/$ID" "$repo/tenants/$NET" "$repo/images"
  busybox_image "$ROOT" busybox
  tenants_on_tmpfs "$ROOT"
  echo '{ "schemaVersion": 1, "format": "directory", "file": "busybox" }' > "$repo/images/busybox.json"
  # Disabled: started by the check once the settings are in place (nspawn_settings).
  cat > "$repo/tenants/$ID/metadata.json" <<EOJ
{
  "schemaVersion": 1, "id": "$ID", "enabled": false,
  "containers": {
    "echo": {
      "image": "busybox",
      "command": ["/bin/sh", "-c", "for a in \"\$@\"; do printf 'ARG[%s]\\\\n' \"\$a\"; done; printf 'ENV[%s]\\\\n' \"\$HOSTILE\"; echo UID_MAP \$(cat /proc/self/uid_map); exec sleep infinity", "sh", "$ARG_JSON", ""],
      "environment": { "HOSTILE": "$ARG_JSON" }
    },
    "crash": { "image": "busybox", "command": ["/bin/sh", "-c", "echo crashing; exit 3"] }
  }
}
EOJ
  cat > "$repo/tenants/$NET/metadata.json" <<EOJ
{
  "schemaVersion": 1, "id": "$NET", "enabled": false,
  "network": { "ipv4": "10.77.0.1/24" },
  "containers": {
    "a": { "image": "busybox", "address": "10.77.0.10", "command": ["/bin/sleep", "infinity"] },
    "b": { "image": "busybox", "address": "10.77.0.11", "command": ["/bin/sleep", "infinity"] }
  }
}
EOJ
  [ "$(jq -r '.containers.echo.command[4]' "$repo/tenants/$ID/metadata.json")" = "$ARG" ] ||
    fail "test set-up: the JSON does not hold the intended argument"
  apply_repo "$ROOT" "$repo" >/dev/null
}

check() {
  local unit slice m crash out
  m=$(machine_of "$ID" echo) unit=systemd-nspawn@$(machine_of "$ID" echo).service
  slice=$(slice_of "$ID")
  nspawn_settings "$m" "$(machine_of "$ID" crash)"
  # systemd 257 knows every setting (RestartSteps= and RestartMaxDelaySec= are 254+).
  out=$(in_guest systemd-analyze verify --man=no "$unit" 2>&1)
  expect_eq "systemd-analyze verify $unit" "$out" ""
  # tenant@ wants its containers; `systemctl start` of the tenant returns before their
  # start jobs ran, so the container is named too (the command waits for its READY).
  run systemctl start "tenant@$ID.service" "$unit" || fail "tenant@$ID does not start"
  wait_active "$unit" 60
  expect_prop "$unit" Slice "$slice"
  expect_prop "$unit" PartOf "tenant@$ID.service"
  wait_for 30 "the container's output" sh -c "journalctl -t '$m' -o cat | grep -q UID_MAP"
  run journalctl -t "$m" -o cat --no-pager
  # (A console pty may end lines with CR.)
  out=$(in_guest journalctl -t "$m" -o cat --no-pager | tr -d '\r')
  # Exactly the declared arguments, then the environment value.
  expect_eq "argument 1" "$(printf '%s\n' "$out" | grep -m1 '^ARG\[' )" "ARG[$ARG]"
  expect_eq "argument 2 (empty)" "$(printf '%s\n' "$out" | grep '^ARG\[' | sed -n 2p)" "ARG[]"
  expect_eq "arguments" "$(printf '%s\n' "$out" | grep -c '^ARG\[')" 2
  expect_eq "environment" "$(printf '%s\n' "$out" | grep -m1 '^ENV\[')" "ENV[$ARG]"
  # A user namespace: container root is not host root.
  printf '%s\n' "$out" | grep '^UID_MAP' | grep -qv '^UID_MAP 0 0 ' ||
    fail "the container runs without a user namespace: $(printf '%s\n' "$out" | grep '^UID_MAP')"
  # Journal fields name the tenant and the container.
  expect_eq "BITBUILDER_TENANT" "$(in_guest journalctl -t "$m" -o json --no-pager -n 1 | jq -r .BITBUILDER_TENANT)" "$ID"
  expect_eq "BITBUILDER_WORKLOAD" "$(in_guest journalctl -t "$m" -o json --no-pager -n 1 | jq -r .BITBUILDER_WORKLOAD)" echo
  run machinectl status "$m" --no-pager || fail "machinectl does not know $m"
  # The crashing one is restarted with a growing delay.
  crash=systemd-nspawn@$(machine_of "$ID" crash).service
  wait_for 60 "two restarts of $crash" sh -c "[ \$(systemctl show -P NRestarts $crash) -ge 2 ]"
  expect_prop "$crash" Restart on-failure
  expect_prop "$crash" RestartSteps 6
  # A crash counts as a failure: its exit status (3, passed on by the stub init).
  in_guest journalctl -u "$crash" -o cat --no-pager | grep -q 'Main process exited, code=exited, status=3/' ||
    fail "$crash's exit status 3 did not reach systemd"
  # Stopping the tenant stops its containers, cleanly: nspawn sends the stub init
  # SIGRTMIN+3 (KillSignal= in the .nspawn file), which terminates the command and powers
  # the container off; the unit ends inactive with result success, not failed (the
  # default for a command, SIGKILL, ended it failed and the system degraded).
  run systemctl stop "tenant@$ID.service"
  wait_for 30 "$unit to stop" sh -c "! systemctl is-active -q $unit"
  run systemctl status --no-pager -n 5 "$unit"
  expect_prop "$unit" ActiveState inactive
  expect_prop "$unit" Result success
  expect_prop "$unit" ExecMainStatus 0
  # (nspawn runs with --quiet: its "has been shut down" is not logged; systemd's line is.)
  in_guest journalctl -u "$unit" -o cat --no-pager | grep -q "Deactivated successfully" ||
    fail "systemd did not log a successful deactivation of $unit"
  # The crashing container's failures are its own; forget them for the check below.
  in_guest systemctl reset-failed "$crash" 2>/dev/null || true

  # With a network: addresses, and one container reaches the other.
  local a=systemd-nspawn@$NET.a.service b=systemd-nspawn@$NET.b.service
  nspawn_settings "$NET.a" "$NET.b"
  in_guest /usr/bin/bbhv net attach --help >/dev/null 2>&1 ||
    fail "bbhv net attach does not exist yet (the network runtime): containers of a tenant with a network cannot start"
  run systemctl start "tenant@$NET.service" "$a" "$b"
  wait_active "$a" 60
  wait_active "$b" 60
  # The containers run a command, not an init: enter a's network namespace from the host.
  run sh -c "nsenter -t \$(machinectl show -P Leader $NET.a) -n ping -c 1 -W 5 10.77.0.11" ||
    fail "$NET.a does not reach $NET.b"
  # A clean stop of a tenant with running containers leaves nothing failed.
  run systemctl stop "tenant@$NET.service"
  wait_for 30 "$a and $b to stop" sh -c "! systemctl is-active -q $a && ! systemctl is-active -q $b"
  expect_prop "$a" ActiveState inactive
  expect_prop "$b" ActiveState inactive
  run systemctl list-units --failed --no-pager
  expect_eq "is-system-running after the stops" "$(in_guest systemctl is-system-running)" running
}
