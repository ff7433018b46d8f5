//! `bbhv history`: every sync that did something, oldest first: the
//! commit, who signed it, when, and what became of it (applied, refused
//! and why, rolled back and why), with the generations on disk marked.

use std::process::ExitCode;

use bbhv_generator::HostPaths;
use bbhv_gitops::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the records as JSON (one array).
    #[arg(long)]
    json: bool,
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of seconds since the epoch.
pub(crate) fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let paths = HostPaths::from_env();
    let store = Store::new(&paths.state_dir);
    let history = store.history();
    if args.json {
        let current = store.current_generation().map(|g| g.name());
        let value = serde_json::json!({ "current": current, "records": history });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let current = store.current_generation();
    println!(
        "{:<19}  {:<14}  {:<12}  {:<16}  {:<24}  reason",
        "time (UTC)", "generation", "commit", "outcome", "signer"
    );
    for record in &history {
        let generation = record.generation.as_deref().unwrap_or("-");
        let seq = generation.split_once('-').map_or("-", |(seq, _)| seq);
        let marker = match &current {
            Some(c) if c.name() == generation => format!("{seq} (current)"),
            _ => seq.to_owned(),
        };
        let line = format!(
            "{:<19}  {:<14}  {:<12}  {:<16}  {:<24}  {}{}",
            utc(record.time),
            marker,
            record.commit.get(..12).unwrap_or(&record.commit),
            record.outcome.to_string(),
            record
                .signer
                .as_ref()
                .map_or("-", |s| s.principals.as_str()),
            record
                .summary
                .as_deref()
                .map(|s| format!("{s:?}: "))
                .unwrap_or_default(),
            record.reason,
        );
        println!("{}", bbhv_generator::escape(&line));
    }
    if history.is_empty() {
        println!("(no sync has run on this host)");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(1_795_000_000), "2026-11-18 11:06:40");
    }
}
