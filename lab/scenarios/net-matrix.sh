# Two tenants, two endpoints each, attached as workloads attach: inside a tenant, ICMP, TCP
# and ARP work; across tenants every one of them fails, also to the other tenant's gateway;
# every endpoint reaches the uplink side through masquerade (the wan side has no route back
# to the tenants' subnets). networkd logs nothing against the generated files.
TIER=vm
DESCRIPTION="tenant isolation: ICMP/TCP/ARP inside a tenant only, egress masqueraded"

check() {
  . /usr/local/lib/lab/net.sh
  net_fixture
  local from to kind got want row bad=0 n
  for n in a1 a2 b1 b2; do net_listen "$n"; done
  ip netns exec wan nc -lk 7 </dev/null >/dev/null 2>&1 &
  echo "reachability matrix (yes = reached; * = not what isolation requires)"
  printf '%-18s %-5s %-5s %-5s\n' "from -> to" icmp tcp arp
  for from in a1 a2 b1 b2; do
    for to in a1 a2 b1 b2; do
      [ "$from" = "$to" ] && continue
      want=no; [ "${NET_TENANT[$from]}" = "${NET_TENANT[$to]}" ] && want=yes
      row=$(printf '%-18s' "$from -> $to")
      for kind in icmp tcp arp; do
        if reach "$from" "$kind" "${NET_ADDR[$to]}"; then got=yes; else got=no; fi
        [ "$got" = "$want" ] || { got="$got*"; bad=$((bad + 1)); }
        row+=$(printf ' %-5s' "$got")
      done
      echo "$row"
    done
    # The other tenant's gateway is a host address: the input chain refuses it.
    for t in neta netb; do
      [ "$t" = "${NET_TENANT[$from]}" ] && continue
      if reach "$from" icmp "${NET_GW[$t]}"; then got="yes*"; bad=$((bad + 1)); else got=no; fi
      printf '%-18s %-5s\n' "$from -> gw($t)" "$got"
    done
    for kind in icmp tcp; do
      if reach "$from" "$kind" "$NET_WAN"; then got=yes; else got="no*"; bad=$((bad + 1)); fi
      printf '%-18s %-5s (%s)\n' "$from -> uplink" "$got" "$kind"
    done
  done
  [ "$bad" = 0 ] || fail "$bad cells of the reachability matrix are wrong (marked *)"
  log "networkd accepted every generated file"
  # No generated file has a key or value networkd does not know, whoever's it is; the
  # fixture's tenants' files raise no complaint at all. (A tenant of the boot's example
  # repository may lack its WireGuard credential on this host: that is reported against
  # its file, rightly, and is not a fault of the file.)
  journalctl -b -u systemd-networkd --no-pager -o cat | grep -F bbhv- | tee /run/lab/networkd-bbhv.txt
  if grep -Ei 'unknown|invalid|not valid|syntax' /run/lab/networkd-bbhv.txt; then
    fail "networkd did not understand a generated file (above)"
  fi
  if grep -E 'bbhv-[a-z]t-net[ab]\.|bbhv-vlans' /run/lab/networkd-bbhv.txt | grep -Ei 'ignor|fail|error|warn'; then
    fail "networkd complained about a file of the fixture's tenants (above)"
  fi
  grep -qE 'bt-neta: Configuring with /run/systemd/network/bbhv-bt-neta.network' /run/lab/networkd-bbhv.txt ||
    fail "networkd never configured bt-neta from its generated file"
  run nft list table inet bitbuilder
}
