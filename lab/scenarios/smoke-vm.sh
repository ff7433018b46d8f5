TIER=vm
DESCRIPTION="throwaway: the VM tier boots"
check() {
  run systemctl --failed --no-legend
  expect_eq "is-system-running" "$LAB_SYSTEM_STATE" running
  run cat /run/fakegen.ran
  run journalctl -b --no-pager -g fakegen
  run ls -l /dev/kmsg
  run cat /sys/fs/cgroup/cgroup.controllers
}
