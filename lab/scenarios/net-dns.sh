# Each tenant's DNS server (dnsmasq, tenant-network@<id>'s main process) listens on its
# gateway: tenant A resolves its own names and the upstream's, and not tenant B's, neither
# through its own server nor by asking B's.
TIER=vm
DESCRIPTION="a tenant resolves its own names and the upstream, never another tenant's"

# resolves EP NAME SERVER ADDRESS: endpoint EP asks SERVER for NAME and gets ADDRESS.
resolves() {
  local out
  out=$(ep "$1" timeout 5 busybox nslookup "$2" "$3" 2>&1)
  echo "$1: nslookup $2 $3 -> $(echo "$out" | grep -E '^Address' | tail -n +2 | tr '\n' ' ')"
  echo "$out" | sed 1,2d | grep -qE "^Address:? +$4\$"
}

check() {
  . /usr/local/lib/lab/net.sh
  net_fixture
  run systemctl status --no-pager -n 3 tenant-network@neta.service
  resolves a1 gateway.neta.internal 10.10.1.1 10.10.1.1 || fail "a1 cannot resolve its own name"
  resolves a1 upstream.test 10.10.1.1 192.0.2.1 || fail "a1 cannot resolve the upstream's name"
  resolves b1 gateway.netb.internal 10.10.2.1 10.10.2.1 || fail "b1 cannot resolve its own name"
  if resolves a1 gateway.netb.internal 10.10.1.1 10.10.2.1; then
    fail "a1 resolved tenant netb's name through its own server"
  fi
  if resolves a1 gateway.netb.internal 10.10.2.1 10.10.2.1; then
    fail "a1 resolved through tenant netb's server"
  fi
}
