//! `bbhv validate REPO [--json]`: the generator's own checks, run ahead of time.

use std::path::PathBuf;
use std::process::ExitCode;

use bbhv_generator::{Checkout, Host, HostPaths, plan};

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
    /// The host's settings: tenant subnets may not overlap its
    /// network.host_subnets, and a VLAN needs its uplink [default:
    /// $BITBUILDER_HOST_CONFIG, else /etc/bitbuilder/host.toml]. A missing
    /// file means every default; its errors are reported too.
    #[arg(long, value_name = "FILE")]
    host_config: Option<PathBuf>,
    /// Print the generator's JSON report instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let checkout = Checkout::open(&args.repo)?;
    let host_config = args
        .host_config
        .unwrap_or_else(|| HostPaths::from_env().host_config);
    let mut plan = plan(
        &checkout,
        args.applied.as_deref(),
        &Host::load(&host_config),
    );
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
