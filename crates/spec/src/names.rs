//! Names derived from a tenant: units, machines, network interfaces. One
//! place decides them, so the renderer and the cross-tenant checks agree.

use std::fmt;

use bbhv_unit::Token;

/// A tenant id: `[a-z][a-z0-9-]{0,30}`, not ending in a dash. Only the
/// parser and tests build one, so holding a `TenantId` means it is valid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(id: &str) -> Option<TenantId> {
        is_name(id).then(|| TenantId(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a token for unit files (its alphabet is a token's).
    pub fn token(&self) -> Token {
        Token::new(self.0.as_str()).expect("an id is a token")
    }

    /// `tenants/<id>/metadata.json`, relative to the repository root.
    pub fn metadata_file(&self) -> Token {
        Token::new(format!("tenants/{}/metadata.json", self.0)).expect("an id makes a token path")
    }

    /// Which of the [`SLICE_BUCKETS`] slices under `tenants.slice` holds the
    /// tenant's slice: two hex digits of a hash of the id, stable across
    /// hosts and versions.
    pub fn bucket(&self) -> String {
        format!("{:02x}", fnv1a(self.0.as_bytes()) % SLICE_BUCKETS)
    }

    /// `tenants-<bucket>-<id>.slice`, with the id's dashes escaped as `\x2d`
    /// (in a slice name a dash means nesting: `tenants-2a-acme-prod.slice`
    /// would sit inside a tenant `acme`'s slice). Its parent is
    /// `tenants-<bucket>.slice`, a child of `tenants.slice`: thousands of
    /// siblings in one slice make systemd quadratic (docs/architecture.md).
    pub fn slice(&self) -> String {
        format!(
            "tenants-{}-{}.slice",
            self.bucket(),
            self.0.replace('-', "\\x2d")
        )
    }

    /// `tenant@<id>.service`, and likewise for the other per-tenant templates.
    /// The instance is the id as it is: the templates use `%i` (never `%I`,
    /// which would turn its dashes into slashes) and name no slice from it.
    pub fn instance(&self, template: Template) -> String {
        format!("{}@{}.service", template.prefix(), self.0)
    }

    /// [`TenantId::instance`] as a token for unit files.
    pub fn unit_token(&self, template: Template) -> Token {
        Token::new(self.instance(template)).expect("an instance name is a token")
    }

    /// [`TenantId::slice`] as a token for unit files.
    pub fn slice_token(&self) -> Token {
        Token::new(self.slice()).expect("a slice name is a token")
    }

    /// The machine name of a container or VM: `<tenant>.<name>`, at most 63
    /// characters. A dot occurs in neither name, so every pair of tenant and
    /// workload has its own machine name (`a` + `b-c` is `a.b-c`, `a-b` +
    /// `c` is `a-b.c`) and no fleet check is needed; dots are valid in
    /// machine and host names (two labels of at most 31 characters).
    pub fn machine(&self, workload: &str) -> String {
        format!("{}.{workload}", self.0)
    }

    /// `systemd-nspawn@<tenant>.<name>.service`: the container's unit,
    /// generated whole (an instance's own file beats the template, so
    /// `machinectl start/stop` reach it).
    pub fn machine_unit(&self, workload: &str) -> String {
        format!("systemd-nspawn@{}.service", self.machine(workload))
    }

    /// The host end of a workload's veth (or its tap): `vw-` and 12 base32
    /// characters (60 bits) of an FNV-1a hash of `<tenant>.<name>`, 15 bytes.
    /// Unique in the fleet by the fleet check (a collision is a conflict the
    /// incumbent wins); at 60 bits, 100,000 workloads collide with odds of
    /// about 1 in 200,000,000.
    pub fn workload_interface(&self, workload: &str) -> String {
        let hash = fnv1a(self.machine(workload).as_bytes());
        format!("{}{}", InterfacePrefix::Workload.as_str(), base32(hash, 12))
    }

    /// `tenant-vm@<tenant>_<vm>.service`: `_` cannot occur in either name, so
    /// the split is unambiguous. (`:` would read better, but systemd 252's
    /// `systemd-analyze verify` cannot load such instances.)
    pub fn vm_unit(&self, vm: &str) -> String {
        format!("tenant-vm@{}.service", self.vm_instance(vm))
    }

    /// `<tenant>_<vm>`: the instance of `tenant-vm@`, and the name of the
    /// VM's runtime directory `/run/bitbuilder/vm/<tenant>_<vm>`.
    pub fn vm_instance(&self, vm: &str) -> String {
        format!("{}_{vm}", self.0)
    }

    /// The VM's tap on the tenant's bridge: `tv-` and 12 base32 characters
    /// of the same hash as [`TenantId::workload_interface`] (a VM has a tap
    /// where a container has a veth; a workload has one or the other).
    pub fn vm_tap(&self, vm: &str) -> String {
        let hash = fnv1a(self.machine(vm).as_bytes());
        format!("{}{}", InterfacePrefix::Tap.as_str(), base32(hash, 12))
    }

    /// The VM's MAC address: locally administered, unicast (`02:` then 40
    /// bits of a hash of `vm:<tenant>.<vm>`), stable across hosts, so a
    /// guest keeps its interface name and a DHCP server its lease.
    pub fn vm_mac(&self, vm: &str) -> String {
        let hash = fnv1a(format!("vm:{}", self.machine(vm)).as_bytes());
        let b = hash.to_be_bytes();
        format!(
            "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[3], b[4], b[5], b[6], b[7]
        )
    }

    /// A network interface name of at most 15 bytes (IFNAMSIZ - 1): `prefix`
    /// and the id when they fit, else `prefix`, the id's first 4 characters,
    /// `_` and 7 base32 characters (35 bits) of a hash of the whole id. No id
    /// has a `_`, so no id's full form can equal another's short form (an id
    /// `cust-dur6p74` cannot take `customer-00001-prod`'s name). Ids named in
    /// series (`customer-00001-prod`, ...) share their heads, so the hash
    /// carries the uniqueness: at 35 bits, 10,000 such tenants collide with
    /// odds of about 1 in 700. A collision, chance or crafted, is a fleet
    /// conflict that the tenant holding the name wins.
    pub fn interface(&self, prefix: InterfacePrefix) -> String {
        let prefix = prefix.as_str();
        let full = format!("{prefix}{}", self.0);
        if full.len() <= IFNAME_MAX {
            return full;
        }
        let tail = base32(fnv1a(self.0.as_bytes()), 7);
        let keep = IFNAME_MAX - prefix.len() - 1 - tail.len();
        let head = self.0[..keep].trim_end_matches('-');
        format!("{prefix}{head}_{tail}")
    }
}

impl TenantId {
    /// [`TenantId::interface`] as a token for networkd files (its alphabet,
    /// `[a-z0-9_-]`, is a token's).
    pub fn interface_token(&self, prefix: InterfacePrefix) -> Token {
        Token::new(self.interface(prefix)).expect("an interface name is a token")
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bucket slices under `tenants.slice`. 64 keeps both levels short from a
/// few hundred to ten thousand tenants (at 5,000: 64 buckets of about 80).
pub const SLICE_BUCKETS: u64 = 64;

/// The longest interface name the kernel takes.
pub const IFNAME_MAX: usize = 15;

/// The static per-tenant templates (fixed names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Tenant,
    Infra,
    Network,
}

impl Template {
    pub fn prefix(self) -> &'static str {
        match self {
            Template::Tenant => "tenant",
            Template::Infra => "tenant-infra",
            Template::Network => "tenant-network",
        }
    }
}

/// What a tenant's interface is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfacePrefix {
    /// `bt-`: the tenant's bridge.
    Bridge,
    /// `vt-`: its VLAN link on the uplink, a port of the bridge.
    Vlan,
    /// `wt-`: its WireGuard link.
    WireGuard,
    /// The IFB device the tenant's egress is shaped on.
    Egress,
    /// A container's veth ([`TenantId::workload_interface`]), not one of
    /// the tenant's own links (not in [`InterfacePrefix::ALL`]).
    Workload,
    /// A VM's tap ([`TenantId::vm_tap`]), likewise.
    Tap,
}

impl InterfacePrefix {
    pub const ALL: [InterfacePrefix; 4] = [
        InterfacePrefix::Bridge,
        InterfacePrefix::Vlan,
        InterfacePrefix::WireGuard,
        InterfacePrefix::Egress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InterfacePrefix::Bridge => "bt-",
            InterfacePrefix::Vlan => "vt-",
            InterfacePrefix::WireGuard => "wt-",
            InterfacePrefix::Egress => "et-",
            InterfacePrefix::Workload => "vw-",
            InterfacePrefix::Tap => "tv-",
        }
    }
}

