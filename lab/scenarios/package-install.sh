# The .deb the way an operator uses it, in a booted trixie guest. The guest starts with the
# previous build installed (this tree's package with a lower version, by the guest's dpkg
# before the boot), the example tenants and one with a container applied and running, the
# sync timer enabled. `dpkg -i` of the new package upgrades it: the postinst reloads systemd
# (the generators run again, no unit needs a reload), nothing of the tenants is restarted
# (same invocations, same main PIDs), bbhv answers as before. `dpkg -r` stops the tenants and
# the timer; `dpkg -i` again starts them (the postinst, as tenants.target is not active).
# `dpkg --purge` then removes
# every file the package listed and its git-ops state, stops the sync timer and the tenants
# (their processes end, their networks and the firewall table go), and keeps the operator's
# data: /etc/bitbuilder, /var/lib/tenants, the images (docs/packaging.md).
TIER=container
INSTALL=no
DESCRIPTION="the .deb: a previous build installed, dpkg -i of the new one in the booted guest reloads systemd and restarts no tenant (same PIDs); dpkg -r stops the tenants and a reinstall starts them; dpkg --purge removes its files and state, stops its units, keeps the operator's data"

ID=lab-pkg
PKG=bitbuilder-hypervisor

prepare() {
  local prev repo=$LAB_DATA/repo id
  [ -f "${LAB_DEB:-}" ] || fail "no package from lab/run (LAB_DEB)"
  # The previous build: the same binaries, packaged with a version that sorts lower.
  build_package "$LAB_PROJECT" "$LAB_DATA/prev" '~prev' nobuild || fail "cannot build the previous package"
  prev=$PACKAGE_DEB
  dpkg-deb -f "$prev" Version > "$LAB_DATA/prev.version"
  dpkg-deb -f "$LAB_DEB" Version > "$LAB_DATA/new.version"
  dpkg --compare-versions "$(cat "$LAB_DATA/prev.version")" lt "$(cat "$LAB_DATA/new.version")" ||
    fail "test set-up: $(cat "$LAB_DATA/prev.version") does not sort before $(cat "$LAB_DATA/new.version")"
  install_deb "$ROOT" "$prev" || fail "dpkg -i of the previous package into the guest tree failed"
  mkdir -p "$ROOT/root/lab-pkg" && cp -- "$LAB_DEB" "$ROOT/root/lab-pkg/new.deb"

  # The example tenants and one with a container (its process must survive the upgrade).
  repo_copy "$EXAMPLE_REPO" "$repo"
  busybox_image "$ROOT" busybox
  tenants_on_tmpfs "$ROOT"
  mkdir -p "$repo/tenants/$ID"
  cat > "$repo/tenants/$ID/metadata.json" <<EOJ
{
  "schemaVersion": 1, "id": "$ID",
  "containers": { "sleep": { "image": "busybox", "command": ["/bin/sleep", "infinity"] } }
}
EOJ
  apply_repo "$ROOT" "$repo" > "$LAB_DATA/generation"
  tenant_ids "$repo" enabled > "$LAB_DATA/enabled"
  : > "$LAB_DATA/networked"
  for id in $(cat "$LAB_DATA/enabled"); do
    if has_key "$repo/tenants/$id/metadata.json" .network; then echo "$id" >> "$LAB_DATA/networked"; fi
  done
  [ -s "$LAB_DATA/networked" ] || fail "no enabled example tenant has a network"
  # The operator enabled the sync timer; an hour's interval keeps it waiting (there is no
  # repository to follow here), so it is running, idle, across the upgrade.
  local etc=$ROOT/etc/systemd/system
  mkdir -p "$etc/bitbuilder-sync.timer.d" "$etc/timers.target.wants"
  printf '[Timer]\nOnActiveSec=\nOnActiveSec=1h\nOnUnitInactiveSec=\nOnUnitInactiveSec=1h\n' \
    > "$etc/bitbuilder-sync.timer.d/lab.conf"
  ln -sf /usr/lib/systemd/system/bitbuilder-sync.timer "$etc/timers.target.wants/bitbuilder-sync.timer"
}

# record FILE: "unit invocation mainpid pid-start active-state" of every active unit of the
# platform (tenants, their networks, mounts and containers, the timer).
record() {
  local u inv pid start state
  : > "$1"
  for u in $(in_guest systemctl list-units --plain --no-legend --no-pager --state=active \
               'tenant*' 'systemd-nspawn@*' 'bitbuilder*' 'var-lib-tenants-*' | awk '{print $1}'); do
    case $u in *.slice) continue ;; esac
    inv=$(unit_prop "$u" InvocationID) pid=$(unit_prop "$u" MainPID) state=$(unit_prop "$u" ActiveState)
    start=-
    if [ "${pid:-0}" != 0 ]; then
      start=$(in_guest cat "/proc/$pid/stat" | sed 's/.*) //' | awk '{print $20}')
    fi
    echo "$u ${inv:--} ${pid:-0} ${start:--} $state" >> "$1"
  done
  cat "$1"
}

