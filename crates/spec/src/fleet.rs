//! The checks across all tenants of a repository: what one host can only
//! have once (a VLAN id, a port, a machine or interface name, a subnet).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::names::{InterfacePrefix, TenantId};
use crate::tenant::Tenant;
use crate::values::IpNet;

/// A conflict: the tenant at `index` (into the list given to
/// [`check_fleet`]) cannot have what the key at `pointer` claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub index: usize,
    /// JSON pointer of the conflicting key in that tenant's file.
    pub pointer: String,
    pub message: String,
    /// The tenant that keeps the claim.
    pub owner: TenantId,
}

/// Checks across tenants. The tenant that holds a claim in the applied
/// generation (`applied`: those tenants as they are applied now; empty when
/// nothing is, or to decide by id alone) keeps it, so a newcomer can never
/// take a VLAN, subnet, port or name from a running tenant, whatever its id.
/// Among newcomers the first by id wins. A tenant that fails claims nothing,
/// so it takes nothing from the tenants after it either.
///
/// `tenants` are sorted by id. Linear in the number of claims (subnets:
/// n log n).
pub fn check_fleet(tenants: &[Tenant], applied: &[Tenant]) -> Vec<Conflict> {
    let index_of: HashMap<&TenantId, usize> = tenants
        .iter()
        .enumerate()
        .map(|(i, t)| (&t.id, i))
        .collect();
    let mut claimed: HashMap<Claim, usize> = HashMap::new();
    let mut subnets = [Subnets::new(Family::V4), Subnets::new(Family::V6)];

    // The incumbents first: what an applied tenant held and still asks for
    // is its own before anyone else is looked at.
    for before in applied {
        let Some(&index) = index_of.get(&before.id) else {
            continue;
        };
        let now = &tenants[index];
        let held: Vec<Claim> = claims_of(before).into_iter().map(|(c, _)| c).collect();
        for (claim, _) in claims_of(now) {
            if held.contains(&claim) {
                claimed.entry(claim).or_insert(index);
            }
        }
        for set in &mut subnets {
            if let (Some(was), Some(is)) = (set.range(before), set.range(now))
                && was == is
                && set.clash(is).is_none()
            {
                set.claim(is, index);
            }
        }
    }

    let mut found = Vec::new();
    for (index, tenant) in tenants.iter().enumerate() {
        let claims = claims_of(tenant);
        let mut problems: Vec<(String, String, usize)> = Vec::new();
        for (claim, pointer) in &claims {
            if let Some(&owner) = claimed.get(claim)
                && owner != index
            {
                // Both tenants by name: the message is read without its
                // file too (the JSON report, a log line cut short).
                let message = format!(
                    "{claim} of tenant {:?} is already used by tenant {:?} ({})",
                    tenant.id.as_str(),
                    tenants[owner].id.as_str(),
                    tenants[owner].file
                );
                problems.push((pointer.clone(), message, owner));
            }
        }
        for set in &subnets {
            if let Some(range) = set.range(tenant)
                && let Some(owner) = set.clash(range).filter(|&o| o != index)
            {
                let message = format!(
                    "subnet {} of tenant {:?} overlaps {} of tenant {:?} ({}); tenant subnets \
                     may not overlap",
                    set.cidr(tenant),
                    tenant.id.as_str(),
                    set.cidr(&tenants[owner]),
                    tenants[owner].id.as_str(),
                    tenants[owner].file
                );
                problems.push((set.family.pointer().to_owned(), message, owner));
            }
        }
        if problems.is_empty() {
            for (claim, _) in claims {
                claimed.entry(claim).or_insert(index);
            }
            for set in &mut subnets {
                if let Some(range) = set.range(tenant)
                    && set.clash(range).is_none()
                {
                    set.claim(range, index);
                }
            }
        } else {
            found.extend(
                problems
                    .into_iter()
                    .map(|(pointer, message, owner)| Conflict {
                        index,
                        pointer,
                        message,
                        owner: tenants[owner].id.clone(),
                    }),
            );
        }
    }
    found
}

/// A tenant whose subnet overlaps a subnet the host itself uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConflict {
    /// Into the list given to [`check_host_subnets`].
    pub index: usize,
    /// `/network/ipv4` or `/network/ipv6`.
    pub pointer: String,
    pub message: String,
}

