//! A validated tenant: raw [`Metadata`] (what the JSON says, checked by the
//! schema) becomes a [`Tenant`] of typed values, or the problems that stop
//! it, each at its JSON pointer. What a schema cannot say is said here once;
//! nothing after this stage checks or parses a value again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bbhv_unit::Line;

use crate::diag::pointer_segment;
use crate::fleet::Claim;
use crate::model::{self, Metadata};
use crate::names::TenantId;
use crate::values::*;

/// One tenant of the fleet, valid in itself (the fleet check comes after).
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    /// The metadata file as named in diagnostics (`tenants/<id>/metadata.json`).
    pub file: String,
    pub description: Option<Line>,
    pub enabled: bool,
    pub resources: Resources,
    pub network: Option<Network>,
    /// Sorted by name.
    pub containers: Vec<Container>,
    /// Sorted by name.
    pub vms: Vec<Vm>,
}

/// Limits of the tenant's slice; `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub cpu_quota: Option<Percent>,
    pub cpu_weight: Option<u32>,
    pub memory_max: Option<Size>,
    pub memory_high: Option<Size>,
    pub io_weight: Option<u32>,
    pub tasks_max: Option<u32>,
    pub storage_quota: Option<Size>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub vlan: Option<u16>,
    /// The gateway: the bridge's address and the subnet's prefix.
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    pub dhcp: bool,
    pub dns: Vec<IpAddr>,
    pub egress_rate: Option<Rate>,
    pub wireguard: Option<WireGuard>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WireGuard {
    pub listen_port: u16,
    pub private_key_credential: CredentialName,
    pub peers: Vec<WireGuardPeer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WireGuardPeer {
    pub public_key: WireGuardKey,
    pub endpoint: Option<Endpoint>,
    pub allowed_ips: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub name: WorkloadName,
    pub image: ImageName,
    /// `None`: boot the image's init.
    pub command: Option<Command>,
    /// Sorted by name.
    pub environment: Vec<(EnvName, String)>,
    pub extensions: Vec<ImageName>,
    pub ports: Vec<PortMapping>,
    /// The `address` key; see [`Tenant::workload_addresses`] for the address.
    pub address: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vm {
    pub name: WorkloadName,
    pub image: ImageName,
    pub cpus: u32,
    pub memory: Size,
    /// The `address` key; see [`Tenant::workload_addresses`] for the address.
    pub address: Option<Ipv4Addr>,
}

/// A problem at a JSON pointer, before it is given a line and column.
pub(crate) type Problem = (String, String);

/// Collects the problems of one conversion and keeps going, so every problem
/// of the file is reported at once.
struct Check {
    problems: Vec<Problem>,
}

impl Check {
    /// The value, or `None` with the problem recorded at `pointer`.
    fn take<T>(
        &mut self,
        pointer: impl FnOnce() -> String,
        result: Result<T, String>,
    ) -> Option<T> {
        result
            .map_err(|message| self.problems.push((pointer(), message)))
            .ok()
    }

    fn fail(&mut self, pointer: String, message: String) {
        self.problems.push((pointer, message));
    }
}

impl Tenant {
    /// Converts raw metadata (already checked against the schema) from the
    /// directory `dir_name`, or returns every problem found.
    pub(crate) fn from_raw(
        m: Metadata,
        file: &str,
        dir_name: &str,
    ) -> Result<Tenant, Vec<Problem>> {
        let mut c = Check {
            problems: Vec::new(),
        };
        let id = match TenantId::new(&m.id) {
            Some(id) if m.id == dir_name => Some(id),
            Some(_) => {
                c.fail(
                    "/id".into(),
                    format!("id {:?} must equal its directory name {dir_name:?}", m.id),
                );
                None
            }
            None => {
                c.fail(
                    "/id".into(),
                    format!("{:?} is not a tenant id; allowed: a lowercase letter, then up to 30 lowercase letters, digits or dashes, not ending in a dash", m.id),
                );
                None
            }
        };
        let description = if m.description.is_empty() {
            None
        } else {
            c.take(
                || "/description".into(),
                Line::new(&m.description).map_err(|_| {
                    format!(
                        "{:?} may not start or end with whitespace, end with a backslash or hold a control character",
                        m.description
                    )
                }),
            )
        };
        let resources = resources(&mut c, &m.resources);
        let network = m.network.as_ref().and_then(|n| network(&mut c, n));
        let containers: Vec<Container> = m
            .containers
            .iter()
            .filter_map(|(name, raw)| container(&mut c, name, raw))
            .collect();
        let vms: Vec<Vm> = m
            .vms
            .iter()
            .filter_map(|(name, raw)| vm(&mut c, name, raw))
            .collect();

        if let Some(net) = &network {
            check_addresses(&mut c, net, &containers, &vms);
        } else {
            for (pointer, _) in declared_addresses(&containers, &vms) {
                c.fail(
                    pointer,
                    "a workload address needs the tenant's network.ipv4".into(),
                );
            }
        }

        // What a host has once, a tenant may not claim twice either (two
        // containers publishing one port, a container named like a VM):
        // checked on the raw values, so it is reported with the rest.
        let mut seen: HashMap<Claim, String> = HashMap::new();
        for (claim, pointer) in own_claims(&m) {
            match seen.get(&claim) {
                Some(first) => c.fail(
                    pointer,
                    format!("{claim} is also used by {first} of this tenant"),
                ),
                None => {
                    seen.insert(claim, pointer);
                }
            }
        }
        let (Some(id), true) = (id, c.problems.is_empty()) else {
            return Err(c.problems);
        };
        let tenant = Tenant {
            id,
            file: file.to_owned(),
            description,
            enabled: m.enabled,
            resources,
            network,
            containers,
            vms,
        };
        Ok(tenant)
    }
}

/// The claims a tenant makes more than once per host could hold (ports,
/// machine names), read from the raw values that parse.
fn own_claims(m: &Metadata) -> Vec<(Claim, String)> {
    let claim = |kind, value: String, pointer: String| (Claim { kind, value }, pointer);
    let mut claims = Vec::new();
    if let Some(wg) = m.network.as_ref().and_then(|n| n.wireguard.as_ref()) {
        claims.push(claim(
            "UDP port",
            wg.listen_port.to_string(),
            "/network/wireguard/listenPort".into(),
        ));
    }
    for (name, container) in &m.containers {
        for (j, port) in container.ports.iter().enumerate() {
            if let Ok(p) = PortMapping::parse(port) {
                claims.push(claim(
                    p.protocol.claim_kind(),
                    p.host.to_string(),
                    format!("/containers/{}/ports/{j}", pointer_segment(name)),
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
            "workload name",
            name.clone(),
            format!("/{kind}/{}", pointer_segment(name)),
        ));
    }
    let addresses = m
        .containers
        .iter()
        .map(|(n, w)| ("containers", n, &w.address))
        .chain(m.vms.iter().map(|(n, w)| ("vms", n, &w.address)));
    for (kind, name, address) in addresses {
        if let Some(addr) = address.as_ref().and_then(|a| a.parse::<Ipv4Addr>().ok()) {
            claims.push(claim(
                "IPv4 address",
                addr.to_string(),
                format!("/{kind}/{}/address", pointer_segment(name)),
            ));
        }
    }
    claims
}

/// Each declared workload address with its pointer.
fn declared_addresses<'a>(
    containers: &'a [Container],
    vms: &'a [Vm],
) -> impl Iterator<Item = (String, Ipv4Addr)> + 'a {
    containers
        .iter()
        .filter_map(|w| Some((format!("/containers/{}/address", w.name), w.address?)))
        .chain(
            vms.iter()
                .filter_map(|w| Some((format!("/vms/{}/address", w.name), w.address?))),
        )
}

/// Declared addresses lie in the subnet's host range and are not the
/// gateway; the host range has room for every workload.
fn check_addresses(c: &mut Check, net: &Network, containers: &[Container], vms: &[Vm]) {
    let declared: Vec<(String, Ipv4Addr)> = declared_addresses(containers, vms).collect();
    let Some(gateway) = net.ipv4 else {
        for (pointer, _) in declared {
            c.fail(
                pointer,
                "a workload address needs the tenant's network.ipv4".into(),
            );
        }
        return;
    };
    let hosts = HostRange::v4(gateway);
    for (pointer, addr) in &declared {
        let n = u128::from(u32::from(*addr));
        if addr == &gateway.addr() {
            c.fail(
                pointer.clone(),
                format!(
                    "{addr} is the tenant's gateway; allowed: another address of {}",
                    gateway.trunc()
                ),
            );
        } else if !hosts.contains(n) {
            c.fail(
                pointer.clone(),
                format!(
                    "{addr} is not a host address of the subnet {}; allowed: {}",
                    gateway.trunc(),
                    hosts.describe_v4()
                ),
            );
        }
    }
    let workloads = (containers.len() + vms.len()) as u128;
    let room = hosts.count - u128::from(hosts.contains(u128::from(u32::from(gateway.addr()))));
    if workloads > room {
        c.fail(
            "/network/ipv4".into(),
            format!(
                "the subnet {} has {room} addresses for workloads, and the tenant has {workloads} workloads",
                gateway.trunc()
            ),
        );
    }
}

/// The addresses of a subnet that workloads may have: all but the network
/// and broadcast addresses (both usable in a /31; none in a /32).
#[derive(Debug, Clone, Copy)]
struct HostRange {
    first: u128,
    count: u128,
}

impl HostRange {
    fn v4(net: Ipv4Net) -> HostRange {
        let network = u128::from(u32::from(net.network()));
        let size = 1u128 << (32 - net.prefix_len());
        match net.prefix_len() {
            32 => HostRange {
                first: network,
                count: 0,
            },
            31 => HostRange {
                first: network,
                count: 2,
            },
            _ => HostRange {
                first: network + 1,
                count: size - 2,
            },
        }
    }

    /// All but the subnet-router anycast address (the first).
    fn v6(net: Ipv6Net) -> HostRange {
        let network = u128::from(net.network());
        let bits = 128 - u32::from(net.prefix_len());
        let count = if bits >= 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        HostRange {
            first: network + 1,
            count,
        }
    }

    fn contains(&self, n: u128) -> bool {
        n >= self.first && n - self.first < self.count
    }

    fn describe_v4(&self) -> String {
        if self.count == 0 {
            return "none (a /32 has no host addresses)".into();
        }
        let ip = |n: u128| Ipv4Addr::from(n as u32);
        format!("{} to {}", ip(self.first), ip(self.first + self.count - 1))
    }

    /// Gives each name without an address one, in name order: a hash of
    /// the name into the range, then the next free address (wrapping).
    /// `taken` holds the gateway and the declared addresses.
    fn assign<'a>(
        &self,
        names: impl Iterator<Item = &'a WorkloadName>,
        taken: &mut BTreeSet<u128>,
    ) -> Vec<(&'a WorkloadName, u128)> {
        let mut out = Vec::new();
        for name in names {
            if taken.iter().filter(|&&t| self.contains(t)).count() as u128 >= self.count {
                break;
            }
            let mut offset = u128::from(crate::names::fnv1a(name.as_str().as_bytes())) % self.count;
            while taken.contains(&(self.first + offset)) {
                offset = (offset + 1) % self.count;
            }
            taken.insert(self.first + offset);
            out.push((name, self.first + offset));
        }
        out
    }
}

impl Tenant {
    /// Every workload's IPv4 address on the tenant's network (empty without
    /// `network.ipv4`): its `address` key, else a hash (FNV-1a) of its name
    /// into the subnet's host range, skipping the gateway and the addresses
    /// already given; names are taken in order, so a collision goes to the
    /// later name. Containers and VMs share one name space.
    pub fn workload_addresses(&self) -> BTreeMap<WorkloadName, Ipv4Addr> {
        let Some(gateway) = self.network.as_ref().and_then(|n| n.ipv4) else {
            return BTreeMap::new();
        };
        let hosts = HostRange::v4(gateway);
        let mut taken: BTreeSet<u128> = BTreeSet::from([u128::from(u32::from(gateway.addr()))]);
        let mut out = BTreeMap::new();
        let declared = self
            .containers
            .iter()
            .map(|w| (&w.name, w.address))
            .chain(self.vms.iter().map(|w| (&w.name, w.address)));
        let mut derived: Vec<&WorkloadName> = Vec::new();
        for (name, address) in declared {
            match address {
                Some(addr) => {
                    taken.insert(u128::from(u32::from(addr)));
                    out.insert(name.clone(), addr);
                }
                None => derived.push(name),
            }
        }
        derived.sort();
        for (name, n) in hosts.assign(derived.into_iter(), &mut taken) {
            out.insert(name.clone(), Ipv4Addr::from(n as u32));
        }
        out
    }

    /// Every workload's IPv6 address (empty without `network.ipv6`): a hash
    /// of its name into the subnet, as for IPv4 (no `address6` key yet).
    pub fn workload_addresses6(&self) -> BTreeMap<WorkloadName, Ipv6Addr> {
        let Some(gateway) = self.network.as_ref().and_then(|n| n.ipv6) else {
            return BTreeMap::new();
        };
        let hosts = HostRange::v6(gateway);
        let mut taken = BTreeSet::from([u128::from(gateway.addr())]);
        let mut names: Vec<&WorkloadName> = self
            .containers
            .iter()
            .map(|w| &w.name)
            .chain(self.vms.iter().map(|w| &w.name))
            .collect();
        names.sort();
        hosts
            .assign(names.into_iter(), &mut taken)
            .into_iter()
            .map(|(name, n)| (name.clone(), Ipv6Addr::from(n)))
            .collect()
    }
}

fn resources(c: &mut Check, r: &model::Resources) -> Resources {
    let size = |c: &mut Check, key: &str, text: &Option<String>| {
        text.as_ref()
            .and_then(|t| c.take(|| format!("/resources/{key}"), Size::parse(t)))
    };
    let resources = Resources {
        cpu_quota: r
            .cpu_quota
            .as_ref()
            .and_then(|t| c.take(|| "/resources/cpuQuota".into(), Percent::parse(t))),
        cpu_weight: r.cpu_weight,
        memory_max: size(c, "memoryMax", &r.memory_max),
        memory_high: size(c, "memoryHigh", &r.memory_high),
        io_weight: r.io_weight,
        tasks_max: r.tasks_max,
        storage_quota: size(c, "storageQuota", &r.storage_quota),
    };
    if let Some(quota) = resources.storage_quota
        && quota.bytes() < 16 << 20
    {
        c.fail(
            "/resources/storageQuota".into(),
            format!("\"{quota}\" is too small for the tenant's file system; allowed: at least 16M"),
        );
    }
    if let (Some(high), Some(max)) = (resources.memory_high, resources.memory_max)
        && high > max
    {
        c.fail(
            "/resources/memoryHigh".into(),
            format!("\"{high}\" is above memoryMax \"{max}\"; allowed: at most memoryMax"),
        );
    }
    resources
}

fn network(c: &mut Check, n: &model::Network) -> Option<Network> {
    let ipv4 = n
        .ipv4
        .as_ref()
        .and_then(|t| c.take(|| "/network/ipv4".into(), parse_ipv4_interface(t)));
    let ipv6 = n
        .ipv6
        .as_ref()
        .and_then(|t| c.take(|| "/network/ipv6".into(), parse_ipv6_interface(t)));
    let dns = n
        .dns
        .iter()
        .enumerate()
        .filter_map(|(i, t)| c.take(|| format!("/network/dns/{i}"), parse_ip(t)))
        .collect();
    if n.dhcp && n.ipv4.is_none() {
        c.fail(
            "/network/dhcp".into(),
            "true needs network.ipv4: the DHCP server leases addresses of the tenant's IPv4 \
             subnet; allowed: false, or an ipv4 subnet"
                .into(),
        );
    }
    let egress_rate = n
        .egress_rate
        .as_ref()
        .and_then(|t| c.take(|| "/network/egressRate".into(), Rate::parse(t)));
    let wireguard = n.wireguard.as_ref().and_then(|w| {
        let base = "/network/wireguard";
        let credential = c.take(
            || format!("{base}/privateKeyCredential"),
            CredentialName::parse(&w.private_key_credential),
        );
        let peers = w
            .peers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let at = |key: &str| format!("{base}/peers/{i}/{key}");
                let public_key = c.take(|| at("publicKey"), WireGuardKey::parse(&p.public_key));
                let endpoint = p
                    .endpoint
                    .as_ref()
                    .map(|e| c.take(|| at("endpoint"), Endpoint::parse(e)));
                let allowed_ips = p
                    .allowed_ips
                    .iter()
                    .enumerate()
                    .filter_map(|(j, r)| {
                        c.take(|| format!("{}/{j}", at("allowedIps")), parse_route(r))
                    })
                    .collect();
                Some(WireGuardPeer {
                    public_key: public_key?,
                    endpoint: endpoint.map(|e| e.ok_or(())).transpose().ok()?,
                    allowed_ips,
                })
            })
            .collect();
        if w.listen_port == 0 {
            c.fail(
                format!("{base}/listenPort"),
                "0: allowed: 1 to 65535".into(),
            );
        }
        Some(WireGuard {
            listen_port: w.listen_port,
            private_key_credential: credential?,
            peers,
        })
    });
    Some(Network {
        vlan: n.vlan,
        ipv4,
        ipv6,
        dhcp: n.dhcp,
        dns,
        egress_rate,
        wireguard,
    })
}

