//! `bbhv_spec::check_fleet` on a few tenants built from the fuzz input.
//!
//! Each tenant is written as metadata.json text from small value pools (so
//! VLANs, ports, subnets and names collide often) and goes through
//! `Tenant::parse`, as the generator does; tenants that fail their own
//! checks are left out. Asserts:
//! - `check_fleet` never panics;
//! - every conflict's `index` is in range, never 0 (the first tenant has
//!   nothing to conflict with), and conflicts come in tenant order;
//! - every conflict's pointer names a key of that tenant's file, and
//!   `locate` finds it on a line of the file;
//! - the conflicts of the tenants `0..k` are those of the whole list with
//!   `index < k` (a tenant is judged by the tenants before it only);
//! - differential: the conflicts are exactly those of a naive quadratic
//!   model (a claim conflicts with an earlier tenant that had no conflict;
//!   one subnet conflict per family);
//! - the tenants that pass hold every host resource once: VLANs, UDP and TCP
//!   host ports, machine names, interface names, and disjoint subnets.
//!
//! Regressions (regressions/fleet/, fixed in a94d218): one tenant could
//! hold a host port twice (two containers publishing it, or a container UDP
//! port equal to the WireGuard listen port); `Tenant::parse` now refuses it.

#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use bbhv_spec::names::InterfacePrefix;
use bbhv_spec::{
    Conflict, Tenant, check_fleet, locate, parse_ipv4_cidr, parse_ipv6_cidr, parse_port,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

#[derive(Debug, Arbitrary)]
struct Input {
    tenants: Vec<TenantSpec>,
}

#[derive(Debug, Arbitrary)]
struct TenantSpec {
    id: NameSpec,
    network: Option<NetSpec>,
    containers: Vec<(NameSpec, Vec<PortSpec>)>,
    vms: Vec<NameSpec>,
}

#[derive(Debug, Arbitrary)]
struct NetSpec {
    vlan: Option<u8>,
    ipv4: Option<([u8; 3], u8)>,
    ipv6: Option<([u8; 2], u8)>,
    wireguard: Option<u8>,
}

#[derive(Debug, Arbitrary)]
struct PortSpec {
    host: u8,
    container: u8,
    udp: bool,
}

#[derive(Debug, Arbitrary)]
enum NameSpec {
    /// Short names from a pool where `a` + `b-c` and `a-b` + `c` meet.
    Pool(u8),
    /// Longer names, over the 12 characters an interface name keeps whole.
    Built(u8, Vec<bool>),
}

const POOL: &[&str] = &[
    "a",
    "b",
    "c",
    "a-b",
    "b-c",
    "acme",
    "a-very-long-tenant-name-indeed",
    "a-very-long-tenant-name-too",
    "abcdefghijkl",
    "abcdefghijklm",
    "abcdefghijk-m",
];

impl NameSpec {
    fn name(&self) -> String {
        match self {
            NameSpec::Pool(i) => POOL[usize::from(*i) % POOL.len()].to_owned(),
            NameSpec::Built(len, bits) => {
                // `[ab][ab-]*[ab]`, 1 to 31 characters.
                let len = 1 + usize::from(*len) % 31;
                let mut s: String = (0..len)
                    .map(|i| {
                        let a = bits.get(2 * i).copied().unwrap_or(false);
                        let b = bits.get(2 * i + 1).copied().unwrap_or(false);
                        match (a, b, i == 0 || i == len - 1) {
                            (true, true, false) => '-',
                            (true, _, _) => 'b',
                            _ => 'a',
                        }
                    })
                    .collect();
                if s.ends_with('-') {
                    s.pop();
                    s.push('a');
                }
                s
            }
        }
    }
}

impl TenantSpec {
    fn json(&self, id: &str) -> Value {
        let mut m = Map::new();
        m.insert("schemaVersion".into(), json!(1));
        m.insert("id".into(), json!(id));
        if let Some(net) = &self.network {
            let mut n = Map::new();
            if let Some(vlan) = net.vlan {
                n.insert("vlan".into(), json!(1 + vlan % 6));
            }
            if let Some(([b, c, d], prefix)) = net.ipv4 {
                let addr = format!("10.{}.{}.{}", b % 3, c % 3, d % 4);
                n.insert("ipv4".into(), json!(format!("{addr}/{}", 8 + prefix % 25)));
            }
            if let Some(([g, h], prefix)) = net.ipv6 {
                let addr = format!("fd00:{:x}::{:x}", g % 3, h % 3);
                n.insert("ipv6".into(), json!(format!("{addr}/{}", 8 + prefix % 121)));
            }
            if let Some(port) = net.wireguard {
                n.insert(
                    "wireguard".into(),
                    json!({"listenPort": 51820 + u16::from(port % 4), "privateKeyCredential": "wg"}),
                );
            }
            m.insert("network".into(), Value::Object(n));
        }
        let mut containers = Map::new();
        for (name, ports) in self.containers.iter().take(4) {
            let ports: Vec<String> = ports
                .iter()
                .take(4)
                .map(|p| {
                    let proto = if p.udp { "/udp" } else { "" };
                    // Host ports 51820.. meet the WireGuard listen ports.
                    format!(
                        "{}:{}{proto}",
                        51820 + u16::from(p.host % 6),
                        1 + p.container % 4
                    )
                })
                .collect();
            containers.insert(name.name(), json!({"image": "debian", "ports": ports}));
        }
        if !containers.is_empty() {
            m.insert("containers".into(), Value::Object(containers));
        }
        let vms: Map<String, Value> = self
            .vms
            .iter()
            .take(3)
            .map(|n| (n.name(), json!({"image": "debian"})))
            .collect();
        if !vms.is_empty() {
            m.insert("vms".into(), Value::Object(vms));
        }
        Value::Object(m)
    }
}

/// One thing a host has once, as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Resource {
    Vlan(u16),
    Udp(u16),
    Tcp(u16),
    Machine(String),
    Interface(String),
}

