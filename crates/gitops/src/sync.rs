//! `bbhv sync`: the state machine of docs/gitops.md.
//!
//! ```text
//! lock ─ finish an interrupted apply ─ fetch ─ up to date? ─ remembered bad? ─ signed by a
//! trusted key? ─ descends from the applied commit? ─ check out ─ valid? ─ plan ─ flip ─
//! daemon-reload ─ jobs ─ health gate ─ applied | roll back
//! ```
//!
//! Every refusal and every rollback is recorded in the history with its
//! reason. The sync lock is held throughout; the generator lock only while
//! `current` moves and generations are pruned, never across a reload (the
//! reload runs the generators, which take it).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bbhv_generator::{ExclusiveLock, Host, HostPaths, Tree};
use bbhv_systemd::{Health, Job, JobKind, Systemd, UnitState};
use serde::Serialize;

use crate::fault;
use crate::mirror::Mirror;
use crate::plan::{self, Actions, Plan};
use crate::signers::{AllowedSigners, Signer};
use crate::store::{Generation, Outcome, Record, Store};

/// What the sync needs from the running host, besides files.
pub trait Effects {
    fn systemd(&self) -> &dyn Systemd;
    /// `networkctl reload`, then remove the links no file declares.
    fn reload_networks(&self) -> Result<(), String>;
    /// A progress line: `STATUS=` for systemd, and the log.
    fn status(&self, text: &str);
    /// Fetches and verifies the images a checkout pins (docs/extensions.md),
    /// before the commit is accepted: an error refuses it.
    fn verify_images(&self, _checkout: &Path) -> Result<(), String> {
        Ok(())
    }
    /// Activates exactly the extensions a checkout pins (after each flip,
    /// forward or back): an error makes the apply unhealthy.
    fn apply_extensions(&self, _checkout: &Path) -> Result<(), String> {
        Ok(())
    }
    /// Stages the UKI a checkout pins into the inactive boot slot
    /// (docs/boot.md), after the apply was found healthy; nothing when
    /// the slots already hold it. `Some(what)` when it staged: reported.
    /// An error rolls the commit back.
    fn stage_uki(&self, _checkout: &Path) -> Result<Option<String>, String> {
        Ok(None)
    }
    /// After a rollback to `checkout`: withdraws a UKI staged for the
    /// commit left that has not been booted yet. `Some(what)` when it did.
    fn unstage_uki(&self, _checkout: &Path) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// How a sync ended. `Err` is "could not run" (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Done {
    UpToDate {
        commit: String,
    },
    Applied {
        generation: String,
        summary: Summary,
    },
    Refused {
        commit: String,
        reason: String,
    },
    RolledBack {
        commit: String,
        reason: String,
    },
}

impl Done {
    /// 0 applied or up to date, 1 refused or rolled back.
    pub fn exit_code(&self) -> u8 {
        match self {
            Done::UpToDate { .. } | Done::Applied { .. } => 0,
            Done::Refused { .. } | Done::RolledBack { .. } => 1,
        }
    }
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Done::UpToDate { commit } => write!(f, "up to date at {commit}"),
            Done::Applied {
                generation,
                summary,
            } => write!(f, "applied generation {generation}: {summary}"),
            Done::Refused { commit, reason } => write!(f, "refused {commit}: {reason}"),
            Done::RolledBack { commit, reason } => write!(f, "rolled back {commit}: {reason}"),
        }
    }
}

/// What an apply did, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub tenants_changed: usize,
    /// The ids of the changed tenants (each gets a journal record of its own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    pub tenants_unchanged: usize,
    pub stopped: usize,
    pub restarted: usize,
    pub started: usize,
    pub milliseconds: u128,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tenants changed, {} unchanged; {} units stopped, {} restarted, {} started; {} ms",
            self.tenants_changed,
            self.tenants_unchanged,
            self.stopped,
            self.restarted,
            self.started,
            self.milliseconds
        )
    }
}

/// The sync could not run (exit 2): the step and why.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {reason}")]
pub struct SyncError {
    pub step: &'static str,
    pub reason: String,
}

fn failed(step: &'static str) -> impl Fn(String) -> SyncError {
    move |reason| SyncError { step, reason }
}

