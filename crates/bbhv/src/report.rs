//! `bbhv report`: tenant-generator's last report, for people and the journal.
//! Generators cannot log reliably (stderr is /dev/null, a container has no
//! /dev/kmsg), so `bitbuilder-generator-report.service` runs this at boot.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The report (default: $BITBUILDER_RUN_DIR/generator-report.json,
    /// /run/bitbuilder/generator-report.json).
    #[arg(long)]
    file: Option<PathBuf>,
}

/// Exit status 1 when a tenant was skipped or the repository was unreadable.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let file = args.file.unwrap_or_else(|| {
        let dir = std::env::var_os("BITBUILDER_RUN_DIR").filter(|d| !d.is_empty());
        dir.map_or_else(|| PathBuf::from("/run/bitbuilder"), PathBuf::from)
            .join("generator-report.json")
    });
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let report: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;

    // Under systemd, stdout goes to the journal, which reads a "<3>" prefix as
    // priority err; on a terminal the prefix would only be noise.
    let error = if std::env::var_os("JOURNAL_STREAM").is_some() {
        "<3>"
    } else {
        ""
    };
    let tenants = report["tenants"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let count = |status: &str| tenants.iter().filter(|t| t["status"] == status).count();
    let source = report["current"]
        .as_str()
        .unwrap_or("nothing (waiting for /var/lib/bitbuilder/current)");
    println!(
        "tenant-generator: {} tenants generated, {} disabled, {} failed, from {source} (commit {})",
        count("generated"),
        count("disabled"),
        count("failed"),
        report["commit"].as_str().unwrap_or("unknown"),
    );
    let mut failed = false;
    for message in report["errors"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        println!(
            "{error}tenant-generator: {}",
            message.as_str().unwrap_or_default()
        );
        failed = true;
    }
    for tenant in tenants.iter().filter(|t| t["status"] == "failed") {
        let id = tenant["id"].as_str().unwrap_or_default();
        let diagnostics: Vec<bbhv_spec::Diagnostic> =
            serde_json::from_value(tenant["errors"].clone())
                .with_context(|| format!("{}: errors of tenant {id}", file.display()))?;
        for diagnostic in diagnostics {
            println!("{error}tenant {id} skipped: {diagnostic}");
        }
        failed = true;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
