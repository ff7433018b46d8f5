//! A tenant that passed its own checks, and the checks across all tenants of
//! a repository: what one host can only have once.

use std::collections::HashMap;

use crate::diag::Diagnostic;
use crate::model::Metadata;
use crate::names::{InterfacePrefix, TenantId};
use crate::parse::{Document, parse_ipv4_cidr, parse_ipv6_cidr, parse_metadata, parse_port};

/// A valid tenant, with the text it came from (to point into it later).
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    /// The metadata file as named in diagnostics.
    pub file: String,
    pub metadata: Metadata,
    text: String,
}

impl Tenant {
    /// Parses and checks `tenants/<dir_name>/metadata.json`.
    pub fn parse(file: &str, dir_name: &str, text: String) -> Result<Tenant, Vec<Diagnostic>> {
        let metadata = parse_metadata(file, dir_name, &text)?;
        let id = TenantId::new(&metadata.id).expect("the schema checked the id");
        Ok(Tenant {
            id,
            file: file.to_owned(),
            metadata,
            text,
        })
    }

    fn diagnostic(&self, pointer: &str, message: String) -> Diagnostic {
        let doc = Document::new(&self.file, &self.text);
        match doc.syntax() {
            Ok(root) => doc.at(&root, pointer, message),
            Err(_) => unreachable!("a parsed tenant's text parses"),
        }
    }
}

/// Checks across tenants. Returns, for each tenant that conflicts with one
/// before it (in the order given, which callers keep sorted by id), its
/// index and the problem. The first tenant to claim a VLAN, subnet, port,
/// machine or interface name keeps it: a new tenant cannot take down one
/// that is already running.
pub fn check_fleet(tenants: &[Tenant]) -> Vec<(usize, Diagnostic)> {
    let mut found = Vec::new();
    let mut claims: HashMap<(&'static str, String), usize> = HashMap::new();
    let mut claim = |kind: &'static str,
                     what: String,
                     index: usize,
                     pointer: String,
                     found: &mut Vec<(usize, Diagnostic)>| {
        if let Some(&first) = claims.get(&(kind, what.clone())) {
            if first != index {
                let message = format!(
                    "{kind} {what} is already used by tenant {:?} ({})",
                    tenants[first].id.as_str(),
                    tenants[first].file
                );
                found.push((index, tenants[index].diagnostic(&pointer, message)));
            }
        } else {
            claims.insert((kind, what), index);
        }
    };

    for (i, tenant) in tenants.iter().enumerate() {
        let m = &tenant.metadata;
        if let Some(net) = &m.network {
            if let Some(vlan) = net.vlan {
                claim(
                    "VLAN",
                    vlan.to_string(),
                    i,
                    "/network/vlan".into(),
                    &mut found,
                );
            }
            if let Some(wg) = &net.wireguard {
                claim(
                    "UDP port",
                    wg.listen_port.to_string(),
                    i,
                    "/network/wireguard/listenPort".into(),
                    &mut found,
                );
            }
        }
        for (name, container) in &m.containers {
            for (j, port) in container.ports.iter().enumerate() {
                if let Ok(p) = parse_port(port) {
                    let kind = if p.udp { "UDP port" } else { "TCP port" };
                    claim(
                        kind,
                        p.host.to_string(),
                        i,
                        format!("/containers/{name}/ports/{j}"),
                        &mut found,
                    );
                }
            }
        }
        let workloads = m
            .containers
            .keys()
            .map(|n| ("containers", n))
            .chain(m.vms.keys().map(|n| ("vms", n)));
        for (kind, name) in workloads {
            claim(
                "machine name",
                tenant.id.machine(name),
                i,
                format!("/{kind}/{name}"),
                &mut found,
            );
        }
        if m.network.is_some() {
            for prefix in InterfacePrefix::ALL {
                claim(
                    "interface name",
                    tenant.id.interface(prefix),
                    i,
                    "/id".into(),
                    &mut found,
                );
            }
        }
    }

    found.extend(overlapping_subnets(tenants, "/network/ipv4", |t| {
        let (addr, prefix) = parse_ipv4_cidr(t.metadata.network.as_ref()?.ipv4.as_ref()?).ok()?;
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let start = u32::from(addr) & mask;
        Some((u128::from(start), u128::from(start | !mask)))
    }));
    found.extend(overlapping_subnets(tenants, "/network/ipv6", |t| {
        let (addr, prefix) = parse_ipv6_cidr(t.metadata.network.as_ref()?.ipv6.as_ref()?).ok()?;
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        let start = u128::from(addr) & mask;
        Some((start, start | !mask))
    }));
    found.sort_by_key(|(i, d)| (*i, d.line, d.column));
    found
}

/// Subnets that overlap, found by sorting them by start address (n log n:
/// a fleet of 10,000 tenants is checked in milliseconds). Of each overlapping
/// pair, the tenant later in the list is reported.
fn overlapping_subnets(
    tenants: &[Tenant],
    pointer: &str,
    range: impl Fn(&Tenant) -> Option<(u128, u128)>,
) -> Vec<(usize, Diagnostic)> {
    let mut ranges: Vec<(u128, u128, usize)> = tenants
        .iter()
        .enumerate()
        .filter_map(|(i, t)| range(t).map(|(s, e)| (s, e, i)))
        .collect();
    ranges.sort_unstable();
    let mut found = Vec::new();
    let mut widest: Option<(u128, usize)> = None; // (end, index) of the range reaching furthest so far
    for (start, end, index) in ranges {
        if let Some((reach, holder)) = widest
            && start <= reach
        {
            let (keep, drop) = if holder < index {
                (holder, index)
            } else {
                (index, holder)
            };
            let value = |i: usize| {
                let net = tenants[i].metadata.network.as_ref();
                let v = if pointer.ends_with("ipv4") {
                    net.and_then(|n| n.ipv4.clone())
                } else {
                    net.and_then(|n| n.ipv6.clone())
                };
                v.unwrap_or_default()
            };
            let message = format!(
                "subnet {} overlaps {} of tenant {:?} ({}); tenant subnets may not overlap",
                value(drop),
                value(keep),
                tenants[keep].id.as_str(),
                tenants[keep].file
            );
            found.push((drop, tenants[drop].diagnostic(pointer, message)));
        }
        if widest.is_none_or(|(reach, _)| end > reach) {
            widest = Some((end, index));
        }
    }
    found
}
