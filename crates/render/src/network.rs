//! A tenant's network as systemd-networkd files, for `/run/systemd/network`
//! ([`Root::Network`]). Every file is named `bbhv-<link>.{netdev,network}`;
//! the generator owns that prefix there. Per tenant with a `network`:
//!
//! - the bridge `bt-<id>` with the gateway addresses, the DHCP server and
//!   router advertisements (`bbhv-bt-<id>.netdev`, `.network`);
//! - with `vlan`: the VLAN link `vt-<id>` on the uplink, a port of the bridge;
//!   networkd makes it only when the uplink's `.network` names it, which the
//!   one fleet-wide drop-in [`render_vlans`] does;
//! - with `wireguard`: `wt-<id>`, its private key from the credential
//!   `network.wireguard.private.<privateKeyCredential>` (never from git), its
//!   peers' allowed IPs routed into it in the tenant's own routing table
//!   ([`wireguard_table`]), which a rule applies to what arrives on the
//!   tenant's bridge;
//! - with `egressRate`: the IFB `et-<id>` with a token bucket filter; the
//!   runtime redirects the bridge's ingress (the tenant's egress) into it.
//!
//! Values come from the validated tenant and reach the files only as
//! [`Token`]s and [`Line`]s: nothing from git can add a line or a section.

use std::net::IpAddr;
use std::path::PathBuf;

use bbhv_spec::Tenant;
use bbhv_spec::names::InterfacePrefix;
use bbhv_spec::values::Ipv4Net;
use bbhv_unit::{Line, Syntax, Token, UnitFile, Value, ValueError};

use crate::{Entry, Facts, FactsError, NETWORK_PREFIX, Root, provenance};

/// The drop-in, in `<uplink .network>.d/`, that lists every tenant VLAN.
pub const VLAN_DROPIN: &str = "bbhv-vlans.conf";

/// The routing table of a tenant's WireGuard routes is this plus its listen
/// port (unique on the host): 20001 to 85535.
pub const WIREGUARD_TABLE_BASE: u32 = 20_000;
/// The priority of the rule that sends a tenant's traffic to that table
/// (before the main table's 32766).
pub const WIREGUARD_RULE_PRIORITY: u32 = 10_000;

/// The routing table a tenant's WireGuard peers' allowed IPs are routed in.
/// Not `main`: a peer allowed `0.0.0.0/0` would otherwise take the host's
/// default route. A rule sends only what arrives on the tenant's bridge there.
pub fn wireguard_table(listen_port: u16) -> u32 {
    WIREGUARD_TABLE_BASE + u32::from(listen_port)
}

/// The smallest token bucket (bytes): above any MTU, with room for a burst.
const MIN_BURST: u64 = 16 << 10;
/// The largest token bucket (bytes).
const MAX_BURST: u64 = 16 << 20;

/// The `.network` file that configures the uplink (host.toml
/// `network.uplink_network`), checked to be a plain file name that can be
/// written as a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    network_file: Token,
}

impl Uplink {
    pub fn new(network_file: &str) -> Result<Uplink, FactsError> {
        let error = |source| FactsError {
            what: "the uplink's .network file name",
            value: network_file.to_owned(),
            source,
        };
        if network_file.contains('/') || network_file.starts_with('.') {
            return Err(error(ValueError::Alphabet {
                what: "file name",
                value: network_file.to_owned(),
                allowed: "a plain file name",
            }));
        }
        Ok(Uplink {
            network_file: Token::new(network_file).map_err(error)?,
        })
    }

    /// `<uplink .network>.d/bbhv-vlans.conf`.
    pub fn dropin_path(&self) -> PathBuf {
        PathBuf::from(format!("{}.d", self.network_file)).join(VLAN_DROPIN)
    }
}

