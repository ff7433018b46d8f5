# shellcheck shell=bash
# Container tier: boot a copy of the cached trixie rootfs with the host's systemd-nspawn.
# The copy is an overlayfs (cache = read-only lower layer, per-scenario upper): mounting it
# takes ~10 ms where cp -a of the ~330 MB tree takes 1-3 s, and the cache is never touched.
# Sourced after common.sh; relies on the caller's shell options. Nothing here mounts,
# removes or signals anything but through the guards of common.sh.

# ct_mount ROOTFS DIR -> the writable tree at DIR/root. DIR must be an existing directory
# under $LAB_VAR, ROOTFS a rootfs under $LAB_CACHE.
ct_mount() {
  local lower dir
  lower=$(strip_slashes "$1") dir=$(strip_slashes "$2")
  must_be_under "$dir" "$LAB_VAR" || return 1
  must_be_under "$lower" "$LAB_CACHE" || return 1
  if [ ! -d "$dir" ] || [ -L "$dir" ]; then say "lab: no directory $dir"; return 1; fi
  [ -x "$lower/usr/lib/systemd/systemd" ] || { say "lab: $lower is not a rootfs"; return 1; }
  mkdir -p "$dir/upper" "$dir/work" "$dir/root" || return 1
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
}

# ct_boot NAME ROOT CONSOLE_LOG PIDFILE: start `systemd-nspawn -b` in its own session (so a
# LAB_KEEP container outlives lab/run and the terminal), then wait for the container's
# systemd to answer. Sets CT_PID (nspawn) and CT_LEADER (the container's PID 1).
# PIDFILE gets "NSPAWN_PID LEADER_PID", PIDFILE.start their start times (field 22 of
# /proc/PID/stat), so ct_stop signals these processes and never a later one with the PID.
ct_boot() {
  local name=$1 root=$2 console=$3 pidfile=$4 _ ct_start='' leader_start
  must_be_under "$root" "$LAB_VAR" || return 1
  ct_name_ok "$name" || return 1
  rm -f -- "$pidfile" "$pidfile.start"
  # --keep-unit: the host has no systemd to ask for a scope; --register=no: no machined.
  # Unified hierarchy: the container gets pure cgroup2 like a real trixie host.
  # shellcheck disable=SC2016 # expanded by the inner bash
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" \
    systemd-nspawn -b -D "$root" -M "$name" --register=no --keep-unit --private-network \
    --console=pipe -- systemd.firstboot=off </dev/null >"$console" 2>&1 &
  CT_PID='' CT_LEADER='' CT_LEADER_START=''
  for _ in $(seq 100); do
    [ -s "$pidfile" ] && read -r CT_PID _ < "$pidfile"
    [ -n "$CT_PID" ] && break
    sleep 0.1
  done
  if [ -z "$CT_PID" ] || ! ct_start=$(pid_start "$CT_PID"); then
    echo "nspawn did not start (see $console)"; return 1
  fi
  echo "$ct_start" > "$pidfile.start"
  # The container's PID 1 is the child of nspawn that lives in another PID namespace.
  # nspawn first forks a short-lived "outer child" in ours: taking that one for the leader
  # would leave nsenter pointing at a dead process.
  local wait=${LAB_BOOT_TIMEOUT:-120} own_ns pid ns
  own_ns=$(readlink /proc/self/ns/pid)
  for _ in $(seq $((wait * 4))); do
    if [ -z "$CT_LEADER" ]; then
      for pid in $(pgrep -P "$CT_PID"); do
        ns=$(readlink "/proc/$pid/ns/pid" 2>/dev/null) || continue
        [ "$ns" != "$own_ns" ] || continue
        leader_start=$(pid_start "$pid") || continue
        CT_LEADER=$pid CT_LEADER_START=$leader_start
        echo "$ct_start $leader_start" > "$pidfile.start"
        echo "$CT_PID $CT_LEADER" > "$pidfile"
      done
    fi
    # A loaded machine (a parallel build, a fuzzer) can take far longer than the usual 2 s.
    [ -n "$CT_LEADER" ] && in_guest test -S /run/systemd/private 2>/dev/null && return 0
    pid_is "$CT_PID" "$ct_start" || { echo "nspawn exited during boot (see $console)"; return 1; }
    sleep 0.25
  done
  echo "the container's systemd did not come up within $wait s"
  return 1
}

