//! `bbhv report`: tenant-generator's last report, for people and the journal.
//! Generators cannot log reliably (stderr is /dev/null, a container has no
//! /dev/kmsg), so `bitbuilder-generator-report.service` runs this at boot.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bbhv_generator::journal::Journal;
use bbhv_generator::{GENERATOR, HostPaths, Line, Priority, Report, Status};

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

    // Under systemd, native records with the tenant and commit as fields, so that
    // `journalctl BITBUILDER_TENANT=acme` and `bbhv logs acme` find them.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    if journal && let Some(j) = Journal::open(GENERATOR) {
        let commit = report.commit.clone().unwrap_or_default();
        let mut unsent = 0;
        for (line, tenant) in records(&report) {
            let mut fields = vec![("BITBUILDER_COMMIT", commit.as_str())];
            if let Some(t) = &tenant {
                fields.push(("BITBUILDER_TENANT", t.as_str()));
            }
            if !j.send(line.priority, &line.text, &fields) {
                unsent += 1;
            }
        }
        if unsent == 0 {
            return Ok(exit(&report));
        }
        eprintln!("{unsent} records not taken by the journal; printing the report");
    }
    // On the journal's stdout stream a "<N>" prefix is the priority; on a terminal the
    // prefix would only be noise.
    for line in report.lines() {
        match (journal, line.priority) {
            (true, Priority::Info) | (false, _) => println!("{}", line.text),
            (true, priority) => println!("<{}>{}", priority.syslog(), line.text),
        }
    }
    Ok(exit(&report))
}

fn exit(report: &Report) -> ExitCode {
    if report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The report as journal records: the run's lines (no tenant), then per tenant its
/// diagnostics (failed) or one line saying it was generated, each with the tenant's id.
pub fn records(report: &Report) -> Vec<(Line, Option<String>)> {
    let mut out: Vec<(Line, Option<String>)> =
        vec![(Line::new(Priority::Info, &report.summary()), None)];
    out.extend(
        report
            .errors
            .iter()
            .map(|e| (Line::new(Priority::Err, e), None)),
    );
    let commit = report.commit.as_deref().unwrap_or("unknown");
    for t in &report.tenants {
        let id = Some(t.id.clone());
        match t.status {
            Status::Failed if !t.errors.is_empty() => out.extend(
                t.errors
                    .iter()
                    .map(|d| (Line::new(Priority::Err, &d.to_string()), id.clone())),
            ),
            Status::Failed => out.push((
                Line::new(
                    Priority::Err,
                    &format!("{}: tenant {} failed", t.file, t.id),
                ),
                id,
            )),
            Status::Generated | Status::Disabled => out.push((
                Line::new(
                    Priority::Info,
                    &format!(
                        "tenant {}: {} from {} (commit {commit})",
                        t.id,
                        if t.status == Status::Generated {
                            "generated"
                        } else {
                            "generated, disabled"
                        },
                        t.file
                    ),
                ),
                id,
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bbhv_generator::{State, TenantReport};

    use super::*;

    #[test]
    fn every_tenant_gets_a_record_with_its_id() {
        let mut r: Report = serde_json::from_value(serde_json::json!({
            "generator": "tenant-generator", "version": "0", "current": "/c",
            "commit": "abc", "state": "generated", "tenants": [], "errors": []
        }))
        .unwrap();
        assert_eq!(r.state, State::Generated);
        for (id, status) in [("acme", Status::Generated), ("bad", Status::Failed)] {
            r.tenants.push(TenantReport {
                id: id.into(),
                file: format!("tenants/{id}/metadata.json"),
                status,
                errors: vec![],
            });
        }
        let recs = records(&r);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].1, None);
        assert_eq!(recs[1].1.as_deref(), Some("acme"));
        assert!(recs[1].0.text.contains("commit abc"), "{:?}", recs[1]);
        assert_eq!(recs[2].1.as_deref(), Some("bad"));
        assert_eq!(recs[2].0.priority, Priority::Err);
    }
}
