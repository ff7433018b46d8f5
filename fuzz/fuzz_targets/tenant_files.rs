//! The networkd and `.nspawn` writers, reached with structure: a tenant
//! built from the fuzz input (a network with VLAN, addresses, DHCP, DNS,
//! egress rate and WireGuard peers; containers with commands, environment,
//! ports and addresses; VMs), its strings drawn from a pool of hostile
//! values (line breaks, `%` specifiers, `$` variables, quotes, backslashes,
//! section headers, control and non-ASCII characters) or taken raw from
//! the input. The `metadata` target reaches the same writers from bytes,
//! where a valid network with peers is rare.
//!
//! Asserts, for every tenant `Tenant::parse` accepts:
//! - everything the `metadata` target asserts of `render_tenant`
//!   (`common/render.rs`: each file reads back, the command and environment
//!   of each `.nspawn` file exactly as declared, no unexpected key);
//! - the networkd files hold the declared values and nothing else of the
//!   tenant's: the bridge's addresses are the gateways; `DNS=` lists the
//!   declared servers of each family; the VLAN's `Id=`; the WireGuard
//!   link's `ListenPort=`, its key only as the credential
//!   `@network.wireguard.private.<name>`, and one `[WireGuardPeer]` per
//!   peer, in order, with its public key, its endpoint as declared and its
//!   allowed IPs; the IFB exactly when an egress rate is set;
//! - every value string of the input that reached a file is one line of
//!   it: no declared string adds a line or a section.

#![no_main]

#[path = "common/render.rs"]
mod render;

use arbitrary::Arbitrary;
use bbhv_render::Entry;
use bbhv_spec::Tenant;
use bbhv_spec::names::InterfacePrefix;
use bbhv_unit::Reader;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

