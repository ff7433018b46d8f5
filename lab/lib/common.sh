# Shared helpers for lab/setup and lab/run. Sourced, not executed.

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$LAB_DIR/.." && pwd)
# Survives across CI runs on the same machine (the clone does not).
LAB_CACHE=${LAB_CACHE:-/var/cache/bitbuilder-lab}
# Per-run scratch (overlays, images, logs); outside the clone for the same reason.
LAB_VAR=${LAB_VAR:-/var/tmp/bitbuilder-lab}

# The Debian mirror this machine is already configured with.
lab_mirror() {
  awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null ||
    echo http://deb.debian.org/debian
}

say() { printf '%s\n' "$*" >&2; }
die() { say "lab: $*"; exit 1; }

# Seconds since epoch with microseconds, and a formatted difference "12.3".
now() { echo "${EPOCHREALTIME}"; }
elapsed() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN{printf "%.1f", b-a}'; }

# Run a command in the background and wait for it: a trapped signal (lab/run's INT/TERM
# clean-up) interrupts `wait` at once, where it would wait for a foreground child to end.
interruptible() { "$@" & wait $!; }
