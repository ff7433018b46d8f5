# In a real kernel (VM tier): a tenant's slice limits are enforced. A process that allocates
# past memoryMax is OOM-killed inside the slice, and a fork bomb stops at tasksMax, while a
# service outside the slice keeps running.
TIER=vm
DESCRIPTION="memoryMax OOM-kills inside the tenant slice, tasksMax stops a fork bomb"

prepare() {
  local t
  repo_copy "$EXAMPLE_REPO" "$LAB_DATA/repo"
  t=$(tenant_ids "$LAB_DATA/repo" enabled | head -1)
  [ -n "$t" ] || fail "the example repository has no enabled tenant"
  # Small limits a test can hit quickly (the VM has 2 GiB): the rest of the tenant as is.
  # memoryHigh = memoryMax: no throttling on the way up, the hog reaches the OOM at once.
  jq '.resources.memoryMax = "64M" | .resources.tasksMax = 24
      | if .resources.memoryHigh then .resources.memoryHigh = "64M" else . end' \
    "$EXAMPLE_REPO/tenants/$t/metadata.json" > "$LAB_DATA/repo/tenants/$t/metadata.json"
  apply_repo "$ROOT" "$LAB_DATA/repo"
  { echo "TENANT=$t"; echo "SLICE='$(slice_of "$t")'"; echo "UNIT='$(unit_of tenant "$t")'"
    echo "MEMORY_MAX=$((64 * 1024 * 1024))"; echo "TASKS_MAX=24"; } > "$LAB_DATA/env"
}

check() {
  . "$LAB_DATA/env"
  wait_active "$UNIT" 120
  expect_prop "$SLICE" MemoryMax "$MEMORY_MAX"
  expect_prop "$SLICE" TasksMax "$TASKS_MAX"
  run systemctl show -p ControlGroup "$SLICE"

  log "a service outside the slice"
  run systemd-run --unit=lab-bystander --quiet sleep infinity || fail "cannot start lab-bystander"
  bystander_pid=$(unit_prop lab-bystander.service MainPID)

  log "memory: allocate past memoryMax in $SLICE"
  # tail keeps everything it reads from /dev/zero in memory looking for a newline.
  run systemd-run --unit=lab-hog --slice="$SLICE" --quiet tail /dev/zero || fail "cannot start lab-hog"
  for i in $(seq 120); do
    [ "$(unit_prop lab-hog.service ActiveState)" = active ] || break
    sleep 0.5
  done
  run systemctl status --no-pager -n 5 lab-hog.service
  expect_prop lab-hog.service Result oom-kill
  journalctl -k -b -o cat | grep -F 'oom-kill:' | tee /run/lab/oom.txt
  # The slice's cgroup, below its bucket: /tenants.slice/tenants-NN.slice/$SLICE.
  cgroup=$(unit_prop "$SLICE" ControlGroup)
  echo "check: $SLICE is the cgroup $cgroup"
  case $cgroup in "/tenants.slice/"*"/$SLICE") ;; *) fail "$SLICE is not below tenants.slice: $cgroup" ;; esac
  grep -F 'constraint=CONSTRAINT_MEMCG' /run/lab/oom.txt | grep -qF "oom_memcg=$cgroup," ||
    fail "the kernel's OOM kill was not confined to $SLICE (journalctl -k)"
  peak=$(unit_prop "$SLICE" MemoryPeak)
  echo "check: $SLICE MemoryPeak $peak <= $MEMORY_MAX"
  [ "$peak" -le "$MEMORY_MAX" ] 2>/dev/null || fail "$SLICE MemoryPeak $peak exceeds MemoryMax $MEMORY_MAX"

  log "tasks: fork bomb in $SLICE"
  base=$(unit_prop "$SLICE" TasksCurrent)
  run systemd-run --unit=lab-forkbomb --slice="$SLICE" --quiet -p RuntimeMaxSec=60 \
    busybox sh -c 'b() { b | b & }; b; sleep 50' || fail "cannot start lab-forkbomb"
  max=0
  for i in $(seq 20); do
    cur=$(unit_prop "$SLICE" TasksCurrent)
    [ "$cur" -gt "$max" ] 2>/dev/null && max=$cur
    sleep 0.5
  done
  echo "check: $SLICE TasksCurrent peaked at $max (TasksMax $TASKS_MAX)"
  [ "$max" -le "$TASKS_MAX" ] || fail "TasksCurrent $max exceeded TasksMax $TASKS_MAX"
  # That the bomb hit the slice's limit is the kernel's own count of forks refused
  # there (pids.events "max"); sampling TasksCurrent can miss the peak of a bomb
  # that collapses as fast as it grows.
  refused=$(awk '$1 == "max" {print $2}' "/sys/fs/cgroup$cgroup/pids.events")
  echo "check: forks refused at $SLICE's TasksMax: ${refused:-none}"
  [ "${refused:-0}" -gt 0 ] || fail "no fork was refused at $SLICE's TasksMax (pids.events): did the bomb run?"
  journalctl -k -b -o cat | grep -F 'fork rejected' | tee /run/lab/fork.txt
  grep -qF "fork rejected by pids controller in $cgroup" /run/lab/fork.txt ||
    fail "no 'fork rejected by pids controller in $cgroup' in the kernel log"
  run systemctl stop lab-forkbomb.service
  expect_prop "$SLICE" TasksCurrent "$base"

  log "outside the slice nothing was touched"
  expect_active lab-bystander.service
  expect_prop lab-bystander.service MainPID "$bystander_pid"
  expect_active "$UNIT"
  run systemctl stop lab-bystander.service
  run systemctl reset-failed lab-hog.service
}
