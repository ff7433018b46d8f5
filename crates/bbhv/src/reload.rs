//! `bbhv reload`: make the running host match the generated configuration,
//! after `current` moved (what the git-ops apply runs, and what an
//! operator runs after changing the checkout by hand).
//!
//! 1. `systemctl daemon-reload`: the generators run again.
//! 2. Stop every tenant the checkout no longer declares: a unit whose file
//!    is gone stays active until stopped, and its workloads and network
//!    (`PartOf=`) stop with it.
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

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    let paths = HostPaths::from_env();
    sys::run(SYSTEMCTL, &["daemon-reload"], None).context("daemon-reload")?;

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
    if !undeclared.is_empty() {
        let mut args = vec!["stop"];
        args.extend(&undeclared);
        sys::run(SYSTEMCTL, &args, None)
            .context("stopping tenants the checkout no longer declares")?;
        for unit in &undeclared {
            println!("stopped {unit} (no longer declared)");
        }
    }
    sys::run(SYSTEMCTL, &["start", "--no-block", "tenants.target"], None)
        .context("starting tenants.target")?;

    let networkd = sys::run(
        SYSTEMCTL,
        &["is-active", "--quiet", "systemd-networkd.service"],
        None,
    );
    if networkd.is_ok() {
        sys::run(NETWORKCTL, &["reload"], None).context("networkctl reload")?;
        crate::net::run(crate::net::Command::Prune)?;
    } else {
        println!("systemd-networkd is not running: tenant links are left as they are");
    }
    Ok(ExitCode::SUCCESS)
}
