//! The plan: what an apply changes, per tenant, found by rendering both
//! checkouts with the generators' own code and diffing the trees; and the
//! unit jobs that make a running host match (pure: no I/O here).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bbhv_generator::{Checkout, Host, Tree};
use bbhv_render::{Entry, Facts, Root};
use serde::Serialize;

/// Whether a thing was added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        })
    }
}

/// One file of the rendered tree that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// `units/…`, `network/…` or `nspawn/…`.
    pub path: String,
    pub change: Change,
    /// The unit the file belongs to (`None` for networkd files).
    pub unit: Option<String>,
    /// A unified diff, old to new.
    pub diff: String,
}

/// What changes for one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantChange {
    pub id: String,
    pub change: Change,
    pub files: Vec<FileChange>,
    /// The units whose files changed, with how.
    pub units: BTreeMap<String, Change>,
}

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub tenants: Vec<TenantChange>,
    /// Files no single tenant owns (image mounts, the VLAN list).
    pub shared: Vec<FileChange>,
    /// Tenants whose files did not change.
    pub unchanged: usize,
}

/// A checkout that cannot be applied: every problem, as the generator
/// reports them.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the checkout is invalid ({count} problems): {summary}", count = .problems.len(), summary = .problems.join("; "))]
pub struct Invalid {
    pub problems: Vec<String>,
}

/// The facts both trees are rendered with for the plan: the same for both,
/// so that only what the repository changed shows (the real files also
/// name their generation and commit).
fn neutral_facts() -> Facts {
    Facts::new(bbhv_generator::GENERATOR, bbhv_render::CURRENT, None)
        .expect("a constant path is a valid fact")
}

/// Reads, checks and renders a checkout. `applied` is the checkout the host
/// runs (incumbents keep their claims, as in the generator). With `strict`,
/// any failed tenant or run error makes the checkout invalid: the sync
/// never applies a tree the generator would partly skip.
pub fn render(
    root: &Path,
    applied: Option<&Path>,
    host: &Host,
    strict: bool,
) -> Result<Tree, Invalid> {
    let checkout = Checkout::open(root).map_err(|e| Invalid {
        problems: vec![e.to_string()],
    })?;
    let mut plan = bbhv_generator::plan(&checkout, applied, host);
    if strict {
        let mut problems = plan.report.errors.clone();
        for tenant in &plan.report.tenants {
            if tenant.status == bbhv_generator::Status::Failed {
                problems.extend(tenant.errors.iter().map(|d| d.to_string()));
            }
        }
        if !problems.is_empty() {
            return Err(Invalid { problems });
        }
    }
    if plan.facts.is_some() {
        plan.facts = Some(neutral_facts());
    }
    Ok(plan.tree())
}

/// An entry's key (`units/tenant@a.service`) and its text (a symlink is
/// `-> target`).
fn keyed(entry: &Entry) -> (String, String) {
    let key = format!("{}/{}", entry.root().name(), entry.path().display());
    let text = match entry {
        Entry::File { content, .. } => content.clone(),
        Entry::Symlink { target, .. } => format!("-> {}\n", target.display()),
    };
    (key, text)
}

/// The unit a file configures: the file's own name in the unit directory,
/// the unit a `.wants/` link enables, the container a `.nspawn` file is
/// for. networkd's files belong to no unit.
pub fn unit_of(key: &str) -> Option<String> {
    let (root, path) = key.split_once('/')?;
    let name = Path::new(path).file_name()?.to_str()?;
    match root {
        "units" => Some(name.to_owned()),
        "nspawn" => name
            .strip_suffix(".nspawn")
            .map(|machine| format!("systemd-nspawn@{machine}.service")),
        _ => None,
    }
}

fn file_changes(old: &[Entry], new: &[Entry]) -> Vec<FileChange> {
    let old: BTreeMap<String, String> = old.iter().map(keyed).collect();
    let new: BTreeMap<String, String> = new.iter().map(keyed).collect();
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut changes = Vec::new();
    for key in keys {
        let (before, after) = (old.get(key), new.get(key));
        let change = match (before, after) {
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (Some(a), Some(b)) if a != b => Change::Changed,
            _ => continue,
        };
        let diff = similar::TextDiff::from_lines(
            before.map_or("", String::as_str),
            after.map_or("", String::as_str),
        )
        .unified_diff()
        .header(&format!("a/{key}"), &format!("b/{key}"))
        .to_string();
        changes.push(FileChange {
            path: key.clone(),
            change,
            unit: unit_of(key),
            diff,
        });
    }
    changes
}

/// Diffs two trees. O(files) per tenant that differs; tenants whose
/// entries are equal are only compared (no diff is built).
pub fn diff(old: &Tree, new: &Tree) -> Plan {
    let mut plan = Plan::default();
    let ids: BTreeSet<&String> = old.tenants.keys().chain(new.tenants.keys()).collect();
    for id in ids {
        let (before, after) = (old.tenants.get(id), new.tenants.get(id));
        let change = match (before, after) {
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (Some(a), Some(b)) if a != b => Change::Changed,
            _ => {
                plan.unchanged += 1;
                continue;
            }
        };
        let files = file_changes(
            before.map_or(&[][..], Vec::as_slice),
            after.map_or(&[][..], Vec::as_slice),
        );
        if files.is_empty() {
            // Same files in another order.
            plan.unchanged += 1;
            continue;
        }
        let mut units = BTreeMap::new();
        for file in &files {
            if let Some(unit) = &file.unit {
                // A unit with several files: changed unless all were added or all removed.
                units
                    .entry(unit.clone())
                    .and_modify(|c| {
                        if *c != file.change {
                            *c = Change::Changed;
                        }
                    })
                    .or_insert(file.change);
            }
        }
        plan.tenants.push(TenantChange {
            id: id.clone(),
            change,
            files,
            units,
        });
    }
    plan.shared = file_changes(&old.shared, &new.shared);
    plan
}

