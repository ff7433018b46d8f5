# A tenant with "egressRate": its routed egress (everything its bridge passes up to the
# host) is redirected to its IFB, where networkd's token bucket shapes it. iperf3 from an
# endpoint to the uplink side must measure within +-20% of the rate.
TIER=vm
DESCRIPTION="egress throughput within 20% of egressRate (iperf3)"

check() {
  . /usr/local/lib/lab/net.sh
  net_fixture
  run tc qdisc show dev et-neta
  run tc filter show dev bt-neta ingress
  ip netns exec wan iperf3 -s -D -B "$NET_WAN" -1 || fail "cannot start iperf3 in wan"
  sleep 1
  local json rate want=$((NET_EGRESS_MBIT * 1000000))
  json=$(ep a1 iperf3 -c "$NET_WAN" -t 8 -O 2 -J) || fail "iperf3 from a1 failed"
  rate=$(echo "$json" | grep -A8 '"sum_received"' | sed -n 's/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' | head -1)
  rate=$(awk -v r="$rate" 'BEGIN{printf "%d", r}')
  echo "check: a1 -> uplink: $rate bit/s received, egressRate $want bit/s"
  [ "$rate" -ge $((want * 8 / 10)) ] && [ "$rate" -le $((want * 12 / 10)) ] ||
    fail "egress of neta measured $rate bit/s, not within 20% of $want"
  ip netns exec wan iperf3 -s -D -B "$NET_WAN" -1
  sleep 1
  rate=$(ep b1 iperf3 -c "$NET_WAN" -t 4 -J | grep -A8 '"sum_received"' |
    sed -n 's/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' | head -1)
  echo "info: b1 (netb, no egressRate) -> uplink: $(awk -v r="$rate" 'BEGIN{printf "%d", r}') bit/s"
}
