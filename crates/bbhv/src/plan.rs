//! `bbhv plan [REV]`: what a sync would change, per tenant (units added,
//! removed and changed, with a unified diff), the unit jobs it would run,
//! and whether it would refuse the commit. Changes nothing on the host
//! (it fetches into the mirror when no REV is given).

use std::path::PathBuf;
use std::process::ExitCode;

use bbhv_gitops::plan::Change;

use crate::sync::{HostEffects, context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A commit id or a branch of the mirror. Default: the branch host.toml
    /// follows, fetched first.
    rev: Option<String>,
    /// Plan a directory (a checkout you have not pushed yet) instead.
    #[arg(long, conflicts_with = "rev")]
    checkout: Option<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
    /// Only the summary and the jobs, no diffs.
    #[arg(long)]
    brief: bool,
}

fn sign(change: Change) -> char {
    match change {
        Change::Added => '+',
        Change::Removed => '-',
        Change::Changed => '~',
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let effects = match HostEffects::connect() {
        Ok(effects) => effects,
        // Planning needs no systemd: only the sync's context.
        Err(_) => HostEffects::offline(),
    };
    let sync = context(&effects);
    let view = sync
        .lock()
        .and_then(|_lock| sync.plan(args.rev.as_deref(), args.checkout.as_deref()));
    let view = match view {
        Ok(view) => view,
        Err(e) => {
            eprintln!("bbhv plan: {}", bbhv_generator::escape(&e.to_string()));
            return Ok(ExitCode::from(2));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = Vec::new();
    out.push(format!(
        "plan: {} -> {}",
        view.from.as_deref().unwrap_or("nothing applied"),
        view.to
    ));
    match (&view.refused, &view.signer) {
        (Some(reason), _) => out.push(format!("a sync would REFUSE it: {reason}")),
        (None, Some(signer)) => out.push(format!(
            "signed by {} ({})",
            signer.principals, signer.fingerprint
        )),
        (None, None) => {}
    }
    for tenant in &view.plan.tenants {
        out.push(format!(
            "{} tenant {} ({})",
            sign(tenant.change),
            tenant.id,
            tenant.change
        ));
        for (unit, change) in &tenant.units {
            out.push(format!("    {} {unit}", sign(*change)));
        }
        if !args.brief {
            for file in &tenant.files {
                for line in file.diff.lines() {
                    out.push(format!("      {line}"));
                }
            }
        }
    }
    for file in &view.plan.shared {
        out.push(format!(
            "{} {} ({})",
            sign(file.change),
            file.path,
            file.change
        ));
    }
    let jobs = &view.jobs;
    for (what, units) in [
        ("stop", &jobs.stop),
        ("restart", &jobs.restart),
        ("start", &jobs.start),
    ] {
        if !units.is_empty() {
            out.push(format!("{what}: {}", units.join(" ")));
        }
    }
    if jobs.reload_networks {
        out.push("networkctl reload".into());
    }
    out.push(format!(
        "{} tenants changed, {} unchanged",
        view.plan.tenants.len(),
        view.plan.unchanged
    ));
    for line in out {
        println!("{}", bbhv_generator::escape(&line));
    }
    Ok(ExitCode::SUCCESS)
}
