//! One run of `mount-generator`: the same checkout, plan and checks as
//! `tenant-generator` (so both agree on which tenants are good), rendered
//! into mount units: the verified image mounts and each container's
//! overlay root. Tenant problems are in tenant-generator's report; this
//! run logs only its own (what it could not write).

use std::path::Path;

use crate::{Checkout, Current, Host, HostPaths, Log, OutputDir, Priority, SharedLock, plan_as};

/// The mount generator's name, in provenance headers and logs.
pub const MOUNT_GENERATOR: &str = "mount-generator";

/// The whole run into `normal_dir`; false when something could not be
/// read or written.
pub fn run_mounts(paths: &HostPaths, normal_dir: &Path, log: &Log) -> bool {
    let _lock = match SharedLock::acquire(&paths.lock, paths.lock_wait) {
        Ok(lock) => lock,
        Err(e) => {
            log.emit(
                Priority::Warning,
                &format!("cannot take the generator lock: {e}; reading current without it"),
            );
            None
        }
    };
    let checkout = match Checkout::current(&paths.current) {
        Ok(Current::Ready(checkout)) => checkout,
        // tenant-generator enables the re-run for this case.
        Ok(Current::Missing(_)) => return true,
        Err(e) => {
            log.emit(
                Priority::Err,
                &format!("the applied checkout {e}; no mount is generated until it is fixed"),
            );
            return false;
        }
    };
    // The same decisions as tenant-generator: host.toml can fail a tenant.
    let host = Host::load(&paths.host_config);
    let plan = plan_as(&checkout, Some(&paths.previous), &host, MOUNT_GENERATOR);
    let Some(facts) = &plan.facts else {
        log.emit(
            Priority::Err,
            &format!(
                "{}: {}",
                checkout.root.display(),
                plan.report.errors.join("; ")
            ),
        );
        return false;
    };
    let mut out = match OutputDir::open(normal_dir) {
        Ok(out) => out,
        Err(e) => {
            log.emit(
                Priority::Err,
                &format!("cannot open the output directory {e}"),
            );
            return false;
        }
    };
    let mut ok = true;
    let mut mounts = 0;
    let images = bbhv_render::mounts::render_image_mounts(&plan.images, facts);
    for entry in &images {
        if let Err(e) = out.write(std::slice::from_ref(entry)) {
            log.emit(Priority::Err, &format!("image mount not written: {e}"));
            ok = false;
        }
    }
    for tenant in &plan.tenants {
        let mut entries = bbhv_render::mounts::render_storage(tenant, facts);
        entries.extend(bbhv_render::mounts::render_overlays(
            tenant,
            &plan.images,
            facts,
        ));
        match out.write(&entries) {
            Ok(()) => mounts += entries.len(),
            Err(e) => {
                log.emit(
                    Priority::Err,
                    &format!("tenant {}: mounts not written: {e}", tenant.id),
                );
                ok = false;
            }
        }
    }
    log.emit(
        Priority::Info,
        &format!(
            "{mounts} tenant mounts (container roots, state file systems) and {} image mounts from {}",
            images.len(),
            checkout.root.display()
        ),
    );
    ok
}
