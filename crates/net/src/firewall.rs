//! The project's nftables table and one tenant's part of it, as `nft -f`
//! scripts (one transaction each: all or nothing).
//!
//! ```text
//! table inet bitbuilder
//!   set tenant_links        every tenant's bridge and WireGuard link
//!   map fwd_from, fwd_to    link -> jump t-<id>-from / t-<id>-to   (forward)
//!   map input_from          link -> jump t-<id>-input                (input)
//!   map nat_from            link -> jump t-<id>-nat             (postrouting)
//!   map ports               proto . port -> jump t-<id>-dnat     (prerouting,
//!                           to a local address; host ports are unique fleet-wide)
//! ```
//!
//! The base chains only dispatch through the maps, one lookup per packet
//! whatever the number of tenants; a tenant link that has no chains yet
//! (networkd made it, its tenant-network@ has not run) is dropped: the
//! table fails closed. A tenant's chains and map elements are
//! named after its id, so removing a tenant removes exactly them. The base
//! chains accept by default: other tables (the host's own firewall) still
//! decide too, and a packet must pass all of them.

use std::fmt::Write as _;

use bbhv_spec::names::TenantId;

use crate::{HostNet, TenantNet, all_links};

pub const TABLE: &str = "bitbuilder";

/// The table, its sets, maps and base chains. Idempotent (`add` of what
/// exists is a no-op), so a restart keeps the tenants' chains.
pub fn init_script() -> String {
    format!(
        "add table inet {TABLE}
add set inet {TABLE} tenant_links {{ type ifname; }}
add map inet {TABLE} fwd_from {{ type ifname : verdict; }}
add map inet {TABLE} fwd_to {{ type ifname : verdict; }}
add map inet {TABLE} input_from {{ type ifname : verdict; }}
add map inet {TABLE} nat_from {{ type ifname : verdict; }}
add map inet {TABLE} ports {{ type inet_proto . inet_service : verdict; }}
add chain inet {TABLE} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add chain inet {TABLE} output {{ type nat hook output priority dstnat; policy accept; }}
add chain inet {TABLE} forward {{ type filter hook forward priority filter; policy accept; }}
add chain inet {TABLE} input {{ type filter hook input priority filter; policy accept; }}
add chain inet {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
flush chain inet {TABLE} forward
flush chain inet {TABLE} input
flush chain inet {TABLE} postrouting
flush chain inet {TABLE} prerouting
flush chain inet {TABLE} output
add rule inet {TABLE} prerouting fib daddr type local meta l4proto . th dport vmap @ports
add rule inet {TABLE} output fib daddr type local meta l4proto . th dport vmap @ports
add rule inet {TABLE} forward iifname vmap @fwd_from
add rule inet {TABLE} forward oifname vmap @fwd_to
add rule inet {TABLE} input iifname vmap @input_from
add rule inet {TABLE} postrouting iifname vmap @nat_from
add rule inet {TABLE} forward iifname \"bt-*\" drop
add rule inet {TABLE} forward iifname \"wt-*\" drop
add rule inet {TABLE} forward oifname \"bt-*\" drop
add rule inet {TABLE} forward oifname \"wt-*\" drop
add rule inet {TABLE} input iifname \"bt-*\" drop
add rule inet {TABLE} input iifname \"wt-*\" drop
"
    )
}

/// Removes the whole table (the firewall unit's stop).
pub fn fini_script() -> String {
    format!("destroy table inet {TABLE}\n")
}

fn chain(id: &TenantId, role: &str) -> String {
    format!("t-{id}-{role}")
}

fn set_of<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names.into_iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", quoted.join(", "))
}

const ROLES: [&str; 5] = ["from", "to", "input", "nat", "dnat"];

/// The keys of the `ports` map that jump to tenant `id`'s chain, from `nft
/// list map inet bitbuilder ports` (elements `tcp . 8080 : jump t-<id>-dnat`).
pub fn published_keys(listing: &str, id: &TenantId) -> Vec<String> {
    let target = format!(": jump {}", chain(id, "dnat"));
    listing
        .split(['{', '}', ',', '\n'])
        .filter_map(|e| {
            let e = e.trim();
            let key = e.strip_suffix(target.as_str())?.trim();
            // Only what a key can be: a protocol, a dot, a port.
            let ok = key.split(" . ").count() == 2
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'.');
            ok.then(|| key.to_owned())
        })
        .collect()
}

