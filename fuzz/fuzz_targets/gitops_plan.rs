//! The git-ops plan (`bbhv_gitops::plan`): two checkouts built from the fuzz
//! input, the applied one and the next, rendered with the generators' own
//! code (`plan::render`), diffed (`plan::diff`) and turned into unit jobs
//! (`plan::actions`).
//!
//! Each checkout is written to a temporary directory: `tenants/<id>/
//! metadata.json` from small pools (ids, images, values, commands), and
//! `images/<name>.json`; the next checkout keeps, changes, drops or adds
//! tenants and may change an image. Asserts:
//! - rendering is deterministic, and a tree diffed with itself is an empty
//!   plan whose actions are empty;
//! - the plan is the exact difference of the trees: every tenant of either
//!   tree is changed in the plan or has the same files in both, and the
//!   plan's files (added, removed, changed, with their units) are exactly
//!   the keys whose text differs; `unchanged` counts the rest;
//! - diffing the other way swaps added and removed;
//! - the actions touch only what changed: no unit of an unchanged tenant is
//!   stopped, restarted or started (unless a shared image mount it uses
//!   changed); stop, restart and start are disjoint; what is stopped existed
//!   before, what is started or restarted and every unit of the health gate
//!   exists after; every service and mount of a removed or disabled tenant
//!   is stopped; networkd reloads exactly when a networkd file changed.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arbitrary::Arbitrary;
use bbhv_generator::{Host, Tree};
use bbhv_gitops::plan::{self, Change, Plan};
use bbhv_render::Entry;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

#[derive(Debug, Arbitrary)]
struct Input {
    old: Vec<TenantSpec>,
    /// What the next checkout does with each old tenant, then new ones.
    edits: Vec<Edit>,
    added: Vec<TenantSpec>,
    /// The next checkout changes the VM image's command line.
    image_changed: bool,
}

#[derive(Debug, Arbitrary)]
enum Edit {
    Keep,
    Drop,
    Replace(TenantSpec),
    Toggle,
}

#[derive(Debug, Clone, Arbitrary)]
struct TenantSpec {
    id: u8,
    enabled: bool,
    description: Option<u8>,
    memory: Option<u8>,
    network: Option<(u8, bool)>,
    containers: Vec<(u8, Option<u8>, Vec<(u8, u8)>)>,
    vms: Vec<(u8, u8)>,
}

const IDS: &[&str] = &["a", "b", "a-b", "b-c", "acme", "globex", "c", "d"];
const NAMES: &[&str] = &["web", "db", "a", "a-b", "worker"];
const TEXTS: &[&str] = &[
    "plain",
    "100% %i %n ${HOME} $$",
    "quote \" and 'single'",
    "back\\slash \\n",
    "tab\there",
    "ünïcödé – ✓",
];
const COMMANDS: &[&[&str]] = &[
    &["/bin/sh", "-c", "sleep 1"],
    &["/bin/echo", "%n", "$HOME", "a b"],
    &["/usr/bin/env", "\"", "'", "\\"],
    &["/bin/true"],
];

fn pick<'a, T: ?Sized>(pool: &'a [&'a T], i: u8) -> &'a T {
    pool[usize::from(i) % pool.len()]
}

impl TenantSpec {
    fn id(&self) -> &'static str {
        pick(IDS, self.id)
    }

    fn json(&self) -> Value {
        let mut m = Map::new();
        m.insert("schemaVersion".into(), json!(1));
        m.insert("id".into(), json!(self.id()));
        m.insert("enabled".into(), json!(self.enabled));
        if let Some(d) = self.description {
            m.insert("description".into(), json!(pick(TEXTS, d)));
        }
        if let Some(mem) = self.memory {
            m.insert(
                "resources".into(),
                json!({"memoryMax": format!("{}M", 64 + u32::from(mem % 4) * 64)}),
            );
        }
        let net_index = IDS.iter().position(|i| *i == self.id()).unwrap_or(0);
        if let Some((prefix, dhcp)) = self.network {
            let mut n = Map::new();
            // One /24 per id, so that tenants never collide on subnets.
            n.insert(
                "ipv4".into(),
                json!(format!("10.{}.0.1/{}", 100 + net_index, 24 + prefix % 3)),
            );
            if dhcp {
                n.insert("dhcp".into(), json!(true));
            }
            m.insert("network".into(), Value::Object(n));
        }
        let mut containers = Map::new();
        for (name, command, env) in self.containers.iter().take(3) {
            let mut c = Map::new();
            c.insert("image".into(), json!("busybox"));
            if let Some(command) = command {
                c.insert("command".into(), json!(pick(COMMANDS, *command)));
            }
            let env: Map<String, Value> = env
                .iter()
                .take(3)
                .map(|(k, v)| (format!("VAR_{}", k % 4), json!(pick(TEXTS, *v))))
                .collect();
            if !env.is_empty() {
                c.insert("environment".into(), Value::Object(env));
            }
            containers.insert(pick(NAMES, *name).to_owned(), Value::Object(c));
        }
        if !containers.is_empty() {
            m.insert("containers".into(), Value::Object(containers));
        }
        let vms: Map<String, Value> = self
            .vms
            .iter()
            .take(2)
            .map(|(name, cpus)| {
                (
                    format!("vm-{}", pick(NAMES, *name)),
                    json!({"image": "tiny-vm", "cpus": 1 + cpus % 2, "memory": "256M"}),
                )
            })
            .collect();
        if !vms.is_empty() {
            m.insert("vms".into(), Value::Object(vms));
        }
        Value::Object(m)
    }
}

