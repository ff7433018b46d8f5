//! `bbhv`: the BitBuilder Hypervisor command line. One module per verb.

mod boot;
mod doctor;
mod ext;
mod history;
mod host;
mod image;
mod logs;
mod manuals;
mod net;
mod plan;
mod reload;
mod render;
mod report;
mod rollback;
mod schema;
mod status;
mod sync;
mod tenant;
mod validate;
mod vm;
mod why;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bbhv",
    version,
    about = "BitBuilder Hypervisor: tenants from git, run by systemd"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a tenant repository: every tenant, and the fleet as a whole.
    /// Exit 0 when valid, 1 when not.
    Validate(validate::Args),
    /// Render a repository exactly as tenant-generator would.
    Render(render::Args),
    /// Print tenant-generator's last report (exit 1 when a tenant was skipped).
    Report(report::Args),
    /// Print the JSON Schema of metadata.json (schema/metadata.schema.json).
    Schema(schema::Args),
    /// Images (images/NAME.json): verify an image file's digest; pull signed
    /// images into the store.
    #[command(subcommand)]
    Image(image::Command),
    /// System and configuration extensions: build, verify, apply.
    #[command(subcommand)]
    Ext(ext::Command),
    /// Hooks run by the tenant units (tenant@, tenant-infra@, bitbuilder-storage@).
    #[command(subcommand)]
    Tenant(tenant::Command),
    /// VMs (tenant-vm@TENANT_VM.service): run one, stop one cleanly.
    #[command(subcommand)]
    Vm(vm::Command),
    /// Tenant networks at run time: the firewall, a tenant's rules and DNS,
    /// a workload's link (run by the units).
    #[command(subcommand)]
    Net(net::Command),
    /// Make the running host match the applied checkout: daemon-reload, stop
    /// tenants no longer declared, start new ones, reload networkd, prune links.
    Reload(reload::Args),
    /// Follow the branch host.toml names: fetch, check the signature, apply,
    /// roll back when unhealthy. Exit 0 applied or up to date, 1 refused or
    /// rolled back, 2 could not run.
    Sync(sync::Args),
    /// What a sync would change, per tenant and unit, with diffs.
    Plan(plan::Args),
    /// Go back to an earlier generation, offline.
    Rollback(rollback::Args),
    /// The syncs of this host: commit, signer, time, outcome and why.
    History(history::Args),
    /// The host's own boot: signed UKIs in A/B slots on the ESP, booted by
    /// systemd-boot with boot counting (docs/boot.md).
    #[command(subcommand)]
    Boot(boot::Command),
    /// Per tenant: validated, units, network, overlays, workloads, healthy; since when, which commit.
    Status(status::Args),
    /// A tenant's journal: its units and what the generator and sync said about it.
    Logs(logs::Args),
    /// Which tenant, repository file and commit produced a unit; its dependencies.
    Why(why::Args),
    /// Check that this host can run the platform; print the fix for each problem.
    Doctor(doctor::Args),
    /// Write the man pages and shell completions (run by `make install`).
    #[command(hide = true)]
    Manuals(manuals::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Render(args) => render::run(args),
        Command::Report(args) => report::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Tenant(command) => tenant::run(command),
        Command::Net(command) => net::run(command),
        Command::Reload(args) => reload::run(args),
        Command::Image(command) => image::run(command),
        Command::Ext(command) => ext::run(command),
        Command::Vm(command) => vm::run(command),
        Command::Sync(args) => sync::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Rollback(args) => rollback::run(args),
        Command::History(args) => history::run(args),
        Command::Boot(command) => boot::run(command),
        Command::Status(args) => status::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Why(args) => why::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Manuals(args) => manuals::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Messages quote paths and names from the repository.
            eprintln!("bbhv: {}", bbhv_generator::escape(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
