# shellcheck shell=bash
# Shared helpers for the lab's scripts (lab/run, lab/demo, lab/setup, lab/rootfs/build).
# Sourced, not executed: it sets no shell options and relies on the caller's (every
# executable script of the project runs with `set -euo pipefail`; lab/run's per-scenario
# check shells are the documented exception). Every function here returns a status and
# never exits, except `die`.
#
# The guards below are the only way the lab removes, mounts, unmounts or signals anything:
#   must_be_under PATH ROOT   PATH is strictly below ROOT (not empty, not /, absolute, no
#                             `.`/`..`, not reached through a symlinked parent)
#   safe_rm PATH [ROOT]       rm -rf --one-file-system, only under ROOT (default $LAB_VAR),
#                             never through a symlink, never with anything mounted under it
#   safe_umount DIR [ROOT]    umount, checked and retried while busy (never lazily); fails
#                             if it is still mounted, so nothing is removed under a mount
#   pid_is PID START [COMM]   PID is still the process that was recorded (start time,
#                             field 22 of /proc/PID/stat, and its name)
#   signal_pid SIG PID START [COMM]   kill, only if pid_is

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_DIR=$(cd "$LAB_DIR/.." && pwd)
# Survives across CI runs on the same machine (the clone does not).
LAB_CACHE=${LAB_CACHE:-/var/cache/bitbuilder-lab}
# Per-run scratch (overlays, images, logs); outside the clone for the same reason.
LAB_VAR=${LAB_VAR:-/var/tmp/bitbuilder-lab}
# Exported: the per-scenario shells source this file again and must agree.
export LAB_CACHE LAB_VAR

# The Debian mirror this machine is already configured with.
lab_mirror() {
  local m
  m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null) || m=
  echo "${m:-http://deb.debian.org/debian}"
}

say() { printf '%s\n' "$*" >&2; }
die() { say "lab: $*"; exit 1; }

# Seconds since epoch with microseconds, and a formatted difference "12.3".
now() { echo "${EPOCHREALTIME}"; }
elapsed() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN{printf "%.1f", b-a}'; }