/// Writes a checkout: one file per tenant id (the last spec of an id wins)
/// and the two images.
fn write_checkout(root: &Path, tenants: &[TenantSpec], cmdline: &str) {
    let mut by_id = BTreeMap::new();
    for t in tenants.iter().take(6) {
        by_id.insert(t.id(), t);
    }
    for (id, t) in by_id {
        let dir = root.join("tenants").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("metadata.json"), t.json().to_string()).unwrap();
    }
    let images = root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(
        images.join("busybox.json"),
        r#"{ "schemaVersion": 1, "format": "directory", "file": "busybox" }"#,
    )
    .unwrap();
    let zero = "0".repeat(64);
    std::fs::write(
        images.join("tiny-vm.json"),
        json!({
            "schemaVersion": 1, "format": "vm",
            "kernel": "tiny-vm/vmlinuz", "kernelSha256": zero,
            "initrd": "tiny-vm/initrd.img", "initrdSha256": zero,
            "cmdline": cmdline
        })
        .to_string(),
    )
    .unwrap();
}

fn keyed(entries: &[Entry]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|e| {
            let key = format!("{}/{}", e.root().name(), e.path().display());
            let text = match e {
                Entry::File { content, .. } => content.clone(),
                Entry::Symlink { target, .. } => format!("-> {}\n", target.display()),
            };
            (key, text)
        })
        .collect()
}

fn units(entries: &[Entry]) -> BTreeSet<String> {
    keyed(entries)
        .keys()
        .filter_map(|k| plan::unit_of(k))
        .collect()
}

/// The plan is exactly the difference of the two trees.
fn check_diff(old: &Tree, new: &Tree, plan: &Plan) {
    let ids: BTreeSet<&String> = old.tenants.keys().chain(new.tenants.keys()).collect();
    let empty = Vec::new();
    let mut unchanged = 0;
    for id in &ids {
        let before = keyed(old.tenants.get(*id).unwrap_or(&empty));
        let after = keyed(new.tenants.get(*id).unwrap_or(&empty));
        let in_plan = plan.tenants.iter().find(|t| &&t.id == id);
        let mut expected = BTreeMap::new();
        for key in before.keys().chain(after.keys()) {
            let change = match (before.get(key), after.get(key)) {
                (None, Some(_)) => Change::Added,
                (Some(_), None) => Change::Removed,
                (Some(a), Some(b)) if a != b => Change::Changed,
                _ => continue,
            };
            expected.insert(key.clone(), change);
        }
        match in_plan {
            None => {
                assert!(
                    expected.is_empty(),
                    "{id}: unchanged in the plan: {expected:?}"
                );
                unchanged += 1;
            }
            Some(t) => {
                assert!(!expected.is_empty(), "{id}: in the plan with no change");
                let got: BTreeMap<String, Change> =
                    t.files.iter().map(|f| (f.path.clone(), f.change)).collect();
                assert_eq!(got, expected, "{id}");
                for f in &t.files {
                    assert_eq!(f.unit, plan::unit_of(&f.path), "{}", f.path);
                    if let Some(unit) = &f.unit {
                        assert!(t.units.contains_key(unit), "{id}: {unit}");
                    }
                }
                let tenant_change =
                    match (old.tenants.contains_key(*id), new.tenants.contains_key(*id)) {
                        (false, true) => Change::Added,
                        (true, false) => Change::Removed,
                        _ => Change::Changed,
                    };
                assert_eq!(t.change, tenant_change, "{id}");
            }
        }
    }
    assert_eq!(plan.unchanged, unchanged);
    assert_eq!(plan.tenants.len() + unchanged, ids.len());
    let (before, after) = (keyed(&old.shared), keyed(&new.shared));
    let changed: BTreeSet<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    let got: BTreeSet<&String> = plan.shared.iter().map(|f| &f.path).collect();
    assert_eq!(got, changed);
}

