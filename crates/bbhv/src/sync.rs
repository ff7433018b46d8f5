//! `bbhv sync`: fetch the branch host.toml names, apply its commit if a
//! trusted key signed it, roll back if the result is not healthy
//! (docs/gitops.md). Run by `bitbuilder-sync.service` (`Type=notify`:
//! progress in `STATUS=`, ready when done) from `bitbuilder-sync.timer`.
//!
//! Exit status: 0 applied or up to date, 1 refused or rolled back, 2 the
//! sync could not run. The reason is printed, and the journal keeps it.

use std::process::ExitCode;
use std::time::Duration;

use bbhv_generator::{Host, HostPaths};
use bbhv_gitops::store::Store;
use bbhv_gitops::sync::{Done, Effects, Options, Sync, SyncError};
use bbhv_systemd::{Dbus, Systemd};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply a commit that does not descend from the applied one (a
    /// force-push to older or other history).
    #[arg(long)]
    allow_rollback: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// The running host, as the sync sees it.
pub struct HostEffects {
    systemd: Option<Dbus>,
}

impl HostEffects {
    pub fn connect() -> Result<HostEffects, SyncError> {
        let systemd = Dbus::system().map_err(|e| SyncError {
            step: "connect to systemd",
            reason: e.to_string(),
        })?;
        Ok(HostEffects {
            systemd: Some(systemd),
        })
    }

    /// For what needs no systemd (`bbhv plan`): every call to it fails.
    pub fn offline() -> HostEffects {
        HostEffects { systemd: None }
    }
}

impl Effects for HostEffects {
    fn systemd(&self) -> &dyn Systemd {
        match &self.systemd {
            Some(systemd) => systemd,
            None => &Offline,
        }
    }

    fn reload_networks(&self) -> Result<(), String> {
        let active = self
            .systemd()
            .states(&["systemd-networkd.service".to_owned()])
            .map_err(|e| e.to_string())?;
        if active.first().is_none_or(|s| s.active != "active") {
            self.status("systemd-networkd is not running: tenant links are left as they are");
            return Ok(());
        }
        bbhv_net::sys::run("/usr/bin/networkctl", &["reload"], None)
            .map_err(|e| format!("{e:#}"))?;
        crate::net::run(crate::net::Command::Prune)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    }

    fn verify_images(&self, checkout: &std::path::Path) -> Result<(), String> {
        let (config, paths) = host_config();
        let opts = bbhv_ext::ApplyOptions::host(&config, paths.images_dir);
        bbhv_ext::fetch_and_verify(checkout, &opts, false).map_err(|e| e.to_string())?;
        // The pinned UKI, before the commit is accepted: the image's digest
        // and signature, its Secure Boot signature and version, and that
        // the slots can take it (or hold it already).
        let Some(uki) = bbhv_ext::verify_uki(checkout, &opts).map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let boot = &config.boot;
        let refused = |e: bbhv_boot::esp::Error| format!("image {}: refused: {e}", uki.pin.image);
        bbhv_boot::esp::check_uki(&uki.path, &uki.pin.version, &boot.signing_cert)
            .map_err(refused)?;
        let (entries, _) = bbhv_boot::esp::scan(&boot.esp).map_err(refused)?;
        let booted = bbhv_boot::esp::firmware(&crate::boot::efivars()).entry_selected;
        bbhv_boot::plan_pin(&entries, booted.as_deref(), &uki.pin.version, boot.tries)
            .map(|_| ())
            .map_err(|e| format!("image {}: refused: {e}", uki.pin.image))
    }

    fn stage_uki(&self, checkout: &std::path::Path) -> Result<Option<String>, String> {
        let (config, paths) = host_config();
        let opts = bbhv_ext::ApplyOptions::host(&config, paths.images_dir);
        let Some(uki) = bbhv_ext::verify_uki(checkout, &opts).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let vars = crate::boot::efivars();
        let outcome = bbhv_boot::stage_pin(&bbhv_boot::StageRequest {
            esp: &config.boot.esp,
            uki: &uki.path,
            version: &uki.pin.version,
            sha256: Some(&uki.pin.sha256),
            cert: &config.boot.signing_cert,
            tries: config.boot.tries,
            efivars: &vars,
        })
        .map_err(|e| format!("UKI {} ({}): {e}", uki.pin.version, uki.pin.image))?;
        Ok(match outcome {
            // Idempotent: the slots hold it; nothing to say.
            bbhv_boot::PinOutcome::Held(_) => None,
            bbhv_boot::PinOutcome::Staged(staged) => Some(format!(
                "staged UKI {} into slot {} ({}, {} tries, sha256 {}); slot {} ({}) stays the fallback; it boots at the next reboot",
                staged.plan.file_name.trim_end_matches(".efi"),
                staged.plan.slot,
                staged.path.display(),
                config.boot.tries,
                staged.sha256,
                staged.plan.keep.slot,
                staged.plan.keep.file_name()
            )),
        })
    }

    fn unstage_uki(&self, checkout: &std::path::Path) -> Result<Option<String>, String> {
        let (config, _) = host_config();
        let hostname = bbhv_ext::ApplyOptions::host(&config, Default::default()).hostname;
        let pins = bbhv_ext::Pins::read(checkout, &hostname).map_err(|e| e.to_string())?;
        // A generation that pins no UKI leaves the boot slots alone.
        let Some(pin) = pins.uki else {
            return Ok(None);
        };
        let removed = bbhv_boot::unstage(
            &config.boot.esp,
            &crate::boot::efivars(),
            Some(&pin.version),
        )
        .map_err(|e| e.to_string())?;
        Ok((!removed.is_empty()).then(|| {
            format!(
                "withdrew the staged UKI {} (never booted): the generation rolled back to pins {}",
                removed.join(", "),
                pin.version
            )
        }))
    }

    fn apply_extensions(&self, checkout: &std::path::Path) -> Result<(), String> {
        let (config, paths) = host_config();
        let opts = bbhv_ext::ApplyOptions::host(&config, paths.images_dir);
        bbhv_ext::apply(checkout, &opts)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn status(&self, text: &str) {
        let text = bbhv_generator::escape(text);
        eprintln!("{text}");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Status(&text)]);
    }
}