# Enter every namespace of the container (mount, uts, ipc, net, pid, cgroup).
# Only while CT_LEADER is still the container's PID 1 (CT_LEADER_START, and a PID namespace
# other than ours): entering a reused PID's namespaces would run the command on the host.
in_guest() {
  if ! pid_is "${CT_LEADER:-}" "${CT_LEADER_START:-}" ||
     [ "$(readlink "/proc/$CT_LEADER/ns/pid" 2>/dev/null)" = "$(readlink /proc/self/ns/pid)" ]; then
    echo "in_guest: the container's PID 1 (${CT_LEADER:-none}) is gone" >&2
    return 125
  fi
  nsenter -t "$CT_LEADER" -m -u -i -n -p -C -- "$@"
}

# ct_wait_running SECONDS -> prints the state; fails if the boot did not finish in time.
ct_wait_running() {
  local state
  state=$(in_guest timeout "$1" systemctl is-system-running --wait 2>/dev/null)
  echo "${state:-unknown}"
  case $state in starting|initializing|'') return 1 ;; esac
}

# ct_name_ok NAME: a machine name the lab gives (lab<pid>-<scenario>, lab-demo-<pid>).
ct_name_ok() {
  case $1 in
    lab*[!A-Za-z0-9._-]*|lab*..*) ;;
    lab?*) return 0 ;;
  esac
  say "lab: refusing the machine name '$1'"
  return 1
}

# ct_stop PIDFILE NAME: SIGRTMIN+4 asks the container's systemd for a clean poweroff; if it
# is not down in 20 s, SIGKILL to its PID 1 ends the whole PID namespace. Only processes
# that are still the recorded ones (PID and start time; nspawn also by name) get a signal:
# a stale pid file (a crash, a reboot) names nobody.
ct_stop() {
  local pidfile=$1 name=$2 nspawn='' ns_start='' leader='' ld_start='' _
  if [ -s "$pidfile" ]; then
    read -r nspawn leader _ < "$pidfile" || true
    if [ -s "$pidfile.start" ]; then read -r ns_start ld_start _ < "$pidfile.start" || true; fi
    # No start time (interrupted before ct_boot wrote it, or an older version's run): nspawn
    # is ours if its command line names this machine (names are unique per run).
    if [ -z "$ns_start" ] && [ -n "$nspawn" ] && [ -r "/proc/$nspawn/cmdline" ] &&
       tr '\0' '\n' < "/proc/$nspawn/cmdline" 2>/dev/null | grep -qxF -- "$name"; then
      ns_start=$(pid_start "$nspawn") || ns_start=''
    fi
    # Likewise the leader: ours if it is that nspawn's child.
    if [ -z "$ld_start" ] && [ -n "$leader" ] && [ -n "$ns_start" ] &&
       [ "$(awk '/^PPid:/{print $2}' "/proc/$leader/status" 2>/dev/null)" = "$nspawn" ]; then
      ld_start=$(pid_start "$leader") || ld_start=''
    fi
    if [ -n "$leader" ] && pid_is "$leader" "$ld_start"; then
      signal_pid RTMIN+4 "$leader" "$ld_start" || true
      for _ in $(seq 80); do pid_is "$nspawn" "$ns_start" systemd-nspawn || break; sleep 0.25; done
      if pid_is "$nspawn" "$ns_start" systemd-nspawn; then signal_pid KILL "$leader" "$ld_start" || true; fi
    fi
    for _ in $(seq 40); do pid_is "$nspawn" "$ns_start" systemd-nspawn || break; sleep 0.25; done
    if pid_is "$nspawn" "$ns_start" systemd-nspawn; then
      signal_pid KILL "$nspawn" "$ns_start" systemd-nspawn || true
      for _ in $(seq 20); do pid_is "$nspawn" "$ns_start" || break; sleep 0.25; done
    fi
    if pid_is "$nspawn" "$ns_start"; then say "lab: nspawn $nspawn ($name) did not stop"; return 1; fi
    rm -f -- "$pidfile" "$pidfile.start"
  fi
  # nspawn leaves this behind when the host's /run is not a tmpfs.
  local prop=/run/systemd/nspawn/propagate
  if [ -n "$name" ] && ct_name_ok "$name" && { [ -e "$prop/$name" ] || [ -L "$prop/$name" ]; }; then
    safe_rm "$prop/$name" "$prop"
  fi
}

# ct_unmount DIR: undo ct_mount and remove the scenario's scratch space (only once the
# overlay is really unmounted).
ct_unmount() {
  local dir
  dir=$(strip_slashes "$1")
  must_be_under "$dir" "$LAB_VAR" || return 1
  [ -e "$dir" ] || [ -L "$dir" ] || return 0
  if [ -d "$dir" ] && [ ! -L "$dir" ]; then safe_umount "$dir/root" || return 1; fi
  safe_rm "$dir"
}