fn check_actions(old: &Tree, new: &Tree, plan: &Plan) {
    let actions = plan::actions(plan, old, new);
    let stop: BTreeSet<&String> = actions.stop.iter().collect();
    let restart: BTreeSet<&String> = actions.restart.iter().collect();
    let start: BTreeSet<&String> = actions.start.iter().collect();
    assert!(stop.is_disjoint(&restart), "{actions:?}");
    assert!(stop.is_disjoint(&start), "{actions:?}");
    assert!(restart.is_disjoint(&start), "{actions:?}");
    let empty = Vec::new();
    let units_before: BTreeSet<String> = old
        .tenants
        .values()
        .chain(std::iter::once(&old.shared))
        .flat_map(|e| units(e))
        .collect();
    let units_after: BTreeSet<String> = new
        .tenants
        .values()
        .chain(std::iter::once(&new.shared))
        .flat_map(|e| units(e))
        .collect();
    for unit in &stop {
        assert!(
            units_before.contains(*unit),
            "stops {unit}, which was not there"
        );
    }
    for unit in restart
        .iter()
        .chain(&start)
        .chain(&actions.health.iter().collect::<Vec<_>>())
    {
        assert!(
            units_after.contains(*unit),
            "{unit} is not in the new tree: {actions:?}"
        );
    }
    // Units of tenants that did not change, and not shared.
    let changed_shared: BTreeSet<String> =
        plan.shared.iter().filter_map(|f| f.unit.clone()).collect();
    let touched: BTreeSet<&String> = stop.iter().chain(&restart).chain(&start).copied().collect();
    for (id, entries) in &new.tenants {
        if plan.tenants.iter().any(|t| &t.id == id) {
            continue;
        }
        for unit in units(entries) {
            assert!(
                !touched.contains(&unit) || changed_shared.contains(&unit),
                "{unit} of unchanged tenant {id} is touched: {actions:?}"
            );
        }
    }
    for t in &plan.tenants {
        let after = new.tenants.get(&t.id).unwrap_or(&empty);
        let enabled = keyed(after).contains_key(&format!(
            "units/tenants.target.wants/tenant@{}.service",
            t.id
        ));
        if t.change == Change::Removed || !enabled {
            for unit in units(old.tenants.get(&t.id).unwrap_or(&empty)) {
                if unit.ends_with(".service") || unit.ends_with(".mount") {
                    assert!(stop.contains(&unit), "{unit} of {} is not stopped", t.id);
                }
            }
        }
    }
    let network_changed = plan
        .tenants
        .iter()
        .flat_map(|t| &t.files)
        .chain(&plan.shared)
        .any(|f| f.unit.is_none());
    assert_eq!(actions.reload_networks, network_changed, "{actions:?}");
}

fuzz_target!(|input: Input| {
    let dir = tempfile::tempdir().unwrap();
    let (old_root, new_root) = (dir.path().join("old"), dir.path().join("new"));
    let mut next = Vec::new();
    for (i, t) in input.old.iter().take(6).enumerate() {
        match input.edits.get(i).unwrap_or(&Edit::Keep) {
            Edit::Keep => next.push(t.clone()),
            Edit::Drop => {}
            Edit::Replace(other) => next.push(TenantSpec {
                id: t.id,
                ..other.clone()
            }),
            Edit::Toggle => next.push(TenantSpec {
                enabled: !t.enabled,
                ..t.clone()
            }),
        }
    }
    next.extend(input.added.iter().take(3).cloned());
    write_checkout(&old_root, &input.old, "quiet");
    let cmdline = if input.image_changed {
        "quiet console=ttyS0"
    } else {
        "quiet"
    };
    write_checkout(&new_root, &next, cmdline);

    let host = Host::defaults("/etc/bitbuilder/host.toml");
    let old = plan::render(&old_root, None, &host, false).expect("a checkout that opens");
    let new =
        plan::render(&new_root, Some(&old_root), &host, false).expect("a checkout that opens");
    let again = plan::render(&new_root, Some(&old_root), &host, false).unwrap();
    assert_eq!(
        keyed_tree(&new),
        keyed_tree(&again),
        "rendering is not deterministic"
    );

    let same = plan::diff(&new, &new);
    assert!(
        same.tenants.is_empty() && same.shared.is_empty(),
        "{same:?}"
    );
    assert_eq!(same.unchanged, new.tenants.len());
    assert!(plan::actions(&same, &new, &new).is_empty());

    let forward = plan::diff(&old, &new);
    check_diff(&old, &new, &forward);
    check_actions(&old, &new, &forward);
    let backward = plan::diff(&new, &old);
    check_diff(&new, &old, &backward);
    check_actions(&new, &old, &backward);
    let swap = |c: Change| match c {
        Change::Added => Change::Removed,
        Change::Removed => Change::Added,
        Change::Changed => Change::Changed,
    };
    let f: BTreeMap<&String, Change> = forward.tenants.iter().map(|t| (&t.id, t.change)).collect();
    let b: BTreeMap<&String, Change> = backward
        .tenants
        .iter()
        .map(|t| (&t.id, swap(t.change)))
        .collect();
    assert_eq!(f, b);
});

fn keyed_tree(
    tree: &Tree,
) -> (
    BTreeMap<&String, BTreeMap<String, String>>,
    BTreeMap<String, String>,
) {
    (
        tree.tenants.iter().map(|(id, e)| (id, keyed(e))).collect(),
        keyed(&tree.shared),
    )
}