/// What a run is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Apply a commit that does not descend from the applied one.
    pub allow_rollback: bool,
}

/// Everything a sync reads and writes.
pub struct Sync<'a> {
    pub store: Store,
    pub paths: HostPaths,
    pub host: Host,
    pub effects: &'a dyn Effects,
    /// How long the unit jobs of an apply may take.
    pub job_timeout: Duration,
}

impl std::fmt::Debug for Sync<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sync")
            .field("store", &self.store)
            .field("paths", &self.paths)
            .field("host", &self.host)
            .field("job_timeout", &self.job_timeout)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The sync lock's file: one sync (or rollback) at a time.
pub fn sync_lock(paths: &HostPaths) -> PathBuf {
    paths.run_dir.join("sync.lock")
}

impl Sync<'_> {
    /// Takes the sync lock, waiting for a running sync to finish.
    pub fn lock(&self) -> Result<ExclusiveLock, SyncError> {
        let path = sync_lock(&self.paths);
        let mut said = false;
        loop {
            match ExclusiveLock::acquire(&path, Duration::from_millis(500)) {
                Ok(Some(lock)) => return Ok(lock),
                Ok(None) => {
                    if !said {
                        self.effects
                            .status("waiting for the running sync to finish");
                        said = true;
                    }
                }
                Err(e) => return Err(failed("lock")(e.to_string())),
            }
        }
    }

    /// Runs `change` with the generator lock held exclusively (generators
    /// wait a bounded time for it, and the change is a few renames).
    fn with_generator_lock<T>(
        &self,
        change: impl FnOnce() -> Result<T, SyncError>,
    ) -> Result<T, SyncError> {
        let _lock = ExclusiveLock::acquire(&self.paths.lock, Duration::from_secs(30))
            .map_err(|e| failed("generator lock")(e.to_string()))?
            .ok_or_else(|| failed("generator lock")("still taken after 30 s".into()))?;
        change()
    }

    /// The remote host.toml names.
    fn remote(&self) -> Result<&bbhv_host::Remote, SyncError> {
        self.host.config.sync.remote.as_ref().ok_or_else(|| {
            failed("host.toml")(format!(
                "{}: sync.remote is not set; nothing to follow",
                self.host.file
            ))
        })
    }

    /// One whole sync. The caller holds [`Sync::lock`].
    pub fn run(&self, options: &Options) -> Result<Done, SyncError> {
        let sync = &self.host.config.sync;
        let remote = self.remote()?;
        if !self.host.errors.is_empty() {
            let errors: Vec<String> = self.host.errors.iter().map(|e| e.to_string()).collect();
            return Err(failed("host.toml")(errors.join("; ")));
        }
        self.store
            .clean()
            .map_err(|e| failed("clean up")(e.to_string()))?;
        if let Some(done) = self.finish_interrupted()? {
            return Ok(done);
        }

        self.effects.status(&format!(
            "fetching {} from {}",
            sync.branch,
            remote.as_str()
        ));
        let mut mirror =
            Mirror::open(&self.store.mirror()).map_err(|e| failed("mirror")(e.to_string()))?;
        let head = mirror
            .fetch(remote.as_str(), &sync.branch)
            .map_err(|e| failed("fetch")(e.to_string()))?;
        if let Some(why) = &mirror.fell_back {
            self.effects
                .status(&format!("gitoxide could not fetch ({why}); git did"));
        }
        fault::point("after-fetch");
        let head_hex = head.to_string();
        let current = self.store.current_generation();
        if current.as_ref().is_some_and(|g| g.commit == head_hex) {
            return Ok(Done::UpToDate { commit: head_hex });
        }
        // --allow-rollback asks again about a refused commit (the refusal
        // that flag answers); a rolled-back one stays remembered.
        if let Some(bad) = self
            .store
            .remembered_bad(&head_hex)
            .filter(|bad| !(options.allow_rollback && bad.outcome == Outcome::Refused))
        {
            return Ok(Done::Refused {
                commit: head_hex,
                reason: format!(
                    "{} earlier ({}); not tried again until the branch moves",
                    bad.outcome, bad.reason
                ),
            });
        }
        let commit = mirror
            .commit(head)
            .map_err(|e| failed("read the commit")(e.to_string()))?;
        let refuse = |reason: String, signer: Option<Signer>| -> Result<Done, SyncError> {
            self.record(Record {
                time: now(),
                commit: head_hex.clone(),
                generation: None,
                signer,
                summary: Some(commit.summary.clone()),
                outcome: Outcome::Refused,
                reason: reason.clone(),
            })?;
            Ok(Done::Refused {
                commit: head_hex.clone(),
                reason,
            })
        };

        // The signature.
        let signers = AllowedSigners::load(&self.host.config.trust.allowed_signers)
            .map_err(|e| failed("trust")(e.to_string()))?;
        let signer = match signers.verify(&commit.signature, &commit.payload, commit.time) {
            Ok(signer) => signer,
            Err(refusal) => return refuse(refusal.to_string(), None),
        };

        // No silent downgrade.
        if let Some(current) = &current {
            let applied = gix::ObjectId::from_hex(current.commit.as_bytes())
                .map_err(|e| failed("read current")(e.to_string()))?;
            let descends = mirror.descends(head, applied).unwrap_or(false);
            if !descends && !options.allow_rollback {
                return refuse(
                    format!(
                        "does not descend from the applied commit {} (a force-push to older or other history); \
                         allowed with --allow-rollback",
                        current.commit
                    ),
                    Some(signer),
                );
            }
        }

        // Check out, whole or not at all.
        let generation = Generation {
            seq: self
                .store
                .next_seq()
                .map_err(|e| failed("generations")(e.to_string()))?,
            commit: head_hex.clone(),
        };
        self.effects.status(&format!("checking out {generation}"));
        std::fs::create_dir_all(self.store.generations()).map_err(|e| {
            failed("generations")(format!("{}: {e}", self.store.generations().display()))
        })?;
        let staging = self.store.staging_dir(&generation);
        let checked_out = mirror.checkout(head, &staging).and_then(|()| {
            fault::point("during-checkout");
            sync_tree(&staging).map_err(|e| crate::mirror::MirrorError {
                mirror: staging.display().to_string(),
                action: "sync the checkout to disk".into(),
                reason: e.to_string(),
            })
        });
        if let Err(e) = checked_out {
            let _ = crate::store::remove_tree(&staging);
            return Err(failed("checkout")(e.to_string()));
        }
        let dir = self
            .store
            .commit_staging(&generation)
            .map_err(|e| failed("checkout")(e.to_string()))?;
        fault::point("after-checkout");

        // Valid as a whole, or not applied.
        let current_dir = current.as_ref().map(|g| self.store.generation_dir(g));
        let new_tree = match plan::render(&dir, current_dir.as_deref(), &self.host, true) {
            Ok(tree) => tree,
            Err(invalid) => {
                let _ = crate::store::remove_tree(&dir);
                return refuse(invalid.to_string(), Some(signer));
            }
        };
        self.effects
            .status(&format!("verifying the images {generation} pins"));
        if let Err(reason) = self.effects.verify_images(&dir) {
            let _ = crate::store::remove_tree(&dir);
            return refuse(reason, Some(signer));
        }
        let old_tree = self.tree_of(current.as_ref())?;
        let record = Record {
            time: now(),
            commit: head_hex.clone(),
            generation: Some(generation.name()),
            signer: Some(signer),
            summary: Some(commit.summary.clone()),
            outcome: Outcome::Applied,
            reason: String::new(),
        };
        self.apply(current.as_ref(), &generation, &old_tree, &new_tree, record)
    }

    /// The rendered tree of a generation (empty for none).
    fn tree_of(&self, generation: Option<&Generation>) -> Result<Tree, SyncError> {
        let Some(generation) = generation else {
            return Ok(Tree::default());
        };
        // What runs was valid when applied; a tenant invalid under today's
        // host.toml is simply not in it.
        plan::render(
            &self.store.generation_dir(generation),
            None,
            &self.host,
            false,
        )
        .map_err(|e| failed("render the applied generation")(e.to_string()))
    }

    /// The marker of an apply or rollback in progress: "KIND FROM TO"
    /// (generation names, `-` for none). A sync that finds it finishes
    /// that first.
    fn unsettled_file(&self) -> PathBuf {
        self.store.dir.join("unsettled")
    }

    fn mark_unsettled(
        &self,
        kind: &str,
        from: Option<&Generation>,
        to: &Generation,
    ) -> Result<(), SyncError> {
        let text = format!(
            "{kind} {} {}\n",
            from.map_or("-".into(), Generation::name),
            to.name()
        );
        std::fs::write(self.unsettled_file(), text).map_err(|e| {
            failed("mark the apply")(format!("{}: {e}", self.unsettled_file().display()))
        })
    }

    fn settle(&self) -> Result<(), SyncError> {
        match std::fs::remove_file(self.unsettled_file()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(failed("settle")(e.to_string())),
        }
    }

    /// Flips to `new`, applies, gates on health; rolls back when unhealthy.
    fn apply(
        &self,
        old: Option<&Generation>,
        new: &Generation,
        old_tree: &Tree,
        new_tree: &Tree,
        mut record: Record,
    ) -> Result<Done, SyncError> {
        let started = std::time::Instant::now();
        let plan = plan::diff(old_tree, new_tree);
        let actions = plan::actions(&plan, old_tree, new_tree);
        self.mark_unsettled("apply", old, new)?;
        fault::point("before-flip");
        self.with_generator_lock(|| {
            self.store
                .flip(new)
                .map_err(|e| failed("flip")(e.to_string()))
        })?;
        fault::point("after-flip");
        let extensions = self
            .effects
            .apply_extensions(&self.store.generation_dir(new));
        let health = self.converge(&plan, &actions)?;
        let health = match (extensions, health) {
            (Err(why), _) => Health::Failed(vec![UnitState {
                unit: format!("extensions ({why})"),
                load: "loaded".into(),
                active: "failed".into(),
                sub: "failed".into(),
            }]),
            (Ok(()), health) => health,
        };
        // The boot slot last: only a commit whose apply is healthy gets its
        // UKI staged; a UKI that cannot be staged rolls the commit back.
        let health = match health {
            Health::Healthy => match self.effects.stage_uki(&self.store.generation_dir(new)) {
                Ok(staged) => {
                    if let Some(staged) = staged {
                        self.effects.status(&staged);
                    }
                    Health::Healthy
                }
                Err(why) => Health::Failed(vec![UnitState {
                    unit: format!("boot slot ({why})"),
                    load: "loaded".into(),
                    active: "failed".into(),
                    sub: "failed".into(),
                }]),
            },
            other => other,
        };
        match health {
            Health::Healthy => {
                self.store
                    .set_applied(new)
                    .map_err(|e| failed("record")(e.to_string()))?;
                let summary = Summary {
                    tenants_changed: plan.tenants.len(),
                    changed: plan.tenants.iter().map(|t| t.id.clone()).collect(),
                    tenants_unchanged: plan.unchanged,
                    stopped: actions.stop.len(),
                    restarted: actions.restart.len(),
                    started: actions.start.len(),
                    milliseconds: started.elapsed().as_millis(),
                };
                record.reason = summary.to_string();
                self.record(record)?;
                self.settle()?;
                self.prune();
                Ok(Done::Applied {
                    generation: new.name(),
                    summary,
                })
            }
            Health::Failed(units) | Health::TimedOut(units) => {
                let reason = format!(
                    "not healthy within {}: {}",
                    humantime(self.host.config.sync.health_deadline),
                    describe(&units)
                );
                record.outcome = Outcome::RolledBack;
                record.reason = reason.clone();
                // Remembered before the host moves back: a crash from here
                // on never retries this commit.
                self.record(record.clone())?;
                self.roll_back(new, old, new_tree, old_tree)?;
                self.prune();
                Ok(Done::RolledBack {
                    commit: record.commit,
                    reason,
                })
            }
        }
    }

    /// Back from `from` to `to` (to nothing when `to` is `None`: the first
    /// generation failed).
    fn roll_back(
        &self,
        from: &Generation,
        to: Option<&Generation>,
        from_tree: &Tree,
        to_tree: &Tree,
    ) -> Result<(), SyncError> {
        fault::point("before-rollback");
        self.effects.status(&format!(
            "rolling back from {from} to {}",
            to.map_or("nothing".into(), Generation::name)
        ));
        let plan = plan::diff(from_tree, to_tree);
        let actions = plan::actions(&plan, from_tree, to_tree);
        match to {
            Some(to) => {
                self.mark_unsettled("rollback", Some(from), to)?;
                self.with_generator_lock(|| {
                    self.store
                        .flip(to)
                        .map_err(|e| failed("flip back")(e.to_string()))
                })?;
            }
            None => {
                self.with_generator_lock(|| {
                    std::fs::remove_file(self.store.current())
                        .map_err(|e| failed("flip back")(e.to_string()))
                })?;
            }
        }
        fault::point("after-rollback-flip");
        if let Some(to) = to
            && let Err(why) = self
                .effects
                .apply_extensions(&self.store.generation_dir(to))
        {
            self.effects.status(&format!(
                "after the rollback the extensions are not restored: {why}"
            ));
        }
        if let Some(to) = to {
            match self.effects.unstage_uki(&self.store.generation_dir(to)) {
                Ok(Some(what)) => self.effects.status(&what),
                Ok(None) => {}
                Err(why) => self.effects.status(&format!(
                    "after the rollback the staged UKI is not withdrawn: {why}"
                )),
            }
        }
        // The old units are restored; whether they are healthy is reported,
        // and the host stays there either way.
        let health = self.converge(&plan, &actions)?;
        if let Health::Failed(units) | Health::TimedOut(units) = &health {
            self.effects.status(&format!(
                "after the rollback these units are not active: {}",
                describe(units)
            ));
        }
        self.settle()
    }

    /// daemon-reload, the jobs, networkd, then the health gate.
    fn converge(&self, plan: &Plan, actions: &Actions) -> Result<Health, SyncError> {
        let systemd = self.effects.systemd();
        self.effects.status(&format!(
            "applying: {} tenants changed; stopping {}, restarting {}, starting {} units",
            plan.tenants.len(),
            actions.stop.len(),
            actions.restart.len(),
            actions.start.len()
        ));
        systemd
            .reload()
            .map_err(|e| failed("daemon-reload")(e.to_string()))?;
        fault::point("after-reload");
        let jobs = |units: &[String], kind: JobKind| -> Vec<Job> {
            units.iter().map(|u| Job::new(u.clone(), kind)).collect()
        };
        if !actions.stop.is_empty() {
            systemd
                .run_jobs(&jobs(&actions.stop, JobKind::Stop), self.job_timeout)
                .map_err(|e| failed("stop units")(e.to_string()))?;
        }
        let mut next = jobs(&actions.restart, JobKind::Restart);
        next.extend(jobs(&actions.start, JobKind::Start));
        if !next.is_empty() {
            systemd
                .run_jobs(&next, self.job_timeout)
                .map_err(|e| failed("start units")(e.to_string()))?;
        }
        if actions.reload_networks {
            self.effects
                .reload_networks()
                .map_err(failed("reload networks"))?;
        }
        fault::point("after-jobs");
        if actions.health.is_empty() {
            return Ok(Health::Healthy);
        }
        self.effects.status(&format!(
            "waiting up to {} for {} units to be active",
            humantime(self.host.config.sync.health_deadline),
            actions.health.len()
        ));
        bbhv_systemd::wait_healthy(
            systemd,
            &actions.health,
            self.host.config.sync.health_deadline,
        )
        .map_err(|e| failed("health")(e.to_string()))
    }

    /// A sync killed during an apply or a rollback left the marker. An
    /// apply killed before its flip changed nothing (the normal sync goes
    /// on); after it, the apply runs again from the marker's generation to
    /// `current`, health gate and all. A rollback is taken to its end.
    fn finish_interrupted(&self) -> Result<Option<Done>, SyncError> {
        let Ok(text) = std::fs::read_to_string(self.unsettled_file()) else {
            return Ok(None);
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let (kind, from, to) = match words[..] {
            [kind, from, to] => (kind, Generation::parse(from), Generation::parse(to)),
            _ => ("", None, None),
        };
        let current = self.store.current_generation();
        let Some(to) = to.filter(|g| self.store.generation_dir(g).is_dir()) else {
            return self.settle().map(|()| None);
        };
        let from = from.filter(|g| self.store.generation_dir(g).is_dir());
        self.effects.status(&format!(
            "finishing the {kind} a killed sync left: {} to {to}",
            from.as_ref().map_or("nothing".into(), Generation::name)
        ));
        match kind {
            "apply" if current.as_ref() == Some(&to) => {
                let old_tree = self.tree_of(from.as_ref())?;
                let new_tree = self.tree_of(Some(&to))?;
                let record = Record {
                    time: now(),
                    commit: to.commit.clone(),
                    generation: Some(to.name()),
                    signer: None,
                    summary: Some("finished after an interrupted sync".into()),
                    outcome: Outcome::Applied,
                    reason: String::new(),
                };
                match self.apply(from.as_ref(), &to, &old_tree, &new_tree, record)? {
                    Done::Applied { .. } => Ok(None),
                    done => Ok(Some(done)),
                }
            }
            "rollback" => {
                let from_tree = self.tree_of(from.as_ref())?;
                let to_tree = self.tree_of(Some(&to))?;
                if current.as_ref() != Some(&to) {
                    self.with_generator_lock(|| {
                        self.store
                            .flip(&to)
                            .map_err(|e| failed("flip back")(e.to_string()))
                    })?;
                }
                let plan = plan::diff(&from_tree, &to_tree);
                let actions = plan::actions(&plan, &from_tree, &to_tree);
                self.converge(&plan, &actions)?;
                self.store
                    .set_applied(&to)
                    .map_err(|e| failed("record")(e.to_string()))?;
                self.settle().map(|()| None)
            }
            // An apply killed before its flip changed nothing.
            _ => self.settle().map(|()| None),
        }
    }

    fn record(&self, record: Record) -> Result<(), SyncError> {
        self.effects.status(&format!(
            "{} {}{}",
            record.outcome,
            record.commit,
            if record.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", record.reason)
            }
        ));
        self.store
            .record(&record)
            .map_err(|e| failed("history")(e.to_string()))
    }

    /// Keeps `keep_generations`; a failure is only reported.
    fn prune(&self) {
        let keep = self.host.config.sync.keep_generations as usize;
        let result = self.with_generator_lock(|| {
            self.store
                .prune(keep)
                .map_err(|e| failed("prune")(e.to_string()))
        });
        if let Err(e) = result {
            self.effects.status(&format!("generations not pruned: {e}"));
        }
    }

    /// `bbhv rollback [--to GEN]`: back to an earlier generation (the one
    /// applied before `current` by default). The commit left is remembered,
    /// so the timer does not apply it again until the branch moves.
    pub fn rollback(&self, to: Option<&str>) -> Result<Done, SyncError> {
        let current = self
            .store
            .current_generation()
            .ok_or_else(|| failed("rollback")("nothing is applied".into()))?;
        let target = match to {
            Some(name) => {
                let found = self
                    .store
                    .list()
                    .map_err(|e| failed("rollback")(e.to_string()))?
                    .into_iter()
                    .find(|g| {
                        g.name() == name
                            || g.seq.to_string() == name
                            || g.commit.starts_with(name) && name.len() >= 7
                    });
                found.ok_or_else(|| {
                    failed("rollback")(format!(
                        "no generation {name:?}; allowed: a sequence number, a generation name or a commit prefix of 7 or more from `bbhv history`"
                    ))
                })?
            }
            None => self.store.previous_generation().ok_or_else(|| {
                failed("rollback")("there is no previous generation; name one with --to".into())
            })?,
        };
        if target == current {
            return Ok(Done::UpToDate {
                commit: current.commit,
            });
        }
        let current_tree = self.tree_of(Some(&current))?;
        let target_tree = self.tree_of(Some(&target))?;
        let reason = format!("operator rollback to {target}");
        self.record(Record {
            time: now(),
            commit: current.commit.clone(),
            generation: Some(current.name()),
            signer: None,
            summary: None,
            outcome: Outcome::ManualRollback,
            reason: reason.clone(),
        })?;
        self.roll_back(&current, Some(&target), &current_tree, &target_tree)?;
        self.store
            .set_applied(&target)
            .map_err(|e| failed("record")(e.to_string()))?;
        Ok(Done::RolledBack {
            commit: current.commit,
            reason,
        })
    }
}