/// The networkd files of one tenant (none without a `network`).
pub fn render_network(tenant: &Tenant, facts: &Facts) -> Vec<Entry> {
    let Some(net) = &tenant.network else {
        return Vec::new();
    };
    let id = &tenant.id;
    let source = Line::join(&facts.source_root, "/", &Line::from(id.metadata_file()));
    let header = provenance(facts, &source, Syntax::Plain);
    let title = Line::join(&Line::constant("Tenant"), " ", &Line::from(id.token()));
    let describe = |what: &'static str| Line::join(&title, " ", &Line::constant(what));
    let bridge = id.interface_token(InterfacePrefix::Bridge);
    let mut out = Vec::new();

    // The bridge: the tenant's network on the host, its gateway.
    let mut netdev = header.clone();
    netdev
        .section("NetDev")
        .set("Description", describe("bridge").into())
        .set("Name", bridge.clone().into())
        .set("Kind", Token::constant("bridge").into());
    out.push(file(&bridge, "netdev", &netdev));

    let mut network = header.clone();
    network
        .section("Match")
        .set("Name", bridge.clone().into())
        .section("Link")
        // No tenant link may hold up the host's boot (network-online.target).
        .set("RequiredForOnline", Value::boolean(false))
        .section("Network")
        .set("Description", describe("bridge").into());
    if let Some(v4) = net.ipv4 {
        network.set("Address", token(v4));
    }
    network
        // A bridge without ports has no carrier: its addresses are wanted anyway.
        .set("ConfigureWithoutCarrier", Value::boolean(true))
        // The host is the tenant's router, never a client of its network.
        .set("IPv6AcceptRA", Value::boolean(false));
    let dhcp = net.ipv4.filter(|_| net.dhcp);
    if dhcp.is_some() {
        network.set("DHCPServer", Value::boolean(true));
    }
    if net.ipv6.is_some() {
        network.set("IPv6SendRA", Value::boolean(true));
    }
    if let Some(v4) = dhcp {
        network.section("DHCPServer");
        if let Some((offset, size)) = pool(v4) {
            network
                .set("PoolOffset", Value::number(offset))
                .set("PoolSize", Value::number(size));
        }
        let servers = dns_servers(&net.dns, IpAddr::V4(v4.addr()), IpAddr::is_ipv4);
        network
            .set("EmitRouter", Value::boolean(true))
            .set("EmitDNS", Value::boolean(true))
            .set("DNS", servers);
    }
    if let Some(wg) = &net.wireguard {
        // What the tenant sends is routed by its own table first (its
        // WireGuard peers), then by main; the host's own traffic never sees
        // the tenant's routes.
        network
            .add_section("RoutingPolicyRule")
            .set("IncomingInterface", bridge.clone().into())
            .set("Table", Value::number(wireguard_table(wg.listen_port)))
            .set("Priority", Value::number(WIREGUARD_RULE_PRIORITY))
            .set("Family", Token::constant("both").into());
    }
    if let Some(v6) = net.ipv6 {
        // No duplicate address detection for the gateway: on a bridge
        // without ports (no carrier) the address would stay tentative, and
        // the tenant's DNS server could not bind it. The gateway is the
        // host's own address on the tenant's own link.
        network
            .add_section("Address")
            .set("Address", token(v6))
            .set("DuplicateAddressDetection", Token::constant("none").into());
        let servers = dns_servers(&net.dns, IpAddr::V6(v6.addr()), IpAddr::is_ipv6);
        network
            .section("IPv6SendRA")
            .set("EmitDNS", Value::boolean(true))
            .set("DNS", servers)
            .section("IPv6Prefix")
            .set("Prefix", token(v6.trunc()));
    }
    out.push(file(&bridge, "network", &network));

    // The VLAN: a port of the bridge, made on the uplink (render_vlans).
    if let Some(vlan) = net.vlan {
        let link = id.interface_token(InterfacePrefix::Vlan);
        let mut netdev = header.clone();
        netdev
            .section("NetDev")
            .set("Description", describe("VLAN").into())
            .set("Name", link.clone().into())
            .set("Kind", Token::constant("vlan").into())
            .section("VLAN")
            .set("Id", Value::number(vlan));
        out.push(file(&link, "netdev", &netdev));
        out.push(file(&link, "network", &port(&header, &link, &bridge)));
    }

    // WireGuard: routed, not bridged; its key from a credential.
    if let Some(wg) = &net.wireguard {
        let link = id.interface_token(InterfacePrefix::WireGuard);
        let key = Token::new(format!(
            "@network.wireguard.private.{}",
            wg.private_key_credential
        ))
        .expect("a credential name is a token");
        let mut netdev = header.clone();
        netdev
            .section("NetDev")
            .set("Description", describe("WireGuard").into())
            .set("Name", link.clone().into())
            .set("Kind", Token::constant("wireguard").into())
            .section("WireGuard")
            .set("ListenPort", Value::number(wg.listen_port))
            .set("PrivateKey", key.into())
            // networkd routes every peer's allowed IPs into the link, in
            // the tenant's own table (the bridge's rule leads there).
            .set("RouteTable", Value::number(wireguard_table(wg.listen_port)));
        for peer in &wg.peers {
            netdev.add_section("WireGuardPeer").set(
                "PublicKey",
                Token::new(peer.public_key.as_str())
                    .expect("base64 is a token")
                    .into(),
            );
            if let Some(endpoint) = &peer.endpoint {
                let line = Line::new(&endpoint.to_string())
                    .expect("an endpoint (host name or [IPv6]:port) is a line");
                netdev.set("Endpoint", line.into());
            }
            for allowed in &peer.allowed_ips {
                netdev.set("AllowedIPs", token(allowed));
            }
        }
        out.push(file(&link, "netdev", &netdev));
        let mut network = header.clone();
        network
            .section("Match")
            .set("Name", link.clone().into())
            .section("Link")
            .set("RequiredForOnline", Value::boolean(false))
            .section("Network")
            .set("Description", describe("WireGuard").into())
            .set("LinkLocalAddressing", Value::boolean(false))
            .set("IPv6AcceptRA", Value::boolean(false));
        out.push(file(&link, "network", &network));
    }

    // Egress shaping: an IFB the bridge's ingress is redirected into.
    if let Some(rate) = net.egress_rate {
        let link = id.interface_token(InterfacePrefix::Egress);
        let mut netdev = header.clone();
        netdev
            .section("NetDev")
            .set("Description", describe("egress shaping").into())
            .set("Name", link.clone().into())
            .set("Kind", Token::constant("ifb").into());
        out.push(file(&link, "netdev", &netdev));
        let mut network = header;
        network
            .section("Match")
            .set("Name", link.clone().into())
            .section("Link")
            // An IFB has no carrier to wait for: up as soon as it exists.
            .set("ActivationPolicy", Token::constant("always-up").into())
            .set("RequiredForOnline", Value::boolean(false))
            .section("Network")
            .set("Description", describe("egress shaping").into())
            .set("ConfigureWithoutCarrier", Value::boolean(true))
            .set("LinkLocalAddressing", Value::boolean(false))
            .set("IPv6AcceptRA", Value::boolean(false))
            .section("TokenBucketFilter")
            .set(
                "Rate",
                Token::new(rate.to_string())
                    .expect("a rate is a token")
                    .into(),
            )
            .set("BurstBytes", Value::number(burst(rate.bits_per_second())))
            .set("LatencySec", Token::constant("50ms").into());
        out.push(file(&link, "network", &network));
    }
    out
}

