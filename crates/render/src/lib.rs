//! Rendering is a pure function: `(validated tenant, host facts) -> files and
//! symlinks`. It is what `tenant-generator` writes, what `bbhv render`
//! prints and what the golden tests compare. No I/O here.

mod network;

use std::path::PathBuf;

pub mod container;
pub mod mounts;
pub mod vm;

use bbhv_spec::Tenant;
use bbhv_spec::names::Template;
use bbhv_unit::{Line, Syntax, Token, UnitFile, Value, ValueError};

mod tenant_network;
pub use network::{
    Uplink, VLAN_DROPIN, WIREGUARD_RULE_PRIORITY, WIREGUARD_TABLE_BASE, render_network,
    render_vlans, wireguard_table,
};

/// Where the static units are installed (the target of `.wants` symlinks).
pub const SYSTEM_UNIT_DIR: &str = "/usr/lib/systemd/system";
/// The unit that re-runs the generators when `current` was missing.
pub const RERUN_UNIT: &str = "bitbuilder-generator-rerun.service";
/// The applied checkout the generators read (fixed path).
pub const CURRENT: &str = "/var/lib/bitbuilder/current";

/// What rendering needs to know about the host and the checkout, checked
/// once at the edge so rendering itself cannot fail.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Which program renders (`tenant-generator`), for the provenance header.
    pub generator: &'static str,
    /// The checkout as an absolute path (the resolved generation), for `SourcePath=`.
    pub source_root: Line,
    /// The commit the checkout is, when known.
    pub commit: Option<Token>,
}

impl Facts {
    /// Refuses a checkout path or commit that cannot be written into a unit
    /// (a control character in a directory name, say).
    pub fn new(
        generator: &'static str,
        source_root: &str,
        commit: Option<&str>,
    ) -> Result<Facts, FactsError> {
        Ok(Facts {
            generator,
            source_root: Line::new(source_root).map_err(|e| FactsError {
                what: "the checkout's path",
                value: source_root.to_owned(),
                source: e,
            })?,
            commit: commit
                .map(|c| {
                    Token::new(c).map_err(|e| FactsError {
                        what: "the commit",
                        value: c.to_owned(),
                        source: e,
                    })
                })
                .transpose()?,
        })
    }
}

/// A host fact that cannot be written into a unit.
#[derive(Debug, thiserror::Error)]
#[error("{what} {value:?} cannot be written into a unit: {source}")]
pub struct FactsError {
    pub what: &'static str,
    pub value: String,
    #[source]
    pub source: ValueError,
}

/// Which directory an entry is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Root {
    /// The generator's output directory (units).
    Units,
    /// `/run/systemd/network` (networkd), files named `bbhv-*`.
    Network,
    /// `/run/systemd/nspawn` (`.nspawn` settings), files named after machines.
    Nspawn,
}

impl Root {
    pub const ALL: [Root; 3] = [Root::Units, Root::Network, Root::Nspawn];

    /// The subdirectory `bbhv render --out DIR` and `--dryrun` show it as.
    pub fn name(self) -> &'static str {
        match self {
            Root::Units => "units",
            Root::Network => "network",
            Root::Nspawn => "nspawn",
        }
    }
}

/// The prefix of every file the generator writes into `/run/systemd/network`
/// (it owns those names there and removes the ones it did not write).
pub const NETWORK_PREFIX: &str = "bbhv-";

/// One entry of the rendered tree, relative to its root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File {
        root: Root,
        path: PathBuf,
        content: String,
    },
    Symlink {
        root: Root,
        path: PathBuf,
        target: PathBuf,
    },
}

impl Entry {
    pub fn path(&self) -> &std::path::Path {
        match self {
            Entry::File { path, .. } | Entry::Symlink { path, .. } => path,
        }
    }

    pub fn root(&self) -> Root {
        match self {
            Entry::File { root, .. } | Entry::Symlink { root, .. } => *root,
        }
    }
}

