//! The checks across all tenants of a repository: what one host can only
//! have once (a VLAN id, a port, a machine or interface name, a subnet).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::names::{InterfacePrefix, TenantId};
use crate::tenant::Tenant;

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
                let message = format!(
                    "{claim} is already used by tenant {:?} ({})",
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
                    "subnet {} overlaps {} of tenant {:?} ({}); tenant subnets may not overlap",
                    set.cidr(tenant),
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
            .map(|c| ("containers", &c.name))
            .chain(t.vms.iter().map(|v| ("vms", &v.name)));
        for (kind, name) in workloads {
            claims.push(claim(
                "interface name",
                t.id.workload_interface(name.as_str()),
                format!("/{kind}/{name}"),
            ));
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
