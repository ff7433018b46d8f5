//! What `render_tenant` writes for an accepted tenant, checked file by
//! file (shared by the `metadata` and `tenant_files` targets).

use std::path::{Component, Path, PathBuf};

use bbhv_render::{Entry, Facts, Root, render_tenant};
use bbhv_spec::Tenant;
use bbhv_spec::names::Template;
use bbhv_spec::values::Size;
use bbhv_unit::{Reader, unescape_specifiers, unquote_verbatim};

const ROOT: &str = "/var/lib/bitbuilder/generations/0123abcd";
const COMMIT: &str = "0123abcd0123abcd0123abcd0123abcd0123abcd";

/// The keys `render_tenant` writes into a slice, per section, in order.
const UNIT_KEYS: &[&str] = &["Description", "SourcePath"];
/// What the generated tenant@<id>.service may set.
const TENANT_UNIT_KEYS: &[&str] = &[
    "Description",
    "SourcePath",
    "DefaultDependencies",
    "PartOf",
    "Before",
    "Requires",
    "Wants",
    "Type",
    "RemainAfterExit",
    "Slice",
    "ExecStop",
];
const SLICE_KEYS: &[&str] = &[
    "CPUQuota",
    "CPUWeight",
    "MemoryMax",
    "MemoryHigh",
    "IOWeight",
    "TasksMax",
];

/// Renders the tenant, checks every entry, and returns them.
pub fn check_render(tenant: &Tenant) -> Vec<Entry> {
    let facts = Facts::new("tenant-generator", ROOT, Some(COMMIT)).expect("valid facts");
    let entries = render_tenant(tenant, &facts);
    let id = &tenant.id;

    let mut files = Vec::new();
    let mut links = Vec::new();
    for entry in &entries {
        let path = entry.path();
        assert!(
            path.components().all(|c| matches!(c, Component::Normal(_))),
            "{path:?} is not a plain relative path"
        );
        if entry.root() == Root::Network {
            check_network_file(tenant, entry);
            continue;
        }
        assert!(
            matches!(entry.root(), Root::Units | Root::Nspawn),
            "{entry:?}"
        );
        match entry {
            Entry::File {
                root,
                path,
                content,
            } => {
                files.push(path.clone());
                if *root == Root::Nspawn {
                    check_nspawn(tenant, path, content);
                } else if path == Path::new(&id.slice()) {
                    check_slice(tenant, content);
                } else if path == Path::new(&id.instance(Template::Tenant)) {
                    check_tenant_unit(tenant, content);
                } else if path == Path::new(&id.instance(Template::Network)) {
                    assert!(tenant.network.is_some(), "{path:?}");
                } else if path.to_str().is_some_and(|p| p.starts_with("tenant-vm@")) {
                    check_vm_unit(tenant, path, content);
                } else {
                    check_container_unit(tenant, path, content);
                }
            }
            Entry::Symlink { path, target, .. } => {
                // tenants.target.wants/tenant@<id>.service -> ../tenant@<id>.service
                assert_eq!(
                    target,
                    &Path::new("..").join(id.instance(Template::Tenant)),
                    "{path:?}"
                );
                links.push(path.clone());
            }
        }
    }
    let mut expected_files = vec![
        PathBuf::from(id.slice()),
        PathBuf::from(id.instance(Template::Tenant)),
    ];
    if tenant.network.is_some() {
        expected_files.push(PathBuf::from(id.instance(Template::Network)));
    }
    for c in &tenant.containers {
        expected_files.push(PathBuf::from(format!(
            "{}.nspawn",
            id.machine(c.name.as_str())
        )));
        expected_files.push(PathBuf::from(id.machine_unit(c.name.as_str())));
    }
    for v in &tenant.vms {
        expected_files.push(PathBuf::from(id.vm_unit(v.name.as_str())));
    }
    files.sort();
    expected_files.sort();
    assert_eq!(files, expected_files, "{entries:#?}");
    let mut expected = Vec::new();
    if tenant.enabled {
        expected.push(Path::new("tenants.target.wants").join(id.instance(Template::Tenant)));
    }
    assert_eq!(links, expected, "{entries:#?}");
    let network = entries.iter().filter(|e| e.root() == Root::Network).count();
    assert_eq!(network > 0, tenant.network.is_some(), "{entries:#?}");
    entries
}

