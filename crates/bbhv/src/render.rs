//! `bbhv render REPO --out DIR | --dryrun`: exactly what tenant-generator
//! and mount-generator write, through the same code.

use std::path::PathBuf;
use std::process::ExitCode;

use bbhv_generator::{Checkout, Host, HostPaths, MOUNT_GENERATOR, Plan, Staging, plan};
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
    /// The host's settings (VLAN uplink, host subnets), as the generator
    /// reads them [default: $BITBUILDER_HOST_CONFIG, else
    /// /etc/bitbuilder/host.toml]. A missing file means every default.
    #[arg(long, value_name = "FILE")]
    host_config: Option<PathBuf>,
    /// Make DIR exactly the rendered tree: DIR/units (what the generators
    /// write into their output directory: tenant-generator's units and
    /// mount-generator's mounts), DIR/network (its files for
    /// /run/systemd/network), DIR/nspawn (for /run/systemd/nspawn), each
    /// present when it has entries. The tree is written into a new
    /// hidden directory beside DIR, which then replaces DIR in one step
    /// (renameat2 RENAME_EXCHANGE); the old tree is removed without
    /// following any link in it. Nothing already in DIR is kept or written
    /// through. DIR must be a directory or not exist (its parent is created
    /// if missing); a DIR that is a symlink or a file is refused.
    #[arg(long, group = "output", value_name = "DIR", verbatim_doc_comment)]
    out: Option<PathBuf>,
    /// Print each file as `---units/path---` (or network/, nspawn/) and its
    /// content instead.
    #[arg(long, group = "output")]
    dryrun: bool,
    /// The commit to name in provenance headers (default: from a generation
    /// directory name `<seq>-<sha>`, else unknown).
    #[arg(long)]
    commit: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut checkout = Checkout::open(&args.repo)?;
    if let Some(commit) = args.commit {
        checkout.commit = Some(commit);
    }
    let host_config = args
        .host_config
        .unwrap_or_else(|| HostPaths::from_env().host_config);
    let mut plan = plan(
        &checkout,
        args.applied.as_deref(),
        &Host::load(&host_config),
    );
    match &args.out {
        Some(path) => {
            let mut staging = Staging::create(path)?;
            plan.render_each(|entries| staging.dir().write(&in_subdirs(entries)));
            for entries in mounts(&plan) {
                staging.dir().write(&in_subdirs(&entries))?;
            }
            staging.commit()?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            plan.render_each(|entries| print_entries(&mut out, entries));
            for entries in mounts(&plan) {
                print_entries(&mut out, &entries)?;
            }
        }
    }
    // Problems on stderr, as the generator logs them.
    for line in plan.report.lines() {
        if line.priority.is_problem() {
            eprintln!("{}", line.text);
        }
    }
    Ok(if plan.report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What mount-generator writes for the plan: the image mounts, then each
/// tenant's container roots.
fn mounts(plan: &Plan) -> Vec<Vec<Entry>> {
    let Some(facts) = &plan.facts else {
        return Vec::new();
    };
    let mut facts = facts.clone();
    facts.generator = MOUNT_GENERATOR;
    let mut all = vec![bbhv_render::mounts::render_image_mounts(
        &plan.images,
        &facts,
    )];
    for tenant in &plan.tenants {
        let mut entries = bbhv_render::mounts::render_storage(tenant, &facts);
        entries.extend(bbhv_render::mounts::render_overlays(
            tenant,
            &plan.images,
            &facts,
        ));
        all.push(entries);
    }
    all
}

/// Each entry below the subdirectory of its root (`units/`, `network/`, `nspawn/`).
fn in_subdirs(entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .map(|entry| match entry {
            Entry::File {
                root,
                path,
                content,
            } => Entry::File {
                root: *root,
                path: PathBuf::from(root.name()).join(path),
                content: content.clone(),
            },
            Entry::Symlink { root, path, target } => Entry::Symlink {
                root: *root,
                path: PathBuf::from(root.name()).join(path),
                target: target.clone(),
            },
        })
        .collect()
}

/// Quadlet's `--dryrun` format: `---root/path---`, then the content.
fn print_entries(out: &mut impl std::io::Write, entries: &[Entry]) -> std::io::Result<()> {
    for entry in in_subdirs(entries) {
        match entry {
            Entry::File { path, content, .. } => {
                write!(out, "---{}---\n{content}\n", path.display())?
            }
            Entry::Symlink { path, target, .. } => {
                writeln!(out, "---{}---\n-> {}\n", path.display(), target.display())?
            }
        }
    }
    Ok(())
}
