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

#[path = "common/render.rs"]
mod render;

use bbhv_spec::values::{Percent, PortMapping, Rate, Size};
use bbhv_spec::{Diagnostic, MAX_DIAGNOSTICS, Metadata, Tenant, parse_metadata};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const FILE: &str = "tenants/t/metadata.json";
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
    render::check_render(&tenant);
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