/// Tenant subnets against the host's own (`network.host_subnets` of
/// host.toml, named `host_file` in messages): a tenant that overlaps one
/// fails. Checked before [`check_fleet`], so a tenant failed here claims
/// nothing from the others. Linear in tenants times host subnets (a few).
pub fn check_host_subnets(
    tenants: &[Tenant],
    host_subnets: &[IpNet],
    host_file: &str,
) -> Vec<HostConflict> {
    let mut found = Vec::new();
    if host_subnets.is_empty() {
        return found;
    }
    for (index, tenant) in tenants.iter().enumerate() {
        let Some(net) = &tenant.network else {
            continue;
        };
        let own = [
            net.ipv4.map(|n| (IpNet::V4(n), Family::V4)),
            net.ipv6.map(|n| (IpNet::V6(n), Family::V6)),
        ];
        for (subnet, family) in own.into_iter().flatten() {
            let first = subnet.trunc();
            if let Some(host) = host_subnets
                .iter()
                .find(|h| h.contains(&first.network()) || first.contains(&h.network()))
            {
                found.push(HostConflict {
                    index,
                    pointer: family.pointer().to_owned(),
                    message: format!(
                        "subnet {subnet} of tenant {:?} overlaps the host's subnet {host} \
                         (network.host_subnets in {host_file}); tenant subnets may not overlap \
                         the host's",
                        tenant.id.as_str()
                    ),
                });
            }
        }
    }
    found
}

/// Something a host can have once: a VLAN id, a port, a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Claim {
    pub(crate) kind: &'static str,
    pub(crate) value: String,
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.value)
    }
}

/// A tenant's claims, each with the JSON pointer that makes it.
pub(crate) fn claims_of(t: &Tenant) -> Vec<(Claim, String)> {
    let claim = |kind, value: String, pointer: String| (Claim { kind, value }, pointer);
    let mut claims = Vec::new();
    if let Some(net) = &t.network {
        if let Some(vlan) = net.vlan {
            claims.push(claim("VLAN", vlan.to_string(), "/network/vlan".into()));
        }
        if let Some(wg) = &net.wireguard {
            claims.push(claim(
                "UDP port",
                wg.listen_port.to_string(),
                "/network/wireguard/listenPort".into(),
            ));
        }
        for prefix in InterfacePrefix::ALL {
            claims.push(claim(
                "interface name",
                t.id.interface(prefix),
                "/id".into(),
            ));
        }
    }
    for container in &t.containers {
        for (j, p) in container.ports.iter().enumerate() {
            claims.push(claim(
                p.protocol.claim_kind(),
                p.host.to_string(),
                format!("/containers/{}/ports/{j}", container.name),
            ));
        }
    }
    // Machine names (`<tenant>.<name>`) are unique by construction; the
    // host ends of workload links are hashes, so they are claimed.
    if t.network.is_some() {
        let workloads = t
            .containers
            .iter()
            .map(|c| {
                (
                    "containers",
                    &c.name,
                    t.id.workload_interface(c.name.as_str()),
                )
            })
            .chain(
                t.vms
                    .iter()
                    .map(|v| ("vms", &v.name, t.id.vm_tap(v.name.as_str()))),
            );
        for (kind, name, link) in workloads {
            claims.push(claim("interface name", link, format!("/{kind}/{name}")));
        }
    }
    claims
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn pointer(self) -> &'static str {
        match self {
            Family::V4 => "/network/ipv4",
            Family::V6 => "/network/ipv6",
        }
    }
}

/// Claimed subnets of one family, kept disjoint in a map from start to
/// (end, owner): the only candidate for an overlap with a new subnet is the
/// claimed one starting last at or before the new one's end (n log n).
struct Subnets {
    family: Family,
    claimed: BTreeMap<u128, (u128, usize)>,
}

impl Subnets {
    fn new(family: Family) -> Self {
        Subnets {
            family,
            claimed: BTreeMap::new(),
        }
    }

