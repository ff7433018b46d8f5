# A tenant with "wireguard": networkd makes wt-<id> with the key from the credential store
# (never from git) and routes the peer's allowed IPs into it. A handshake with the peer (in
# namespace wan) happens, traffic from the peer's allowed IPs reaches the tenant's endpoint,
# and traffic from any other source is dropped by WireGuard.
TIER=vm
DESCRIPTION="WireGuard handshake with a peer; only the allowed IPs pass"

check() {
  . /usr/local/lib/lab/net.sh
  net_fixture
  run wg show wt-neta
  [ "$(wg show wt-neta public-key)" = "$(cat "$NET_STATE/host.pub")" ] ||
    fail "wt-neta does not have the key from /etc/credstore"
  ip netns exec wan ping -c 3 -W 2 -I 10.99.0.1 10.10.1.11 || fail "the peer cannot reach a1 through the tunnel"
  local hs; hs=$(wg show wt-neta latest-handshakes | awk '{print $2}')
  echo "check: latest handshake $hs"
  [ "${hs:-0}" -gt 0 ] || fail "no handshake on wt-neta"
  ep a1 ping -c 2 -W 2 10.99.0.1 || fail "a1 cannot reach the peer's address through wt-neta"
  log "a source outside the peer's allowed IPs"
  ip -n wan address add 10.98.0.1/24 dev wgp
  if ip netns exec wan ping -c 2 -W 2 -I 10.98.0.1 10.10.1.11; then
    fail "traffic from 10.98.0.1, outside the allowed IPs, reached a1"
  fi
  ip -n wan address del 10.98.0.1/24 dev wgp
  # The other tenant is not behind this tunnel.
  if ip netns exec wan ping -c 1 -W 2 -I 10.99.0.1 10.10.2.11; then
    fail "the peer reached tenant netb"
  fi
}
