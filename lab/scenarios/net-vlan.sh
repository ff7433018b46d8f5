# A tenant with "vlan": networkd makes vt-<id> on the uplink (listed by the generated drop-in
# of the uplink's .network) as a port of the tenant's bridge, and the tenant's frames leave
# the uplink tagged with its VLAN id: captured on the uplink with tcpdump.
TIER=vm
DESCRIPTION="a tenant's frames leave the uplink tagged with its VLAN id"

check() {
  . /usr/local/lib/lab/net.sh
  net_fixture
  run ip -d link show vt-neta
  ip -d link show vt-neta | grep -q 'vlan protocol 802.1Q id 101' || fail "vt-neta is not VLAN 101"
  ip link show vt-neta | grep -q 'master bt-neta' || fail "vt-neta is not a port of bt-neta"
  ip link show vt-neta | grep -q '@up0' || fail "vt-neta is not on the uplink up0"
  timeout 10 tcpdump -i up0 -e -nn -c 3 vlan 101 > /run/lab/vlan.txt 2>/dev/null &
  local cap=$!
  sleep 1
  # A broadcast (ARP for an unused address) floods the bridge, so also its VLAN port.
  ep a1 ping -c 3 -W 1 10.10.1.99 >/dev/null 2>&1
  wait "$cap"
  cat /run/lab/vlan.txt
  grep -q 'vlan 101' /run/lab/vlan.txt || fail "no frame tagged with VLAN 101 on up0"
  grep -q '10.10.1.99' /run/lab/vlan.txt || fail "the tagged frames are not the tenant's"
}
