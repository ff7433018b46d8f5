//! `bbhv logs TENANT`: one journal view of a tenant. journalctl ORs matches joined by `+`:
//! what each of the tenant's units logged (`_SYSTEMD_UNIT=`), what systemd said about them
//! (`UNIT=`), and what the project said about the tenant (`BITBUILDER_TENANT=`, from the
//! generator's report and the sync).

use std::os::unix::process::CommandExt as _;
use std::process::ExitCode;

use anyhow::bail;
use bbhv_generator::HostPaths;
use bbhv_systemd::{Dbus, Systemd};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The tenant id.
    tenant: String,
    /// Follow: keep printing new entries.
    #[arg(short, long)]
    follow: bool,
    /// Show the last N entries.
    #[arg(short = 'n', long, value_name = "N")]
    lines: Option<u32>,
    /// Passed to journalctl --since (e.g. "1 hour ago", "2026-11-26 10:00").
    #[arg(long)]
    since: Option<String>,
    /// journalctl's output mode (short-iso, json, cat, ...).
    #[arg(short, long)]
    output: Option<String>,
}

/// The units every tenant has, loaded or not (a stopped unit is no longer listed by systemd,
/// but its journal is still wanted).
fn fixed_units(tenant: &str) -> Vec<String> {
    [
        "tenant@",
        "tenant-infra@",
        "tenant-network@",
        "bitbuilder-storage@",
    ]
    .iter()
    .map(|t| format!("{t}{tenant}.service"))
    .collect()
}

/// journalctl's arguments: the matches for `units` and the tenant, ORed.
pub fn journal_args(tenant: &str, units: &[String]) -> Vec<String> {
    let mut all: Vec<String> = fixed_units(tenant);
    all.extend(units.iter().cloned());
    all.sort();
    all.dedup();
    let mut args = Vec::new();
    for unit in &all {
        args.push(format!("_SYSTEMD_UNIT={unit}"));
        args.push("+".to_owned());
        // PID 1's own messages about the unit (Started, Failed with result...).
        args.push(format!("UNIT={unit}"));
        args.push("+".to_owned());
    }
    args.push(format!("BITBUILDER_TENANT={tenant}"));
    args
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The id becomes a match argument: only a valid id, so it cannot be an option or a glob.
    if bbhv_spec::names::TenantId::new(&args.tenant).is_none() {
        bail!(
            "{:?} is not a tenant id (lowercase letters, digits and '-')",
            bbhv_generator::escape(&args.tenant)
        );
    }
    let tenants_dir = HostPaths::from_env().tenants_dir.display().to_string();
    // The units loaded now (containers, VMs, mounts); without the bus, the fixed ones.
    let units: Vec<String> = match Dbus::system()
        .and_then(|sd| sd.list(&crate::status::patterns(&args.tenant, &tenants_dir)))
    {
        Ok(list) => list.into_iter().map(|u| u.unit).collect(),
        Err(e) => {
            eprintln!("bbhv logs: {e}; showing the tenant's fixed units only");
            Vec::new()
        }
    };
    let mut cmd = std::process::Command::new("journalctl");
    if args.follow {
        cmd.arg("--follow");
    }
    if let Some(n) = args.lines {
        cmd.arg(format!("--lines={n}"));
    }
    if let Some(since) = &args.since {
        cmd.arg(format!("--since={since}"));
    }
    if let Some(o) = &args.output {
        cmd.arg(format!("--output={o}"));
    }
    cmd.args(journal_args(&args.tenant, &units));
    let err = cmd.exec();
    bail!("cannot run journalctl: {err}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_are_ored_and_end_with_the_tenant_field() {
        let args = super::journal_args("acme", &["systemd-nspawn@acme.web.service".into()]);
        assert_eq!(args.last().unwrap(), "BITBUILDER_TENANT=acme");
        assert!(args.contains(&"_SYSTEMD_UNIT=systemd-nspawn@acme.web.service".to_owned()));
        assert!(args.contains(&"UNIT=tenant@acme.service".to_owned()));
        // Every match but the last is followed by "+": no two matches are ANDed.
        for pair in args.chunks(2) {
            if pair.len() == 2 {
                assert!(pair[0].contains('='), "{pair:?}");
                assert_eq!(pair[1], "+");
            }
        }
        assert_eq!(args.len(), 5 * 4 + 1);
    }
}
