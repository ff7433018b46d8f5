//! The generator's work, shared by `tenant-generator` and `bbhv render` so
//! both write exactly the same tree: read the checkout, check every tenant
//! and the fleet, render the good ones, report the bad ones.

mod lock;
mod write;

use std::path::{Path, PathBuf};

use bbhv_render::{Entry, Facts};
use bbhv_spec::{Diagnostic, Tenant, check_fleet, locate};
use serde::{Deserialize, Serialize};

pub use lock::SharedLock;
pub use write::{OutputDir, write_file_atomically};

/// The generator's name, in provenance headers and logs.
pub const GENERATOR: &str = "tenant-generator";

/// The machine-readable outcome, written to `<run dir>/generator-report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub generator: String,
    pub version: String,
    /// The checkout that was read (resolved), or `None` when `current` was missing.
    pub current: Option<String>,
    pub commit: Option<String>,
    pub state: State,
    pub tenants: Vec<TenantReport>,
    /// Problems that are not any one tenant's (the repository could not be read).
    pub errors: Vec<String>,
}

/// What the generator could do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// `current` was read.
    Generated,
    /// `current` did not exist: no tenants, the re-run unit enabled.
    WaitingForCurrent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantReport {
    pub id: String,
    pub file: String,
    pub status: Status,
    pub errors: Vec<Diagnostic>,
}

/// What became of one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Rendered and enabled.
    Generated,
    /// Rendered, not started with `tenants.target`.
    Disabled,
    /// Skipped: see its errors.
    Failed,
}