/// A tenant's resources with the pointer that claims each (the model).
fn resources(t: &Tenant) -> Vec<(Resource, String)> {
    let m = &t.metadata;
    let mut out = Vec::new();
    if let Some(net) = &m.network {
        if let Some(vlan) = net.vlan {
            out.push((Resource::Vlan(vlan), "/network/vlan".to_owned()));
        }
        if let Some(wg) = &net.wireguard {
            out.push((
                Resource::Udp(wg.listen_port),
                "/network/wireguard/listenPort".to_owned(),
            ));
        }
        for prefix in InterfacePrefix::ALL {
            out.push((
                Resource::Interface(t.id.interface(prefix)),
                "/id".to_owned(),
            ));
        }
    }
    for (name, c) in &m.containers {
        for (j, port) in c.ports.iter().enumerate() {
            let p = parse_port(port).expect("a valid tenant's ports parse");
            let r = if p.udp {
                Resource::Udp(p.host)
            } else {
                Resource::Tcp(p.host)
            };
            out.push((r, format!("/containers/{name}/ports/{j}")));
        }
        out.push((
            Resource::Machine(t.id.machine(name)),
            format!("/containers/{name}"),
        ));
    }
    for name in m.vms.keys() {
        out.push((
            Resource::Machine(t.id.machine(name)),
            format!("/vms/{name}"),
        ));
    }
    out
}

fn v4(t: &Tenant) -> Option<(u128, u128)> {
    let (a, p) = parse_ipv4_cidr(t.metadata.network.as_ref()?.ipv4.as_ref()?).ok()?;
    let size = 1u128 << (32 - u32::from(p));
    let start = u128::from(u32::from(a)) / size * size;
    Some((start, start + size - 1))
}

fn v6(t: &Tenant) -> Option<(u128, u128)> {
    let (a, p) = parse_ipv6_cidr(t.metadata.network.as_ref()?.ipv6.as_ref()?).ok()?;
    let bits = 128 - u32::from(p); // p is 1 to 128
    let start = (u128::from(a) >> bits) << bits;
    Some((start, start | ((1u128 << bits) - 1)))
}

