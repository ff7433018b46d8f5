//! `bbhv report`: tenant-generator's last report, for people and the journal.
//! Generators cannot log reliably (stderr is /dev/null, a container has no
//! /dev/kmsg), so `bitbuilder-generator-report.service` runs this at boot.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bbhv_generator::{HostPaths, Priority, Report};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The report (default: $BITBUILDER_RUN_DIR/generator-report.json,
    /// /run/bitbuilder/generator-report.json).
    #[arg(long)]
    file: Option<PathBuf>,
}

/// Exit status 1 when a tenant was skipped or the repository was unreadable.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let file = args.file.unwrap_or_else(|| HostPaths::from_env().report);
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let report: Report = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a generator report", file.display()))?;

    // Under systemd, stdout goes to the journal, which reads a "<N>" prefix as
    // the priority; on a terminal the prefix would only be noise.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    for line in report.lines() {
        match (journal, line.priority) {
            (true, Priority::Info) | (false, _) => println!("{}", line.text),
            (true, priority) => println!("<{}>{}", priority.syslog(), line.text),
        }
    }
    Ok(if report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