/// Removes one tenant's chains and map elements, whatever it declared
/// (`destroy` ignores what is not there). Needs only the id, and the keys
/// of its published ports ([`published_keys`]).
pub fn down_script(id: &TenantId, published: &[String]) -> String {
    let mut s = String::new();
    if !published.is_empty() {
        writeln!(
            s,
            "destroy element inet {TABLE} ports {{ {} }}",
            published.join(", ")
        )
        .unwrap();
    }
    let links = all_links(id);
    let keys = set_of(links.iter().map(String::as_str));
    for map in ["fwd_from", "fwd_to", "input_from", "nat_from"] {
        writeln!(s, "destroy element inet {TABLE} {map} {keys}").unwrap();
    }
    writeln!(s, "destroy element inet {TABLE} tenant_links {keys}").unwrap();
    // A chain is deleted only when empty and unreferenced: the elements
    // that jump to it went first; `add` makes it exist so `flush` and
    // `delete` cannot fail.
    for role in ROLES {
        let c = chain(id, role);
        writeln!(s, "add chain inet {TABLE} {c}").unwrap();
        writeln!(s, "flush chain inet {TABLE} {c}").unwrap();
        writeln!(s, "delete chain inet {TABLE} {c}").unwrap();
    }
    s
}

/// One tenant's rules, replacing whatever it had (the removal first, in the
/// same transaction, so a restart converges and never doubles a rule).
pub fn up_script(t: &TenantNet, host: &HostNet, published: &[String]) -> String {
    let mut s = down_script(&t.id, published);
    let own = set_of(t.links());
    let id = &t.id;
    let (from, to, input, nat, dnat) = (
        chain(id, "from"),
        chain(id, "to"),
        chain(id, "input"),
        chain(id, "nat"),
        chain(id, "dnat"),
    );
    for c in [&from, &to, &input, &nat, &dnat] {
        writeln!(s, "add chain inet {TABLE} {c}").unwrap();
    }
    let rule =
        |s: &mut String, c: &str, r: &str| writeln!(s, "add rule inet {TABLE} {c} {r}").unwrap();

    // Forwarded from the tenant: within itself, then out by the uplink;
    // never to another tenant.
    rule(&mut s, &from, &format!("oifname {own} accept"));
    rule(&mut s, &from, "oifname @tenant_links drop");
    match &host.uplink {
        Some(uplink) => {
            rule(&mut s, &from, &format!("oifname \"{uplink}\" accept"));
            rule(&mut s, &from, "drop");
        }
        None => rule(&mut s, &from, "accept"),
    }
    // Forwarded to the tenant (from outside it): replies, and the ports it
    // publishes (destination-NATed), nothing else.
    rule(&mut s, &to, "ct state established,related accept");
    rule(&mut s, &to, "ct status dnat accept");
    rule(&mut s, &to, "drop");
    // To the host itself: DHCP, DNS and ping on the tenant's own gateway;
    // replies to what the host opened. Not the host's other addresses, not
    // another tenant's gateway.
    if t.dhcp {
        rule(&mut s, &input, "udp dport 67 accept");
    }
    if let Some(gw) = t.gateway4 {
        let a = gw.addr();
        rule(
            &mut s,
            &input,
            &format!("ip daddr {a} meta l4proto {{ tcp, udp }} th dport 53 accept"),
        );
        rule(
            &mut s,
            &input,
            &format!("ip daddr {a} icmp type echo-request accept"),
        );
    }
    if let Some(gw) = t.gateway6 {
        let a = gw.addr();
        rule(
            &mut s,
            &input,
            &format!("ip6 daddr {a} meta l4proto {{ tcp, udp }} th dport 53 accept"),
        );
        rule(
            &mut s,
            &input,
            &format!("ip6 daddr {a} icmpv6 type echo-request accept"),
        );
    }
    // Neighbour discovery and router solicitation stay on the link.
    rule(
        &mut s,
        &input,
        "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } ip6 hoplimit 255 accept",
    );
    rule(&mut s, &input, "ct state established,related accept");
    rule(&mut s, &input, "drop");
    // Egress is masqueraded where it leaves the tenants' links.
    rule(&mut s, &nat, "oifname @tenant_links return");
    match &host.uplink {
        Some(uplink) => rule(&mut s, &nat, &format!("oifname \"{uplink}\" masquerade")),
        None => rule(&mut s, &nat, "masquerade"),
    }

    // Published ports: to the workload's address (only what is declared;
    // the `to` chain admits what was destination-NATed here).
    for f in &t.ports {
        let proto = if f.udp { "udp" } else { "tcp" };
        rule(
            &mut s,
            &dnat,
            &format!(
                "meta l4proto {proto} th dport {} dnat ip to {}:{}",
                f.host_port, f.address, f.port
            ),
        );
    }
    if !t.ports.is_empty() {
        let keys: Vec<String> = t
            .ports
            .iter()
            .map(|f| {
                format!(
                    "{} . {} : jump {dnat}",
                    if f.udp { "udp" } else { "tcp" },
                    f.host_port
                )
            })
            .collect();
        writeln!(
            s,
            "add element inet {TABLE} ports {{ {} }}",
            keys.join(", ")
        )
        .unwrap();
    }

    let jump = |c: &str| {
        let pairs: Vec<String> = t
            .links()
            .iter()
            .map(|l| format!("\"{l}\" : jump {c}"))
            .collect();
        format!("{{ {} }}", pairs.join(", "))
    };
    writeln!(s, "add element inet {TABLE} tenant_links {own}").unwrap();
    writeln!(s, "add element inet {TABLE} fwd_from {}", jump(&from)).unwrap();
    writeln!(s, "add element inet {TABLE} fwd_to {}", jump(&to)).unwrap();
    writeln!(s, "add element inet {TABLE} input_from {}", jump(&input)).unwrap();
    writeln!(s, "add element inet {TABLE} nat_from {}", jump(&nat)).unwrap();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantNet {
        let id = TenantId::new(id).unwrap();
        TenantNet {
            bridge: format!("bt-{id}"),
            wireguard: Some(format!("wt-{id}")),
            egress: None,
            gateway4: Some("10.1.0.1/24".parse().unwrap()),
            gateway6: Some("fd00:1::1/64".parse().unwrap()),
            dhcp: true,
            hosts: vec![],
            ports: vec![crate::Forward {
                udp: false,
                host_port: 8080,
                address: "10.1.0.23".parse().unwrap(),
                port: 80,
            }],
            id,
        }
    }

    #[test]
    fn up_removes_before_adding_and_names_only_its_own_objects() {
        let t = tenant("acme-prod");
        let s = up_script(
            &t,
            &HostNet {
                uplink: Some("eth0".into()),
                ..Default::default()
            },
            &[],
        );
        let first_add = s.find("add element").unwrap();
        let last_destroy = s.rfind("destroy element").unwrap();
        assert!(last_destroy < first_add, "{s}");
        for line in s.lines().filter(|l| l.contains("chain inet")) {
            assert!(line.contains(" t-acme-prod-"), "{line}");
        }
        assert!(s.contains("oifname \"eth0\" masquerade"));
        assert!(s.contains("fwd_from { \"bt-acme-prod\" : jump t-acme-prod-from, \"wt-acme-prod\" : jump t-acme-prod-from }"));
        assert!(s.contains("ip daddr 10.1.0.1 meta l4proto { tcp, udp } th dport 53 accept"));
        assert!(s.contains("add rule inet bitbuilder t-acme-prod-dnat meta l4proto tcp th dport 8080 dnat ip to 10.1.0.23:80"));
        assert!(
            s.contains("add element inet bitbuilder ports { tcp . 8080 : jump t-acme-prod-dnat }")
        );
    }

    #[test]
    fn without_uplink_egress_goes_anywhere_but_other_tenants() {
        let s = up_script(&tenant("a"), &HostNet::default(), &[]);
        let from: Vec<&str> = s
            .lines()
            .filter(|l| l.contains("rule") && l.contains(" t-a-from "))
            .collect();
        assert_eq!(from.len(), 3, "{from:?}");
        assert!(from[1].ends_with("oifname @tenant_links drop"));
        assert!(from[2].ends_with(" accept"));
    }

    #[test]
    fn published_keys_are_found_by_their_chain_only() {
        let listing = "table inet bitbuilder {\n\tmap ports {\n\t\ttype inet_proto . inet_service : verdict\n\t\telements = { 6 . 8080 : jump t-a-dnat, 17 . 53 : jump t-ab-dnat,\n\t\t\t     17 . 5353 : jump t-a-dnat }\n\t}\n}\n";
        let id = TenantId::new("a").unwrap();
        assert_eq!(published_keys(listing, &id), ["6 . 8080", "17 . 5353"]);
        let s = down_script(&id, &published_keys(listing, &id));
        assert!(
            s.starts_with("destroy element inet bitbuilder ports { 6 . 8080, 17 . 5353 }\n"),
            "{s}"
        );
    }

    #[test]
    fn down_names_every_link_the_tenant_could_have() {
        let s = down_script(&TenantId::new("a").unwrap(), &[]);
        assert!(
            s.contains("{ \"bt-a\", \"vt-a\", \"wt-a\", \"et-a\" }"),
            "{s}"
        );
        assert_eq!(s.matches("delete chain").count(), ROLES.len());
    }
}
