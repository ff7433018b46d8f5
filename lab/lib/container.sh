# Container tier: boot a copy of the cached trixie rootfs with the host's systemd-nspawn.
# The copy is an overlayfs (cache = read-only lower layer, per-scenario upper): mounting it
# takes ~10 ms where cp -a of the ~330 MB tree takes 1-3 s, and the cache is never touched.

# ct_mount ROOTFS DIR -> the writable tree at DIR/root
ct_mount() {
  local lower=$1 dir=$2
  mkdir -p "$dir/upper" "$dir/work" "$dir/root"
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
}

# ct_boot NAME ROOT CONSOLE_LOG PIDFILE: start `systemd-nspawn -b` in its own session (so a
# LAB_KEEP container outlives lab/run and the terminal), then wait for the container's
# systemd to answer. Sets CT_PID (nspawn) and CT_LEADER (the container's PID 1).
ct_boot() {
  local name=$1 root=$2 console=$3 pidfile=$4 i
  rm -f "$pidfile"
  # --keep-unit: the host has no systemd to ask for a scope; --register=no: no machined.
  # Unified hierarchy: the container gets pure cgroup2 like a real trixie host.
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" \
    systemd-nspawn -b -D "$root" -M "$name" --register=no --keep-unit --private-network \
    --console=pipe -- systemd.firstboot=off </dev/null >"$console" 2>&1 &
  CT_PID= CT_LEADER=
  for i in $(seq 100); do
    [ -s "$pidfile" ] && CT_PID=$(cat "$pidfile")
    [ -n "$CT_PID" ] && break
    sleep 0.1
  done
  [ -n "$CT_PID" ] || { echo "nspawn did not start (see $console)"; return 1; }
  # The container's PID 1 is the child of nspawn that lives in another PID namespace.
  # nspawn first forks a short-lived "outer child" in ours: taking that one for the leader
  # would leave nsenter pointing at a dead process.
  local wait=${LAB_BOOT_TIMEOUT:-120} own_ns pid ns
  own_ns=$(readlink /proc/self/ns/pid)
  for i in $(seq $((wait * 4))); do
    if [ -z "$CT_LEADER" ]; then
      for pid in $(pgrep -P "$CT_PID"); do
        ns=$(readlink "/proc/$pid/ns/pid" 2>/dev/null) || continue
        if [ "$ns" != "$own_ns" ]; then CT_LEADER=$pid; echo "$CT_PID $CT_LEADER" > "$pidfile"; fi
      done
    fi
    # A loaded machine (a parallel build, a fuzzer) can take far longer than the usual 2 s.
    [ -n "$CT_LEADER" ] && in_guest test -S /run/systemd/private 2>/dev/null && return 0
    kill -0 "$CT_PID" 2>/dev/null || { echo "nspawn exited during boot (see $console)"; return 1; }
    sleep 0.25
  done
  echo "the container's systemd did not come up within $wait s"
  return 1
}

# Enter every namespace of the container (mount, uts, ipc, net, pid, cgroup).
in_guest() { nsenter -t "$CT_LEADER" -m -u -i -n -p -C -- "$@"; }

# ct_wait_running SECONDS -> prints the state; fails if the boot did not finish in time.
ct_wait_running() {
  local state
  state=$(in_guest timeout "$1" systemctl is-system-running --wait 2>/dev/null)
  echo "${state:-unknown}"
  case $state in starting|initializing|'') return 1 ;; esac
}

# ct_stop PIDFILE NAME: SIGRTMIN+4 asks the container's systemd for a clean poweroff; if it
# is not down in 20 s, SIGKILL to its PID 1 ends the whole PID namespace.
ct_stop() {
  local pidfile=$1 name=$2 nspawn leader i
  [ -s "$pidfile" ] || return 0
  read -r nspawn leader < "$pidfile"
  if [ -n "${leader:-}" ] && kill -0 "$leader" 2>/dev/null; then
    kill -s SIGRTMIN+4 "$leader" 2>/dev/null
    for i in $(seq 80); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$nspawn" 2>/dev/null && kill -KILL "$leader" 2>/dev/null
  fi
  for i in $(seq 40); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$nspawn" 2>/dev/null && kill -KILL "$nspawn" 2>/dev/null
  rm -f "$pidfile"
  # nspawn leaves this behind when the host's /run is not a tmpfs.
  rm -rf "/run/systemd/nspawn/propagate/$name"
}

# ct_unmount DIR: undo ct_mount and remove the scenario's scratch space.
ct_unmount() {
  local dir=$1
  mountpoint -q "$dir/root" && umount "$dir/root"
  rm -rf "$dir"
}
