//! `bbhv_spec::check_fleet` on a few tenants built from the fuzz input,
//! with an applied generation whose tenants keep their claims.
//!
//! Each tenant is written as metadata.json text from small value pools (so
//! VLANs, ports, subnets and names collide often) and goes through
//! `Tenant::parse`, as the generator does; tenants that fail their own
//! checks are left out, and the rest are kept once per id, sorted by id (a
//! fleet is the directories of `tenants/`). The applied generation is built
//! the same way from earlier versions of some of them (unchanged, changed,
//! or since removed), cut down to the tenants that pass the naive model
//! without incumbents: a consistent earlier state. Asserts:
//! - `check_fleet` never panics;
//! - every conflict's `index` is in range and conflicts come in tenant
//!   order; its `owner` is another tenant of the list; without incumbents
//!   the first tenant never conflicts;
//! - every conflict's pointer names a key of that tenant's file, and
//!   `locate` finds it on a line of the file;
//! - without incumbents, the conflicts of the tenants `0..k` are those of
//!   the whole list with `index < k` (a newcomer is judged by the tenants
//!   before it only);
//! - differential: the conflicts (pointer and owner) are exactly those of
//!   a naive quadratic model: first every incumbent takes what it held in
//!   the applied generation and still claims (a subnet only when it is the
//!   same), then in id order a claim conflicts with a claim already taken by
//!   another tenant, and a tenant with no conflict takes its claims; one
//!   subnet conflict per family, its owner one whose subnet overlaps;
//! - an incumbent never loses a claim it keeps: each of its conflicts is at
//!   a key that claims something it did not hold (or a subnet that changed),
//!   so an incumbent whose claims are unchanged has no conflict at all;
//! - the tenants that pass hold every host resource once: VLANs, UDP and TCP
//!   host ports, interface names (workload links included), and disjoint subnets; and
//!   as the next applied generation they are consistent: checked again,
//!   alone or as their own incumbents, they have no conflict.
//!
//! Regressions (regressions/fleet/, fixed in a94d218): one tenant could
//! hold a host port twice (two containers publishing it, or a container UDP
//! port equal to the WireGuard listen port); `Tenant::parse` now refuses it.
//! (They are `arbitrary` bytes of the former `Input`, which had no
//! `before`; they still decode, with an empty applied generation.)

#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use bbhv_spec::names::InterfacePrefix;
use bbhv_spec::values::Protocol;
use bbhv_spec::{Conflict, Tenant, check_fleet, locate};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

#[derive(Debug, Arbitrary)]
struct Input {
    tenants: Vec<TenantSpec>,
    /// The applied generation, before it is made consistent.
    before: Vec<Before>,
}

/// One tenant of the applied generation.
#[derive(Debug, Arbitrary)]
enum Before {
    /// Tenant `k` (mod the count) of the current list, as it is now.
    Same(u8),
    /// Tenant `k` of the current list, as another spec said then.
    Changed(u8, TenantSpec),
    /// A tenant with its own id: removed since, or one of the current ones.
    Other(TenantSpec),
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
    Interface(String),
}

