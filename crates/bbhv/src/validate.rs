//! `bbhv validate REPO [--json]`: the generator's own checks, run ahead of time.

use std::path::PathBuf;
use std::process::ExitCode;

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
    let checkout = Checkout::open(&args.repo)?;
    let mut plan = plan(&checkout, args.applied.as_deref());
    // Rendering is part of validation: a value the writer refuses is an error too.
    plan.render_each(|_| Ok::<(), std::convert::Infallible>(()));
    let report = &plan.report;
    if args.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        // Problems on stdout (the exact diagnostics), the summary on stderr.
        for line in report.lines() {
            if line.priority.is_problem() {
                println!("{}", line.text);
            } else {
                eprintln!("{}", line.text);
            }
        }
    }
    Ok(if report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