/// A networkd file: `bbhv-*`, a plain file, reading back with no more
/// sections than networkd knows from us.
fn check_network_file(tenant: &Tenant, entry: &Entry) {
    let Entry::File { path, content, .. } = entry else {
        panic!("a link among the networkd files: {entry:?}");
    };
    let name = path.to_str().expect("UTF-8");
    assert!(name.starts_with("bbhv-") && !name.contains('/'), "{name}");
    assert!(tenant.network.is_some());
    let reader =
        bbhv_unit::Reader::parse(content).unwrap_or_else(|e| panic!("{name}: {e}\n{content}"));
    for section in reader.section_names() {
        assert!(
            [
                "NetDev",
                "VLAN",
                "WireGuard",
                "WireGuardPeer",
                "Match",
                "Link",
                "Network",
                "DHCPServer",
                "IPv6SendRA",
                "IPv6Prefix",
                "RoutingPolicyRule",
                "Address",
                "TokenBucketFilter"
            ]
            .contains(&section),
            "{name}: [{section}]"
        );
    }
}

/// The generated tenant@<id>.service: in its slice, requiring its network
/// when it has one, running nothing but `/bin/true` at stop.
fn check_tenant_unit(tenant: &Tenant, content: &str) {
    let reader = Reader::parse(content)
        .unwrap_or_else(|e| panic!("the rendered unit does not read: {e}\n{content}"));
    assert_eq!(reader.section_names(), ["Unit", "Service"], "{content}");
    let one = |section: &str, key: &str| {
        let raw = reader.values(section, key);
        assert_eq!(raw.len(), 1, "{key}:\n{content}");
        unescape_specifiers(raw[0]).unwrap_or_else(|e| panic!("{key}: {e}\n{content}"))
    };
    assert_eq!(one("Service", "Slice"), tenant.id.slice(), "{content}");
    assert_eq!(one("Service", "ExecStop"), "/bin/true", "{content}");
    assert!(
        reader.values("Service", "ExecStart").is_empty(),
        "{content}"
    );
    let requires = reader.values("Unit", "Requires");
    let network = tenant.id.instance(Template::Network);
    let expected: Vec<&str> = if tenant.network.is_some() {
        vec![network.as_str()]
    } else {
        Vec::new()
    };
    assert_eq!(requires, expected, "{content}");
    let keys: Vec<&str> = reader
        .sections
        .iter()
        .flat_map(|(_, entries)| entries.iter().map(|(k, _)| k.as_str()))
        .collect();
    for key in keys {
        assert!(
            TENANT_UNIT_KEYS.contains(&key),
            "render wrote {key}=:\n{content}"
        );
    }
}

/// `<tenant>.<name>.nspawn`: the command and environment read back, with
/// nspawn's rules, exactly as declared; nothing else is in it.
fn check_nspawn(tenant: &Tenant, path: &Path, content: &str) {
    let c = tenant
        .containers
        .iter()
        .find(|c| Path::new(&format!("{}.nspawn", tenant.id.machine(c.name.as_str()))) == path)
        .unwrap_or_else(|| panic!("{path:?} is no container's"));
    let reader = Reader::parse(content)
        .unwrap_or_else(|e| panic!("the .nspawn file does not read: {e}\n{content}"));
    assert_eq!(
        reader.section_names(),
        ["Exec", "Files", "Network"],
        "{content}"
    );
    let params = reader.values("Exec", "Parameters");
    match &c.command {
        Some(command) => {
            assert_eq!(params.len(), 1, "{content}");
            assert_eq!(
                unquote_verbatim(params[0]).unwrap(),
                command.argv(),
                "{content}"
            );
        }
        None => {
            assert!(params.is_empty(), "{content}");
            assert_eq!(reader.values("Exec", "Boot"), ["yes"], "{content}");
        }
    }
    let env: Vec<String> = reader
        .values("Exec", "Environment")
        .into_iter()
        .flat_map(|raw| unquote_verbatim(raw).unwrap())
        .collect();
    let expected: Vec<String> = c
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(env, expected, "{content}");
}

/// `systemd-nspawn@<tenant>.<name>.service`: in the tenant's slice, part of
/// the tenant.
fn check_container_unit(tenant: &Tenant, path: &Path, content: &str) {
    assert!(
        tenant
            .containers
            .iter()
            .any(|c| Path::new(&tenant.id.machine_unit(c.name.as_str())) == path),
        "{path:?} is no container's"
    );
    workload_unit(tenant, "container", content);
}

