//! `bbhv_spec::Tenant::parse` (text → validated `Tenant`) on arbitrary
//! text, and `bbhv_render::render_tenant` on what it accepts.
//!
//! Asserts:
//! - it never panics (the serde_json fast path, or the slow path that
//!   positions the problems: syntax tree, schema, typed values);
//! - an `Err` holds 1 to `MAX_DIAGNOSTICS` + 1 diagnostics; more than
//!   `MAX_DIAGNOSTICS` only as that many positioned ones and a last
//!   "N more problems" line; each names the file, a line of the text
//!   (1 ..= lines + 1, the empty line after a final newline included), a
//!   column inside that line (1 ..= characters + 1), an empty or `/`-rooted
//!   pointer and a message; a text that starts with a BOM gets exactly one,
//!   which names the BOM;
//! - `parse_metadata` (the raw stage) refuses nothing `Tenant::parse`
//!   accepts;
//! - an `Ok` tenant has the directory's id and the file's name, and the
//!   text is JSON that serde_json alone reads (as `Value` and as the same
//!   raw `Metadata`): the slow path accepts nothing serde_json refuses;
//! - the raw metadata, serialized by serde_json (pretty and compact) and
//!   parsed again, gives the same raw metadata and an equal `Tenant`;
//! - the typed values agree with the raw ones (containers and VMs sorted by
//!   name, ports and sizes as written) and print in a form that parses back
//!   to themselves;
//! - `render_tenant` never panics; it writes exactly one file, the tenant's
//!   slice, which reads back through `bbhv_unit::Reader` as `[Unit]` with
//!   `Description`, `SourcePath`, `Before` and `[Slice]` with only
//!   `CPUQuota`, `CPUWeight`, `MemoryMax`, `MemoryHigh`, `IOWeight`,
//!   `TasksMax`, each present exactly when the tenant sets it and each value
//!   reading back as the tenant's; the symlinks are the ones the tenant's
//!   network, workloads and `enabled` call for; the networkd files (exactly
//!   when the tenant has a network) are `bbhv-*` and read back with only
//!   the sections the renderer writes.
//!
//! Regressions (regressions/metadata/, fixed in f911762): `1e555` gave
//! `Err` with no diagnostic; `Metadata` serialized absent keys as `null`,
//! which its own schema refuses.
//!
//! The directory name is the text's own `"id"` when it has one (so valid
//! seeds stay valid), else `t`.

#![no_main]

use std::path::{Component, Path, PathBuf};

use bbhv_render::{Entry, Facts, Root, render_tenant};
use bbhv_spec::names::Template;
use bbhv_spec::values::{Percent, PortMapping, Rate, Size};
use bbhv_spec::{Diagnostic, MAX_DIAGNOSTICS, Metadata, Tenant, parse_metadata};
use bbhv_unit::{Reader, unescape_specifiers, unquote_verbatim};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const FILE: &str = "tenants/t/metadata.json";
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

fuzz_target!(|data: &[u8]| {
    // Non-UTF-8 files are refused by the reader before they are parsed.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir_name = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("id")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "t".to_owned());

    let tenant = match Tenant::parse(FILE, &dir_name, text) {
        Err(diagnostics) => {
            check_diagnostics(text, &diagnostics);
            return;
        }
        Ok(tenant) => tenant,
    };
    assert!(!text.starts_with('\u{feff}'), "a BOM was accepted");
    assert_eq!(tenant.id.as_str(), dir_name);
    assert_eq!(tenant.file, FILE);

    // Whatever is accepted, serde_json accepts too, as the same metadata.
    serde_json::from_str::<Value>(text).unwrap_or_else(|e| {
        panic!("Tenant::parse accepted what serde_json refuses ({e}): {text:?}")
    });
    let direct: Metadata = serde_json::from_str(text).unwrap_or_else(|e| {
        panic!("Tenant::parse accepted what serde_json refuses as Metadata ({e}): {text:?}")
    });
    let raw = parse_metadata(FILE, text).unwrap_or_else(|d| {
        panic!(
            "Tenant::parse accepted what parse_metadata refuses: {text:?}\n{}",
            lines(&d)
        )
    });
    assert_eq!(raw, direct, "serde_json reads other values: {text:?}");
    assert_eq!(raw.id, dir_name);
    assert_eq!(raw.schema_version, 1);

    // The raw metadata survives its own serialization, as metadata and as
    // a tenant.
    for again in [
        serde_json::to_string_pretty(&raw).expect("metadata serializes"),
        serde_json::to_string(&raw).expect("metadata serializes"),
    ] {
        match parse_metadata(FILE, &again) {
            Ok(back) => assert_eq!(back, raw, "round trip changed it: {again}"),
            Err(d) => panic!(
                "the serialized metadata does not parse again:\n{again}\n{}",
                lines(&d)
            ),
        }
        match Tenant::parse(FILE, &dir_name, &again) {
            Ok(back) => assert_eq!(back, tenant, "round trip changed the tenant: {again}"),
            Err(d) => panic!(
                "the serialized metadata is no longer a tenant:\n{again}\n{}",
                lines(&d)
            ),
        }
    }

    check_typed(&tenant, &raw);
    check_render(&tenant);
});

