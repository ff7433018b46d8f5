//! `bbhv render REPO --out DIR | --dryrun`: exactly what tenant-generator
//! writes, through the same code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bbhv_generator::{Checkout, OutputDir, plan};
use bbhv_render::Entry;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("output").required(true))]
pub struct Args {
    /// The repository checkout (the directory holding tenants/).
    repo: PathBuf,
    /// The checkout the host runs now: a tenant holding a VLAN, port, name
    /// or subnet there keeps it against a newcomer that claims it too
    /// (tenant-generator uses /var/lib/bitbuilder/previous). Without it, the
    /// first tenant by id keeps it.
    #[arg(long, value_name = "DIR")]
    applied: Option<PathBuf>,
    /// Write the units into this directory (created if missing).
    #[arg(long, group = "output")]
    out: Option<PathBuf>,
    /// Print each file as `---path---` and its content instead.
    #[arg(long, group = "output")]
    dryrun: bool,
    /// The commit to name in provenance headers (default: from a generation
    /// directory name `<seq>-<sha>`, else unknown).
    #[arg(long)]
    commit: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut checkout = Checkout::resolve(&args.repo)
        .with_context(|| format!("{}: no such directory", args.repo.display()))?;
    if let Some(commit) = args.commit {
        checkout.commit = Some(commit);
    }
    let mut plan = plan(&checkout, args.applied.as_deref());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut dir = match &args.out {
        Some(path) => {
            Some(OutputDir::open(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => None,
    };
    plan.render_each(|entries| match &mut dir {
        Some(dir) => dir.write(entries),
        None => print_entries(&mut out, entries),
    })?;
    for error in &plan.report.errors {
        eprintln!("{error}");
    }
    for tenant in plan.report.failed() {
        for diagnostic in &tenant.errors {
            eprintln!("tenant {} skipped: {diagnostic}", tenant.id);
        }
    }
    Ok(if plan.report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Quadlet's `--dryrun` format: `---path---`, then the content.
fn print_entries(out: &mut impl std::io::Write, entries: &[Entry]) -> std::io::Result<()> {
    for entry in entries {
        match entry {
            Entry::File { path, content } => write!(out, "---{}---\n{content}\n", path.display())?,
            Entry::Symlink { path, target } => {
                writeln!(out, "---{}---\n-> {}\n", path.display(), target.display())?
            }
        }
    }
    Ok(())
}
