//! Rendering is a pure function: `(validated tenant, host facts) -> files and
//! symlinks`. It is what `tenant-generator` writes, what `bbhv render`
//! prints and what the golden tests compare. No I/O here.

use std::path::PathBuf;

use bbhv_spec::Tenant;
use bbhv_spec::names::{Template, TenantId};
use bbhv_unit::{Syntax, UnitFile, Value, ValueError};

/// Where the static units are installed (the target of `.wants` symlinks).
pub const SYSTEM_UNIT_DIR: &str = "/usr/lib/systemd/system";
/// The unit that re-runs the generators when `current` was missing.
pub const RERUN_UNIT: &str = "bitbuilder-generator-rerun.service";
/// The applied checkout the generators read (fixed path).
pub const CURRENT: &str = "/var/lib/bitbuilder/current";

/// What rendering needs to know about the host and the checkout.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Which program renders (`tenant-generator`), for the provenance header.
    pub generator: &'static str,
    /// The checkout as an absolute path (the resolved generation), for `SourcePath=`.
    pub source_root: String,
    /// The commit the checkout is, when known.
    pub commit: Option<String>,
}

/// One entry of the rendered tree, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File { path: PathBuf, content: String },
    Symlink { path: PathBuf, target: PathBuf },
}

impl Entry {
    pub fn path(&self) -> &std::path::Path {
        match self {
            Entry::File { path, .. } | Entry::Symlink { path, .. } => path,
        }
    }
}

/// A value that could not be written. Validation makes this unreachable for
/// tenants that passed it; it stays an error, never a panic.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {source}")]
pub struct RenderError {
    pub file: String,
    pub key: &'static str,
    #[source]
    pub source: ValueError,
}

/// Renders one tenant: its slice and the symlinks that enable its units.
///
/// The static templates name their slice themselves (`Slice=tenants-%i.slice`,
/// instances carry the escaped id), so a tenant needs no drop-ins: a slice,
/// a `.wants` link when enabled, and a `.requires` link per helper unit it
/// needs (its network, its state), nothing for what it does not declare.
pub fn render_tenant(tenant: &Tenant, facts: &Facts) -> Result<Vec<Entry>, RenderError> {
    let id = &tenant.id;
    let m = &tenant.metadata;
    let source = format!("{}/{}", facts.source_root, tenant.file);
    let fail = |key: &'static str| {
        move |source: ValueError| RenderError {
            file: tenant.file.clone(),
            key,
            source,
        }
    };
    let mut entries = Vec::new();

    // tenants-<id>.slice: the tenant's share of the host. Its existence in
    // the generator directory is what declares the tenant to the templates.
    let mut slice = provenance(facts, &source).map_err(fail("comment"))?;
    let description = if m.description.is_empty() {
        format!("Tenant {id}")
    } else {
        format!("Tenant {id}: {}", m.description)
    };
    slice
        .section("Unit")
        .set(
            "Description",
            Value::text(&description).map_err(fail("Description"))?,
        )
        .set(
            "SourcePath",
            Value::path(&source).map_err(fail("SourcePath"))?,
        )
        .set(
            "Before",
            Value::literal("slices.target").map_err(fail("Before"))?,
        );
    slice.section("Slice");
    let r = &m.resources;
    if let Some(quota) = &r.cpu_quota {
        slice.set("CPUQuota", Value::percent(quota).map_err(fail("CPUQuota"))?);
    }
    if let Some(weight) = r.cpu_weight {
        slice.set("CPUWeight", Value::number(weight));
    }
    if let Some(max) = &r.memory_max {
        slice.set(
            "MemoryMax",
            Value::literal(max.as_str()).map_err(fail("MemoryMax"))?,
        );
    }
    if let Some(high) = &r.memory_high {
        slice.set(
            "MemoryHigh",
            Value::literal(high.as_str()).map_err(fail("MemoryHigh"))?,
        );
    }
    if let Some(weight) = r.io_weight {
        slice.set("IOWeight", Value::number(weight));
    }
    if let Some(tasks) = r.tasks_max {
        slice.set("TasksMax", Value::number(tasks));
    }
    entries.push(Entry::File {
        path: id.slice().into(),
        content: slice.render(),
    });

    // What tenant@ needs before it counts as up: Requires= by a link, the
    // ordering is in the helper templates (Before=tenant@%i.service).
    if m.network.is_some() {
        entries.push(link(id, Template::Tenant, "requires", Template::Network));
    }
    if !m.containers.is_empty() || !m.vms.is_empty() {
        entries.push(link(id, Template::Tenant, "requires", Template::Infra));
    }
    if m.enabled {
        entries.push(Entry::Symlink {
            path: PathBuf::from("tenants.target.wants").join(id.instance(Template::Tenant)),
            target: PathBuf::from(SYSTEM_UNIT_DIR).join(Template::Tenant.file_name()),
        });
    }
    Ok(entries)
}

/// When `current` did not exist at generator time (a separate /var not
/// mounted yet): enable the static `bitbuilder-generator-rerun.service`,
/// which reloads once /var is mounted. The unit is shipped, not generated:
/// the reload it starts stops the generator from writing it, and systemd
/// cannot finish a unit's commands once its file is gone.
pub fn render_rerun() -> Vec<Entry> {
    vec![Entry::Symlink {
        path: PathBuf::from("multi-user.target.wants").join(RERUN_UNIT),
        target: PathBuf::from(SYSTEM_UNIT_DIR).join(RERUN_UNIT),
    }]
}

fn provenance(facts: &Facts, source: &str) -> Result<UnitFile, ValueError> {
    let mut file = UnitFile::new(Syntax::Unit);
    file.comment(&format!("Automatically generated by {}", facts.generator))?;
    file.comment(&format!("Source: {source}"))?;
    file.comment(&format!(
        "Commit: {}",
        facts
            .commit
            .as_deref()
            .unwrap_or("unknown (not an applied generation)")
    ))?;
    Ok(file)
}

/// `<unit>.<kind>/<instance of template>` → the template in the system unit
/// directory: what `systemctl enable` would create, which generated units
/// cannot use.
fn link(id: &TenantId, unit: Template, kind: &str, template: Template) -> Entry {
    Entry::Symlink {
        path: PathBuf::from(format!("{}.{kind}", id.instance(unit))).join(id.instance(template)),
        target: PathBuf::from(SYSTEM_UNIT_DIR).join(template.file_name()),
    }
}