/// `[a-z][a-z0-9-]{0,30}`, not ending in a dash (ids, container and VM names).
pub fn is_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 31
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

/// The low `n` * 5 bits of `hash` in lowercase base32, lowest first.
fn base32(hash: u64, n: usize) -> String {
    const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    (0..n)
        .map(|i| char::from(BASE32[((hash >> (5 * i)) & 31) as usize]))
        .collect()
}

/// 64-bit FNV-1a: tiny, stable across versions and platforms.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_names_nest_in_buckets_and_escape_dashes() {
        let id = TenantId::new("acme-prod").unwrap();
        let bucket = id.bucket();
        assert_eq!(bucket.len(), 2);
        assert_eq!(id.slice(), format!("tenants-{bucket}-acme\\x2dprod.slice"));
        assert_eq!(id.instance(Template::Tenant), "tenant@acme-prod.service");
        assert_eq!(
            id.instance(Template::Network),
            "tenant-network@acme-prod.service"
        );
        assert_eq!(id.machine("web"), "acme-prod.web");
        assert_eq!(
            id.machine_unit("web"),
            "systemd-nspawn@acme-prod.web.service"
        );
        assert_eq!(id.vm_unit("db"), "tenant-vm@acme-prod_db.service");
        assert_eq!(id.vm_instance("db"), "acme-prod_db");
        let tap = id.vm_tap("db");
        assert!(tap.starts_with("tv-") && tap.len() == IFNAME_MAX, "{tap}");
        assert_eq!(&tap[3..], &id.workload_interface("db")[3..]);
        let mac = id.vm_mac("db");
        assert_eq!(mac.len(), 17);
        assert!(
            mac.starts_with("02:"),
            "locally administered, unicast: {mac}"
        );
        assert_ne!(mac, id.vm_mac("dc"));
        assert_eq!(mac, id.vm_mac("db"), "stable");
        // Serial ids spread over the buckets.
        let buckets: std::collections::HashSet<String> = (0..1000)
            .map(|i| TenantId::new(&format!("customer-{i:05}")).unwrap().bucket())
            .collect();
        assert_eq!(buckets.len() as u64, SLICE_BUCKETS);
    }

    #[test]
    fn interface_names_fit_ifnamsiz() {
        let short = TenantId::new("acme").unwrap();
        assert_eq!(short.interface(InterfacePrefix::Bridge), "bt-acme");
        let long = TenantId::new("a-very-long-tenant-name-indeed").unwrap();
        let name = long.interface(InterfacePrefix::Bridge);
        assert!(name.len() <= IFNAME_MAX, "{name}");
        assert!(name.starts_with("bt-a-ve_"), "{name}");
        assert_eq!(name.len(), IFNAME_MAX);
        assert_eq!(name, long.interface(InterfacePrefix::Bridge), "stable");
        let other = TenantId::new("a-very-long-tenant-name-too").unwrap();
        assert_ne!(name, other.interface(InterfacePrefix::Bridge));
    }

    #[test]
    fn a_full_name_never_equals_a_short_one() {
        // The forgery of issue #6: an id equal to another id's short form.
        let long = TenantId::new("customer-00001-prod").unwrap();
        let short = long.interface(InterfacePrefix::Bridge);
        let forged = TenantId::new(
            short
                .strip_prefix("bt-")
                .unwrap()
                .replace('_', "-")
                .as_str(),
        )
        .unwrap();
        assert_ne!(forged.interface(InterfacePrefix::Bridge), short);
        assert!(short.contains('_'), "{short}");
    }

    #[test]
    fn serial_ids_do_not_collide() {
        // The case that matters: ids that differ only at the end.
        let names: std::collections::HashSet<String> = (0..10_000)
            .map(|i| {
                TenantId::new(&format!("customer-{i:05}-prod"))
                    .unwrap()
                    .interface(InterfacePrefix::Bridge)
            })
            .collect();
        assert_eq!(names.len(), 10_000);
    }

    #[test]
    fn machine_names_are_unambiguous() {
        let a = TenantId::new("a").unwrap();
        let ab = TenantId::new("a-b").unwrap();
        assert_ne!(a.machine("b-c"), ab.machine("c"));
        assert_ne!(a.workload_interface("b-c"), ab.workload_interface("c"));
        let longest = TenantId::new(&"t".repeat(31)).unwrap();
        assert_eq!(longest.machine(&"w".repeat(31)).len(), 63);
    }

    #[test]
    fn workload_interfaces_fit_and_do_not_collide() {
        let mut names = std::collections::HashSet::new();
        for t in 0..100 {
            let id = TenantId::new(&format!("customer-{t:05}")).unwrap();
            for w in 0..100 {
                let name = id.workload_interface(&format!("web-{w}"));
                assert_eq!(name.len(), IFNAME_MAX, "{name}");
                assert!(name.starts_with("vw-"), "{name}");
                names.insert(name);
            }
        }
        assert_eq!(names.len(), 10_000);
    }

    #[test]
    fn names() {
        for ok in ["a", "acme", "a-b", "a1", "abcdefghijabcdefghijabcdefghija"] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "1a",
            "a-",
            "-a",
            "a_b",
            "a.b",
            "abcdefghijabcdefghijabcdefghijab",
            "a b",
            "é",
        ] {
            assert!(!is_name(bad), "{bad}");
        }
    }
}