/// What every workload unit is: it reads, has [Unit] and [Service], sits in
/// the tenant's slice and is part of the tenant.
fn workload_unit(tenant: &Tenant, what: &str, content: &str) -> Reader {
    let reader = Reader::parse(content)
        .unwrap_or_else(|e| panic!("the {what} unit does not read: {e}\n{content}"));
    assert_eq!(reader.section_names(), ["Unit", "Service"], "{content}");
    assert_eq!(
        reader.values("Service", "Slice"),
        [tenant.id.slice().as_str()],
        "{content}"
    );
    assert_eq!(
        reader.values("Unit", "PartOf"),
        [tenant.id.instance(Template::Tenant).as_str()],
        "{content}"
    );
    reader
}

/// `tenant-vm@<tenant>_<name>.service`: in the tenant's slice, part of the
/// tenant, running `bbhv vm run` with the VM's typed values as separate
/// arguments.
fn check_vm_unit(tenant: &Tenant, path: &Path, content: &str) {
    let vm = tenant
        .vms
        .iter()
        .find(|v| Path::new(&tenant.id.vm_unit(v.name.as_str())) == path)
        .unwrap_or_else(|| panic!("{path:?} is no VM's"));
    let reader = workload_unit(tenant, "VM", content);
    let start = reader.values("Service", "ExecStart");
    assert_eq!(start.len(), 1, "{content}");
    let argv = bbhv_unit::unquote_words(start[0], true, true)
        .unwrap_or_else(|e| panic!("ExecStart does not read: {e}\n{content}"));
    let memory = vm.memory.bytes().to_string();
    let cpus = vm.cpus.to_string();
    for (flag, value) in [
        ("--image", vm.image.as_str()),
        ("--memory", memory.as_str()),
        ("--cpus", cpus.as_str()),
    ] {
        let at = argv.iter().position(|a| a == flag).expect(flag);
        assert_eq!(argv[at + 1], value, "{content}");
    }
}

fn check_slice(tenant: &Tenant, content: &str) {
    let reader = Reader::parse(content)
        .unwrap_or_else(|e| panic!("the rendered slice does not read: {e}\n{content}"));
    assert_eq!(reader.section_names(), ["Unit", "Slice"], "{content}");
    for (section, entries) in &reader.sections {
        for (key, _) in entries {
            assert!(
                UNIT_KEYS.contains(&key.as_str()) || SLICE_KEYS.contains(&key.as_str()),
                "render wrote {key}= in [{section}]:\n{content}"
            );
        }
    }
    let unit: Vec<&str> = reader.sections[0]
        .1
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(unit, UNIT_KEYS, "{content}");

    let text = |key: &str| {
        let raw = reader.values("Unit", key);
        assert_eq!(raw.len(), 1, "{key}:\n{content}");
        unescape_specifiers(raw[0]).unwrap_or_else(|e| panic!("{key}: {e}\n{content}"))
    };
    let title = format!("Tenant {}", tenant.id);
    let description = match &tenant.description {
        Some(d) => format!("{title}: {d}"),
        None => title,
    };
    assert_eq!(text("Description"), description, "{content}");
    assert_eq!(
        text("SourcePath"),
        format!("{ROOT}/tenants/{}/metadata.json", tenant.id),
        "{content}"
    );

    let r = &tenant.resources;
    let expected: Vec<(&str, String)> = [
        ("CPUQuota", r.cpu_quota.map(|p| format!("{}%", p.get()))),
        ("CPUWeight", r.cpu_weight.map(|n| n.to_string())),
        ("MemoryMax", r.memory_max.map(|s| s.to_string())),
        ("MemoryHigh", r.memory_high.map(|s| s.to_string())),
        ("IOWeight", r.io_weight.map(|n| n.to_string())),
        ("TasksMax", r.tasks_max.map(|n| n.to_string())),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    let slice: Vec<(&str, String)> = reader.sections[1]
        .1
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    assert_eq!(slice, expected, "{content}");
    for (key, value) in &slice {
        if key.starts_with("Memory") {
            let bytes = Size::parse(value).unwrap_or_else(|e| panic!("{key}={value}: {e}"));
            let typed = if *key == "MemoryMax" {
                r.memory_max
            } else {
                r.memory_high
            };
            assert_eq!(Some(bytes), typed, "{key}={value}");
        }
    }
}
