//! `bbhv validate REPO [--json]`: the generator's own checks, run ahead of time.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bbhv_generator::{Checkout, plan};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The repository checkout (the directory holding tenants/).
    repo: PathBuf,
    /// The checkout the host runs now: a tenant holding a VLAN, port, name
    /// or subnet there keeps it against a newcomer that claims it too
    /// (tenant-generator uses /var/lib/bitbuilder/previous). Without it, the
    /// first tenant by id keeps it.
    #[arg(long, value_name = "DIR")]
    applied: Option<PathBuf>,
    /// Print the generator's JSON report instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let checkout = Checkout::resolve(&args.repo)
        .with_context(|| format!("{}: no such directory", args.repo.display()))?;
    let mut plan = plan(&checkout, args.applied.as_deref());
    // Rendering is part of validation: a value the writer refuses is an error too.
    plan.render_each(|_| Ok(()))?;
    let report = &plan.report;
    if args.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        for error in &report.errors {
            println!("{error}");
        }
        for tenant in report.failed() {
            for diagnostic in &tenant.errors {
                println!("{diagnostic}");
            }
        }
        let failed = report.failed().count();
        eprintln!(
            "{}: {} tenants, {} valid, {} invalid",
            args.repo.display(),
            report.tenants.len(),
            report.tenants.len() - failed,
            failed
        );
    }
    Ok(if report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