/// The one drop-in for the uplink's `.network` that lists every tenant
/// VLAN (`VLAN=vt-<id>`, in id order); `None` when no tenant has one.
pub fn render_vlans(uplink: &Uplink, tenants: &[&Tenant], facts: &Facts) -> Option<Entry> {
    let links: Vec<Token> = tenants
        .iter()
        .filter(|t| t.network.as_ref().is_some_and(|n| n.vlan.is_some()))
        .map(|t| t.id.interface_token(InterfacePrefix::Vlan))
        .collect();
    if links.is_empty() {
        return None;
    }
    let source = Line::join(&facts.source_root, "/", &Line::constant("tenants"));
    let mut dropin = provenance(facts, &source, Syntax::Plain);
    dropin.section("Network");
    for link in links {
        dropin.set("VLAN", link.into());
    }
    Some(Entry::File {
        root: Root::Network,
        path: uplink.dropin_path(),
        content: dropin.render(),
    })
}

/// A bridge port (the VLAN link): no addresses of its own.
fn port(header: &UnitFile, link: &Token, bridge: &Token) -> UnitFile {
    let mut network = header.clone();
    network
        .section("Match")
        .set("Name", link.clone().into())
        .section("Link")
        .set("RequiredForOnline", Value::boolean(false))
        .section("Network")
        .set("Bridge", bridge.clone().into())
        .set("ConfigureWithoutCarrier", Value::boolean(true))
        .set("LinkLocalAddressing", Value::boolean(false))
        .set("IPv6AcceptRA", Value::boolean(false));
    network
}

fn file(link: &Token, kind: &str, content: &UnitFile) -> Entry {
    Entry::File {
        root: Root::Network,
        path: format!("{NETWORK_PREFIX}{link}.{kind}").into(),
        content: content.render(),
    }
}

/// An address, a subnet, a number: its text is a token.
fn token(value: impl ToString) -> Value {
    Token::new(value.to_string())
        .expect("an address or subnet is a token")
        .into()
}

/// The DHCP pool: the upper half of the subnet. The lower half is never
/// leased: it holds the gateway and the static workload addresses. `None`
/// below four addresses (networkd's default pool then).
fn pool(net: Ipv4Net) -> Option<(u32, u32)> {
    let host_bits = 32 - u32::from(net.prefix_len());
    if host_bits < 2 {
        return None;
    }
    let half = 1u32 << (host_bits - 1);
    // Offset from the subnet's first address; the broadcast address is left out.
    Some((half, half - 1))
}

/// The DNS servers handed out for one family: those of `dns` in it, else the
/// gateway (the tenant's own DNS server listens there).
fn dns_servers(dns: &[IpAddr], gateway: IpAddr, family: fn(&IpAddr) -> bool) -> Value {
    let mut servers: Vec<String> = dns
        .iter()
        .filter(|a| family(a))
        .map(ToString::to_string)
        .collect();
    if servers.is_empty() {
        servers.push(gateway.to_string());
    }
    Value::literals(servers).expect("addresses are tokens")
}

/// The bucket: 10 ms at the rate, within [`MIN_BURST`]..=[`MAX_BURST`].
fn burst(bits_per_second: u64) -> u64 {
    (bits_per_second / 8 / 100).clamp(MIN_BURST, MAX_BURST)
}

#[cfg(test)]
mod tests;
