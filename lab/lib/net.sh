# shellcheck shell=bash
# The network fixture of the VM tier's net-* scenarios, sourced by their check inside the
# guest (lab/run installs it as /usr/local/lib/lab/net.sh). The first scenario that calls
# net_fixture builds it; the others reuse it (one boot serves them all):
#
#   up0 (uplink, 192.0.2.2/24, made by networkd)  <->  wan0 in namespace "wan" (192.0.2.1/24):
#       the outside world: an upstream DNS server (upstream.test -> 192.0.2.1), a WireGuard
#       peer wgp (10.99.0.1/24), an iperf3 server
#   tenant neta: bt-neta 10.10.1.1/24 + fd10:1::1/64, VLAN 101 on up0, WireGuard wt-neta,
#       DHCP, egressRate 20M; endpoints a1 (10.10.1.11) and a2 (10.10.1.12)
#   tenant netb: bt-netb 10.10.2.1/24; endpoints b1 (10.10.2.11) and b2 (10.10.2.12)
#
# Endpoints are network namespaces attached exactly as workloads attach: `bbhv net attach`
# run inside them (docs/architecture.md, "Where workloads meet the network").
# The tenants are applied at check time as a new generation, followed by `bbhv reload`,
# which is what a git-ops apply does.

NET_STATE=/run/lab/net
NET_WAN=192.0.2.1
NET_EGRESS_MBIT=20
declare -gA NET_ADDR=([a1]=10.10.1.11 [a2]=10.10.1.12 [b1]=10.10.2.11 [b2]=10.10.2.12)
declare -gA NET_TENANT=([a1]=neta [a2]=neta [b1]=netb [b2]=netb)
declare -gA NET_GW=([neta]=10.10.1.1 [netb]=10.10.2.1)

# ep NAME CMD...: run CMD in endpoint NAME's namespace.
ep() { local n=$1; shift; ip netns exec "ep-$n" "$@"; }

# net_tenant_json ID: metadata.json of a fixture tenant (keys from $NET_STATE).
net_tenant_json() {
  case $1 in
    neta) cat <<EOF
{
  "schemaVersion": 1, "id": "neta", "description": "lab network tenant A",
  "resources": { "tasksMax": 256 },
  "network": {
    "vlan": 101, "ipv4": "10.10.1.1/24", "ipv6": "fd10:1::1/64", "dhcp": true,
    "egressRate": "${NET_EGRESS_MBIT}M",
    "wireguard": {
      "listenPort": 51821, "privateKeyCredential": "wg-neta",
      "peers": [ { "publicKey": "$(cat "$NET_STATE/peer.pub")", "endpoint": "$NET_WAN:51900",
                   "allowedIps": ["10.99.0.0/24"] } ]
    }
  }
}
EOF
    ;;
    netb) cat <<EOF
{
  "schemaVersion": 1, "id": "netb", "description": "lab network tenant B",
  "network": { "ipv4": "10.10.2.1/24" }
}
EOF
    ;;
  esac
}

# net_apply TENANT...: a new generation holding exactly these fixture tenants, made current,
# then `bbhv reload`.
net_apply() {
  local gens=/var/lib/bitbuilder/generations seq gen t
  mkdir -p "$gens"
  seq=$(find "$gens" -mindepth 1 -maxdepth 1 -printf '%f\n' | sed 's/-.*//' | sort -n | tail -1)
  seq=$(( ${seq:-0} + 1 ))
  gen=$seq-$(printf '%040x' "$((seq + 0xbb00))")
  mkdir -p "$gens/$gen/tenants" || return 1
  for t in "$@"; do
    mkdir -p "$gens/$gen/tenants/$t"
    net_tenant_json "$t" > "$gens/$gen/tenants/$t/metadata.json"
  done
  [ -e /var/lib/bitbuilder/current ] &&
    cp -P /var/lib/bitbuilder/current /var/lib/bitbuilder/previous.lab-new &&
    mv -T /var/lib/bitbuilder/previous.lab-new /var/lib/bitbuilder/previous
  ln -sfn "generations/$gen" /var/lib/bitbuilder/current.lab-new &&
    mv -T /var/lib/bitbuilder/current.lab-new /var/lib/bitbuilder/current
  echo "\$ bbhv reload  # generation $gen: $*"
  bbhv reload
}

# net_attach NAME: endpoint NAME in its own namespace, on its tenant's bridge.
net_attach() {
  local n=$1 t=${NET_TENANT[$1]}
  ip netns add "ep-$n" || return 1
  ep "$n" bbhv net attach --bridge "bt-$t" --link "vw-lab$n" \
    --address "${NET_ADDR[$n]}/24" --gateway "${NET_GW[$t]}"
}

