//! Properties of the parser and the fleet checks.

use bbhv_spec::{Tenant, check_fleet};
use proptest::prelude::*;

const EXAMPLE: &str = r#"{
  "schemaVersion": 1,
  "id": "acme",
  "description": "Acme",
  "resources": { "cpuQuota": "200%", "memoryMax": "4G", "memoryHigh": "3G", "tasksMax": 512 },
  "network": { "vlan": 100, "ipv4": "10.100.0.1/24", "dns": ["10.100.0.1"] },
  "containers": { "web": { "image": "debian", "command": ["/bin/sh", "-c", "x"], "ports": ["8080:80"] } }
}"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Whatever the bytes, the parser answers (a tenant or diagnostics that
    /// point inside the file); it never panics.
    #[test]
    fn mangled_metadata_never_panics(cut in 0..EXAMPLE.len(), insert in "\\PC{0,8}", at in 0..EXAMPLE.len()) {
        let mut text = EXAMPLE.to_owned();
        if text.is_char_boundary(at) { text.insert_str(at, &insert); }
        if text.is_char_boundary(cut) { text.truncate(cut.max(at)); }
        let lines = text.lines().count().max(1);
        if let Err(diagnostics) = Tenant::parse("m.json", "acme", &text) {
            prop_assert!(!diagnostics.is_empty());
            for d in diagnostics {
                prop_assert!(d.line >= 1 && d.line <= lines + 1, "{d} ({lines} lines)");
            }
        }
    }

    /// The fleet check fails exactly the tenants that a brute-force,
    /// first-claimer-wins pass fails: those overlapping a subnet kept before.
    #[test]
    fn subnet_overlaps_match_brute_force(nets in prop::collection::vec((0u8..4, 0u8..4, 20u8..27), 1..16)) {
        let mut tenants = Vec::new();
        let mut ranges = Vec::new();
        for (i, (b, c, prefix)) in nets.iter().enumerate() {
            let id = format!("t{i:02}");
            let cidr = format!("10.{b}.{}.1/{prefix}", c * 64);
            let text = format!(r#"{{ "schemaVersion": 1, "id": "{id}", "network": {{ "ipv4": "{cidr}" }} }}"#);
            tenants.push(Tenant::parse("m.json", &id, &text).unwrap());
            let addr = u32::from_be_bytes([10, *b, c * 64, 1]);
            let mask = u32::MAX << (32 - u32::from(*prefix));
            ranges.push((addr & mask, (addr & mask) | !mask));
        }
        let overlaps = |a: (u32, u32), b: (u32, u32)| a.0 <= b.1 && b.0 <= a.1;
        let mut kept: Vec<(u32, u32)> = Vec::new();
        let mut expected = Vec::new();
        for (j, r) in ranges.iter().enumerate() {
            if kept.iter().any(|k| overlaps(*k, *r)) { expected.push(j); } else { kept.push(*r); }
        }
        let found: Vec<usize> = check_fleet(&tenants, &[]).into_iter().map(|c| c.index).collect();
        prop_assert_eq!(found, expected);
    }

    /// The incumbents of a consistent applied generation never lose a VLAN
    /// to a newcomer, whatever the ids; among newcomers the first by id wins.
    #[test]
    fn incumbents_keep_their_vlans(vlans in prop::collection::vec((1u16..6, any::<bool>()), 1..16)) {
        let mut tenants = Vec::new();
        let mut applied: Vec<Tenant> = Vec::new();
        let mut held = std::collections::HashSet::new();
        for (i, (vlan, incumbent)) in vlans.iter().enumerate() {
            let id = format!("t{i:02}");
            let text = format!(r#"{{ "schemaVersion": 1, "id": "{id}", "network": {{ "vlan": {vlan} }} }}"#);
            let tenant = Tenant::parse("m.json", &id, &text).unwrap();
            // A valid applied generation holds each VLAN once.
            if *incumbent && held.insert(*vlan) {
                applied.push(tenant.clone());
            }
            tenants.push(tenant);
        }
        let failed: std::collections::HashSet<usize> =
            check_fleet(&tenants, &applied).into_iter().map(|c| c.index).collect();
        let mut taken = held.clone();
        for (i, t) in tenants.iter().enumerate() {
            let vlan = vlans[i].0;
            let is_incumbent = applied.iter().any(|a| a.id == t.id);
            let should_fail = !is_incumbent && !taken.insert(vlan);
            prop_assert_eq!(failed.contains(&i), should_fail, "tenant {} vlan {}", i, vlan);
        }
    }
}
