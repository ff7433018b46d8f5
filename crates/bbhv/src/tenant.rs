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
    /// Create or grow tenant ID's state file system to its storageQuota:
    /// /var/lib/bitbuilder/storage/ID.img, a sparse ext4 image that
    /// mount-generator's unit mounts on /var/lib/tenants/ID
    /// (bitbuilder-storage@.service). A lowered quota is not applied (ext4
    /// does not shrink safely); it says so.
    Storage { id: String },
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
        Command::Storage { id } => {
            let (tenant, _) = load(&id)?;
            storage(&tenant)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `bbhv tenant storage`: the image file exists with at least the quota's size.
fn storage(tenant: &Tenant) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let Some(quota) = tenant.resources.storage_quota else {
        println!("tenant {}: no storageQuota, nothing to do", tenant.id);
        return Ok(());
    };
    let dir = HostPaths::from_env().storage_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{}.img", tenant.id));
    let open = |create: bool| {
        let mut options = std::fs::OpenOptions::new();
        options
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        if create {
            options.create_new(true);
        }
        options.open(&path)
    };
    let tool = |program: &str, args: &[&std::ffi::OsStr]| -> anyhow::Result<()> {
        let status = std::process::Command::new(program)
            .args(args)
            .status()
            .with_context(|| format!("running {program}"))?;
        // e2fsck -p: 1 means errors were corrected.
        if status.success() || (program.ends_with("e2fsck") && status.code() == Some(1)) {
            Ok(())
        } else {
            bail!("{program} {} failed: {status}", path.display())
        }
    };
    match open(true) {
        Ok(file) => {
            file.set_len(quota.bytes())
                .with_context(|| format!("sizing {}", path.display()))?;
            drop(file);
            let created = tool(
                "/usr/sbin/mkfs.ext4",
                &[
                    "-q".as_ref(),
                    "-F".as_ref(),
                    "-m".as_ref(),
                    "0".as_ref(),
                    "-E".as_ref(),
                    "root_owner=0:0".as_ref(),
                    path.as_os_str(),
                ],
            );
            if let Err(e) = created {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            println!(
                "tenant {}: created {} ({quota}, ext4)",
                tenant.id,
                path.display()
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let file = open(false).with_context(|| format!("opening {}", path.display()))?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                bail!("{} is not a regular file", path.display());
            }
            let size = meta.len();
            drop(file);
            if size < quota.bytes() {
                // Offline: this runs before the file system is mounted.
                tool(
                    "/usr/sbin/e2fsck",
                    &["-f".as_ref(), "-p".as_ref(), path.as_os_str()],
                )?;
                open(false)?.set_len(quota.bytes())?;
                tool("/usr/sbin/resize2fs", &[path.as_os_str()])?;
                println!("tenant {}: grew {} to {quota}", tenant.id, path.display());
            } else if size > quota.bytes() {
                eprintln!(
                    "tenant {}: storageQuota is {quota} but {} holds {size} bytes; \
                     shrinking is not done (copy the state to a new file system by hand)",
                    tenant.id,
                    path.display()
                );
            } else {
                println!("tenant {}: {} is {quota}", tenant.id, path.display());
            }
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    Ok(())
}

fn load(id: &str) -> anyhow::Result<(Tenant, Option<String>)> {
    let current = HostPaths::from_env().current;
    let checkout = Checkout::open(&current).context("no applied checkout")?;
    load_from(&checkout, id)
}

/// Tenant `id` from `checkout`, valid in itself (the units that run it were
/// generated from the same checkout, after the fleet check).
pub fn load_from(checkout: &Checkout, id: &str) -> anyhow::Result<(Tenant, Option<String>)> {
    let source = bbhv_repo::read_tenant(&checkout.root, id)?;
    let text = source.text.map_err(|d| {
        anyhow::anyhow!(
            "tenant {id} is not declared in {}: {d}",
            checkout.root.display()
        )
    })?;
    match Tenant::parse(&source.file, &source.dir_name, &text) {
        Ok(tenant) => Ok((tenant, checkout.commit.clone())),
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
    let addresses = tenant.workload_addresses();
    for c in &tenant.containers {
        let mut part = format!(
            "container {} ({}",
            tenant.id.machine(c.name.as_str()),
            tenant.id.machine_unit(c.name.as_str())
        );
        if let Some(addr) = addresses.get(&c.name) {
            part.push_str(&format!(", {addr}"));
        }
        part.push(')');
        parts.push(part);
    }
    for v in &tenant.vms {
        let mut part = format!(
            "VM {} ({}, {} CPUs, {}",
            tenant.id.machine(v.name.as_str()),
            tenant.id.vm_unit(v.name.as_str()),
            v.cpus,
            v.memory
        );
        if let Some(addr) = addresses.get(&v.name) {
            part.push_str(&format!(", {addr}"));
        }
        part.push(')');
        parts.push(part);
    }
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
