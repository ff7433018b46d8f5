# In a real kernel (VM tier): a memory hog, a fork bomb and a disk filler inside one
# tenant's container stay that tenant's problem. The kernel OOM-kills inside its slice
# (memory.events oom_kill), forks stop at its tasksMax (pids.events max), writes stop at its
# storageQuota (ENOSPC on the tenant's own ext4 image; the host's / loses at most the quota),
# and another tenant's container answers on its port before, during and after each of them.
# The fleet is applied at check time (a new generation holding the current one's tenants plus
# "hog" and "calm", then `bbhv reload`) and the previous generation is restored at the end.
TIER=vm
DESCRIPTION="memory hog, fork bomb and disk filler in one tenant's container: OOM in its slice, TasksMax and storageQuota hold, another tenant's container keeps answering"

RA_MEM_MAX=64M RA_TASKS_MAX=32 RA_QUOTA_MIB=32 RA_PORT=8007

prepare() {
  local repo=$LAB_DATA/repo
  mkdir -p "$repo/tenants/hog" "$repo/tenants/calm" "$repo/images"
  busybox_image "$ROOT" abuse-busybox
  echo '{ "schemaVersion": 1, "format": "directory", "file": "abuse-busybox" }' > "$repo/images/abuse-busybox.json"
  # hog: small limits (cpuQuota keeps the bomb from starving the 2-CPU guest); its container
  # idles, the abuse is run inside it by the check (nsenter into its namespaces and cgroup).
  cat > "$repo/tenants/hog/metadata.json" <<EOJ
{
  "schemaVersion": 1, "id": "hog", "description": "lab: resource abuse", "enabled": true,
  "resources": { "memoryMax": "$RA_MEM_MAX", "tasksMax": $RA_TASKS_MAX,
                 "storageQuota": "${RA_QUOTA_MIB}M", "cpuQuota": "50%" },
  "containers": {
    "c": { "image": "abuse-busybox", "command": ["/bin/sh", "-c", "echo HOG-UP; while :; do sleep 1; done"] }
  }
}
EOJ
  # calm: answers "ok" on 127.0.0.1:$RA_PORT of its container's own network namespace.
  cat > "$repo/tenants/calm/metadata.json" <<EOJ
{
  "schemaVersion": 1, "id": "calm", "description": "lab: the neighbour", "enabled": true,
  "resources": { "memoryMax": "256M", "tasksMax": 64 },
  "containers": {
    "c": { "image": "abuse-busybox", "command": ["/bin/busybox", "nc", "-ll", "-p", "$RA_PORT", "-e", "/bin/echo", "ok"] }
  }
}
EOJ
  "$ROOT/usr/bin/bbhv" validate "$repo" || fail "bbhv validate refuses the scenario's tenants"
  { echo "HOG_SLICE='$(slice_of hog)'"; echo "CALM_SLICE='$(slice_of calm)'"
    echo "MEM_MAX=$((64 * 1024 * 1024))"; echo "TASKS_MAX=$RA_TASKS_MAX"
    echo "QUOTA=$((RA_QUOTA_MIB * 1024 * 1024))"; echo "PORT=$RA_PORT"; } > "$LAB_DATA/env"
}

# --- check helpers (in the guest) -------------------------------------------------------------

# ra_generation SRC...: a new generation holding the current generation's tree with the
# directories SRC... copied over it, made current (`previous` is the old one).
ra_generation() {
  local gens=/var/lib/bitbuilder/generations seq gen src
  mkdir -p "$gens" || return 1
  seq=$(find "$gens" -mindepth 1 -maxdepth 1 -printf '%f\n' | sed 's/-.*//' | sort -n | tail -1)
  seq=$(( ${seq:-0} + 1 ))
  gen=$seq-$(printf '%040x' "$((seq + 0xab00))")
  mkdir -p "$gens/$gen/tenants" || return 1
  if [ -e /var/lib/bitbuilder/current ]; then
    cp -a /var/lib/bitbuilder/current/. "$gens/$gen/" || return 1
    cp -P /var/lib/bitbuilder/current /var/lib/bitbuilder/previous.lab-new &&
      mv -T /var/lib/bitbuilder/previous.lab-new /var/lib/bitbuilder/previous || return 1
  fi
  for src in "$@"; do cp -a "$src/." "$gens/$gen/" || return 1; done
  ln -sfn "generations/$gen" /var/lib/bitbuilder/current.lab-new &&
    mv -T /var/lib/bitbuilder/current.lab-new /var/lib/bitbuilder/current || return 1
  echo "$gen"
}

