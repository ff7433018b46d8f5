//! Tenant networks at run time (docs/architecture.md, "Where workloads meet
//! the network"). systemd-networkd makes the links from the files
//! tenant-generator writes; what it cannot do is here:
//!
//! - [`firewall`]: the project's nftables table `inet bitbuilder` and each
//!   tenant's elements in it (isolation, masquerade, published ports), as
//!   `nft -f` scripts that add or remove exactly one tenant's objects;
//! - [`dns`]: the tenant's DNS server (dnsmasq, DNS only, on the gateway);
//! - [`sys`]: the edges that run `nft`, `tc` and `ip`.
//!
//! Everything but [`sys`] is pure: typed values in, text out. Every name in
//! a script is derived from a `TenantId` (`[a-z0-9-]`) or a typed address,
//! so nothing from git reaches `nft` as syntax.

pub mod dns;
pub mod firewall;
pub mod sys;

use std::net::IpAddr;

use bbhv_spec::Tenant;
use bbhv_spec::names::{InterfacePrefix, TenantId};
use ipnet::{Ipv4Net, Ipv6Net};

/// What the host contributes (`/etc/bitbuilder/host.toml`, `[network]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNet {
    /// The interface tenants' egress leaves by, masqueraded. `None`: any
    /// interface that is not a tenant's.
    pub uplink: Option<String>,
    /// Where the tenants' DNS servers forward other names. Empty: the
    /// host's resolvers (`/run/systemd/resolve/resolv.conf`).
    pub dns_upstream: Vec<IpAddr>,
}

/// One tenant's network as the run time sees it: names and addresses,
/// derived once from a validated [`Tenant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantNet {
    pub id: TenantId,
    /// `bt-<id>`: the bridge, with the gateway addresses.
    pub bridge: String,
    /// `wt-<id>`, when the tenant has WireGuard.
    pub wireguard: Option<String>,
    /// `et-<id>`, the IFB its egress is shaped on, when `egressRate` is set.
    pub egress: Option<String>,
    pub gateway4: Option<Ipv4Net>,
    pub gateway6: Option<Ipv6Net>,
    pub dhcp: bool,
    /// The tenant's own names for its DNS server: `(name, address)`.
    pub hosts: Vec<(String, IpAddr)>,
    /// Published ports: host port to a workload's address and port.
    pub ports: Vec<Forward>,
}

/// One published port (`ports` of a container): `HOST:CONTAINER[/proto]`,
/// resolved to the workload's static address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub udp: bool,
    pub host_port: u16,
    pub address: std::net::Ipv4Addr,
    pub port: u16,
}

impl TenantNet {
    /// `None` when the tenant declares no network.
    pub fn of(tenant: &Tenant) -> Option<TenantNet> {
        let net = tenant.network.as_ref()?;
        let id = tenant.id.clone();
        let mut hosts = Vec::new();
        if let Some(gw) = net.ipv4 {
            hosts.push(("gateway".to_owned(), IpAddr::V4(gw.addr())));
        }
        if let Some(gw) = net.ipv6 {
            hosts.push(("gateway".to_owned(), IpAddr::V6(gw.addr())));
        }
        // Workloads by name, at their static addresses.
        let v4 = tenant.workload_addresses();
        for (name, addr) in &v4 {
            hosts.push((name.as_str().to_owned(), IpAddr::V4(*addr)));
        }
        for (name, addr) in tenant.workload_addresses6() {
            hosts.push((name.as_str().to_owned(), IpAddr::V6(addr)));
        }
        let ports = tenant
            .containers
            .iter()
            .filter_map(|c| Some((c, *v4.get(&c.name)?)))
            .flat_map(|(c, address)| {
                c.ports.iter().map(move |p| Forward {
                    udp: p.protocol == bbhv_spec::values::Protocol::Udp,
                    host_port: p.host,
                    address,
                    port: p.container,
                })
            })
            .collect();
        Some(TenantNet {
            bridge: id.interface(InterfacePrefix::Bridge),
            wireguard: net
                .wireguard
                .as_ref()
                .map(|_| id.interface(InterfacePrefix::WireGuard)),
            egress: net
                .egress_rate
                .map(|_| id.interface(InterfacePrefix::Egress)),
            gateway4: net.ipv4,
            gateway6: net.ipv6,
            dhcp: net.dhcp,
            hosts,
            ports,
            id,
        })
    }

    /// The links that belong to the tenant at layer 3: traffic between them
    /// stays inside the tenant (the VLAN link is a port of the bridge and
    /// never routes).
    pub fn links(&self) -> Vec<&str> {
        std::iter::once(self.bridge.as_str())
            .chain(self.wireguard.as_deref())
            .collect()
    }

    /// The gateway addresses on the bridge (what its DNS server listens on).
    pub fn gateways(&self) -> Vec<IpAddr> {
        self.gateway4
            .map(|g| IpAddr::V4(g.addr()))
            .into_iter()
            .chain(self.gateway6.map(|g| IpAddr::V6(g.addr())))
            .collect()
    }

    /// The tenant's DNS domain: `<id>.internal` (RFC 9476's `.internal`,
    /// reserved for private use).
    pub fn domain(&self) -> String {
        format!("{}.internal", self.id)
    }
}

/// Every link name a tenant can own, whatever its network declares (for
/// removal, which needs no checkout).
pub fn all_links(id: &TenantId) -> Vec<String> {
    InterfacePrefix::ALL
        .iter()
        .map(|&p| id.interface(p))
        .collect()
}