#[derive(Debug, Arbitrary)]
struct Input {
    id: u8,
    enabled: bool,
    description: Option<Text>,
    network: Option<Net>,
    containers: Vec<Cont>,
    vms: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct Net {
    vlan: Option<u16>,
    ipv4: Option<([u8; 3], u8)>,
    ipv6: Option<(u16, u8)>,
    dhcp: bool,
    dns: Vec<u8>,
    egress: Option<(u16, u8)>,
    wireguard: Option<Wg>,
}

#[derive(Debug, Arbitrary)]
struct Wg {
    port: u16,
    credential: Text,
    peers: Vec<Peer>,
}

#[derive(Debug, Arbitrary)]
struct Peer {
    key: Key,
    endpoint: Option<Text>,
    allowed: Vec<([u8; 2], u8)>,
}

#[derive(Debug, Arbitrary)]
enum Key {
    Bytes([u8; 32]),
    Text(Text),
}

#[derive(Debug, Arbitrary)]
struct Cont {
    name: u8,
    command: Option<Vec<Text>>,
    environment: Vec<(u8, Text)>,
    ports: Vec<(u8, u8, bool)>,
    address: Option<u8>,
}

/// A string: mostly from the hostile pool, sometimes the input's own.
#[derive(Debug, Arbitrary)]
enum Text {
    Pool(u8),
    Raw(String),
}

const HOSTILE: &[&str] = &[
    "plain",
    "wg.key",
    "vpn.example.com:51820",
    "[fd00::1]:51820",
    "10.0.0.1:1",
    "line\nbreak",
    "carriage\rreturn",
    "[Service]\nExecStart=/bin/evil",
    "%i %n %%",
    "${HOME} $HOME $$",
    "\"double\" 'single'",
    "back\\slash\\",
    "tab\there",
    "ünïcödé ✓",
    "nul\0byte",
    "x\u{85}y",
    "",
    " leading and trailing ",
    "-dash",
    "a=b",
    "host.example:0",
];
const IDS: &[&str] = &["t", "acme", "a-b", "tenant-with-a-long-name"];
const NAMES: &[&str] = &["web", "db", "a-b", "w"];
const DNS: &[&str] = &["1.1.1.1", "9.9.9.9", "fd00::53", "2001:db8::1", "10.1.0.1"];

impl Text {
    fn get(&self) -> String {
        match self {
            Text::Pool(i) => HOSTILE[usize::from(*i) % HOSTILE.len()].to_owned(),
            Text::Raw(s) => s.chars().take(40).collect(),
        }
    }
}

fn base64(bytes: &[u8; 32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    while out.len() % 4 != 0 {
        out.push('=');
    }
    out
}

impl Input {
    fn json(&self) -> (String, Value) {
        let id = IDS[usize::from(self.id) % IDS.len()];
        let mut m = Map::new();
        m.insert("schemaVersion".into(), json!(1));
        m.insert("id".into(), json!(id));
        m.insert("enabled".into(), json!(self.enabled));
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d.get()));
        }
        if let Some(net) = &self.network {
            let mut n = Map::new();
            if let Some(vlan) = net.vlan {
                n.insert("vlan".into(), json!(vlan % 4100));
            }
            if let Some(([b, c, d], p)) = net.ipv4 {
                n.insert(
                    "ipv4".into(),
                    json!(format!("10.{b}.{c}.{d}/{}", 8 + p % 24)),
                );
            }
            if let Some((g, p)) = net.ipv6 {
                n.insert(
                    "ipv6".into(),
                    json!(format!("fd00:{g:x}::1/{}", 48 + p % 80)),
                );
            }
            if net.dhcp {
                n.insert("dhcp".into(), json!(true));
            }
            if !net.dns.is_empty() {
                let dns: Vec<&str> = net
                    .dns
                    .iter()
                    .take(9)
                    .map(|i| DNS[usize::from(*i) % DNS.len()])
                    .collect();
                n.insert("dns".into(), json!(dns));
            }
            if let Some((rate, unit)) = net.egress {
                let unit = ["", "K", "M", "G", "k", "x"][usize::from(unit % 6)];
                n.insert("egressRate".into(), json!(format!("{rate}{unit}")));
            }
            if let Some(wg) = &net.wireguard {
                let peers: Vec<Value> = wg
                    .peers
                    .iter()
                    .take(4)
                    .map(|p| {
                        let mut peer = Map::new();
                        let key = match &p.key {
                            Key::Bytes(b) => base64(b),
                            Key::Text(t) => t.get(),
                        };
                        peer.insert("publicKey".into(), json!(key));
                        if let Some(e) = &p.endpoint {
                            peer.insert("endpoint".into(), json!(e.get()));
                        }
                        let allowed: Vec<String> = p
                            .allowed
                            .iter()
                            .take(4)
                            .map(|([a, b], prefix)| format!("10.{a}.{b}.0/{}", prefix % 33))
                            .collect();
                        peer.insert("allowedIps".into(), json!(allowed));
                        Value::Object(peer)
                    })
                    .collect();
                n.insert(
                    "wireguard".into(),
                    json!({
                        "listenPort": wg.port,
                        "privateKeyCredential": wg.credential.get(),
                        "peers": peers,
                    }),
                );
            }
            m.insert("network".into(), Value::Object(n));
        }
        let mut containers = Map::new();
        for c in self.containers.iter().take(3) {
            let mut v = Map::new();
            v.insert("image".into(), json!("busybox"));
            if let Some(command) = &c.command {
                // An absolute program (required), then the hostile words.
                let argv: Vec<String> = std::iter::once("/bin/sh".to_owned())
                    .chain(command.iter().take(5).map(Text::get))
                    .collect();
                v.insert("command".into(), json!(argv));
            }
            let env: Map<String, Value> = c
                .environment
                .iter()
                .take(4)
                .map(|(k, t)| {
                    (
                        ["A", "PATH", "GREETING", "X_1"][usize::from(*k % 4)].to_owned(),
                        json!(t.get()),
                    )
                })
                .collect();
            if !env.is_empty() {
                v.insert("environment".into(), Value::Object(env));
            }
            let ports: Vec<String> = c
                .ports
                .iter()
                .take(3)
                .map(|(h, p, udp)| {
                    format!(
                        "{}:{}{}",
                        8000 + u16::from(*h),
                        1 + u16::from(*p),
                        if *udp { "/udp" } else { "" }
                    )
                })
                .collect();
            if !ports.is_empty() {
                v.insert("ports".into(), json!(ports));
            }
            if let (Some(a), Some(([b, c2, _], _))) = (c.address, net_ipv4(self)) {
                v.insert("address".into(), json!(format!("10.{b}.{c2}.{a}")));
            }
            containers.insert(
                NAMES[usize::from(c.name) % NAMES.len()].to_owned(),
                Value::Object(v),
            );
        }
        if !containers.is_empty() {
            m.insert("containers".into(), Value::Object(containers));
        }
        let vms: Map<String, Value> = self
            .vms
            .iter()
            .take(2)
            .map(|n| {
                (
                    format!("vm-{}", NAMES[usize::from(*n) % NAMES.len()]),
                    json!({"image": "tiny-vm"}),
                )
            })
            .collect();
        if !vms.is_empty() {
            m.insert("vms".into(), Value::Object(vms));
        }
        (id.to_owned(), Value::Object(m))
    }
}

fn net_ipv4(input: &Input) -> Option<([u8; 3], u8)> {
    input.network.as_ref()?.ipv4
}

/// The one file `name` among the entries, read.
fn file<'a>(entries: &'a [Entry], name: &str) -> Option<(&'a str, Reader)> {
    entries.iter().find_map(|e| match e {
        Entry::File { path, content, .. } if path.to_str() == Some(name) => Some((
            content.as_str(),
            Reader::parse(content).expect("checked by render.rs"),
        )),
        _ => None,
    })
}

