# A tenant removed from the checkout leaves nothing once the host reloads (`bbhv reload`, the
# git-ops apply): no link, address, firewall chain or map element, no DNS server, no
# networkd file, no namespace. The other tenant keeps working. The fixture is restored after.
TIER=vm
DESCRIPTION="removing a tenant removes its links, addresses, rules and DNS server"

check() {
  . /usr/local/lib/lab/net.sh
  net_fixture
  log "the workloads of netb stop (their namespaces go), then netb leaves the checkout"
  net_detach b1; net_detach b2
  net_apply neta || fail "bbhv reload failed"
  sleep 1
  run systemctl status --no-pager -n 5 tenant-network@netb.service
  local state; state=$(systemctl show -P ActiveState tenant-network@netb.service)
  [ "$state" = inactive ] || fail "tenant-network@netb is $state"
  ip -br link | grep -E '(bt|vt|wt|et)-netb' && fail "a link of netb is left"
  ip -br address | grep -F 10.10.2. && fail "an address of netb is left"
  nft list table inet bitbuilder > /run/lab/nft.txt
  grep -F netb /run/lab/nft.txt && fail "a firewall rule or element of netb is left"
  pgrep -af 'bt-netb' && fail "a process of netb is left"
  compgen -G '/run/systemd/network/*netb*' && fail "a networkd file of netb is left"
  ip netns list | grep -F netb && fail "a namespace of netb is left"
  reach a1 icmp "$NET_WAN" || fail "neta lost its egress"
  reach a1 icmp 10.10.1.12 || fail "neta lost its own traffic"
  log "restore the fixture"
  net_apply neta netb || fail "bbhv reload failed"
  wait_active tenant-network@netb.service 60
  net_attach b1 && net_attach b2 || fail "cannot re-attach b1, b2"
}