impl Report {
    fn new(current: Option<String>, commit: Option<String>, state: State) -> Report {
        Report {
            generator: GENERATOR.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            current,
            commit,
            state,
            tenants: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn count(&self, status: Status) -> usize {
        self.tenants.iter().filter(|t| t.status == status).count()
    }

    pub fn failed(&self) -> impl Iterator<Item = &TenantReport> {
        self.tenants.iter().filter(|t| t.status == Status::Failed)
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.failed().next().is_some()
    }

    /// One line for logs: counts, source and commit.
    pub fn summary(&self) -> String {
        format!(
            "{} tenants generated, {} disabled, {} failed, from {} (commit {})",
            self.count(Status::Generated),
            self.count(Status::Disabled),
            self.count(Status::Failed),
            self.current
                .as_deref()
                .unwrap_or("nothing (waiting for /var/lib/bitbuilder/current)"),
            self.commit.as_deref().unwrap_or("unknown"),
        )
    }
}

/// Everything read and checked, ready to render tenant by tenant (rendering
/// 10,000 tenants one at a time keeps memory flat).
#[derive(Debug)]
pub struct Plan {
    /// `None` when the checkout's path cannot be written into a unit (then
    /// there are no tenants either, and the report says why).
    pub facts: Option<Facts>,
    pub tenants: Vec<Tenant>,
    pub report: Report,
}

/// Where the checkout is: `current` resolved to its generation directory.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub root: PathBuf,
    pub commit: Option<String>,
}

impl Checkout {
    /// Resolves `path` (normally the `current` symlink) once, so a flip
    /// during the run cannot mix two generations. `None` when it does not
    /// exist (yet): /var not mounted, or nothing applied.
    pub fn resolve(path: &Path) -> Option<Checkout> {
        let root = std::fs::canonicalize(path).ok()?;
        if !root.is_dir() {
            return None;
        }
        let commit = commit_of_generation(&root);
        Some(Checkout { root, commit })
    }
}

/// A generation directory is `<seq>-<sha>`; anything else has no known commit.
fn commit_of_generation(root: &Path) -> Option<String> {
    let name = root.file_name()?.to_str()?;
    let (seq, sha) = name.split_once('-')?;
    let hex = |s: &str| s.len() >= 7 && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (seq.bytes().all(|b| b.is_ascii_digit()) && !seq.is_empty() && hex(sha)).then(|| sha.to_owned())
}

/// Reads and checks the whole checkout. Per-tenant problems go to the
/// report; only the good tenants are in the plan. `applied` is the checkout
/// the host runs now (`previous` once `current` has moved on): a tenant that
/// holds a VLAN, port, name or subnet there keeps it against a newcomer. It
/// is read only when tenants conflict, and only for those tenants.
pub fn plan(checkout: &Checkout, applied: Option<&Path>) -> Plan {
    let root = checkout.root.to_string_lossy().into_owned();
    let mut report = Report::new(
        Some(root.clone()),
        checkout.commit.clone(),
        State::Generated,
    );
    let facts = match Facts::new(GENERATOR, &root, checkout.commit.as_deref()) {
        Ok(facts) => facts,
        Err(e) => {
            report.errors.push(e.to_string());
            return Plan {
                facts: None,
                tenants: Vec::new(),
                report,
            };
        }
    };
    let facts = Some(facts);
    let sources = match bbhv_repo::read_tenants(&checkout.root) {
        Ok(sources) => sources,
        Err(e) => {
            report.errors.push(e.to_string());
            return Plan {
                facts,
                tenants: Vec::new(),
                report,
            };
        }
    };

    let mut tenants = Vec::with_capacity(sources.len());
    for source in sources {
        let parsed = source
            .text
            .map_err(|d| vec![d])
            .and_then(|text| Tenant::parse(&source.file, &source.dir_name, &text));
        match parsed {
            Ok(tenant) => tenants.push(tenant),
            Err(errors) => report.tenants.push(TenantReport {
                id: source.dir_name,
                file: source.file,
                status: Status::Failed,
                errors,
            }),
        }
    }

    // Conflicts between tenants: the incumbent keeps the claim, the other
    // fails, the rest go on. The file is read again to point at the key:
    // conflicts are rare, and keeping every tenant's text for them would
    // cost 10 MiB at 10,000.
    let mut found = check_fleet(&tenants, &[]);
    if !found.is_empty()
        && let Some(applied) = applied
    {
        let mut involved: Vec<&str> = found
            .iter()
            .flat_map(|c| [tenants[c.index].id.as_str(), c.owner.as_str()])
            .collect();
        involved.sort_unstable();
        involved.dedup();
        let before: Vec<Tenant> = involved
            .into_iter()
            .filter_map(|id| {
                let source = bbhv_repo::read_tenant(applied, id).ok()?;
                Tenant::parse(&source.file, &source.dir_name, &source.text.ok()?).ok()
            })
            .collect();
        found = check_fleet(&tenants, &before);
    }
    let mut conflicts: Vec<Vec<Diagnostic>> = vec![Vec::new(); tenants.len()];
    for conflict in found {
        let tenant = &tenants[conflict.index];
        let text = bbhv_repo::read_tenant(&checkout.root, tenant.id.as_str())
            .ok()
            .and_then(|source| source.text.ok())
            .unwrap_or_default();
        conflicts[conflict.index].push(locate(
            &tenant.file,
            &text,
            &conflict.pointer,
            conflict.message,
        ));
    }
    let mut good = Vec::with_capacity(tenants.len());
    for (tenant, mut errors) in tenants.into_iter().zip(conflicts) {
        errors.sort_by_key(|d| (d.line, d.column));
        let status = match (errors.is_empty(), tenant.enabled) {
            (false, _) => Status::Failed,
            (true, true) => Status::Generated,
            (true, false) => Status::Disabled,
        };
        let ok = errors.is_empty();
        report.tenants.push(TenantReport {
            id: tenant.id.to_string(),
            file: tenant.file.clone(),
            status,
            errors,
        });
        if ok {
            good.push(tenant);
        }
    }
    report.tenants.sort_by(|a, b| a.id.cmp(&b.id));
    Plan {
        facts,
        tenants: good,
        report,
    }
}

impl Plan {
    /// Renders each good tenant and hands its entries to `sink`.
    pub fn render_each(
        &mut self,
        mut sink: impl FnMut(&[Entry]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let Some(facts) = &self.facts else {
            return Ok(());
        };
        for tenant in &self.tenants {
            sink(&bbhv_render::render_tenant(tenant, facts))?;
        }
        Ok(())
    }
}

/// The report when `current` does not exist: no tenants, a re-run pending.
pub fn waiting_report() -> Report {
    Report::new(None, None, State::WaitingForCurrent)
}
