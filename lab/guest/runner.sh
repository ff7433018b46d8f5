#!/bin/bash
# Runs inside the VM (lab-runner.service): waits for the boot to finish, runs every scenario
# installed under /usr/local/lib/lab/scenarios, streams the results to the virtio-serial port
# "lab.results" (a file on the host), then powers off. lab/lib/vm.sh reads the markers:
#   @@LAB state <is-system-running>      @@LAB begin <name>
#   @@LAB end <name> <rc> <seconds> <reason>          @@LAB done
# No errexit, on purpose: whatever fails, the runner must go on to the next scenario and
# reach the poweroff at the end (every step that matters reports its own status).
set -uo pipefail
LIB=/usr/local/lib/lab
port=$(grep -lx lab.results /sys/class/virtio-ports/*/name 2>/dev/null | head -1)
PORT=/dev/console; [ -n "$port" ] && PORT=/dev/$(basename "$(dirname "$port")")
exec > "$PORT" 2>&1
arg() { sed -n "s/.*\<lab\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }

t0=$EPOCHREALTIME
state=$(timeout "$(arg boot_timeout)" systemctl is-system-running --wait)
echo "@@LAB state ${state:-timeout} $(cut -d' ' -f1 /proc/uptime)"
echo "--- failed units:"; systemctl --failed --no-legend --no-pager

mkdir -p /run/lab
for s in "$LIB"/scenarios/*.sh; do
  [ -e "$s" ] || continue
  name=$(basename "$s" .sh)
  echo "@@LAB begin $name"
  rm -f "/run/lab/$name.reason"
  t0=$EPOCHREALTIME
  # The check shell keeps bash's defaults, as in lab/run (see there).
  # shellcheck disable=SC2016 # expanded by the inner bash
  LAB_REASON=/run/lab/$name.reason LAB_SYSTEM_STATE=$state LAB_DATA=$LIB/data/$name \
    timeout -k 5 "$(arg check_timeout)" bash -c '
      . "$0/assert.sh"; in_guest() { "$@"; }; . "$1"; check' "$LIB" "$s" </dev/null
  rc=$?
  [ $rc = 124 ] && echo "timed out" > "/run/lab/$name.reason"
  secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
  echo "@@LAB end $name $rc $secs $(head -1 "/run/lab/$name.reason" 2>/dev/null)"
done
echo "@@LAB journal"
journalctl -b --no-pager -o short-monotonic
echo "@@LAB done"
sync
# lab.keep=1 (LAB_KEEP=1 on the host): leave the machine up for debugging.
[ "$(arg keep)" = 1 ] || systemctl poweroff --no-block