fn container(c: &mut Check, name: &str, raw: &model::Container) -> Option<Container> {
    let base = format!("/containers/{}", pointer_segment(name));
    let name = c.take(|| base.clone(), WorkloadName::parse(name));
    let image = c.take(|| format!("{base}/image"), ImageName::parse(&raw.image));
    let command = match &raw.command {
        Some(argv) => match Command::parse(argv) {
            Ok(command) => Some(command),
            Err(problems) => {
                for (i, message) in problems {
                    c.fail(format!("{base}/command/{i}"), message);
                }
                None
            }
        },
        None => None,
    };
    let environment = raw
        .environment
        .iter()
        .filter_map(|(key, value)| {
            let at = || format!("{base}/environment/{}", pointer_segment(key));
            let name = c.take(at, EnvName::parse(key))?;
            c.take(at, check_env_value(value))?;
            Some((name, value.clone()))
        })
        .collect();
    let extensions = raw
        .extensions
        .iter()
        .enumerate()
        .filter_map(|(i, e)| c.take(|| format!("{base}/extensions/{i}"), ImageName::parse(e)))
        .collect();
    let ports = raw
        .ports
        .iter()
        .enumerate()
        .filter_map(|(i, p)| c.take(|| format!("{base}/ports/{i}"), PortMapping::parse(p)))
        .collect();
    let address = workload_address(c, &base, &raw.address);
    let command_ok = raw.command.is_none() || command.is_some();
    command_ok.then_some(())?;
    Some(Container {
        name: name?,
        image: image?,
        command,
        environment,
        extensions,
        ports,
        address: address?,
    })
}