# ra_leader MACHINE: the container's PID 1 as the host sees it.
ra_leader() { machinectl show -P Leader "$1" 2>/dev/null; }

# ra_calm: calm's container answers "ok" (from the host, in its network namespace).
ra_calm() {
  local leader out t0=$EPOCHREALTIME
  leader=$(ra_leader calm.c) || { echo "calm: no leader"; return 1; }
  out=$(timeout 10 nsenter -t "$leader" -n busybox nc -w 5 127.0.0.1 "$PORT" </dev/null 2>&1)
  printf 'calm: answered "%s" in %s s\n' "$out" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')"
  [ "$out" = ok ]
}
ra_expect_calm() { ra_calm || fail "calm's container did not answer ($1)"; }

# ra_in_hog CMD...: CMD inside hog's container: a cgroup of its own below the container's
# (as the container itself could make one: its cgroup is delegated), then every namespace of
# the container and its root. Prints nothing itself; CMD's status is returned.
ra_in_hog() {
  local leader cg
  leader=$(ra_leader hog.c) && [ -n "$leader" ] || { echo "hog: no leader"; return 125; }
  cg=/sys/fs/cgroup$(awk -F: '$1 == "0" {print $3}' "/proc/$leader/cgroup")/lab-abuse
  mkdir -p "$cg" || return 125
  # The shell joins the cgroup, then becomes nsenter (CMD's status, 124 after 120 s).
  # shellcheck disable=SC2016 # expanded by the inner sh
  sh -c 'echo $$ > "$0/cgroup.procs" && l=$1 && shift && exec timeout -k 5 120 nsenter -t "$l" -a -r -w -- "$@"' \
    "$cg" "$leader" "$@"
}

# ra_kill_abuse: end whatever runs in hog's lab-abuse cgroup, and remove it.
ra_kill_abuse() {
  local leader cg
  leader=$(ra_leader hog.c) && [ -n "$leader" ] || return 0
  cg=/sys/fs/cgroup$(awk -F: '$1 == "0" {print $3}' "/proc/$leader/cgroup")/lab-abuse
  [ -d "$cg" ] || return 0
  echo 1 > "$cg/cgroup.kill"
  for _ in $(seq 40); do [ -s "$cg/cgroup.procs" ] || break; sleep 0.25; done
  rmdir "$cg"
}

ra_event() { awk -v k="$2" '$1 == k {print $2}' "$1" 2>/dev/null; }
ra_secs() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}'; }

