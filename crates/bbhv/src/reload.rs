//! `bbhv reload`: make the running host match the generated configuration,
//! after `current` moved (what the git-ops apply runs, and what an
//! operator runs after changing the checkout by hand).
//!
//! 1. `systemctl daemon-reload`: the generators run again.
//! 2. Stop every tenant the checkout no longer declares: a unit whose file
//!    is gone stays active until stopped, and its network (`PartOf=`) stops
//!    with it. Its containers and its mounts do not: after the reload their
//!    generated files are gone, so a container unit is systemd's own
//!    `systemd-nspawn@.service` again and a mount is only what
//!    `/proc/self/mountinfo` shows, both without the `PartOf=` that tied
//!    them to the tenant. So the container units and the mounts below the
//!    tenants' directory that were active with a generated file before the
//!    reload, and have none after it, are stopped too: the containers with
//!    the tenants, then the mounts (systemd orders a mount after the mounts
//!    below it). A declared tenant's state file system stays mounted when
//!    its storageQuota went away (its containers run on it).
//! 3. Start `tenants.target` again, which starts the new tenants.
//! 4. `networkctl reload`, then `bbhv net prune`: networkd makes the new
//!    links but never deletes one whose file is gone.

use std::process::ExitCode;

use anyhow::Context as _;
use bbhv_generator::HostPaths;
use bbhv_net::sys;

const SYSTEMCTL: &str = "/usr/bin/systemctl";
const NETWORKCTL: &str = "/usr/bin/networkctl";

#[derive(Debug, clap::Args)]
pub struct Args {}

/// Active units matching `patterns` that have a file in the generator
/// directory.
fn generated_active(paths: &HostPaths, patterns: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut args = vec!["list-units", "--plain", "--no-legend", "--state=active"];
    args.extend(patterns);
    let active = sys::run(SYSTEMCTL, &args, None)?;
    Ok(active
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|unit| paths.generator_dir.join(unit).exists())
        .map(str::to_owned)
        .collect())
}

/// `systemctl stop UNITS` (nothing when empty), printing what was stopped.
fn stop(units: &[String], why: &str) -> anyhow::Result<()> {
    if units.is_empty() {
        return Ok(());
    }
    let mut args = vec!["stop"];
    args.extend(units.iter().map(String::as_str));
    sys::run(SYSTEMCTL, &args, None).with_context(|| format!("stopping {why}"))?;
    for unit in units {
        println!("stopped {unit} ({why})");
    }
    Ok(())
}

/// Where the reload is, for `systemctl status` (STATUS=; a no-op outside a unit, and
/// ignored by a unit without NotifyAccess=).
fn status(text: &str) {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Status(text)]);
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    let paths = HostPaths::from_env();
    // The mounts below the tenants' directory: `var-lib-tenants-*.mount`.
    let tenants_mounts =
        bbhv_unit::unit_name_from_path(&paths.tenants_dir.to_string_lossy(), "mount")
            .ok()
            .and_then(|name| {
                name.strip_suffix(".mount")
                    .map(|stem| format!("{stem}-*.mount"))
            });
    let containers_before = generated_active(&paths, &["systemd-nspawn@*.service"])?;
    let mounts_before = match &tenants_mounts {
        Some(pattern) => generated_active(&paths, &[pattern.as_str()])?,
        None => Vec::new(),
    };
    status("daemon-reload (the generators run again)");
    sys::run(SYSTEMCTL, &["daemon-reload"], None).context("daemon-reload")?;
    let gone = |units: Vec<String>| -> Vec<String> {
        units
            .into_iter()
            .filter(|unit| !paths.generator_dir.join(unit).exists())
            .collect()
    };
    let containers_gone = gone(containers_before);
    let mounts_gone = gone(mounts_before);

    let active = sys::run(
        SYSTEMCTL,
        &[
            "list-units",
            "--plain",
            "--no-legend",
            "--state=active",
            "tenant@*.service",
        ],
        None,
    )?;
    let undeclared: Vec<&str> = active
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|unit| !paths.generator_dir.join(unit).exists())
        .collect();
    let mut first: Vec<String> = undeclared.iter().map(|u| (*u).to_owned()).collect();
    first.extend(containers_gone);
    status(&format!(
        "stopping {} units no longer declared",
        first.len()
    ));
    stop(&first, "no longer declared")?;
    // A tenant that is still declared keeps its state file system even when
    // its storageQuota went away (its containers run on it; the quota's
    // removal takes effect when the tenant restarts): only the mounts of
    // removed tenants and removed containers' roots are stopped.
    let mounts_gone: Vec<String> = mounts_gone
        .into_iter()
        .filter(|unit| {
            let Ok(place) = sys::run(SYSTEMCTL, &["show", "-P", "Where", unit], None) else {
                return false;
            };
            let Ok(rest) = std::path::Path::new(place.trim()).strip_prefix(&paths.tenants_dir)
            else {
                return false;
            };
            let parts: Vec<_> = rest.components().collect();
            match parts.as_slice() {
                [id] => !paths
                    .generator_dir
                    .join(format!(
                        "tenant@{}.service",
                        id.as_os_str().to_string_lossy()
                    ))
                    .exists(),
                _ => true,
            }
        })
        .collect();
    stop(&mounts_gone, "no longer declared")?;
    status("starting tenants.target");
    sys::run(SYSTEMCTL, &["start", "--no-block", "tenants.target"], None)
        .context("starting tenants.target")?;

    let networkd = sys::run(
        SYSTEMCTL,
        &["is-active", "--quiet", "systemd-networkd.service"],
        None,
    );
    if networkd.is_ok() {
        status("networkctl reload, pruning links");
        sys::run(NETWORKCTL, &["reload"], None).context("networkctl reload")?;
        crate::net::run(crate::net::Command::Prune)?;
    } else {
        println!("systemd-networkd is not running: tenant links are left as they are");
    }
    status("done");
    Ok(ExitCode::SUCCESS)
}
