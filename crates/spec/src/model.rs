//! metadata.json v1 as Rust types. The JSON Schema is generated from these
//! (doc comments become `description`, which diagnostics quote as the
//! "allowed" part), so the types, the schema and the checks cannot drift.

// The doc comments below are the schema's descriptions, written for users
// (`images/<name>.json`), not rustdoc HTML.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[a-z][a-z0-9-]{0,30}`, no trailing dash: tenant ids, container and VM names.
pub const NAME_PATTERN: &str = "^[a-z](?:[a-z0-9-]{0,29}[a-z0-9])?$";
/// Image and extension names.
pub const IMAGE_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";
/// One line of text: no control characters.
pub const LINE_PATTERN: &str = "^[^\\x00-\\x1f\\x7f]*$";
/// A size in bytes, base 1024 suffixes as systemd reads them.
pub const SIZE_PATTERN: &str = "^[1-9][0-9]{0,15}[KMGT]?$";
/// A rate in bits per second, base 1000 suffixes.
pub const RATE_PATTERN: &str = "^[1-9][0-9]{0,15}[KMG]?$";
/// A port mapping `HOST:CONTAINER[/tcp|/udp]`.
pub const PORT_PATTERN: &str = "^[0-9]{1,5}:[0-9]{1,5}(?:/(?:tcp|udp))?$";
/// An environment variable name.
pub const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]{0,127}$";
/// An IPv4 address.
pub const IPV4_PATTERN: &str = "^[0-9]{1,3}(?:\\.[0-9]{1,3}){3}$";
/// A systemd credential name.
pub const CREDENTIAL_PATTERN: &str = "^[A-Za-z0-9_.-]{1,64}$";
/// A WireGuard public key: 32 bytes in base64.
pub const WG_KEY_PATTERN: &str = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$";
/// A WireGuard endpoint `host:port` (`[v6]:port` for IPv6).
pub const ENDPOINT_PATTERN: &str =
    "^(?:[A-Za-z0-9.-]{1,253}|\\[[0-9A-Fa-f:.]{2,45}\\]):[0-9]{1,5}$";

/// One tenant of the fleet: `tenants/<id>/metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "BitBuilder tenant metadata, version 1")]
pub struct Metadata {
    /// The format version: 1.
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    /// The tenant id, equal to its directory name: a lowercase letter, then up to
    /// 30 lowercase letters, digits or dashes, not ending in a dash.
    #[schemars(pattern(NAME_PATTERN))]
    pub id: String,
    /// One line of text for unit descriptions, at most 200 characters.
    #[serde(default)]
    #[schemars(length(max = 200), pattern(LINE_PATTERN))]
    pub description: String,
    /// Whether the host runs this tenant (default true). A disabled tenant keeps
    /// its slice but is not started.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The tenant's share of the host: applied to its slice.
    #[serde(default)]
    pub resources: Resources,
    /// The tenant's network.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Containers (systemd-nspawn), by name: a lowercase letter, then up to 30
    /// lowercase letters, digits or dashes.
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "pattern": NAME_PATTERN }, "maxProperties" = 64))]
    pub containers: BTreeMap<String, Container>,
    /// Virtual machines, by name (same rule as containers).
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "pattern": NAME_PATTERN }, "maxProperties" = 64))]
    pub vms: BTreeMap<String, Vm>,
}

fn default_true() -> bool {
    true
}

/// Limits for the tenant's slice. Unset means no limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resources {
    /// CPU time as a percentage of one CPU, like "200%" for two CPUs.
    #[schemars(pattern("^[1-9][0-9]{0,5}%$"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<String>,
    /// Relative CPU weight, 1 to 10000 (systemd's default is 100).
    #[schemars(range(min = 1, max = 10000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_weight: Option<u32>,
    /// Hard memory limit: bytes, or with a K, M, G or T suffix, like "4G".
    #[schemars(pattern(SIZE_PATTERN))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<String>,
    /// Memory throttling threshold, at most memoryMax: bytes or K, M, G, T, like "3G".
    #[schemars(pattern(SIZE_PATTERN))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_high: Option<String>,
    /// Relative IO weight, 1 to 10000 (systemd's default is 100).
    #[schemars(range(min = 1, max = 10000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_weight: Option<u32>,
    /// Most tasks (processes and threads) at once, 1 to 4194304.
    #[schemars(range(min = 1, max = 4194304))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks_max: Option<u32>,
    /// Disk space for the tenant's state (a file system of that size, at
    /// least 16M): bytes or K, M, G, T, like "20G".
    #[schemars(pattern(SIZE_PATTERN))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_quota: Option<String>,
}

