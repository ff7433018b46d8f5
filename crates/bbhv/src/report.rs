//! `bbhv report`: tenant-generator's last report, for people and the journal.
//! Generators cannot log reliably (stderr is /dev/null, a container has no
//! /dev/kmsg), so `bitbuilder-generator-report.service` runs this at boot.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bbhv_generator::Report;

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
    let report: Report = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a generator report", file.display()))?;

    // Under systemd, stdout goes to the journal, which reads a "<3>" prefix as
    // priority err; on a terminal the prefix would only be noise.
    let error = if std::env::var_os("JOURNAL_STREAM").is_some() {
        "<3>"
    } else {
        ""
    };
    println!("{}", report.summary());
    for message in &report.errors {
        println!("{error}{message}");
    }
    for tenant in report.failed() {
        for diagnostic in &tenant.errors {
            println!("{error}tenant {} skipped: {diagnostic}", tenant.id);
        }
    }
    Ok(if report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