# --- paths -------------------------------------------------------------------------------
# lab_root_ok NAME VALUE: the lab's own root directories (LAB_VAR, LAB_CACHE) must be
# absolute paths other than /, without . or .. (everything the lab removes is below them).
lab_root_ok() {
  case $2 in /?*) ;; *) say "lab: $1 must be an absolute path other than / (it is '$2')"; return 1 ;; esac
  case /$2/ in */./*|*/../*) say "lab: $1 must not have . or .. in it ('$2')"; return 1 ;; esac
  [ "$(strip_slashes "$2")" != / ] || { say "lab: $1 must not be /"; return 1; }
}

# strip_slashes PATH -> PATH without trailing slashes ("/" stays "/"): `rm -rf link/`
# would empty the link's target.
strip_slashes() {
  local p=$1
  while [ "$p" != / ] && [ "${p%/}" != "$p" ]; do p=${p%/}; done
  printf '%s\n' "$p"
}

# must_be_under PATH ROOT: succeeds only if PATH is an absolute path strictly below ROOT,
# without `.` or `..` components, and its parent directory, symlinks resolved, is still
# below ROOT (so a symlink planted on the way cannot lead elsewhere). ROOT must exist and
# may be neither empty nor /.
must_be_under() {
  local p root rp rr
  p=$(strip_slashes "$1") root=$(strip_slashes "$2")
  case $root in ''|/) say "lab: refusing '$1': the root '$2' is empty or /"; return 1 ;; esac
  case $p in
    ''|/) say "lab: refusing an empty path or / ('$1')"; return 1 ;;
    /*) ;;
    *) say "lab: refusing the relative path '$1'"; return 1 ;;
  esac
  case /$p/ in */./*|*/../*) say "lab: refusing '$1': it has . or .. in it"; return 1 ;; esac
  case $p in "$root"/?*) ;; *) say "lab: refusing '$1': not under $root"; return 1 ;; esac
  rr=$(realpath -e -- "$root" 2>/dev/null) || { say "lab: refusing '$1': no directory $root"; return 1; }
  rp=$(realpath -m -- "${p%/*}" 2>/dev/null) || { say "lab: refusing '$1': cannot resolve it"; return 1; }
  case $rp/ in "$rr"/*) ;; *) say "lab: refusing '$1': it resolves to $rp, outside $rr"; return 1 ;; esac
}

# mounts_under PATH -> the mount points at or below PATH (host mount namespace).
mounts_under() {
  awk -v p="$1" '{ m = $5; gsub(/\\040/, " ", m); gsub(/\\011/, "\t", m); gsub(/\\134/, "\\", m) }
    m == p || index(m, p "/") == 1 { print m }' /proc/self/mountinfo
}

# safe_rm PATH [ROOT]: rm -rf PATH (ROOT defaults to $LAB_VAR). Refuses what must_be_under
# refuses and anything with a mount at or below it; a symlink is removed itself, never
# followed; --one-file-system never crosses into another file system.
safe_rm() {
  local p root=${2:-$LAB_VAR} m
  p=$(strip_slashes "$1")
  must_be_under "$p" "$root" || return 1
  if [ -L "$p" ]; then rm -f -- "$p"; return; fi
  [ -e "$p" ] || return 0
  m=$(mounts_under "$p")
  if [ -n "$m" ]; then say "lab: not removing $p: still mounted: $(echo "$m" | xargs)"; return 1; fi
  rm -rf --one-file-system -- "$p"
}

# safe_umount DIR [ROOT]: unmount DIR (every mount stacked on it) if it is mounted. A busy
# mount is retried for about 10 s, never detached lazily (a lazy detach would let the tree
# under it be removed while something still uses it). Fails if DIR is still mounted.
safe_umount() {
  local m root=${2:-$LAB_VAR} _
  m=$(strip_slashes "$1")
  must_be_under "$m" "$root" || return 1
  [ ! -L "$m" ] || { say "lab: refusing to unmount through the symlink $m"; return 1; }
  for _ in $(seq 20); do
    mountpoint -q -- "$m" || return 0
    umount -- "$m" 2>/dev/null || sleep 0.5
  done
  mountpoint -q -- "$m" || return 0
  say "lab: $m is still mounted (busy); left in place"
  return 1
}

# --- processes ---------------------------------------------------------------------------
# pid_start PID -> its start time (clock ticks after boot, field 22 of /proc/PID/stat).
# With the PID, it names one process for the whole uptime: a PID read back from a file is
# signalled only if its start time is still the recorded one.
pid_start() {
  local stat f
  case $1 in ''|*[!0-9]*|0*) return 1 ;; esac
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -ra f <<<"${stat##*) }"     # the fields after "(comm)", which may hold spaces
  [ -n "${f[19]:-}" ] || return 1
  echo "${f[19]}"
}

# pid_is PID START [COMM]: PID is alive (a zombie is not) and still the recorded process.
pid_is() {
  local pid=$1 start=$2 comm=${3:-} stat f
  [ -n "$start" ] || return 1
  case $pid in ''|*[!0-9]*|0*) return 1 ;; esac
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  read -ra f <<<"${stat##*) }"
  [ "${f[19]:-}" = "$start" ] || return 1
  case ${f[0]:-} in Z|X|x) return 1 ;; esac
  [ -z "$comm" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]
}

# signal_pid SIG PID START [COMM]: send SIG only if pid_is.
signal_pid() { pid_is "$2" "$3" "${4:-}" && kill -s "$1" "$2" 2>/dev/null; }

# Pid files keep the format older versions of the lab read (PIDs only, as clones on other
# branches share $LAB_VAR and clean up each other's dead runs); the start times go beside
# them, in FILE.start.
# write_owner DIR: DIR belongs to this process ($$): DIR/owner and DIR/owner.start.
write_owner() {
  local s
  s=$(pid_start $$) || return 1
  echo $$ > "$1/owner" && echo "$s" > "$1/owner.start"
}

# owner_alive DIR: the process that wrote DIR/owner still runs. Without owner.start (a run
# of an older version), a live PID whose command line names lab/ counts.
owner_alive() {
  local pid='' start=''
  [ -s "$1/owner" ] || return 1
  read -r pid _ < "$1/owner" || true
  if [ -s "$1/owner.start" ]; then
    read -r start < "$1/owner.start" || true
    pid_is "$pid" "$start"
  else
    pid_start "$pid" >/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'lab/'
  fi
}

# descendants PID -> every process below PID, parents before children.
descendants() {
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done
}

# --- signals -----------------------------------------------------------------------------
# Run a command in the background and wait for it: a trapped signal interrupts `wait` at
# once, where it would wait for a foreground child to end. The child is recorded, so the
# INT/TERM handler (lab_traps) ends it, and its descendants, before the script exits.
# Anything long runs this way, not in `$(...)` (a trap waits for a command substitution to
# end): interruptible_out FILE CMD... writes CMD's stdout to FILE.
LAB_CHILD="" LAB_CHILD_START=""
interruptible() {
  local rc=0
  "$@" &
  LAB_CHILD=$! LAB_CHILD_START=$(pid_start $! || true)
  wait "$LAB_CHILD" || rc=$?
  LAB_CHILD="" LAB_CHILD_START=""
  return "$rc"
}

interruptible_out() { local out=$1; shift; interruptible "$@" > "$out"; }

# kill_child: TERM the running `interruptible` child and its descendants (each checked by
# its start time), wait up to 10 s, then KILL what is left.
kill_child() {
  local pid=${LAB_CHILD:-} start=${LAB_CHILD_START:-} p s _
  local -a tree=()
  [ -n "$pid" ] && pid_is "$pid" "$start" || return 0
  for p in "$pid" $(descendants "$pid"); do
    s=$(pid_start "$p") && tree+=("$p:$s")
  done
  for p in "${tree[@]}"; do signal_pid TERM "${p%%:*}" "${p#*:}" || true; done
  for _ in $(seq 40); do pid_is "$pid" "$start" || break; sleep 0.25; done
  for p in "${tree[@]}"; do signal_pid KILL "${p%%:*}" "${p#*:}" || true; done
  wait "$pid" 2>/dev/null || true
  LAB_CHILD="" LAB_CHILD_START=""
}

# lab_traps: on INT/TERM, end the running child, then exit 130 (the EXIT trap cleans up).
lab_traps() {
  trap 'trap "" INT TERM; kill_child; exit 130' INT TERM
}