fn lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(|d| format!("{d}\n")).collect()
}

fn is_count_line(d: &Diagnostic) -> bool {
    d.message
        .split_once(" more problems in this file are not shown")
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn check_diagnostics(text: &str, diagnostics: &[Diagnostic]) {
    assert!(!diagnostics.is_empty(), "Err without a diagnostic");
    assert!(
        diagnostics.len() <= MAX_DIAGNOSTICS + 1,
        "{} diagnostics (at most {} + a count):\n{}",
        diagnostics.len(),
        MAX_DIAGNOSTICS,
        lines(diagnostics)
    );
    // Only the last may be the count, and only it is past the cap.
    let counts = diagnostics.iter().filter(|d| is_count_line(d)).count();
    assert!(counts <= 1, "{}", lines(diagnostics));
    if counts == 1 {
        assert!(
            is_count_line(diagnostics.last().unwrap()),
            "the count is not last:\n{}",
            lines(diagnostics)
        );
    }
    assert!(
        diagnostics.len() - counts <= MAX_DIAGNOSTICS,
        "more than {MAX_DIAGNOSTICS} positioned:\n{}",
        lines(diagnostics)
    );
    if text.starts_with('\u{feff}') {
        assert_eq!(diagnostics.len(), 1, "{}", lines(diagnostics));
        assert!(
            diagnostics[0].message.contains("byte order mark"),
            "the BOM is not named: {}",
            diagnostics[0]
        );
    }

    // `split('\n')` counts the empty line after a final newline: lines + 1.
    let text_lines: Vec<&str> = text.split('\n').collect();
    for d in diagnostics {
        assert_eq!(d.file, FILE, "{d:?}");
        assert!(!d.message.is_empty(), "{d:?}");
        assert!(
            d.path.is_empty() || d.path.starts_with('/'),
            "not a JSON pointer: {d:?}"
        );
        // Tenant::parse always has the text, so every diagnostic has a
        // position (line 0 is only for `locate` on a changed file).
        assert!(d.line >= 1, "no line: {d:?}");
        assert!(
            d.line <= text_lines.len(),
            "line past the end ({} lines): {d:?}\n{text:?}",
            text_lines.len()
        );
        let width = text_lines[d.line - 1].chars().count();
        assert!(
            (1..=width + 1).contains(&d.column),
            "column outside line {} ({width} characters): {d:?}\n{text:?}",
            d.line
        );
    }
}

/// The typed tenant against the raw metadata it came from.
fn check_typed(tenant: &Tenant, raw: &Metadata) {
    assert_eq!(tenant.enabled, raw.enabled);
    assert_eq!(
        tenant.description.as_ref().map(|l| l.as_str()),
        (!raw.description.is_empty()).then_some(raw.description.as_str())
    );

    let r = &tenant.resources;
    let size = |typed: Option<Size>, raw: &Option<String>| {
        assert_eq!(typed, raw.as_deref().map(|t| Size::parse(t).unwrap()));
        if let Some(s) = typed {
            assert_eq!(Size::parse(&s.to_string()), Ok(s));
            assert_eq!(s.token().as_str(), s.to_string());
        }
    };
    size(r.memory_max, &raw.resources.memory_max);
    size(r.memory_high, &raw.resources.memory_high);
    size(r.storage_quota, &raw.resources.storage_quota);
    if let (Some(high), Some(max)) = (r.memory_high, r.memory_max) {
        assert!(high <= max, "memoryHigh {high} above memoryMax {max}");
    }
    assert_eq!(
        r.cpu_quota,
        raw.resources
            .cpu_quota
            .as_deref()
            .map(|t| Percent::parse(t).unwrap())
    );
    assert_eq!(r.cpu_weight, raw.resources.cpu_weight);
    assert_eq!(r.io_weight, raw.resources.io_weight);
    assert_eq!(r.tasks_max, raw.resources.tasks_max);

    assert_eq!(tenant.network.is_some(), raw.network.is_some());
    if let (Some(n), Some(rn)) = (&tenant.network, &raw.network) {
        assert_eq!(n.vlan, rn.vlan);
        assert_eq!(n.dhcp, rn.dhcp);
        assert_eq!(n.dns.len(), rn.dns.len());
        assert_eq!(n.ipv4.is_some(), rn.ipv4.is_some());
        assert_eq!(n.ipv6.is_some(), rn.ipv6.is_some());
        if let Some(net) = n.ipv4 {
            assert!(net.prefix_len() >= 1);
            assert_eq!(
                bbhv_spec::values::parse_ipv4_interface(&net.to_string()),
                Ok(net)
            );
        }
        if let Some(net) = n.ipv6 {
            assert!(net.prefix_len() >= 1);
            assert_eq!(
                bbhv_spec::values::parse_ipv6_interface(&net.to_string()),
                Ok(net)
            );
        }
        if let Some(rate) = n.egress_rate {
            assert_eq!(Rate::parse(&rate.to_string()), Ok(rate));
        }
        assert_eq!(n.wireguard.is_some(), rn.wireguard.is_some());
        if let (Some(wg), Some(rwg)) = (&n.wireguard, &rn.wireguard) {
            assert!(wg.listen_port > 0);
            assert_eq!(wg.listen_port, rwg.listen_port);
            assert_eq!(wg.peers.len(), rwg.peers.len());
            for (p, rp) in wg.peers.iter().zip(&rwg.peers) {
                assert_eq!(p.allowed_ips.len(), rp.allowed_ips.len());
                assert_eq!(p.endpoint.is_some(), rp.endpoint.is_some());
            }
        }
    }

    let names: Vec<&str> = tenant.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        raw.containers
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    for (c, rc) in tenant.containers.iter().zip(raw.containers.values()) {
        assert_eq!(c.image.as_str(), rc.image);
        assert_eq!(c.command.is_some(), rc.command.is_some());
        assert_eq!(c.environment.len(), rc.environment.len());
        assert_eq!(c.ports.len(), rc.ports.len());
        for (p, text) in c.ports.iter().zip(&rc.ports) {
            assert_eq!(PortMapping::parse(text).as_ref(), Ok(p));
            assert_eq!(PortMapping::parse(&p.to_string()).as_ref(), Ok(p));
            assert!(p.host > 0 && p.container > 0);
        }
    }
    let names: Vec<&str> = tenant.vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        raw.vms.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for (v, rv) in tenant.vms.iter().zip(raw.vms.values()) {
        assert_eq!(v.image.as_str(), rv.image);
        assert_eq!(v.cpus, rv.cpus);
        assert_eq!(Size::parse(&rv.memory), Ok(v.memory));
        assert!(v.memory.bytes() >= 64 << 20);
    }
}

fn check_render(tenant: &Tenant) {
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
    let reader = Reader::parse(content)
        .unwrap_or_else(|e| panic!("the container unit does not read: {e}\n{content}"));
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
    let reader = Reader::parse(content)
        .unwrap_or_else(|e| panic!("the VM unit does not read: {e}\n{content}"));
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
