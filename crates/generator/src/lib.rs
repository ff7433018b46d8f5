//! The generator's work, shared by `tenant-generator` and `bbhv render` so
//! both write exactly the same tree: read the checkout, check every tenant
//! and the fleet, render the good ones, report the bad ones.

mod checkout;
mod lock;
mod mounts;
mod paths;
mod report;
mod run;
mod write;

use std::collections::BTreeMap;
use std::path::Path;

use bbhv_render::{Entry, Facts};
use bbhv_spec::values::ImageName;
use bbhv_spec::{Diagnostic, Image, Tenant, check_fleet, locate};

pub use checkout::{Checkout, CheckoutError, Current};
pub use lock::{LockError, SharedLock};
pub use mounts::{MOUNT_GENERATOR, run_mounts};
pub use paths::HostPaths;
pub use report::{Line, Priority, Report, State, Status, TenantReport, escape};
pub use run::{Log, run};
pub use write::{OutputDir, Staging, WriteError, remove_tree, replace_file};

/// The generator's name, in provenance headers and logs.
pub const GENERATOR: &str = "tenant-generator";

/// Everything read and checked, ready to render tenant by tenant (rendering
/// 10,000 tenants one at a time keeps memory flat).
#[derive(Debug)]
pub struct Plan {
    /// `None` when the checkout's path cannot be written into a unit (then
    /// there are no tenants either, and the report says why).
    pub facts: Option<Facts>,
    pub tenants: Vec<Tenant>,
    /// The images the good tenants' containers use (`images/<name>.json`).
    pub images: BTreeMap<ImageName, Image>,
    pub report: Report,
}

/// Reads and checks the whole checkout. Per-tenant problems go to the
/// report; only the good tenants are in the plan. `applied` is the checkout
/// the host runs now (`previous` once `current` has moved on): a tenant that
/// holds a VLAN, port, name or subnet there keeps it against a newcomer. It
/// is read only when tenants conflict, and only for those tenants.
pub fn plan(checkout: &Checkout, applied: Option<&Path>) -> Plan {
    plan_as(checkout, applied, GENERATOR)
}

/// [`plan`] for the generator `generator` (named in provenance headers).
pub fn plan_as(checkout: &Checkout, applied: Option<&Path>, generator: &'static str) -> Plan {
    let root = checkout.root.to_string_lossy().into_owned();
    let mut report = Report::new(
        Some(root.clone()),
        checkout.commit.clone(),
        State::Generated,
    );
    let facts = match Facts::new(generator, &root, checkout.commit.as_deref()) {
        Ok(facts) => facts,
        Err(e) => {
            report.errors.push(e.to_string());
            return Plan {
                facts: None,
                tenants: Vec::new(),
                images: BTreeMap::new(),
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
                images: BTreeMap::new(),
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
    // What containers use must be in the checkout: images/<name>.json,
    // valid, and extensions/<name>/.
    let (images, missing) = resolve_images(&checkout.root, &tenants, &mut report);
    found.extend(missing);
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
    let used: std::collections::BTreeSet<&ImageName> = good
        .iter()
        .flat_map(|t| t.containers.iter().map(|c| &c.image))
        .collect();
    let images = images
        .into_iter()
        .filter(|(name, _)| used.contains(name))
        .collect();
    Plan {
        facts,
        tenants: good,
        images,
        report,
    }
}

/// Reads every image the tenants' containers name, once each, and checks
/// their extensions. An invalid image file is a run error (its problems are
/// reported once); each container that uses a missing or invalid image, or
/// names a missing extension, fails its tenant at that key.
fn resolve_images(
    root: &Path,
    tenants: &[Tenant],
    report: &mut Report,
) -> (BTreeMap<ImageName, Image>, Vec<bbhv_spec::Conflict>) {
    let mut images: BTreeMap<ImageName, Result<Image, String>> = BTreeMap::new();
    let mut extensions: BTreeMap<ImageName, Result<(), String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (index, tenant) in tenants.iter().enumerate() {
        for container in &tenant.containers {
            let image = images.entry(container.image.clone()).or_insert_with(|| {
                let name = container.image.as_str();
                let file = Image::source_file(name);
                let text = bbhv_repo::read_image(root, name)
                    .map_err(|e| format!("image {name:?} is not declared: {file}: {e}"))?;
                Image::parse(&file, name, &text).map_err(|diagnostics| {
                    let count = diagnostics.len();
                    for d in diagnostics {
                        report.errors.push(d.to_string());
                    }
                    format!("image {name:?} is invalid: {file} has {count} problems (in the report's errors)")
                })
            });
            if let Err(message) = image {
                problems.push(bbhv_spec::Conflict {
                    index,
                    pointer: format!("/containers/{}/image", container.name),
                    message: message.clone(),
                    owner: tenant.id.clone(),
                });
            }
            for (i, extension) in container.extensions.iter().enumerate() {
                let found = extensions
                    .entry(extension.clone())
                    .or_insert_with(|| bbhv_repo::check_extension(root, extension.as_str()));
                if let Err(message) = found {
                    problems.push(bbhv_spec::Conflict {
                        index,
                        pointer: format!("/containers/{}/extensions/{i}", container.name),
                        message: format!(
                            "extension {:?} is not in the checkout: {message}",
                            extension.as_str()
                        ),
                        owner: tenant.id.clone(),
                    });
                }
            }
        }
    }
    let images = images
        .into_iter()
        .filter_map(|(name, image)| Some((name, image.ok()?)))
        .collect();
    (images, problems)
}

impl Plan {
    /// Renders each good tenant and hands its entries to `sink`. A tenant
    /// that `sink` fails to write is moved to the failed ones in the report;
    /// the others go on.
    pub fn render_each<E: std::fmt::Display>(
        &mut self,
        mut sink: impl FnMut(&[Entry]) -> Result<(), E>,
    ) {
        let Some(facts) = &self.facts else {
            return;
        };
        for tenant in &self.tenants {
            let Err(e) = sink(&bbhv_render::render_tenant(tenant, facts)) else {
                continue;
            };
            // The report is sorted by id.
            let found = self
                .report
                .tenants
                .binary_search_by(|t| t.id.as_str().cmp(tenant.id.as_str()));
            if let Ok(i) = found {
                let t = &mut self.report.tenants[i];
                t.status = Status::Failed;
                t.errors.push(Diagnostic {
                    file: tenant.file.clone(),
                    line: 0,
                    column: 0,
                    path: String::new(),
                    message: format!("not written: {e}"),
                });
            }
        }
    }
}