/// A tenant's resources with the pointer that claims each (the model).
fn resources(t: &Tenant) -> Vec<(Resource, String)> {
    let mut out = Vec::new();
    if let Some(net) = &t.network {
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
    for c in &t.containers {
        for (j, p) in c.ports.iter().enumerate() {
            let r = match p.protocol {
                Protocol::Udp => Resource::Udp(p.host),
                Protocol::Tcp => Resource::Tcp(p.host),
            };
            out.push((r, format!("/containers/{}/ports/{j}", c.name)));
        }
    }
    // Machine names (<tenant>.<name>) are unique by construction; the host
    // ends of workload links are hashes, claimed when there is a network.
    if t.network.is_some() {
        for c in &t.containers {
            out.push((
                Resource::Interface(t.id.workload_interface(c.name.as_str())),
                format!("/containers/{}", c.name),
            ));
        }
        for v in &t.vms {
            out.push((
                Resource::Interface(t.id.vm_tap(v.name.as_str())),
                format!("/vms/{}", v.name),
            ));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

const FAMILIES: [Family; 2] = [Family::V4, Family::V6];

impl Family {
    fn pointer(self) -> &'static str {
        match self {
            Family::V4 => "/network/ipv4",
            Family::V6 => "/network/ipv6",
        }
    }

    /// The tenant's subnet of this family, first and last address, computed
    /// from the gateway's address and prefix by hand.
    fn range(self, t: &Tenant) -> Option<(u128, u128)> {
        let net = t.network.as_ref()?;
        let (addr, bits) = match self {
            Family::V4 => {
                let n = net.ipv4?;
                (
                    u128::from(u32::from(n.addr())),
                    32 - u32::from(n.prefix_len()),
                )
            }
            Family::V6 => {
                let n = net.ipv6?;
                (u128::from(n.addr()), 128 - u32::from(n.prefix_len()))
            }
        };
        // Prefixes are 1 or more, so bits is at most 127.
        let start = (addr >> bits) << bits;
        Some((start, start | ((1u128 << bits) - 1)))
    }
}

fn overlap(a: (u128, u128), b: (u128, u128)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// A conflict as the model has it: the pointer and who may own the claim
/// (exactly one for a resource; any overlapping holder for a subnet).
type Expected = (String, Vec<usize>);

/// The conflicts per tenant, as the naive model has them.
fn model(tenants: &[Tenant], applied: &[Tenant]) -> Vec<Vec<Expected>> {
    let mut held: Vec<(Resource, usize)> = Vec::new();
    let mut nets: Vec<(Family, (u128, u128), usize)> = Vec::new();
    let holder = |held: &Vec<(Resource, usize)>, r: &Resource| {
        held.iter().find(|(q, _)| q == r).map(|&(_, o)| o)
    };

    // The incumbents keep what they held and still claim.
    for before in applied {
        let Some(i) = tenants.iter().position(|t| t.id == before.id) else {
            continue;
        };
        let now = &tenants[i];
        let was = resources(before);
        for (r, _) in resources(now) {
            if was.iter().any(|(q, _)| *q == r) && holder(&held, &r).is_none() {
                held.push((r, i));
            }
        }
        for family in FAMILIES {
            if let (Some(a), Some(b)) = (family.range(before), family.range(now))
                && a == b
                && !nets.iter().any(|&(f, r, _)| f == family && overlap(r, b))
            {
                nets.push((family, b, i));
            }
        }
    }

    let mut out = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        let mut problems: Vec<Expected> = Vec::new();
        for (r, pointer) in resources(t) {
            if let Some(o) = holder(&held, &r)
                && o != i
            {
                problems.push((pointer, vec![o]));
            }
        }
        for family in FAMILIES {
            if let Some(mine) = family.range(t) {
                let owners: Vec<usize> = nets
                    .iter()
                    .filter(|&&(f, r, o)| f == family && o != i && overlap(r, mine))
                    .map(|&(_, _, o)| o)
                    .collect();
                if !owners.is_empty() {
                    problems.push((family.pointer().to_owned(), owners));
                }
            }
        }
        if problems.is_empty() {
            for (r, _) in resources(t) {
                if holder(&held, &r).is_none() {
                    held.push((r, i));
                }
            }
            for family in FAMILIES {
                if let Some(mine) = family.range(t)
                    && !nets
                        .iter()
                        .any(|&(f, r, _)| f == family && overlap(r, mine))
                {
                    nets.push((family, mine, i));
                }
            }
        }
        out.push(problems);
    }
    out
}

fn index_of(tenants: &[Tenant], c: &Conflict) -> usize {
    tenants
        .iter()
        .position(|t| t.id == c.owner)
        .unwrap_or_else(|| panic!("the owner is no tenant of the list: {c:?}"))
}

/// Parses the specs as the generator would: failing tenants left out, one
/// per id (the first), sorted by id.
fn fleet<'a>(specs: impl Iterator<Item = (String, &'a TenantSpec)>) -> (Vec<Tenant>, Vec<String>) {
    let mut by_id: BTreeMap<String, (Tenant, String)> = BTreeMap::new();
    for (id, spec) in specs {
        if by_id.contains_key(&id) {
            continue;
        }
        let text = serde_json::to_string_pretty(&spec.json(&id)).unwrap();
        let file = format!("tenants/{id}/metadata.json");
        if let Ok(tenant) = Tenant::parse(&file, &id, &text) {
            by_id.insert(id, (tenant, text));
        }
    }
    by_id.into_values().unzip()
}

fuzz_target!(|input: Input| {
    let (tenants, texts) = fleet(input.tenants.iter().take(8).map(|s| (s.id.name(), s)));

    // The applied generation: earlier versions, made consistent.
    let mut earlier: Vec<(String, &TenantSpec)> = Vec::new();
    let mut same: Vec<(String, String)> = Vec::new();
    for b in input.before.iter().take(8) {
        match b {
            Before::Same(k) if !tenants.is_empty() => {
                let i = usize::from(*k) % tenants.len();
                same.push((tenants[i].id.as_str().to_owned(), texts[i].clone()));
            }
            Before::Changed(k, spec) if !tenants.is_empty() => {
                let i = usize::from(*k) % tenants.len();
                earlier.push((tenants[i].id.as_str().to_owned(), spec));
            }
            Before::Other(spec) => earlier.push((spec.id.name(), spec)),
            _ => {}
        }
    }
    let (mut before, _) = fleet(earlier.into_iter());
    for (id, text) in same {
        if !before.iter().any(|t| t.id.as_str() == id) {
            let file = format!("tenants/{id}/metadata.json");
            before.push(Tenant::parse(&file, &id, &text).expect("it parsed before"));
        }
    }
    before.sort_by(|a, b| a.id.cmp(&b.id));
    let outcome = model(&before, &[]);
    let applied: Vec<Tenant> = before
        .into_iter()
        .zip(&outcome)
        .filter(|(_, problems)| problems.is_empty())
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        check_fleet(&applied, &[]),
        vec![],
        "a consistent generation has conflicts"
    );

    let conflicts = check_fleet(&tenants, &applied);

    let mut last = 0;
    for c in &conflicts {
        assert!(c.index < tenants.len(), "{c:?}");
        assert!(
            c.index > 0 || !applied.is_empty(),
            "the first tenant conflicts with no incumbent: {c:?}"
        );
        assert!(c.index >= last, "out of order: {conflicts:?}");
        last = c.index;
        assert!(!c.message.is_empty(), "{c:?}");
        assert_ne!(c.owner, tenants[c.index].id, "its own owner: {c:?}");
        index_of(&tenants, c);
        let text = &texts[c.index];
        let value: Value = serde_json::from_str(text).unwrap();
        assert!(
            value.pointer(&c.pointer).is_some(),
            "{c:?} names no key of\n{text}"
        );
        let d = locate(&tenants[c.index].file, text, &c.pointer, c.message.clone());
        assert!(d.line >= 1 && d.line <= text.lines().count(), "{d:?}");
    }

    if applied.is_empty() {
        for k in 0..tenants.len() {
            let prefix = check_fleet(&tenants[..k], &[]);
            let expected: Vec<&Conflict> = conflicts.iter().filter(|c| c.index < k).collect();
            assert_eq!(prefix.iter().collect::<Vec<_>>(), expected, "prefix {k}");
        }
    }

    // Differential: the model's pointers, owners as it allows.
    let expected = model(&tenants, &applied);
    let show = || {
        format!(
            "{conflicts:#?}\nexpected: {expected:?}\napplied: {:?}\n{}",
            applied.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            texts.join("\n")
        )
    };
    for (i, want) in expected.iter().enumerate() {
        let got: Vec<&Conflict> = conflicts.iter().filter(|c| c.index == i).collect();
        let mut got_pointers: Vec<&str> = got.iter().map(|c| c.pointer.as_str()).collect();
        let mut want_pointers: Vec<&str> = want.iter().map(|(p, _)| p.as_str()).collect();
        got_pointers.sort();
        want_pointers.sort();
        assert_eq!(
            got_pointers,
            want_pointers,
            "tenant {i}: check_fleet and the model disagree: {}",
            show()
        );
        let subnet = |p: &str| FAMILIES.iter().any(|f| f.pointer() == p);
        let mut got_owned: Vec<(&str, usize)> = got
            .iter()
            .filter(|c| !subnet(&c.pointer))
            .map(|c| (c.pointer.as_str(), index_of(&tenants, c)))
            .collect();
        let mut want_owned: Vec<(&str, usize)> = want
            .iter()
            .filter(|(p, _)| !subnet(p))
            .map(|(p, o)| (p.as_str(), o[0]))
            .collect();
        got_owned.sort();
        want_owned.sort();
        assert_eq!(
            got_owned,
            want_owned,
            "tenant {i}: other owners: {}",
            show()
        );
        for c in got.iter().filter(|c| subnet(&c.pointer)) {
            let (_, owners) = want.iter().find(|(p, _)| *p == c.pointer).unwrap();
            assert!(
                owners.contains(&index_of(&tenants, c)),
                "tenant {i}: {c:?} is owned by none of {owners:?}: {}",
                show()
            );
        }
    }

    // An incumbent keeps what it held: a conflict is only ever at a key
    // that claims something new.
    for before in &applied {
        let Some(i) = tenants.iter().position(|t| t.id == before.id) else {
            continue;
        };
        let now = &tenants[i];
        let was = resources(before);
        for c in conflicts.iter().filter(|c| c.index == i) {
            let new = match FAMILIES.iter().find(|f| f.pointer() == c.pointer) {
                Some(f) => f.range(before) != f.range(now),
                None => resources(now)
                    .iter()
                    .any(|(r, p)| *p == c.pointer && !was.iter().any(|(q, _)| q == r)),
            };
            assert!(
                new,
                "incumbent {} lost a claim it kept to {}: {c:?}\n{}",
                now.id,
                c.owner,
                show()
            );
        }
    }

    // What the passing tenants hold, together: each resource once.
    let mut held: BTreeMap<Resource, (usize, String)> = BTreeMap::new();
    let mut nets: Vec<(usize, Family, (u128, u128))> = Vec::new();
    let mut passed = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        if conflicts.iter().any(|c| c.index == i) {
            continue;
        }
        passed.push(t.clone());
        for (r, pointer) in resources(t) {
            if let Some((owner, first)) = held.insert(r.clone(), (i, pointer.clone())) {
                panic!(
                    "{r:?} is held twice by tenants that passed: {} {first} and {} {pointer}\n{}",
                    tenants[owner].id, t.id, texts[i]
                );
            }
        }
        for family in FAMILIES {
            if let Some(range) = family.range(t) {
                for &(o, f, r) in &nets {
                    assert!(
                        f != family || !overlap(r, range),
                        "{family:?} subnets of {} and {} overlap",
                        tenants[o].id,
                        t.id
                    );
                }
                nets.push((i, family, range));
            }
        }
    }
    // The passing tenants, applied, are a consistent generation.
    assert_eq!(check_fleet(&passed, &[]), vec![], "the passing tenants");
    assert_eq!(check_fleet(&passed, &passed), vec![], "the passing tenants");
});