# line_of UNIT FILE -> the rest of UNIT's line in FILE (unit names hold backslashes: no regex).
line_of() {
  local u rest
  while read -r u rest; do
    if [ "$u" = "$1" ]; then echo "$rest"; return 0; fi
  done < "$2"
  return 1
}

# healthy FILE: "tenant healthy" from bbhv status --json.
healthy() { in_guest bbhv status --json | jq -r '.tenants[] | "\(.id) \(.healthy)"' | sort > "$1"; cat "$1"; }

# alive PID START: the guest still has that process (PID and start time).
alive() {
  [ "$(in_guest cat "/proc/$1/stat" 2>/dev/null | sed 's/.*) //' | awk '{print $20}')" = "$2" ]
}

check() {
  local prev new ct net u inv pid start state want rc gen0 gen1 rep0 rep1 mt0 mt1 n left
  expect_running
  prev=$(cat "$LAB_DATA/prev.version") new=$(cat "$LAB_DATA/new.version")
  expect_eq "installed version at boot" "$(in_guest dpkg-query -W -f '${Version}' "$PKG")" "$prev"
  for u in $(cat "$LAB_DATA/enabled"); do wait_active "tenant@$u.service"; done
  ct=systemd-nspawn@$(machine_of "$ID" sleep).service net=$(head -1 "$LAB_DATA/networked")
  run systemctl start "tenant@$ID.service" "$ct" || fail "cannot start $ct"
  wait_active "$ct" 60
  wait_active "tenant-network@$net.service"
  expect_active bitbuilder-sync.timer
  log "before the upgrade"
  record "$LAB_DATA/before"
  for u in "$ct" "tenant-network@$net.service"; do
    read -r _ pid _ <<<"$(line_of "$u" "$LAB_DATA/before")"
    [ "${pid:-0}" != 0 ] || fail "$u has no main process to follow across the upgrade"
  done
  healthy "$LAB_DATA/healthy.before"
  gen0=$(in_guest systemctl show -P UnitsLoadTimestampMonotonic)
  rep0=$(in_guest stat -c %.9Y /run/bitbuilder/generator-report.json) || fail "no generator report"
  mt0=$(in_guest stat -c %.9Y /usr/lib/systemd/system/tenant@.service)

  log "dpkg -i of the new package ($prev -> $new)"
  run dpkg -i /root/lab-pkg/new.deb || fail "dpkg -i of the new package failed"
  expect_eq "installed version after the upgrade" "$(in_guest dpkg-query -W -f '${Version} ${db:Status-Abbrev}' "$PKG" | xargs)" "$new ii"
  mt1=$(in_guest stat -c %.9Y /usr/lib/systemd/system/tenant@.service)
  [ "$mt1" != "$mt0" ] || fail "test set-up: the upgrade did not replace the unit files (same mtime: a missed reload would not show)"
  # The postinst's daemon-reload: systemd loaded its units again (UnitsLoadTimestamp), and
  # tenant-generator ran again (its report rewritten); no unit of the package or a tenant needs one.
  gen1=$(in_guest systemctl show -P UnitsLoadTimestampMonotonic)
  [ "${gen1:-0}" -gt "${gen0:-0}" ] || fail "systemd did not reload (units last loaded at $gen1 us, before the upgrade at $gen0 us)"
  rep1=$(in_guest stat -c %.9Y /run/bitbuilder/generator-report.json)
  [ "$rep1" != "$rep0" ] || fail "tenant-generator did not run again (its report is unchanged since $rep0)"
  for u in $(in_guest dpkg -L "$PKG" | grep -E '^/usr/lib/systemd/system/[^/@]+\.(service|timer|target|slice)$' | sed 's|.*/||') \
           $(awk '{print $1}' "$LAB_DATA/before"); do
    expect_prop "$u" NeedDaemonReload no
  done
  # Nothing restarted: every unit in the same invocation, state and main process.
  log "after the upgrade"
  record "$LAB_DATA/after"
  while read -r u inv pid start state; do
    want=$(line_of "$u" "$LAB_DATA/after") || fail "$u is no longer active after the upgrade"
    expect_eq "$u after the upgrade (invocation, main PID, its start, state)" "$want" "$inv $pid $start $state"
    if [ "$pid" != 0 ]; then alive "$pid" "$start" || fail "$u's main process $pid is gone"; fi
  done < "$LAB_DATA/before"
  expect_eq "bbhv --version" "$(in_guest bbhv --version)" "bbhv ${new%%[~+]*}"
  healthy "$LAB_DATA/healthy.after"
  expect_eq "bbhv status's health per tenant after the upgrade" "$(cat "$LAB_DATA/healthy.after")" "$(cat "$LAB_DATA/healthy.before")"
  grep -qx "$ID true" "$LAB_DATA/healthy.after" || fail "bbhv status does not show $ID healthy"
  expect_eq "is-system-running after the upgrade" "$(in_guest systemctl is-system-running)" running

  log "dpkg -r, then dpkg -i of the same package again"
  run dpkg -r "$PKG" || fail "dpkg -r failed"
  for u in $(cat "$LAB_DATA/enabled"); do expect_eq "tenant@$u after dpkg -r" "$(unit_prop "tenant@$u.service" ActiveState)" inactive; done
  expect_eq "$ct after dpkg -r" "$(unit_prop "$ct" ActiveState)" inactive
  expect_eq "the sync timer after dpkg -r" "$(unit_prop bitbuilder-sync.timer ActiveState)" inactive
  run dpkg -i /root/lab-pkg/new.deb || fail "dpkg -i after dpkg -r failed"
  for u in $(cat "$LAB_DATA/enabled"); do wait_active "tenant@$u.service"; done
  wait_active "$ct" 60
  wait_active "tenant-network@$net.service"
  expect_active bitbuilder-firewall.service
  expect_active bitbuilder-sync.timer
  log "after the reinstall"
  record "$LAB_DATA/reinstalled"

  log "dpkg --purge"
  in_guest dpkg -L "$PKG" > "$LAB_DATA/files" || fail "dpkg -L $PKG failed"
  n=$(wc -l < "$LAB_DATA/files")
  [ "$n" -gt 20 ] || fail "dpkg -L lists only $n paths"
  # The operator's data, which a purge keeps.
  for u in /etc/bitbuilder/host.toml "/var/lib/tenants/$ID" /var/lib/bitbuilder/images/busybox/bin/busybox; do
    in_guest test -e "$u" || fail "test set-up: no $u before the purge"
  done
  in_guest test -d /var/lib/bitbuilder/generations || fail "test set-up: no generations before the purge"
  in_guest sh -c 'ls /run/systemd/network/bbhv-* >/dev/null' || fail "test set-up: no networkd file of the generator before the purge"
  run dpkg --purge "$PKG" || fail "dpkg --purge failed"
  rc=0; in_guest dpkg -s "$PKG" >/dev/null 2>&1 || rc=$?
  [ $rc != 0 ] || fail "dpkg still knows $PKG after the purge"
  in_guest sh -c "ls /var/lib/dpkg/info/$PKG.* 2>/dev/null" | grep -q . && fail "dpkg's info files of $PKG are left"
  # Every path the package listed is gone, but directories another package owns as well.
  left=$(in_guest sh -c 'while IFS= read -r p; do
      if [ -e "$p" ] || [ -L "$p" ]; then
        if [ -d "$p" ] && [ ! -L "$p" ] && dpkg-query -S "$p" >/dev/null 2>&1; then continue; fi
        echo "$p"
      fi
    done' < "$LAB_DATA/files" | grep -vx '/.')
  echo "left of dpkg -L: '${left}'"
  [ -z "$left" ] || fail "the purge left $(echo "$left" | wc -l) of the package's paths: $(echo "$left" | head -3 | xargs)"
  # Its state: the git-ops state goes, the operator's data stays.
  for u in /var/lib/bitbuilder/current /var/lib/bitbuilder/generations /run/bitbuilder \
           /etc/systemd/system/timers.target.wants/bitbuilder-sync.timer; do
    if in_guest test -e "$u" || in_guest test -L "$u"; then fail "the purge left $u"; fi
  done
  for u in /etc/bitbuilder/host.toml "/var/lib/tenants/$ID" /var/lib/bitbuilder/images/busybox/bin/busybox; do
    in_guest test -e "$u" || fail "the purge removed the operator's $u"
  done
  # Nothing of the platform runs: the removal stopped the timer and every tenant (their
  # processes ended), their networks are gone (links, the generator's networkd files, the
  # firewall table), and nothing failed on the way.
  run systemctl list-units --all --no-pager 'tenant*' 'systemd-nspawn@*' 'bitbuilder*' 'var-lib-tenants-*'
  left=$(in_guest systemctl list-units --all --plain --no-legend --no-pager \
           'tenant*' 'systemd-nspawn@*' 'bitbuilder*' 'var-lib-tenants-*' | awk '$3 != "inactive" {print $1 "=" $3}' | xargs)
  expect_eq "units of the platform not inactive after the purge" "$left" ""
  while read -r u inv pid start state; do
    if [ "$pid" != 0 ] && alive "$pid" "$start"; then fail "$u's process $pid still runs after the purge"; fi
  done < <(cat "$LAB_DATA/before" "$LAB_DATA/reinstalled")
  if in_guest sh -c 'ls /run/systemd/network/bbhv-* /run/systemd/network/*.d/bbhv-* 2>/dev/null' | grep -q .; then
    fail "the generator's networkd files are left in /run/systemd/network"
  fi
  if in_guest grep -rlx '# Automatically generated by tenant-generator' /run/systemd/nspawn 2>/dev/null | grep -q .; then
    fail "the generator's .nspawn files are left in /run/systemd/nspawn"
  fi
  if in_guest nft list table inet bitbuilder >/dev/null 2>&1; then fail "the firewall's nftables table is left"; fi
  left=$(in_guest ip -o link show | awk -F': ' '{print $2}' | grep -E '^(bt|vt|wt|et|vw|tv)-' | xargs)
  expect_eq "tenant links after the purge" "$left" ""
  expect_eq "is-system-running after the purge" "$(in_guest systemctl is-system-running)" running
}
