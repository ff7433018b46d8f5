//! `tenant-generator normal-dir [early-dir late-dir]`, per systemd.generator(7).
//!
//! Reads the applied checkout (`/var/lib/bitbuilder/current`, or
//! `$BITBUILDER_CURRENT`) and writes each valid tenant's units into
//! `normal-dir`. A bad tenant is skipped and reported (stderr, `/dev/kmsg`,
//! `$BITBUILDER_RUN_DIR/generator-report.json`); the others are generated.
//! Synchronous, no D-Bus, no network: it runs at every boot and reload.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bbhv_generator::{
    Checkout, GENERATOR, OutputDir, Report, SharedLock, plan, waiting_report, write_file_atomically,
};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let normal_dir = match args.as_slice() {
        [normal] | [normal, _, _] => normal.clone(),
        _ => {
            eprintln!("usage: {GENERATOR} NORMAL-DIR [EARLY-DIR LATE-DIR]");
            return ExitCode::from(2);
        }
    };
    let current = env_path("BITBUILDER_CURRENT", bbhv_render::CURRENT);
    let run_dir = env_path("BITBUILDER_RUN_DIR", "/run/bitbuilder");
    let log = Log::open();

    match run(&normal_dir, &current, &run_dir, &log) {
        Ok(report) if !report.has_errors() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            log.error(&format!(
                "cannot write units to {}: {e}",
                normal_dir.display()
            ));
            ExitCode::FAILURE
        }
    }
}

fn run(normal_dir: &Path, current: &Path, run_dir: &Path, log: &Log) -> std::io::Result<Report> {
    // How long to wait for a sync to finish flipping `current`; tests shorten it.
    let patience = std::env::var("BITBUILDER_LOCK_WAIT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
    let _lock = match SharedLock::acquire(&run_dir.join("lock"), patience) {
        Ok(lock) => {
            if lock.is_none() {
                log.warning(&format!(
                    "the generator lock stayed taken for {} ms; reading current without it",
                    patience.as_millis()
                ));
            }
            lock
        }
        Err(e) => {
            log.warning(&format!(
                "cannot take the generator lock in {}: {e}; reading current without it",
                run_dir.display()
            ));
            None
        }
    };

    let report = match Checkout::resolve(current) {
        None => {
            OutputDir::open(normal_dir)?.write(&bbhv_render::render_rerun())?;
            log.info(&format!(
                "{} does not exist (yet): no tenants now; the generators run again once it is mounted",
                current.display()
            ));
            waiting_report()
        }
        Some(checkout) => {
            // What the host ran before `current` moved: incumbents keep their claims.
            let previous = env_path("BITBUILDER_PREVIOUS", "/var/lib/bitbuilder/previous");
            let mut plan = plan(&checkout, Some(&previous));
            let mut out = OutputDir::open(normal_dir)?;
            plan.render_each(|entries| out.write(entries))?;
            plan.report
        }
    };

    for error in &report.errors {
        log.error(error);
    }
    for tenant in report.failed() {
        for diagnostic in &tenant.errors {
            log.error(&format!("tenant {} skipped: {diagnostic}", tenant.id));
        }
    }
    log.info(&report.summary());

    let json = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?;
    if let Err(e) = std::fs::create_dir_all(run_dir)
        .and_then(|()| write_file_atomically(&run_dir.join("generator-report.json"), &json))
    {
        log.warning(&format!(
            "cannot write the report to {}: {e}",
            run_dir.display()
        ));
    }
    Ok(report)
}

fn env_path(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Logs to stderr and to `/dev/kmsg` (Quadlet learned that kmsg alone hides
/// errors from `systemd-analyze verify`; stderr alone is lost at early boot).
struct Log {
    kmsg: Option<std::fs::File>,
}

impl Log {
    fn open() -> Log {
        Log {
            kmsg: std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/kmsg")
                .ok(),
        }
    }

    fn error(&self, message: &str) {
        self.emit(3, message, true);
    }

    fn warning(&self, message: &str) {
        self.emit(4, message, true);
    }

    /// Informational lines go to kmsg (the journal) only, keeping stderr for problems.
    fn info(&self, message: &str) {
        self.emit(6, message, false);
    }

    fn emit(&self, priority: u8, message: &str, to_stderr: bool) {
        // One record per line: a message can never forge a second record.
        let message = message.replace(['\n', '\r'], " ");
        if to_stderr {
            eprintln!("{GENERATOR}: {message}");
        }
        if let Some(mut kmsg) = self.kmsg.as_ref() {
            let _ = kmsg.write_all(
                format!(
                    "<{priority}>{GENERATOR}[{}]: {message}\n",
                    std::process::id()
                )
                .as_bytes(),
            );
        }
    }
}