    /// The tenant's subnet of this family as (first, last) address.
    fn range(&self, t: &Tenant) -> Option<(u128, u128)> {
        let net = t.network.as_ref()?;
        match self.family {
            Family::V4 => net.ipv4.map(|n| {
                (
                    u128::from(u32::from(n.network())),
                    u128::from(u32::from(n.broadcast())),
                )
            }),
            Family::V6 => net
                .ipv6
                .map(|n| (u128::from(n.network()), u128::from(n.broadcast()))),
        }
    }

    /// The owner of a claimed subnet that overlaps `(start, end)`.
    fn clash(&self, (start, end): (u128, u128)) -> Option<usize> {
        self.claimed
            .range(..=end)
            .next_back()
            .filter(|(_, (e, _))| *e >= start)
            .map(|(_, &(_, owner))| owner)
    }

    fn claim(&mut self, (start, end): (u128, u128), owner: usize) {
        self.claimed.insert(start, (end, owner));
    }

    fn cidr(&self, t: &Tenant) -> String {
        let net = t.network.as_ref();
        match self.family {
            Family::V4 => net.and_then(|n| n.ipv4).map(|n| n.to_string()),
            Family::V6 => net.and_then(|n| n.ipv6).map(|n| n.to_string()),
        }
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str, network: &str) -> Tenant {
        let text = format!(r#"{{ "schemaVersion": 1, "id": "{id}", "network": {network} }}"#);
        Tenant::parse(&format!("tenants/{id}/metadata.json"), id, &text).unwrap()
    }

    #[test]
    fn host_subnets_fail_the_tenants_that_overlap_them() {
        let tenants = [
            tenant("a", r#"{ "ipv4": "10.1.2.1/24" }"#),
            tenant(
                "b",
                r#"{ "ipv4": "192.168.0.1/16", "ipv6": "fd00:9::1/64" }"#,
            ),
            tenant("c", r#"{ "ipv4": "10.2.0.1/24" }"#),
            tenant("d", "{}"),
        ];
        let host: Vec<IpNet> = ["10.1.0.0/16", "192.168.7.0/24", "fd00:9::/48"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let found = check_host_subnets(&tenants, &host, "/etc/bitbuilder/host.toml");
        let got: Vec<(usize, &str)> = found
            .iter()
            .map(|c| (c.index, c.pointer.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (0, "/network/ipv4"),
                (1, "/network/ipv4"),
                (1, "/network/ipv6")
            ]
        );
        assert_eq!(
            found[0].message,
            "subnet 10.1.2.1/24 of tenant \"a\" overlaps the host's subnet 10.1.0.0/16 \
             (network.host_subnets in /etc/bitbuilder/host.toml); tenant subnets may not \
             overlap the host's"
        );
        // The tenant's /16 holds the host's /24.
        assert!(
            found[1].message.contains("192.168.7.0/24"),
            "{}",
            found[1].message
        );
        assert!(check_host_subnets(&tenants, &[], "h").is_empty());
    }

    #[test]
    fn every_cross_tenant_conflict_names_both_tenants() {
        let wg = |port: u16| {
            format!(
                r#"{{ "vlan": 7, "ipv4": "10.0.0.1/24", "wireguard": {{ "listenPort": {port}, "privateKeyCredential": "k" }} }}"#
            )
        };
        let tenants = [tenant("a", &wg(51820)), tenant("b", &wg(51820))];
        let found = check_fleet(&tenants, &[]);
        let pointers: Vec<&str> = found.iter().map(|c| c.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/network/vlan",
                "/network/wireguard/listenPort",
                "/network/ipv4"
            ]
        );
        for conflict in &found {
            assert_eq!(conflict.index, 1);
            assert_eq!(conflict.owner.as_str(), "a");
            assert!(
                conflict
                    .message
                    .contains("tenant \"a\" (tenants/a/metadata.json)")
                    && conflict.message.contains("of tenant \"b\""),
                "{}",
                conflict.message
            );
        }
    }

    #[test]
    fn the_egress_link_name_is_claimed_too() {
        let claims = claims_of(&tenant("a", "{}"));
        let names: Vec<&str> = claims
            .iter()
            .filter(|(c, _)| c.kind == "interface name")
            .map(|(c, _)| c.value.as_str())
            .collect();
        assert_eq!(names, ["bt-a", "vt-a", "wt-a", "et-a"]);
    }
}