fn overlap(a: (u128, u128), b: (u128, u128)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// The conflicts' pointers per tenant, as the naive model has them.
fn model(tenants: &[Tenant]) -> Vec<Vec<String>> {
    let mut accepted: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        let mut pointers: Vec<String> = resources(t)
            .into_iter()
            .filter(|(r, _)| {
                accepted
                    .iter()
                    .any(|&o| resources(&tenants[o]).iter().any(|(q, _)| q == r))
            })
            .map(|(_, p)| p)
            .collect();
        for (range, pointer) in [
            (v4 as fn(&Tenant) -> _, "/network/ipv4"),
            (v6, "/network/ipv6"),
        ] {
            if let Some(mine) = range(t)
                && accepted
                    .iter()
                    .any(|&o| range(&tenants[o]).is_some_and(|r| overlap(r, mine)))
            {
                pointers.push(pointer.to_owned());
            }
        }
        if pointers.is_empty() {
            accepted.push(i);
        }
        pointers.sort();
        out.push(pointers);
    }
    out
}

fn by_tenant(n: usize, conflicts: &[Conflict]) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); n];
    for c in conflicts {
        out[c.index].push(c.pointer.clone());
    }
    out.iter_mut().for_each(|p| p.sort());
    out
}

fuzz_target!(|input: Input| {
    let mut tenants = Vec::new();
    let mut texts = Vec::new();
    for spec in input.tenants.iter().take(8) {
        let id = spec.id.name();
        let text = serde_json::to_string_pretty(&spec.json(&id)).unwrap();
        let file = format!("tenants/{id}/metadata.json");
        if let Ok(tenant) = Tenant::parse(&file, &id, &text) {
            tenants.push(tenant);
            texts.push(text);
        }
    }

    let conflicts = check_fleet(&tenants);

    let mut last = 0;
    for c in &conflicts {
        assert!(c.index < tenants.len(), "{c:?}");
        assert!(c.index > 0, "the first tenant conflicts: {c:?}");
        assert!(c.index >= last, "out of order: {conflicts:?}");
        last = c.index;
        assert!(!c.message.is_empty(), "{c:?}");
        let text = &texts[c.index];
        let value: Value = serde_json::from_str(text).unwrap();
        assert!(
            value.pointer(&c.pointer).is_some(),
            "{c:?} names no key of\n{text}"
        );
        let d = locate(&tenants[c.index].file, text, &c.pointer, c.message.clone());
        assert!(d.line >= 1 && d.line <= text.lines().count(), "{d:?}");
    }

    for k in 0..tenants.len() {
        let prefix = check_fleet(&tenants[..k]);
        let expected: Vec<&Conflict> = conflicts.iter().filter(|c| c.index < k).collect();
        assert_eq!(prefix.iter().collect::<Vec<_>>(), expected, "prefix {k}");
    }

    let expected = model(&tenants);
    assert_eq!(
        by_tenant(tenants.len(), &conflicts),
        expected,
        "check_fleet and the model disagree: {conflicts:#?}\n{}",
        texts.join("\n")
    );

    // What the passing tenants hold, together: each resource once.
    let mut held: BTreeMap<Resource, (usize, String)> = BTreeMap::new();
    let mut nets: Vec<(usize, &str, (u128, u128))> = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        if conflicts.iter().any(|c| c.index == i) {
            continue;
        }
        for (r, pointer) in resources(t) {
            if let Some((owner, first)) = held.insert(r.clone(), (i, pointer.clone())) {
                panic!(
                    "{r:?} is held twice by tenants that passed: {} {first} and {} {pointer}\n{}",
                    tenants[owner].id, t.id, texts[i]
                );
            }
        }
        for (family, range) in [("ipv4", v4(t)), ("ipv6", v6(t))] {
            if let Some(range) = range {
                for &(o, f, r) in &nets {
                    assert!(
                        f != family || !overlap(r, range),
                        "{family} subnets of {} and {} overlap",
                        tenants[o].id,
                        t.id
                    );
                }
                nets.push((i, family, range));
            }
        }
    }
});