/// The unit jobs an apply runs after `daemon-reload`, in this order: stop,
/// then restart and start; then networkd reloads if its files changed; then
/// the health gate waits for `health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Actions {
    pub stop: Vec<String>,
    pub restart: Vec<String>,
    pub start: Vec<String>,
    pub reload_networks: bool,
    pub health: Vec<String>,
}

impl Actions {
    pub fn is_empty(&self) -> bool {
        self.stop.is_empty()
            && self.restart.is_empty()
            && self.start.is_empty()
            && !self.reload_networks
    }
}

/// The link that enables a tenant (`tenants.target.wants/tenant@<id>.service`).
fn enabled(entries: &[Entry], tenant_unit: &str) -> bool {
    entries.iter().any(|e| {
        matches!(e, Entry::Symlink { root: Root::Units, path, .. }
            if path.parent().is_some_and(|p| p.as_os_str() == "tenants.target.wants")
                && path.file_name().is_some_and(|n| n == tenant_unit))
    })
}

/// The services among a tenant's entries: what must be active when it is healthy.
fn services(entries: &[Entry]) -> BTreeSet<String> {
    entries
        .iter()
        .filter_map(|e| unit_of(&keyed(e).0))
        .filter(|u| u.ends_with(".service"))
        .collect()
}

fn kind(unit: &str) -> &str {
    unit.rsplit_once('.').map_or("", |(_, kind)| kind)
}

/// The jobs that take a host running `old` to `new`, given their plan.
/// Only what changed is touched:
/// - a removed tenant: every unit it had is stopped (after the reload its
///   files are gone, and with them the `PartOf=` that would stop them);
/// - `tenant@` runs no process: it is started (which starts what it newly
///   wants), never restarted (that would restart everything `PartOf=` it);
/// - a changed service or mount is restarted (a mount's restart restarts
///   the containers that require it); a slice only needs the reload;
/// - a changed networkd file reloads networkd and restarts the tenant's
///   `tenant-network@`.
pub fn actions(plan: &Plan, old: &Tree, new: &Tree) -> Actions {
    let mut stop = BTreeSet::new();
    let mut restart = BTreeSet::new();
    let mut start = BTreeSet::new();
    let mut health = BTreeSet::new();
    let mut reload_networks = false;
    let empty: Vec<Entry> = Vec::new();
    for tenant in &plan.tenants {
        let tenant_unit = format!("tenant@{}.service", tenant.id);
        let network_unit = format!("tenant-network@{}.service", tenant.id);
        let before = old.tenants.get(&tenant.id).unwrap_or(&empty);
        let after = new.tenants.get(&tenant.id).unwrap_or(&empty);
        let is_enabled = enabled(after, &tenant_unit);
        if tenant.change == Change::Removed || !is_enabled {
            for entry in before {
                if let Some(unit) = unit_of(&keyed(entry).0)
                    && matches!(kind(&unit), "service" | "mount")
                {
                    stop.insert(unit);
                }
            }
            reload_networks |= tenant.files.iter().any(|f| f.unit.is_none());
            continue;
        }
        let was_enabled = enabled(before, &tenant_unit);
        for (unit, change) in &tenant.units {
            match (change, kind(unit)) {
                (_, "slice") => {}
                // The enabling link, or a unit the tenant newly has.
                (Change::Added, "service") if *unit == tenant_unit || !was_enabled => {}
                (Change::Added, "service" | "mount") => {
                    start.insert(unit.clone());
                }
                (Change::Removed, "service" | "mount") => {
                    stop.insert(unit.clone());
                }
                (Change::Changed, "service") if *unit == tenant_unit => {}
                (Change::Changed, "service" | "mount") => {
                    restart.insert(unit.clone());
                }
                _ => {}
            }
        }
        if tenant.files.iter().any(|f| f.unit.is_none()) {
            reload_networks = true;
            if services(after).contains(&network_unit) {
                restart.insert(network_unit);
            }
        }
        start.insert(tenant_unit);
        health.extend(services(after));
    }
    for file in &plan.shared {
        match (&file.unit, file.change) {
            (None, _) => reload_networks = true,
            (Some(unit), Change::Changed) if kind(unit) == "mount" => {
                restart.insert(unit.clone());
            }
            (Some(unit), Change::Removed) if kind(unit) == "mount" => {
                stop.insert(unit.clone());
            }
            _ => {}
        }
    }
    let restart: Vec<String> = restart.into_iter().filter(|u| !stop.contains(u)).collect();
    let start = start
        .into_iter()
        .filter(|u| !stop.contains(u) && !restart.contains(u))
        .collect();
    Actions {
        stop: stop.into_iter().collect(),
        restart,
        start,
        reload_networks,
        health: health.into_iter().collect(),
    }
}