/// What `bbhv plan` shows: the change from `current` to a commit (or a
/// directory), and whether a sync would refuse it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    pub from: Option<String>,
    pub to: String,
    /// Why a sync would refuse it (signature, history, validity).
    pub refused: Option<String>,
    pub signer: Option<Signer>,
    pub plan: Plan,
    pub jobs: Actions,
}

impl Sync<'_> {
    /// The plan from `current` to `rev` (a commit or branch in the mirror;
    /// by default the branch, fetched first), or to the checkout at `dir`.
    /// The caller holds [`Sync::lock`] when it fetches.
    pub fn plan(&self, rev: Option<&str>, dir: Option<&Path>) -> Result<PlanView, SyncError> {
        let current = self.store.current_generation();
        let old_tree = self.tree_of(current.as_ref())?;
        let current_dir = current.as_ref().map(|g| self.store.generation_dir(g));
        let mut refused = None;
        let mut signer = None;
        let mut scratch = None;
        let (dir, to) = match dir {
            Some(dir) => (dir.to_owned(), dir.display().to_string()),
            None => {
                let mut mirror = Mirror::open(&self.store.mirror())
                    .map_err(|e| failed("mirror")(e.to_string()))?;
                let id = match rev {
                    Some(rev) => mirror
                        .resolve(rev)
                        .map_err(|e| failed("resolve")(e.to_string()))?,
                    None => {
                        let sync = &self.host.config.sync;
                        let remote = self.remote()?;
                        mirror
                            .fetch(remote.as_str(), &sync.branch)
                            .map_err(|e| failed("fetch")(e.to_string()))?
                    }
                };
                let commit = mirror
                    .commit(id)
                    .map_err(|e| failed("read the commit")(e.to_string()))?;
                match AllowedSigners::load(&self.host.config.trust.allowed_signers)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        s.verify(&commit.signature, &commit.payload, commit.time)
                            .map_err(|e| e.to_string())
                    }) {
                    Ok(s) => signer = Some(s),
                    Err(reason) => refused = Some(reason),
                }
                if let Some(current) = &current
                    && let Ok(applied) = gix::ObjectId::from_hex(current.commit.as_bytes())
                    && !mirror.descends(id, applied).unwrap_or(false)
                {
                    refused.get_or_insert(format!(
                        "does not descend from the applied commit {}; allowed with --allow-rollback",
                        current.commit
                    ));
                }
                std::fs::create_dir_all(self.store.generations())
                    .map_err(|e| failed("generations")(e.to_string()))?;
                let dir = self
                    .store
                    .generations()
                    .join(format!(".plan-{}", std::process::id()));
                let _ = crate::store::remove_tree(&dir);
                scratch = Some(dir.clone());
                mirror
                    .checkout(id, &dir)
                    .map_err(|e| failed("checkout")(e.to_string()))?;
                (dir, id.to_string())
            }
        };
        let new_tree = match plan::render(&dir, current_dir.as_deref(), &self.host, true) {
            Ok(tree) => tree,
            Err(invalid) => {
                refused.get_or_insert(invalid.to_string());
                plan::render(&dir, current_dir.as_deref(), &self.host, false)
                    .map_err(|e| failed("render")(e.to_string()))?
            }
        };
        if let Some(scratch) = &scratch {
            let _ = crate::store::remove_tree(scratch);
        }
        let plan = plan::diff(&old_tree, &new_tree);
        let jobs = plan::actions(&plan, &old_tree, &new_tree);
        Ok(PlanView {
            from: current.map(|g| g.name()),
            to,
            refused,
            signer,
            plan,
            jobs,
        })
    }
}

/// `unit (active/sub), …`, at most ten.
fn describe(units: &[UnitState]) -> String {
    let mut text: Vec<String> = units
        .iter()
        .take(10)
        .map(|u| format!("{} ({}/{})", u.unit, u.active, u.sub))
        .collect();
    if units.len() > 10 {
        text.push(format!("and {} more", units.len() - 10));
    }
    text.join(", ")
}

fn humantime(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Flushes a checkout to disk before it is renamed into place.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(dir)?;
    rustix::fs::syncfs(&file).map_err(std::io::Error::from)
}