fn check_network(tenant: &Tenant, entries: &[Entry]) {
    let link = |prefix| tenant.id.interface(prefix);
    let Some(net) = &tenant.network else {
        return;
    };
    let (text, bridge) = file(
        entries,
        &format!("bbhv-{}.network", link(InterfacePrefix::Bridge)),
    )
    .expect("the bridge's .network");
    let mut addresses: Vec<String> = bridge
        .values("Network", "Address")
        .into_iter()
        .chain(bridge.values("Address", "Address"))
        .map(str::to_owned)
        .collect();
    addresses.sort();
    let mut expected: Vec<String> = net
        .ipv4
        .iter()
        .map(ToString::to_string)
        .chain(net.ipv6.iter().map(ToString::to_string))
        .collect();
    expected.sort();
    assert_eq!(addresses, expected, "{text}");
    // The declared servers of the family, else the gateway (the tenant's
    // own DNS server).
    let servers = |family: fn(&std::net::IpAddr) -> bool, gateway: Option<String>| {
        let declared: Vec<String> = net
            .dns
            .iter()
            .filter(|a| family(a))
            .map(ToString::to_string)
            .collect();
        if declared.is_empty() {
            gateway.into_iter().collect()
        } else {
            declared
        }
    };
    let words = |section: &str| -> Vec<String> {
        bridge
            .values(section, "DNS")
            .iter()
            .flat_map(|v| v.split_whitespace().map(str::to_owned))
            .collect()
    };
    let dhcp = net.ipv4.filter(|_| net.dhcp);
    let expected4 = if dhcp.is_some() {
        servers(
            std::net::IpAddr::is_ipv4,
            net.ipv4.map(|n| n.addr().to_string()),
        )
    } else {
        Vec::new()
    };
    assert_eq!(words("DHCPServer"), expected4, "{text}");
    let expected6 = if net.ipv6.is_some() {
        servers(
            std::net::IpAddr::is_ipv6,
            net.ipv6.map(|n| n.addr().to_string()),
        )
    } else {
        Vec::new()
    };
    assert_eq!(words("IPv6SendRA"), expected6, "{text}");
    match (
        net.vlan,
        file(
            entries,
            &format!("bbhv-{}.netdev", link(InterfacePrefix::Vlan)),
        ),
    ) {
        (Some(vlan), Some((text, r))) => {
            assert_eq!(r.values("VLAN", "Id"), [vlan.to_string()], "{text}")
        }
        (None, None) => {}
        (vlan, file) => panic!("VLAN {vlan:?} but file {:?}", file.map(|f| f.0.to_owned())),
    }
    assert_eq!(
        net.egress_rate.is_some(),
        file(
            entries,
            &format!("bbhv-{}.netdev", link(InterfacePrefix::Egress))
        )
        .is_some()
    );
    match (
        &net.wireguard,
        file(
            entries,
            &format!("bbhv-{}.netdev", link(InterfacePrefix::WireGuard)),
        ),
    ) {
        (Some(wg), Some((text, r))) => {
            assert_eq!(
                r.values("WireGuard", "ListenPort"),
                [wg.listen_port.to_string()],
                "{text}"
            );
            assert_eq!(
                r.values("WireGuard", "PrivateKey"),
                [format!(
                    "@network.wireguard.private.{}",
                    wg.private_key_credential.as_str()
                )],
                "{text}"
            );
            // One [WireGuardPeer] per peer, in order: split the file there.
            let peers: Vec<Reader> = text
                .split("[WireGuardPeer]")
                .skip(1)
                .map(|part| Reader::parse(&format!("[WireGuardPeer]{part}")).unwrap())
                .collect();
            assert_eq!(peers.len(), wg.peers.len(), "{text}");
            for (peer, r) in wg.peers.iter().zip(&peers) {
                assert_eq!(
                    r.values("WireGuardPeer", "PublicKey"),
                    [peer.public_key.as_str()],
                    "{text}"
                );
                let endpoint: Vec<String> = peer.endpoint.iter().map(ToString::to_string).collect();
                assert_eq!(r.values("WireGuardPeer", "Endpoint"), endpoint, "{text}");
                let allowed: Vec<String> =
                    peer.allowed_ips.iter().map(ToString::to_string).collect();
                assert_eq!(r.values("WireGuardPeer", "AllowedIPs"), allowed, "{text}");
            }
        }
        (None, None) => {}
        (wg, file) => panic!(
            "WireGuard {wg:?} but file {:?}",
            file.map(|f| f.0.to_owned())
        ),
    }
}

fuzz_target!(|input: Input| {
    let (id, value) = input.json();
    let text = serde_json::to_string_pretty(&value).unwrap();
    let file_name = format!("tenants/{id}/metadata.json");
    let Ok(tenant) = Tenant::parse(&file_name, &id, &text) else {
        return;
    };
    let entries = render::check_render(&tenant);
    check_network(&tenant, &entries);
    // The declared strings that were accepted are on one line each.
    let declared: Vec<String> = tenant
        .containers
        .iter()
        .flat_map(|c| {
            c.command
                .iter()
                .flat_map(|cmd| cmd.argv().iter().cloned())
                .chain(c.environment.iter().map(|(_, v)| v.clone()))
        })
        .collect();
    for s in declared {
        assert!(
            !s.contains(['\n', '\r', '\0']),
            "accepted a line break: {s:?}"
        );
    }
});
