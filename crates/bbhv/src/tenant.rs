//! `bbhv tenant …`: what the tenant units run. Each reads only its own
//! tenant from the applied checkout, so starting 10,000 tenants costs
//! 10,000 small reads, not 10,000 reads of the fleet.

use std::os::unix::fs::DirBuilderExt as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use bbhv_generator::{Checkout, HostPaths, escape};
use bbhv_spec::Tenant;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check that tenant ID is declared and valid in the applied checkout,
    /// and summarize it (tenant@.service).
    Check { id: String },
    /// Check tenant ID, then create its state directories under
    /// /var/lib/tenants/ID: systemd/, and upper/NAME, work/NAME per container
    /// (tenant-infra@.service).
    Prepare { id: String },
    /// Run VM `TENANT_VM` (tenant-vm@.service): not available yet.
    Vm { instance: String },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { id } => {
            let (tenant, commit) = load(&id)?;
            println!("{}", summary(&tenant, commit.as_deref()));
        }
        Command::Prepare { id } => {
            let (tenant, _) = load(&id)?;
            let state = HostPaths::from_env().tenants_dir.join(tenant.id.as_str());
            // systemd/: the tenant's unit drop-ins; upper/, work/: its
            // containers' overlays (upper/<name>, work/<name>; the root is
            // mounted on root/<name>).
            let mut dirs: Vec<String> = ["", "systemd", "upper", "work", "root"]
                .map(String::from)
                .to_vec();
            for c in &tenant.containers {
                dirs.push(format!("upper/{}", c.name));
                dirs.push(format!("work/{}", c.name));
            }
            for dir in &dirs {
                let path = state.join(dir);
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
            }
            println!("tenant {}: state in {}", tenant.id, state.display());
        }
        Command::Vm { instance } => {
            bail!(
                "VM {instance}: virtual machines are not available in this version; \
                 tenant-generator does not enable tenant-vm@ instances yet"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load(id: &str) -> anyhow::Result<(Tenant, Option<String>)> {
    let current = HostPaths::from_env().current;
    let checkout = Checkout::open(&current).context("no applied checkout")?;
    let source = bbhv_repo::read_tenant(&checkout.root, id)?;
    let text = source.text.map_err(|d| {
        anyhow::anyhow!(
            "tenant {id} is not declared in {}: {d}",
            checkout.root.display()
        )
    })?;
    match Tenant::parse(&source.file, &source.dir_name, &text) {
        Ok(tenant) => Ok((tenant, checkout.commit)),
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{}", escape(&d.to_string()));
            }
            bail!(
                "tenant {id} is invalid in {} ({} problems)",
                checkout.root.display(),
                diagnostics.len()
            )
        }
    }
}

fn summary(tenant: &Tenant, commit: Option<&str>) -> String {
    let mut parts = vec![format!("slice {}", tenant.id.slice())];
    parts.push(format!(
        "{} containers, {} VMs",
        tenant.containers.len(),
        tenant.vms.len()
    ));
    if let Some(net) = &tenant.network {
        let mut n = String::from("network");
        if let Some(vlan) = net.vlan {
            n.push_str(&format!(" VLAN {vlan}"));
        }
        for addr in net
            .ipv4
            .map(|a| a.to_string())
            .into_iter()
            .chain(net.ipv6.map(|a| a.to_string()))
        {
            n.push_str(&format!(" {addr}"));
        }
        parts.push(n);
    }
    if !tenant.enabled {
        parts.push("disabled in the repository (started by hand)".into());
    }
    parts.push(format!("commit {}", commit.unwrap_or("unknown")));
    format!("tenant {}: {}", tenant.id, parts.join("; "))
}
