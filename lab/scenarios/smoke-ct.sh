TIER=container
DESCRIPTION="throwaway: the container tier boots"
check() {
  run systemctl --failed --no-legend
  expect_eq "is-system-running" "$LAB_SYSTEM_STATE" running
  run cat /run/fakegen.ran
  run journalctl -b --no-pager -g fakegen
  run ls -l /dev/kmsg
}