check() {
  . "$LAB_DATA/env"
  local t0=$EPOCHREALTIME tp old gen hog=systemd-nspawn@hog.c.service calm=systemd-nspawn@calm.c.service
  old=$(readlink /var/lib/bitbuilder/current 2>/dev/null)
  echo "check: current was '${old:-none}'"

  log "apply: the current tenants plus hog and calm, bbhv reload"
  tp=$EPOCHREALTIME
  gen=$(ra_generation "$LAB_DATA/repo") || fail "cannot write the generation"
  run bbhv reload || fail "bbhv reload failed (generation $gen)"
  run systemctl start tenant@hog.service tenant@calm.service "$hog" "$calm" ||
    fail "the tenants or their containers do not start"
  wait_active "$hog" 120
  wait_active "$calm" 120
  expect_prop "$hog" Slice "$HOG_SLICE"
  expect_prop "$calm" Slice "$CALM_SLICE"
  expect_prop "$HOG_SLICE" MemoryMax "$MEM_MAX"
  expect_prop "$HOG_SLICE" TasksMax "$TASKS_MAX"
  wait_for 30 "calm's listener" sh -c "nsenter -t \$(machinectl show -P Leader calm.c) -n busybox nc -w 2 127.0.0.1 $PORT </dev/null | grep -qx ok"
  ra_expect_calm "at the start"
  # The state file system is the quota image, on a loop device.
  local src fstype back size
  read -r src fstype <<<"$(findmnt -n -o SOURCE,FSTYPE --mountpoint /var/lib/tenants/hog)"
  back=$(losetup -n -O BACK-FILE "$src" 2>/dev/null | tr -d ' ')
  echo "check: /var/lib/tenants/hog is $fstype on $src (backed by $back)"
  [ "$fstype" = ext4 ] && [ "$back" = /var/lib/bitbuilder/storage/hog.img ] ||
    fail "/var/lib/tenants/hog is not the quota image (${fstype:-not mounted} on ${src:-nothing}, ${back:-no file})"
  size=$(df -B1 --output=size /var/lib/tenants/hog | tail -1 | tr -d ' ')
  [ "$size" -le "$QUOTA" ] 2>/dev/null || fail "the quota file system has $size bytes, more than $QUOTA"
  local hog_cg calm_cg calm_pid calm_restarts
  hog_cg=/sys/fs/cgroup$(unit_prop "$HOG_SLICE" ControlGroup)
  calm_cg=/sys/fs/cgroup$(unit_prop "$CALM_SLICE" ControlGroup)
  calm_pid=$(unit_prop "$calm" MainPID) calm_restarts=$(unit_prop "$calm" NRestarts)
  echo "timing: apply and start $(ra_secs "$tp") s"

  log "memory: a hog inside hog's container, past memoryMax"
  tp=$EPOCHREALTIME
  local oom0 oom1 rc peak
  oom0=$(ra_event "$hog_cg/memory.events" oom_kill)
  # tail keeps everything it reads from /dev/zero, looking for a newline.
  ra_in_hog /bin/busybox tail /dev/zero
  rc=$?
  echo "check: the hog ended with status $rc (137: SIGKILL)"
  oom1=$(ra_event "$hog_cg/memory.events" oom_kill)
  echo "check: $HOG_SLICE memory.events oom_kill ${oom0:-?} -> ${oom1:-?}"
  [ "${oom1:-0}" -gt "${oom0:-0}" ] || fail "no OOM kill recorded in $HOG_SLICE (memory.events oom_kill ${oom0:-?} -> ${oom1:-?})"
  journalctl -k -b -o cat | grep -F 'oom-kill:' | tail -1 | tee /run/lab/abuse-oom.txt
  grep -qF "oom_memcg=${hog_cg#/sys/fs/cgroup}," /run/lab/abuse-oom.txt ||
    fail "the kernel's last OOM kill was not confined to $HOG_SLICE"
  expect_eq "OOM kills in $CALM_SLICE" "$(ra_event "$calm_cg/memory.events" oom_kill)" 0
  peak=$(unit_prop "$HOG_SLICE" MemoryPeak)
  echo "check: $HOG_SLICE MemoryPeak $peak <= $MEM_MAX"
  [ "$peak" -le "$MEM_MAX" ] 2>/dev/null || fail "$HOG_SLICE MemoryPeak $peak exceeds $MEM_MAX"
  ra_expect_calm "after the memory hog"
  # systemd's OOMPolicy (default stop) may stop the container whose cgroup saw the kill;
  # Restart=on-failure brings it back. Say which, then go on with a running container.
  echo "note: $hog after the OOM kill: $(unit_prop "$hog" ActiveState)/$(unit_prop "$hog" SubState), result $(unit_prop "$hog" Result), restarts $(unit_prop "$hog" NRestarts), OOMPolicy $(unit_prop "$hog" OOMPolicy)"
  ra_kill_abuse
  systemctl start "$hog"
  wait_active "$hog" 60
  echo "timing: memory $(ra_secs "$tp") s"

  log "tasks: a fork bomb inside hog's container"
  tp=$EPOCHREALTIME
  local refused0 refused1 max=0 cur bomb i
  refused0=$(ra_event "$hog_cg/pids.events" max)
  ( ra_in_hog /bin/sh -c 'b() { b | b & }; b; sleep 60' >/dev/null 2>&1 ) &
  bomb=$!
  for i in $(seq 12); do
    cur=$(cat "$hog_cg/pids.current")
    [ "$cur" -gt "$max" ] 2>/dev/null && max=$cur
    sleep 0.5
    [ $((i % 4)) = 0 ] && { ra_expect_calm "during the fork bomb"; }
  done
  refused1=$(ra_event "$hog_cg/pids.events" max)
  echo "check: $HOG_SLICE pids.current peaked at $max (TasksMax $TASKS_MAX); forks refused ${refused0:-0} -> ${refused1:-0}"
  [ "$max" -le "$TASKS_MAX" ] || fail "pids.current $max exceeded TasksMax $TASKS_MAX"
  [ "${refused1:-0}" -gt "${refused0:-0}" ] || fail "no fork was refused at $HOG_SLICE's TasksMax (pids.events max): did the bomb run?"
  ra_kill_abuse
  wait "$bomb" 2>/dev/null
  ra_expect_calm "after the fork bomb"
  # The bomb also starves hog's own command of forks ("can't fork"): when that shell
  # gives up, the container exits and Restart=on-failure brings it back. The tenant's
  # own problem; the disk filler needs the container running again.
  echo "note: $hog after the fork bomb: $(unit_prop "$hog" ActiveState)/$(unit_prop "$hog" SubState), restarts $(unit_prop "$hog" NRestarts)"
  wait_active "$hog" 90
  wait_for 30 "hog's container leader" sh -c "machinectl show -P Leader hog.c | grep -q '^[0-9]'"
  echo "timing: tasks $(ra_secs "$tp") s"

  log "disk: fill hog's container's root until ENOSPC"
  tp=$EPOCHREALTIME
  local avail0 avail1 lost out fill=/var/lib/tenants/hog/upper/c/fill
  sync
  avail0=$(df -B1 --output=avail / | tail -1 | tr -d ' ')
  # Twice the quota: without it the host would lose 64 MiB.
  out=$(ra_in_hog /bin/busybox dd if=/dev/zero of=/fill bs=1M count=$((2 * QUOTA / 1048576)) conv=fsync 2>&1)
  rc=$?
  printf '%s\n' "$out" | tail -3
  echo "check: dd ended with status $rc"
  [ "$rc" != 0 ] && printf '%s\n' "$out" | grep -q 'No space left on device' ||
    fail "the disk filler did not stop at ENOSPC (status $rc)"
  sync
  avail1=$(df -B1 --output=avail / | tail -1 | tr -d ' ')
  size=$(stat -c %s "$fill" 2>/dev/null || echo 0)
  lost=$((avail0 - avail1))
  echo "check: the filler wrote $size bytes (quota $QUOTA); the host's / lost $lost bytes"
  [ "$size" -gt $((QUOTA / 2)) ] && [ "$size" -le "$QUOTA" ] ||
    fail "the filler wrote $size bytes into a $QUOTA-byte quota"
  [ "$lost" -le $((QUOTA + 4 * 1048576)) ] ||
    fail "the host's / lost $lost bytes, more than the $QUOTA-byte quota"
  ra_expect_calm "after the disk filler"
  rm -f "$fill"
  echo "timing: disk $(ra_secs "$tp") s"

  log "the neighbour was never touched"
  expect_active "$calm"
  expect_prop "$calm" MainPID "$calm_pid"
  expect_prop "$calm" NRestarts "$calm_restarts"

  log "restore generation ${old:-(none: an empty one)}"
  tp=$EPOCHREALTIME
  ra_kill_abuse
  if [ -n "$old" ]; then
    cp -P /var/lib/bitbuilder/current /var/lib/bitbuilder/previous.lab-new &&
      mv -T /var/lib/bitbuilder/previous.lab-new /var/lib/bitbuilder/previous &&
      ln -sfn "$old" /var/lib/bitbuilder/current.lab-new &&
      mv -T /var/lib/bitbuilder/current.lab-new /var/lib/bitbuilder/current
  else
    mkdir -p "$LAB_DATA/empty/tenants" && rm -f /var/lib/bitbuilder/current && ra_generation "$LAB_DATA/empty" >/dev/null
  fi || fail "cannot restore the generation"
  run bbhv reload || fail "bbhv reload (restore) failed"
  # What a user expects of a tenant removed from the checkout: the reload stops its
  # containers and unmounts its roots and its state file system.
  sleep 1
  run systemctl list-units --all --no-pager 'tenant@*' 'systemd-nspawn@*' 'var-lib-tenants*'
  wait_for 60 "hog's and calm's tenants and containers to stop after the reload" \
    sh -c "! systemctl is-active -q tenant@hog.service tenant@calm.service $hog $calm"
  wait_for 30 "the quota file system to be unmounted" sh -c "! mountpoint -q /var/lib/tenants/hog"
  mountpoint -q /var/lib/tenants/calm/root/c && fail "calm's container root is still mounted"
  systemctl stop bitbuilder-storage@hog.service
  rm -f /var/lib/bitbuilder/storage/hog.img
  systemctl reset-failed
  echo "timing: restore $(ra_secs "$tp") s; whole check $(ra_secs "$t0") s"
}