net_fixture() {
  [ -e "$NET_STATE/ready" ] && return 0
  mkdir -p "$NET_STATE" /etc/bitbuilder /etc/credstore
  log "fixture: uplink up0 <-> wan0 (namespace wan)"
  printf '[NetDev]\nName=up0\nKind=veth\n\n[Peer]\nName=wan0\n' > /etc/systemd/network/10-up0.netdev
  printf '[Match]\nName=up0\n\n[Network]\nAddress=192.0.2.2/24\n\n[Link]\nRequiredForOnline=no\n' \
    > /etc/systemd/network/10-uplink.network
  # host.toml's [network] for the fixture; its other sections ([sync], [trust]: the
  # extension scenarios that share this VM sync through them) are kept.
  local others
  others=$(awk 'BEGIN { keep = 1 } /^\[/ { keep = ($0 != "[network]") } keep' \
    /etc/bitbuilder/host.toml 2>/dev/null || true)
  { cat <<'EOF'
[network]
uplink = "up0"
uplink_network = "10-uplink.network"
dns_upstream = ["192.0.2.1"]
host_subnets = ["192.0.2.0/24"]
EOF
    printf '\n%s\n' "$others"
  } > /etc/bitbuilder/host.toml.new || fail "cannot write host.toml"
  mv /etc/bitbuilder/host.toml.new /etc/bitbuilder/host.toml || fail "cannot replace host.toml"
  # WireGuard keys: the host's in networkd's credential store (imported when networkd
  # starts, hence the restart), the peer's in the fixture.
  ( umask 077; wg genkey > /etc/credstore/network.wireguard.private.wg-neta
    wg genkey > "$NET_STATE/peer.key" )
  wg pubkey < /etc/credstore/network.wireguard.private.wg-neta > "$NET_STATE/host.pub"
  wg pubkey < "$NET_STATE/peer.key" > "$NET_STATE/peer.pub"
  run systemctl restart systemd-networkd.service || fail "cannot restart systemd-networkd"
  # The firewall's rules name the uplink from host.toml: restarting it (and, through
  # Requires=, the tenant networks already up) takes the new one.
  run systemctl restart bitbuilder-firewall.service || fail "cannot restart bitbuilder-firewall"
  wait_for 30 "networkd to make the uplink veth" ip link show wan0
  { ip netns add wan && ip link set wan0 netns wan &&
    ip -n wan address add "$NET_WAN/24" dev wan0 && ip -n wan link set wan0 up &&
    ip -n wan link set lo up; } || fail "cannot set up the wan namespace"
  ip netns exec wan dnsmasq --conf-file=/dev/null --no-hosts --no-resolv --bind-interfaces \
    --listen-address="$NET_WAN" --address=/upstream.test/"$NET_WAN" \
    --pid-file="$NET_STATE/wan-dns.pid" || fail "cannot start the upstream DNS server"
  { ip -n wan link add wgp type wireguard &&
    ip netns exec wan wg set wgp private-key "$NET_STATE/peer.key" listen-port 51900 \
      peer "$(cat "$NET_STATE/host.pub")" endpoint 192.0.2.2:51821 allowed-ips 10.10.1.0/24 &&
    ip -n wan address add 10.99.0.1/24 dev wgp && ip -n wan link set wgp up &&
    ip -n wan route add 10.10.1.0/24 dev wgp; } || fail "cannot set up the WireGuard peer"

  log "fixture: tenants neta and netb"
  net_apply neta netb || fail "bbhv reload failed"
  wait_active tenant-network@neta.service 60
  wait_active tenant-network@netb.service 60
  run networkctl list --no-pager
  local n
  for n in a1 a2 b1 b2; do net_attach "$n" || fail "cannot attach endpoint $n"; done
  touch "$NET_STATE/ready"
}

# reach FROM KIND TARGET: does endpoint FROM reach TARGET? KIND is icmp, tcp or arp.
# tcp needs a listener: `nc -l` on port 7 of the target endpoint (net_listen).
reach() {
  local from=$1 kind=$2 to=$3
  case $kind in
    icmp) ep "$from" ping -c 1 -W 1 "$to" >/dev/null 2>&1 ;;
    tcp) ep "$from" nc -z -w 2 "$to" 7 >/dev/null 2>&1 ;;
    # ARP on the endpoint's own link, also for an address of another subnet: a /32 route
    # on host0 makes the endpoint ask for it there; only a host on the same bridge answers.
    arp) local ok=1
         ep "$from" ip route replace "$to/32" dev host0
         ep "$from" ip neigh flush dev host0 >/dev/null 2>&1
         ep "$from" ping -c 1 -W 1 "$to" >/dev/null 2>&1
         ep "$from" ip neigh show "$to" dev host0 | grep -qE 'REACHABLE|STALE|DELAY|PROBE' && ok=0
         ep "$from" ip route del "$to/32" dev host0
         return $ok ;;
  esac
}

# net_detach NAME: endpoint NAME goes as a workload's namespace goes when its unit stops:
# its processes end, the namespace is released and the kernel removes the veth pair.
net_detach() {
  local n=$1 pid
  if [ -e "$NET_STATE/listen-$n" ]; then
    read -r pid < "$NET_STATE/listen-$n"
    kill "$pid" 2>/dev/null
    rm -f "$NET_STATE/listen-$n"
  fi
  ip netns pids "ep-$n" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del "ep-$n"
  wait_for 10 "the veth of $n to go" sh -c "! ip link show vw-lab$n"
}

# net_listen NAME: a TCP listener on port 7 in endpoint NAME.
net_listen() {
  local n=$1
  [ -e "$NET_STATE/listen-$n" ] && return 0
  ip netns exec "ep-$n" nc -lk 7 </dev/null >/dev/null 2>&1 &
  echo $! > "$NET_STATE/listen-$n"
}
