//! A tenant that passed its own checks, and the checks across all tenants of
//! a repository: what one host can only have once.

use std::collections::{BTreeMap, HashMap};

use crate::diag::Diagnostic;
use crate::model::Metadata;
use crate::names::{InterfacePrefix, TenantId};
use crate::parse::{Document, parse_ipv4_cidr, parse_ipv6_cidr, parse_metadata, parse_port};

/// A valid tenant. Its text is not kept (10,000 tenants would hold 10 MiB
/// for the rare conflict message): [`locate`] points into the file when one
/// is needed.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    /// The metadata file as named in diagnostics.
    pub file: String,
    pub metadata: Metadata,
}

/// A conflict between tenants: the later tenant (`index` into the list
/// given to [`check_fleet`]) and the key that conflicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub index: usize,
    /// JSON pointer of the conflicting key in that tenant's file.
    pub pointer: String,
    pub message: String,
}

/// A diagnostic at `pointer` of `text` (the file named `file`); line 0 when
/// the text no longer parses (it changed since it was checked).
pub fn locate(file: &str, text: &str, pointer: &str, message: String) -> Diagnostic {
    let doc = Document::new(file, text);
    match doc.syntax() {
        Ok(root) => doc.at(&root, pointer, message),
        Err(_) => Diagnostic {
            file: file.to_owned(),
            line: 0,
            column: 0,
            path: pointer.to_owned(),
            message,
        },
    }
}

impl Tenant {
    /// Parses and checks `tenants/<dir_name>/metadata.json`.
    pub fn parse(file: &str, dir_name: &str, text: &str) -> Result<Tenant, Vec<Diagnostic>> {
        let metadata = parse_metadata(file, dir_name, text)?;
        let id = TenantId::new(&metadata.id).expect("the schema checked the id");
        Ok(Tenant {
            id,
            file: file.to_owned(),
            metadata,
        })
    }
}

/// Checks across tenants. Returns, for each tenant that conflicts with one
/// before it (in the order given, which callers keep sorted by id), its
/// index and the problems. The first tenant to claim a VLAN, subnet, port,
/// machine or interface name keeps it, so a new tenant cannot take down one
/// that is already running; a tenant that fails claims nothing, so it cannot
/// take anything from the tenants after it either.
pub fn check_fleet(tenants: &[Tenant]) -> Vec<Conflict> {
    let mut claimed: HashMap<Claim, usize> = HashMap::new();
    let mut subnets = [Subnets::new("/network/ipv4"), Subnets::new("/network/ipv6")];
    let mut found = Vec::new();
    for (index, tenant) in tenants.iter().enumerate() {
        let claims = claims_of(&tenant.id, &tenant.metadata);
        let mut problems: Vec<(String, String)> = claims
            .iter()
            .filter_map(|(claim, pointer)| {
                let &owner = claimed.get(claim)?;
                let message = format!(
                    "{} {} is already used by tenant {:?} ({})",
                    claim.kind,
                    claim.value,
                    tenants[owner].id.as_str(),
                    tenants[owner].file
                );
                Some((pointer.clone(), message))
            })
            .collect();
        let ranges = [ipv4_range(tenant), ipv6_range(tenant)];
        for (set, range) in subnets.iter().zip(&ranges) {
            if let Some(problem) = range.and_then(|r| set.clash(tenants, index, r)) {
                problems.push(problem);
            }
        }
        if problems.is_empty() {
            for (claim, _) in claims {
                claimed.insert(claim, index);
            }
            for (set, range) in subnets.iter_mut().zip(ranges) {
                if let Some(range) = range {
                    set.claim(range, index);
                }
            }
        } else {
            found.extend(problems.into_iter().map(|(pointer, message)| Conflict {
                index,
                pointer,
                message,
            }));
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

/// A tenant's claims, each with the JSON pointer that makes it.
pub(crate) fn claims_of(id: &TenantId, m: &Metadata) -> Vec<(Claim, String)> {
    let claim = |kind, value: String, pointer: String| (Claim { kind, value }, pointer);
    let mut claims = Vec::new();
    if let Some(net) = &m.network {
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
            claims.push(claim("interface name", id.interface(prefix), "/id".into()));
        }
    }
    for (name, container) in &m.containers {
        for (j, port) in container.ports.iter().enumerate() {
            if let Ok(p) = parse_port(port) {
                let kind = if p.udp { "UDP port" } else { "TCP port" };
                claims.push(claim(
                    kind,
                    p.host.to_string(),
                    format!("/containers/{name}/ports/{j}"),
                ));
            }
        }
    }
    let workloads = m
        .containers
        .keys()
        .map(|n| ("containers", n))
        .chain(m.vms.keys().map(|n| ("vms", n)));
    for (kind, name) in workloads {
        claims.push(claim(
            "machine name",
            id.machine(name),
            format!("/{kind}/{name}"),
        ));
    }
    claims
}

fn ipv4_range(t: &Tenant) -> Option<(u128, u128)> {
    let (addr, prefix) = parse_ipv4_cidr(t.metadata.network.as_ref()?.ipv4.as_ref()?).ok()?;
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let start = u32::from(addr) & mask;
    Some((u128::from(start), u128::from(start | !mask)))
}

fn ipv6_range(t: &Tenant) -> Option<(u128, u128)> {
    let (addr, prefix) = parse_ipv6_cidr(t.metadata.network.as_ref()?.ipv6.as_ref()?).ok()?;
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    let start = u128::from(addr) & mask;
    Some((start, start | !mask))
}

/// Claimed subnets of one family, kept disjoint in a map from start to
/// (end, owner): the only candidate for an overlap with a new subnet is the
/// claimed one starting last at or before the new one's end (n log n).
struct Subnets {
    pointer: &'static str,
    claimed: BTreeMap<u128, (u128, usize)>,
}

impl Subnets {
    fn new(pointer: &'static str) -> Self {
        Subnets {
            pointer,
            claimed: BTreeMap::new(),
        }
    }

    fn clash(
        &self,
        tenants: &[Tenant],
        index: usize,
        (start, end): (u128, u128),
    ) -> Option<(String, String)> {
        let (_, &(_, owner)) = self
            .claimed
            .range(..=end)
            .next_back()
            .filter(|(_, (e, _))| *e >= start)?;
        let message = format!(
            "subnet {} overlaps {} of tenant {:?} ({}); tenant subnets may not overlap",
            self.cidr(&tenants[index]),
            self.cidr(&tenants[owner]),
            tenants[owner].id.as_str(),
            tenants[owner].file
        );
        Some((self.pointer.to_owned(), message))
    }

    fn claim(&mut self, (start, end): (u128, u128), owner: usize) {
        self.claimed.insert(start, (end, owner));
    }

    fn cidr(&self, tenant: &Tenant) -> String {
        let net = tenant.metadata.network.as_ref();
        let cidr = if self.pointer.ends_with("ipv4") {
            net.and_then(|n| n.ipv4.as_ref())
        } else {
            net.and_then(|n| n.ipv6.as_ref())
        };
        cidr.cloned().unwrap_or_default()
    }
}