/// Renders one tenant: its slice (in a bucket slice, docs/architecture.md),
/// its `tenant@<id>.service`, and, when enabled, the `.wants` link that
/// starts it with `tenants.target`. The unit runs no process: it puts the
/// tenant into its slice and requires what the tenant declares. Two files
/// and a link, no directory of its own: at 10,000 tenants every file system
/// object counts (bench/generator). A tenant with a `network` also gets its
/// networkd files ([`render_network`], [`Root::Network`]).
pub fn render_tenant(tenant: &Tenant, facts: &Facts) -> Vec<Entry> {
    let id = &tenant.id;
    let source = Line::join(&facts.source_root, "/", &Line::from(id.metadata_file()));
    let header = provenance(facts, &source, Syntax::Unit);
    let title = Line::join(&Line::constant("Tenant"), " ", &Line::from(id.token()));
    let description = match &tenant.description {
        Some(text) => Line::join(&title, ": ", text),
        None => title,
    };
    let mut entries = Vec::with_capacity(3 + 2 * tenant.containers.len());

    // tenants-<bucket>-<id>.slice: the tenant's share of the host.
    let mut slice = header.clone();
    slice
        .section("Unit")
        .set("Description", Value::line(&description))
        .set("SourcePath", Value::line(&source));
    slice.section("Slice");
    let r = &tenant.resources;
    if let Some(quota) = r.cpu_quota {
        slice.set("CPUQuota", Value::percent_of(quota.get()));
    }
    if let Some(weight) = r.cpu_weight {
        slice.set("CPUWeight", Value::number(weight));
    }
    if let Some(max) = r.memory_max {
        slice.set("MemoryMax", max.token().into());
    }
    if let Some(high) = r.memory_high {
        slice.set("MemoryHigh", high.token().into());
    }
    if let Some(weight) = r.io_weight {
        slice.set("IOWeight", Value::number(weight));
    }
    if let Some(tasks) = r.tasks_max {
        slice.set("TasksMax", Value::number(tasks));
    }
    entries.push(Entry::File {
        root: Root::Units,
        path: id.slice().into(),
        content: slice.render(),
    });

    // tenant@<id>.service: systemd takes an instance's own file over the
    // template (which only skips undeclared tenants). It declares the tenant,
    // puts it into its slice and requires what the tenant declares; its
    // workloads are PartOf= it.
    if let Some(content) = tenant_network::render(tenant, facts, header.clone(), &source) {
        entries.push(Entry::File {
            root: Root::Units,
            path: id.instance(Template::Network).into(),
            content,
        });
    }

    let mut unit = header;
    unit.section("Unit")
        .set("Description", description.into())
        .set("SourcePath", Value::line(&source))
        // It runs nothing, so it needs no ordering after basic.target, and
        // it is not stopped at shutdown: stopping it would run its stop
        // command once per tenant (30 s at 5,000 tenants, bench/README.md).
        .set("DefaultDependencies", Value::boolean(false))
        .set("PartOf", Token::constant("tenants.target").into())
        .set("Before", Token::constant("tenants.target").into());
    if tenant.network.is_some() {
        unit.set("Requires", id.unit_token(Template::Network).into());
    }
    // Its containers and VMs start with it (they are PartOf= it).
    for workload in container::container_units(tenant)
        .into_iter()
        .chain(vm::vm_units(tenant))
    {
        unit.set("Wants", workload.into());
    }
    unit.section("Service")
        .set("Type", Token::constant("oneshot").into())
        .set("RemainAfterExit", Value::boolean(true))
        .set("Slice", id.slice_token().into())
        // systemd refuses a service with no command at all; starting a
        // tenant runs nothing, so nothing needs a sandbox (docs).
        .set("ExecStop", Token::constant("/bin/true").into());
    entries.push(Entry::File {
        root: Root::Units,
        path: id.instance(Template::Tenant).into(),
        content: unit.render(),
    });

    entries.extend(container::render_containers(tenant, facts, &source));
    entries.extend(vm::render_vms(tenant, facts, &source));

    if tenant.enabled {
        entries.push(Entry::Symlink {
            root: Root::Units,
            path: PathBuf::from("tenants.target.wants").join(id.instance(Template::Tenant)),
            target: PathBuf::from("..").join(id.instance(Template::Tenant)),
        });
    }
    entries.extend(render_network(tenant, facts));
    entries
}

/// When `current` did not exist at generator time (a separate /var not
/// mounted yet): enable the static `bitbuilder-generator-rerun.service`,
/// which reloads once /var is mounted. The unit is shipped, not generated:
/// the reload it starts stops the generator from writing it, and systemd
/// cannot finish a unit's commands once its file is gone.
pub fn render_rerun() -> Vec<Entry> {
    vec![Entry::Symlink {
        root: Root::Units,
        path: PathBuf::from("multi-user.target.wants").join(RERUN_UNIT),
        target: PathBuf::from(SYSTEM_UNIT_DIR).join(RERUN_UNIT),
    }]
}

/// The sync timer's period: host.toml's `[sync] interval`, as a drop-in
/// for the static `bitbuilder-sync.timer` (a timer cannot read host.toml).
pub const SYNC_TIMER_DROPIN: &str = "bitbuilder-sync.timer.d/50-interval.conf";

fn milliseconds(ms: u128) -> Value {
    Value::literal(format!("{ms}ms")).expect("digits and \"ms\" are a valid literal")
}

/// The drop-in that sets `bitbuilder-sync.timer`'s period.
pub fn render_sync_interval(interval: std::time::Duration) -> Entry {
    let mut file = UnitFile::new(Syntax::Unit);
    file.comment_line(&Line::constant(
        "Automatically generated by tenant-generator from /etc/bitbuilder/host.toml [sync] interval",
    ))
    .section("Timer")
    // An empty assignment resets every timer of the unit (systemd.timer(5)),
    // so the static unit's first run is set again with the new period.
    .set("OnUnitInactiveSec", Value::empty())
    .set("OnActiveSec", Value::literal("1s").expect("a valid literal"))
    .set("OnUnitInactiveSec", milliseconds(interval.as_millis()))
    .set("AccuracySec", milliseconds(interval.as_millis().clamp(1, 1000)));
    let content = file.render();
    Entry::File {
        root: Root::Units,
        path: PathBuf::from(SYNC_TIMER_DROPIN),
        content,
    }
}

/// The header every generated file starts with: who made it, from what,
/// from which commit.
fn provenance(facts: &Facts, source: &Line, syntax: Syntax) -> UnitFile {
    let mut file = UnitFile::new(syntax);
    let generator = Line::from(Token::constant(facts.generator));
    let commit = match &facts.commit {
        Some(commit) => Line::from(commit.clone()),
        None => Line::constant("unknown (not an applied generation)"),
    };
    file.comment_line(&Line::join(
        &Line::constant("Automatically generated by"),
        " ",
        &generator,
    ))
    .comment_line(&Line::join(&Line::constant("Source:"), " ", source))
    .comment_line(&Line::join(&Line::constant("Commit:"), " ", &commit));
    file
}