/// The tenant's network: a bridge, optionally on a VLAN, with WireGuard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Network {
    /// 802.1Q VLAN id, 1 to 4094, unique on the host.
    #[schemars(range(min = 1, max = 4094))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// The bridge's IPv4 address with prefix length, like "10.100.0.1/24";
    /// subnets may not overlap between tenants.
    #[schemars(pattern("^[0-9.]{7,15}/[0-9]{1,2}$"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    /// The bridge's IPv6 address with prefix length, like "fd00:100::1/64".
    #[schemars(pattern("^[0-9A-Fa-f:.]{2,45}/[0-9]{1,3}$"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    /// Serve DHCP to the tenant's workloads.
    #[serde(default)]
    pub dhcp: bool,
    /// DNS servers for the tenant's workloads: IPv4 or IPv6 addresses, at most 8.
    #[serde(default)]
    #[schemars(length(max = 8), inner(pattern("^[0-9A-Fa-f:.]{2,45}$")))]
    pub dns: Vec<String>,
    /// Egress rate limit in bits per second, with an optional K, M or G suffix, like "100M".
    #[schemars(pattern(RATE_PATTERN))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_rate: Option<String>,
    /// A WireGuard interface for the tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<WireGuard>,
}

/// A WireGuard interface; the private key comes from a systemd credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WireGuard {
    /// UDP port, 1 to 65535, unique on the host.
    #[schemars(range(min = 1, max = 65535))]
    pub listen_port: u16,
    /// Name of the systemd credential that holds the private key: 1 to 64 of
    /// letters, digits, '_', '.', '-'.
    #[schemars(pattern(CREDENTIAL_PATTERN))]
    pub private_key_credential: String,
    /// Peers, at most 256.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub peers: Vec<WireGuardPeer>,
}

/// One WireGuard peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WireGuardPeer {
    /// The peer's public key: 44 characters of base64.
    #[schemars(pattern(WG_KEY_PATTERN))]
    pub public_key: String,
    /// Where the peer is reached, "host:port" or "[ipv6]:port".
    #[schemars(pattern(ENDPOINT_PATTERN))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Networks routed to the peer, like "10.200.0.0/24", at most 64.
    #[serde(default)]
    #[schemars(length(max = 64), inner(pattern("^[0-9A-Fa-f:.]{2,45}/[0-9]{1,3}$")))]
    pub allowed_ips: Vec<String>,
}

/// A container, run by systemd-nspawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Container {
    /// Name of the root image (images/<name>.json).
    #[schemars(pattern(IMAGE_PATTERN))]
    pub image: String,
    /// The command and its arguments; the first is an absolute path; no NUL,
    /// CR or LF. Default: boot the image's init.
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Environment variables: names of letters, digits and '_' not starting
    /// with a digit; values on one line, tab the only control character.
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "pattern": ENV_NAME_PATTERN }, "maxProperties" = 256))]
    pub environment: BTreeMap<String, String>,
    /// Extensions (trees extensions/<name>/ of the repository) overlaid on the
    /// container's root, the last listed on top.
    #[serde(default)]
    #[schemars(length(max = 32), inner(pattern(IMAGE_PATTERN)))]
    pub extensions: Vec<String>,
    /// Published ports "HOST:CONTAINER", optionally "/tcp" or "/udp"; ports 1 to 65535.
    #[serde(default)]
    #[schemars(length(max = 64), inner(pattern(PORT_PATTERN)))]
    pub ports: Vec<String>,
    /// The container's IPv4 address on the tenant's network, like
    /// "10.100.0.10": inside network.ipv4's subnet, not its gateway, network
    /// or broadcast address, unique in the tenant. Default: derived from the
    /// name.
    #[schemars(pattern(IPV4_PATTERN))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// A virtual machine, run by systemd-vmspawn (or qemu where vmspawn is missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Vm {
    /// Name of the disk image (images/<name>.json).
    #[schemars(pattern(IMAGE_PATTERN))]
    pub image: String,
    /// Virtual CPUs, 1 to 256.
    #[serde(default = "default_cpus")]
    #[schemars(range(min = 1, max = 256))]
    pub cpus: u32,
    /// Memory: bytes or with a K, M, G or T suffix, like "2G".
    #[serde(default = "default_memory")]
    #[schemars(pattern(SIZE_PATTERN))]
    pub memory: String,
    /// The VM's IPv4 address on the tenant's network (as for containers).
    /// Default: derived from the name.
    #[schemars(pattern(IPV4_PATTERN))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

fn default_cpus() -> u32 {
    1
}

fn default_memory() -> String {
    "1G".to_owned()
}