/// host.toml (every default when it has errors: the sync refuses to run
/// then, before it gets here) and the host's paths.
fn host_config() -> (bbhv_host::HostConfig, HostPaths) {
    let paths = HostPaths::from_env();
    let config = bbhv_host::load(&paths.host_config).unwrap_or_default();
    (config, paths)
}

/// The sync's context from the environment and host.toml.
pub fn context(effects: &HostEffects) -> Sync<'_> {
    let paths = HostPaths::from_env();
    let host = Host::load(&paths.host_config);
    Sync {
        store: Store::new(&paths.state_dir),
        host,
        paths,
        effects,
        job_timeout: Duration::from_secs(300),
    }
}

/// The commit a sync ended at.
fn outcome_commit(done: &Done) -> &str {
    match done {
        Done::UpToDate { commit }
        | Done::Refused { commit, .. }
        | Done::RolledBack { commit, .. } => commit,
        Done::Applied { generation, .. } => generation.split_once('-').map_or("", |(_, c)| c),
    }
}

/// Under systemd, the outcome as native journal records: one with `BITBUILDER_COMMIT=`, and
/// one per changed tenant with `BITBUILDER_TENANT=` too (`bbhv logs TENANT` shows it). False
/// when not under systemd or the journal refused: then the caller prints it.
fn journal_outcome(done: &Done) -> bool {
    use bbhv_generator::{Priority, journal::Journal};
    if std::env::var_os("JOURNAL_STREAM").is_none() {
        return false;
    }
    let Some(j) = Journal::open("bbhv") else {
        return false;
    };
    let commit = outcome_commit(done);
    let priority = if done.exit_code() == 0 {
        Priority::Info
    } else {
        Priority::Warning
    };
    let text = bbhv_generator::escape(&done.to_string()).into_owned();
    if !j.send(priority, &text, &[("BITBUILDER_COMMIT", commit)]) {
        return false;
    }
    if let Done::Applied {
        generation,
        summary,
    } = done
    {
        for id in &summary.changed {
            let line =
                bbhv_generator::escape(&format!("tenant {id}: changed by generation {generation}"))
                    .into_owned();
            j.send(
                Priority::Info,
                &line,
                &[("BITBUILDER_COMMIT", commit), ("BITBUILDER_TENANT", id)],
            );
        }
    }
    true
}

/// Prints the outcome and maps it to the exit status (2: could not run).
pub fn finish(result: Result<Done, SyncError>, json: bool) -> ExitCode {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    match result {
        Ok(done) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&done).unwrap_or_default()
                );
            } else if !journal_outcome(&done) {
                println!("{}", bbhv_generator::escape(&done.to_string()));
            }
            ExitCode::from(done.exit_code())
        }
        Err(e) => {
            if json {
                let error =
                    serde_json::json!({ "result": "error", "step": e.step, "reason": e.reason });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&error).unwrap_or_default()
                );
            }
            eprintln!(
                "bbhv sync: could not run: {}",
                bbhv_generator::escape(&e.to_string())
            );
            ExitCode::from(2)
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // git-upload-pack (file:// remotes) needs a working directory that exists.
    let _ = std::env::set_current_dir("/");
    let effects = match HostEffects::connect() {
        Ok(effects) => effects,
        Err(e) => return Ok(finish(Err(e), args.json)),
    };
    let sync = context(&effects);
    let result = sync.lock().and_then(|_lock| {
        sync.run(&Options {
            allow_rollback: args.allow_rollback,
        })
    });
    Ok(finish(result, args.json))
}

/// systemd when the bus cannot be reached.
struct Offline;

impl Systemd for Offline {
    fn reload(&self) -> Result<(), bbhv_systemd::Error> {
        Err(offline("Reload"))
    }
    fn run_jobs(
        &self,
        _: &[bbhv_systemd::Job],
        _: Duration,
    ) -> Result<Vec<bbhv_systemd::JobOutcome>, bbhv_systemd::Error> {
        Err(offline("StartUnit"))
    }
    fn states(&self, _: &[String]) -> Result<Vec<bbhv_systemd::UnitState>, bbhv_systemd::Error> {
        Err(offline("ListUnitsByNames"))
    }
    fn main_pid(&self, _: &str) -> Result<u32, bbhv_systemd::Error> {
        Err(offline("GetUnit"))
    }
    fn list(&self, _: &[String]) -> Result<Vec<bbhv_systemd::UnitState>, bbhv_systemd::Error> {
        Err(offline("ListUnitsByPatterns"))
    }
    fn properties(
        &self,
        _: &[String],
        _: &[&str],
    ) -> Result<Vec<bbhv_systemd::Props>, bbhv_systemd::Error> {
        Err(offline("Get"))
    }
    fn unit_files(&self, _: &[String]) -> Result<Vec<String>, bbhv_systemd::Error> {
        Err(offline("ListUnitFilesByPatterns"))
    }
}

fn offline(method: &'static str) -> bbhv_systemd::Error {
    bbhv_systemd::Error::Reply {
        method,
        unit: String::new(),
        detail: "not connected to systemd".into(),
    }
}