fn vm(c: &mut Check, name: &str, raw: &model::Vm) -> Option<Vm> {
    let base = format!("/vms/{}", pointer_segment(name));
    let name = c.take(|| base.clone(), WorkloadName::parse(name));
    let image = c.take(|| format!("{base}/image"), ImageName::parse(&raw.image));
    let memory = c.take(
        || format!("{base}/memory"),
        Size::parse(&raw.memory).and_then(|m| {
            if m.bytes() < 64 << 20 {
                Err(format!("{:?}: allowed: at least 64M", raw.memory))
            } else {
                Ok(m)
            }
        }),
    );
    let address = workload_address(c, &base, &raw.address);
    Some(Vm {
        name: name?,
        image: image?,
        cpus: raw.cpus,
        memory: memory?,
        address: address?,
    })
}

/// The `address` key: `Some(None)` when absent, `None` when invalid.
fn workload_address(c: &mut Check, base: &str, raw: &Option<String>) -> Option<Option<Ipv4Addr>> {
    match raw {
        None => Some(None),
        Some(text) => c
            .take(
                || format!("{base}/address"),
                text.parse::<Ipv4Addr>()
                    .map_err(|_| format!("{text:?} is not an IPv4 address")),
            )
            .map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(json: &str) -> Result<Tenant, Vec<String>> {
        Tenant::parse("tenants/t/metadata.json", "t", json)
            .map_err(|d| d.into_iter().map(|d| d.to_string()).collect())
    }

    fn with(network: &str, workloads: &str) -> String {
        format!(r#"{{ "schemaVersion": 1, "id": "t", {network} {workloads} }}"#)
    }

    #[test]
    fn workload_addresses_are_declared_or_derived_and_distinct() {
        let t = tenant(&with(
            r#""network": { "ipv4": "10.0.0.1/29", "ipv6": "fd00::1/64" },"#,
            r#""containers": { "a": { "image": "i", "address": "10.0.0.6" }, "b": { "image": "i" }, "c": { "image": "i" } },
               "vms": { "d": { "image": "i" }, "e": { "image": "i" } }"#,
        ))
        .unwrap();
        let addresses = t.workload_addresses();
        assert_eq!(addresses.len(), 5);
        let a = WorkloadName::parse("a").unwrap();
        assert_eq!(addresses[&a], Ipv4Addr::new(10, 0, 0, 6));
        let mut seen: Vec<Ipv4Addr> = addresses.values().copied().collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 5, "{addresses:?}");
        for addr in seen {
            let o = addr.octets()[3];
            assert!(
                (2..=6).contains(&o),
                "{addr}: not the gateway, network or broadcast"
            );
        }
        // Stable: the same tenant gives the same addresses.
        assert_eq!(addresses, t.workload_addresses());
        let v6 = t.workload_addresses6();
        assert_eq!(v6.len(), 5);
        assert!(
            !v6.values()
                .any(|a| *a == "fd00::1".parse::<Ipv6Addr>().unwrap())
        );
    }

    #[test]
    fn bad_workload_addresses_are_refused() {
        let cases = [
            (
                r#""network": { "ipv4": "10.0.0.1/24" },"#,
                r#""containers": { "a": { "image": "i", "address": "10.0.0.1" } }"#,
                "/containers/a/address: 10.0.0.1 is the tenant's gateway",
            ),
            (
                r#""network": { "ipv4": "10.0.0.1/24" },"#,
                r#""containers": { "a": { "image": "i", "address": "10.0.1.5" } }"#,
                "not a host address of the subnet 10.0.0.0/24; allowed: 10.0.0.1 to 10.0.0.254",
            ),
            (
                r#""network": { "ipv4": "10.0.0.1/24" },"#,
                r#""containers": { "a": { "image": "i", "address": "10.0.0.255" } }"#,
                "10.0.0.255 is not a host address",
            ),
            (
                r#""network": { "ipv4": "10.0.0.1/24" },"#,
                r#""containers": { "a": { "image": "i", "address": "10.0.0.9" } }, "vms": { "b": { "image": "i", "address": "10.0.0.9" } }"#,
                "/vms/b/address: IPv4 address 10.0.0.9 is also used by /containers/a/address",
            ),
            (
                "",
                r#""containers": { "a": { "image": "i", "address": "10.0.0.9" } }"#,
                "needs the tenant's network.ipv4",
            ),
            (
                r#""network": { "ipv4": "10.0.0.1/30" },"#,
                r#""containers": { "a": { "image": "i" }, "b": { "image": "i" } }"#,
                "/network/ipv4: the subnet 10.0.0.0/30 has 1 addresses for workloads, and the tenant has 2",
            ),
            (
                r#""network": { "ipv4": "10.0.0.1/24" },"#,
                r#""containers": { "a": { "image": "i", "address": "10.0.0.300" } }"#,
                "/containers/a/address",
            ),
        ];
        for (network, workloads, expected) in cases {
            let errors = tenant(&with(network, workloads)).unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected}: {errors:#?}"
            );
        }
    }

    #[test]
    fn a_storage_quota_is_a_file_system_size() {
        let errors =
            tenant(r#"{ "schemaVersion": 1, "id": "t", "resources": { "storageQuota": "4M" } }"#)
                .unwrap_err();
        assert!(
            errors[0].contains("/resources/storageQuota: \"4M\" is too small"),
            "{errors:?}"
        );
        assert!(
            tenant(r#"{ "schemaVersion": 1, "id": "t", "resources": { "storageQuota": "16M" } }"#)
                .is_ok()
        );
    }

    #[test]
    fn line_breaks_cannot_reach_a_nspawn_file() {
        let errors = tenant(&with(
            "",
            r#""containers": { "a": { "image": "i", "command": ["/bin/sh", "-c", "a\nb"], "environment": { "K": "x\ny" } } }"#,
        ))
        .unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("/containers/a/command/2") && e.contains("line break")),
            "{errors:#?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("/containers/a/environment/K")),
            "{errors:#?}"
        );
    }
}
