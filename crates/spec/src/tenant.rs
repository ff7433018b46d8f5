//! A validated tenant: raw [`Metadata`] (what the JSON says, checked by the
//! schema) becomes a [`Tenant`] of typed values, or the problems that stop
//! it, each at its JSON pointer. What a schema cannot say is said here once;
//! nothing after this stage checks or parses a value again.

use std::collections::HashMap;
use std::net::IpAddr;

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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vm {
    pub name: WorkloadName,
    pub image: ImageName,
    pub cpus: u32,
    pub memory: Size,
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
            "machine name",
            format!("{}-{name}", m.id),
            format!("/{kind}/{}", pointer_segment(name)),
        ));
    }
    claims
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
    let command_ok = raw.command.is_none() || command.is_some();
    command_ok.then_some(())?;
    Some(Container {
        name: name?,
        image: image?,
        command,
        environment,
        extensions,
        ports,
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
    Some(Vm {
        name: name?,
        image: image?,
        cpus: raw.cpus,
        memory: memory?,
    })
}
