//! `bbhv status [TENANT]`: per tenant, the lifecycle steps (validated, units, network,
//! overlays, workloads, healthy), each with its state, since when and the commit that set it.
//!
//! At most four bulk D-Bus calls whatever the number of tenants: ListUnitsByPatterns for the states,
//! the generators' output directory for the units that exist but are not loaded (stopped), then the units' StateChangeTimestamp read pipelined ([`Systemd::properties`]). The rows are
//! a pure function of (generator report, unit states, timestamps, sync history): [`rows`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::UNIX_EPOCH;

use anyhow::Context as _;
use bbhv_generator::{HostPaths, Report, Status as TenantState};
use bbhv_gitops::store::{Outcome, Record, Store};
use bbhv_systemd::{Dbus, Prop, Systemd, UnitState};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this tenant.
    tenant: Option<String>,
    /// Print JSON (docs/operator.md describes its shape).
    #[arg(long)]
    json: bool,
}

/// Unit templates that belong to one tenant, by instance (`<id>`).
const TENANT_TEMPLATES: [&str; 4] = [
    "tenant@",
    "tenant-infra@",
    "tenant-network@",
    "bitbuilder-storage@",
];

/// The D-Bus patterns of every unit a tenant (or all tenants, `*`) can have.
pub fn patterns(tenant: &str, tenants_dir: &str) -> Vec<String> {
    let mount = mount_prefix(tenants_dir, tenant).unwrap_or_default();
    let mut out: Vec<String> = TENANT_TEMPLATES
        .iter()
        .map(|t| format!("{t}{tenant}.service"))
        .collect();
    out.push(format!("systemd-nspawn@{tenant}.*.service"));
    out.push(format!("tenant-vm@{tenant}_*.service"));
    // The tenant's own directory (its state) and everything under it.
    out.push(format!("{mount}*.mount"));
    if let Some(own) = mount.strip_suffix('-') {
        out.push(format!("{own}.mount"));
    }
    out
}

/// `systemd-escape --path <tenants_dir>/<id>` and a `-`: the start of the names of the mount
/// units under a tenant's directory (`*` for every tenant stays a glob).
pub(crate) fn mount_prefix(tenants_dir: &str, tenant: &str) -> Option<String> {
    let base = bbhv_unit::unit_name_from_path(tenants_dir, "mount").ok()?;
    let base = base.strip_suffix(".mount")?;
    if tenant == "*" {
        return Some(format!("{base}-"));
    }
    let id = bbhv_unit::unit_name_from_path(&format!("/{tenant}"), "mount").ok()?;
    Some(format!("{base}-{}-", id.strip_suffix(".mount")?))
}

/// The loaded units, and the units that have a file but are not loaded (stopped, never
/// started) as inactive/dead, sorted by name.
pub fn with_files(mut loaded: Vec<UnitState>, files: Vec<String>) -> Vec<UnitState> {
    let known: std::collections::HashSet<String> = loaded.iter().map(|u| u.unit.clone()).collect();
    loaded.extend(
        files
            .into_iter()
            .filter(|f| !known.contains(f) && !f.contains("@."))
            .map(|f| UnitState::new(&f, "loaded", "inactive", "dead")),
    );
    loaded.sort_by(|a, b| a.unit.cmp(&b.unit));
    loaded
}

/// The tenant a unit belongs to, from its name alone.
pub(crate) fn owner(unit: &str, mount_base: &str) -> Option<String> {
    if let Some(rest) = unit.strip_suffix(".mount") {
        // <base>-<escaped id>-...: an id's own `-` is escaped as \x2d.
        let rest = rest.strip_prefix(mount_base)?;
        let id = rest.split('-').next()?;
        return Some(id.replace("\\x2d", "-"));
    }
    let instance = unit.strip_suffix(".service")?;
    for t in TENANT_TEMPLATES {
        if let Some(id) = instance.strip_prefix(t) {
            return Some(id.to_owned());
        }
    }
    if let Some(machine) = instance.strip_prefix("systemd-nspawn@") {
        return machine.split_once('.').map(|(id, _)| id.to_owned());
    }
    if let Some(vm) = instance.strip_prefix("tenant-vm@") {
        return vm.split_once('_').map(|(id, _)| id.to_owned());
    }
    None
}

/// How far a step got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Ok,
    /// Starting, reloading, stopping.
    Pending,
    Failed,
    /// Not running (a disabled tenant, a stopped unit).
    Inactive,
    /// Not started because a condition failed (ConditionResult=no), as the unit intends:
    /// e.g. a storage quota where there are no loop devices.
    Skipped,
    /// Nothing of this kind is declared.
    None,
}

impl State {
    fn label(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Pending => "pending",
            State::Failed => "failed",
            State::Inactive => "inactive",
            State::Skipped => "skipped",
            State::None => "-",
        }
    }

    fn is_problem(self) -> bool {
        matches!(self, State::Failed | State::Pending)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub state: State,
    /// What the state is made of: unit states, the first error.
    pub detail: String,
    /// µs since the epoch of the latest state change of the step's units.
    pub since: Option<u64>,
    /// The commit applied when that happened (history.jsonl), else the generator's.
    pub commit: Option<String>,
    pub units: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantStatus {
    pub id: String,
    /// `tenants/<id>/metadata.json`, as the report names it.
    pub file: Option<String>,
    pub healthy: bool,
    pub steps: Vec<Step>,
}

/// What systemd and the project said, gathered at the edges.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub report: Option<&'a Report>,
    /// When the report was written (µs since the epoch).
    pub report_time: Option<u64>,
    pub units: &'a [UnitState],
    /// StateChangeTimestamp by unit.
    pub since: &'a HashMap<String, u64>,
    /// Units inactive because a condition failed.
    pub skipped: &'a HashSet<String>,
    pub history: &'a [Record],
    pub tenants_dir: &'a str,
    /// Only this tenant.
    pub only: Option<&'a str>,
}

/// The commit current at `time` (µs): the last applied (or manually rolled back to)
/// generation recorded at or before it; a rollback returns to the one before.
fn commit_at(history: &[Record], time: u64) -> Option<String> {
    let mut applied: Vec<&str> = Vec::new();
    for r in history
        .iter()
        .take_while(|r| r.time.saturating_mul(1_000_000) <= time)
    {
        match r.outcome {
            Outcome::Applied | Outcome::ManualRollback => applied.push(&r.commit),
            Outcome::RolledBack => {
                // The bad commit was applied then undone: back to its predecessor.
                if applied.last() == Some(&r.commit.as_str()) {
                    applied.pop();
                }
            }
            Outcome::Refused | Outcome::Failed => {}
        }
    }
    applied.last().map(|c| c.to_string())
}

fn unit_state(s: &UnitState) -> State {
    match s.active.as_str() {
        _ if s.load != "loaded" && s.load != "stub" && s.load != "merged" => State::Failed,
        "active" => State::Ok,
        "failed" => State::Failed,
        "activating" | "deactivating" | "reloading" | "refreshing" | "maintenance" => {
            State::Pending
        }
        _ => State::Inactive,
    }
}

/// One step from its units (absent = not loaded: never started, or stopped and collected).
fn step_of(
    step: &'static str,
    units: &[&UnitState],
    inputs: &Inputs,
    fallback: &Option<String>,
) -> Step {
    if units.is_empty() {
        return Step {
            step,
            state: State::None,
            detail: String::new(),
            since: None,
            commit: None,
            units: Vec::new(),
        };
    }
    let states: Vec<State> = units
        .iter()
        .map(|u| match unit_state(u) {
            State::Inactive if inputs.skipped.contains(&u.unit) => State::Skipped,
            s => s,
        })
        .collect();
    let state = [State::Failed, State::Pending, State::Inactive]
        .into_iter()
        .find(|s| states.contains(s))
        .unwrap_or(if states.iter().all(|s| *s == State::Skipped) {
            State::Skipped
        } else {
            State::Ok
        });
    let detail = units
        .iter()
        .zip(&states)
        .filter(|(_, s)| **s != State::Ok)
        .map(|(u, _)| format!("{} {}/{}", u.unit, u.active, u.sub))
        .collect::<Vec<_>>()
        .join(", ");
    let since = units
        .iter()
        .filter_map(|u| inputs.since.get(&u.unit).copied())
        .filter(|t| *t > 0)
        .max();
    let commit = since
        .and_then(|t| commit_at(inputs.history, t))
        .or_else(|| fallback.clone());
    Step {
        step,
        state,
        detail: if detail.is_empty() {
            format!("{} active", units.len())
        } else {
            detail
        },
        since,
        commit,
        units: units.iter().map(|u| u.unit.clone()).collect(),
    }
}

/// The rows: every tenant of the report, and every tenant that has units but is no longer in
/// it (stopping, or left over), sorted by id.
pub fn rows(inputs: &Inputs) -> Vec<TenantStatus> {
    let mount_base = mount_prefix(inputs.tenants_dir, "*").unwrap_or_default();
    let mut by_tenant: BTreeMap<String, Vec<&UnitState>> = BTreeMap::new();
    for u in inputs.units {
        if let Some(id) = owner(&u.unit, &mount_base) {
            by_tenant.entry(id).or_default().push(u);
        }
    }
    let reported: HashMap<&str, _> = inputs
        .report
        .map(|r| r.tenants.iter().map(|t| (t.id.as_str(), t)).collect())
        .unwrap_or_default();
    let mut ids: Vec<String> = reported.keys().map(|s| s.to_string()).collect();
    ids.extend(by_tenant.keys().cloned());
    ids.sort();
    ids.dedup();
    let generator_commit = inputs.report.and_then(|r| r.commit.clone());
    ids.into_iter()
        .filter(|id| inputs.only.is_none_or(|o| o == id))
        .map(|id| {
            let units = by_tenant.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            let pick = |f: &dyn Fn(&str) -> bool| -> Vec<&UnitState> {
                units.iter().copied().filter(|u| f(&u.unit)).collect()
            };
            let t = reported.get(id.as_str());
            let validated = Step {
                step: "validated",
                state: match t.map(|t| t.status) {
                    Some(TenantState::Generated) => State::Ok,
                    Some(TenantState::Disabled) => State::Inactive,
                    Some(TenantState::Failed) | None => State::Failed,
                },
                detail: match t {
                    Some(t) if t.status == TenantState::Failed => t
                        .errors
                        .first()
                        .map_or("failed".to_owned(), |d| d.to_string()),
                    Some(t) if t.status == TenantState::Disabled => "disabled".into(),
                    Some(_) => "generated".into(),
                    None => "not in the generator's report (removed from the repository?)".into(),
                },
                since: inputs.report_time,
                commit: generator_commit.clone(),
                units: Vec::new(),
            };
            let units_step = step_of(
                "units",
                &pick(&|u| {
                    u.starts_with("tenant@")
                        || u.starts_with("tenant-infra@")
                        || u.starts_with("bitbuilder-storage@")
                }),
                inputs,
                &generator_commit,
            );
            let network = step_of(
                "network",
                &pick(&|u| u.starts_with("tenant-network@")),
                inputs,
                &generator_commit,
            );
            let overlays = step_of(
                "overlays",
                &pick(&|u| u.ends_with(".mount")),
                inputs,
                &generator_commit,
            );
            let workloads = step_of(
                "workloads",
                &pick(&|u| u.starts_with("systemd-nspawn@") || u.starts_with("tenant-vm@")),
                inputs,
                &generator_commit,
            );
            let mut steps = vec![validated, units_step, network, overlays, workloads];
            // Healthy: validated and every step that applies is up.
            // The mounts serve the workloads (their roots, the state a container writes): with
            // no workload, a mount not started yet is not a problem.
            let no_workloads = steps[4].state == State::None;
            let problem = steps.iter().find(|s| {
                s.state.is_problem()
                    || (s.step == "units" && s.state != State::Ok)
                    || (s.step == "validated" && s.state != State::Ok)
                    || (s.state == State::Inactive && !(s.step == "overlays" && no_workloads))
            });
            let healthy = problem.is_none();
            steps.push(Step {
                step: "healthy",
                state: if healthy {
                    State::Ok
                } else if steps.iter().any(|s| s.state == State::Failed) {
                    State::Failed
                } else if steps.iter().any(|s| s.state == State::Pending) {
                    State::Pending
                } else {
                    State::Inactive
                },
                detail: problem.map_or(String::new(), |p| {
                    format!("{}: {}", p.step, p.state.label())
                }),
                since: steps.iter().filter_map(|s| s.since).max(),
                commit: steps
                    .iter()
                    .filter(|s| s.since.is_some())
                    .max_by_key(|s| s.since)
                    .and_then(|s| s.commit.clone()),
                units: Vec::new(),
            });
            TenantStatus {
                file: t.map(|t| t.file.clone()),
                id,
                healthy,
                steps,
            }
        })
        .collect()
}

/// `YYYY-MM-DD HH:MM:SS` UTC of µs since the epoch.
fn when(us: Option<u64>) -> String {
    us.map_or("-".into(), |us| crate::history::utc(us / 1_000_000))
}

fn short(commit: &Option<String>) -> &str {
    commit.as_deref().map_or("-", |c| c.get(..12).unwrap_or(c))
}

/// Colour only on a terminal, and never with NO_COLOR set (no-color.org).
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn paint(state: State, text: &str, colour: bool) -> String {
    if !colour {
        return text.to_owned();
    }
    let code = match state {
        State::Ok => "32",
        State::Pending => "33",
        State::Failed => "1;31",
        State::Inactive | State::Skipped | State::None => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The table: one line per tenant (fleet), or one line per step (one tenant).
pub fn table(rows: &[TenantStatus], one: bool, colour: bool) -> String {
    let esc = |s: &str| bbhv_generator::escape(s).into_owned();
    let mut out = String::new();
    if one {
        for t in rows {
            out += &format!(
                "tenant {}  ({})\n",
                esc(&t.id),
                esc(t.file.as_deref().unwrap_or("-"))
            );
            out += &format!(
                "{:<10}  {:<8}  {:<19}  {:<12}  detail\n",
                "step", "state", "since (UTC)", "commit"
            );
            for s in &t.steps {
                out += &format!(
                    "{:<10}  {}  {:<19}  {:<12}  {}\n",
                    s.step,
                    paint(s.state, &format!("{:<8}", s.state.label()), colour),
                    when(s.since),
                    short(&s.commit),
                    esc(&s.detail)
                );
            }
        }
        return out;
    }
    let width = rows.iter().map(|t| t.id.len()).max().unwrap_or(6).max(6);
    out += &format!(
        "{:<width$}  {:<9}  {:<8}  {:<8}  {:<8}  {:<9}  {:<8}  {:<19}  commit\n",
        "tenant",
        "validated",
        "units",
        "network",
        "overlays",
        "workloads",
        "healthy",
        "since (UTC)"
    );
    for t in rows {
        let cell = |i: usize, w: usize| {
            let s = &t.steps[i];
            paint(s.state, &format!("{:<w$}", s.state.label()), colour)
        };
        let health = &t.steps[5];
        out += &format!(
            "{:<width$}  {}  {}  {}  {}  {}  {}  {:<19}  {}\n",
            esc(&t.id),
            cell(0, 9),
            cell(1, 8),
            cell(2, 8),
            cell(3, 8),
            cell(4, 9),
            cell(5, 8),
            when(health.since),
            short(&health.commit)
        );
    }
    let healthy = rows.iter().filter(|t| t.healthy).count();
    out += &format!("{} tenants, {} healthy\n", rows.len(), healthy);
    out
}

/// What systemd says of the units matching `pats`, in three bulk calls: the units (loaded,
/// and those with a file but not loaded), their StateChangeTimestamp, and those skipped by a
/// condition.
pub type Gathered = (Vec<UnitState>, HashMap<String, u64>, HashSet<String>);

/// The names of the generated units of `tenant` (or every tenant, `None`) in the generators'
/// output directory: the units that exist even when not loaded. One directory read, where
/// ListUnitFilesByPatterns makes PID 1 work out every file's enablement state (0.5 s at
/// 1,000 tenants).
pub fn generated_units(
    dir: &std::path::Path,
    tenants_dir: &str,
    tenant: Option<&str>,
) -> Vec<String> {
    let base = mount_prefix(tenants_dir, "*").unwrap_or_default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| owner(name, &base).is_some_and(|id| tenant.is_none_or(|t| t == id)))
        .collect()
}

pub fn gather(
    sd: &dyn Systemd,
    pats: &[String],
    files: Vec<String>,
) -> Result<Gathered, bbhv_systemd::Error> {
    let loaded = sd.list(pats)?;
    // Properties of loaded units only: reading one would load a unit that is not.
    let names: Vec<String> = loaded.iter().map(|u| u.unit.clone()).collect();
    let since: HashMap<String, u64> = names
        .iter()
        .zip(sd.properties(&names, &["StateChangeTimestamp"])?)
        .filter_map(|(n, p)| Some((n.clone(), p.get("StateChangeTimestamp")?.as_u64()?)))
        .collect();
    // Only an inactive unit can have been skipped: ask those alone (few on a healthy host).
    let inactive: Vec<String> = loaded
        .iter()
        .filter(|u| u.active == "inactive")
        .map(|u| u.unit.clone())
        .collect();
    let mut skipped = HashSet::new();
    if !inactive.is_empty() {
        let props = sd.properties(&inactive, &["ConditionResult", "ConditionTimestamp"])?;
        for (name, p) in inactive.into_iter().zip(props) {
            // ConditionResult is false too for a unit whose conditions were never checked.
            let checked = p
                .get("ConditionTimestamp")
                .and_then(Prop::as_u64)
                .unwrap_or(0)
                > 0;
            if checked && p.get("ConditionResult") == Some(&Prop::Bool(false)) {
                skipped.insert(name);
            }
        }
    }
    Ok((with_files(loaded, files), since, skipped))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(t) = &args.tenant
        && bbhv_spec::names::TenantId::new(t).is_none()
    {
        anyhow::bail!(
            "{:?} is not a tenant id (lowercase letters, digits and '-')",
            bbhv_generator::escape(t)
        );
    }
    let paths = HostPaths::from_env();
    let report: Option<Report> = std::fs::read_to_string(&paths.report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let report_time = std::fs::metadata(&paths.report)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as u64);
    let history = Store::new(&paths.state_dir).history();
    let tenants_dir = paths.tenants_dir.display().to_string();
    // BBHV_TIMING=1: where the time goes, on stderr (bench/status-hook).
    let timing = std::env::var_os("BBHV_TIMING").is_some();
    let t0 = std::time::Instant::now();
    let sd = Dbus::system().context("reading unit states")?;
    let t1 = std::time::Instant::now();
    let pats = patterns(args.tenant.as_deref().unwrap_or("*"), &tenants_dir);
    let files = generated_units(&paths.generator_dir, &tenants_dir, args.tenant.as_deref());
    let (units, since, skipped) = gather(&sd, &pats, files)?;
    let t2 = std::time::Instant::now();
    let rows = rows(&Inputs {
        report: report.as_ref(),
        report_time,
        units: &units,
        since: &since,
        skipped: &skipped,
        history: &history,
        tenants_dir: &tenants_dir,
        only: args.tenant.as_deref(),
    });
    if args.tenant.is_some() && rows.is_empty() {
        anyhow::bail!(
            "no tenant {} in the generator's report or among the units",
            bbhv_generator::escape(args.tenant.as_deref().unwrap_or_default())
        );
    }
    if args.json {
        let value = serde_json::json!({
            "commit": report.as_ref().and_then(|r| r.commit.clone()),
            "tenants": rows,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", table(&rows, args.tenant.is_some(), colour()));
    }
    if timing {
        eprintln!(
            "bbhv status: connect {:?}, systemd {:?} ({} units), rows and output {:?}",
            t1 - t0,
            t2 - t1,
            units.len(),
            t2.elapsed()
        );
    }
    Ok(
        if rows
            .iter()
            .all(|t| t.healthy || t.steps[0].state == State::Inactive)
        {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bbhv_generator::{State as ReportState, TenantReport};
    use bbhv_systemd::Fake;

    fn report() -> Report {
        let mut r: Report = serde_json::from_value(serde_json::json!({
            "generator": "tenant-generator", "version": "0", "current": "/c",
            "commit": "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2", "state": "generated",
            "tenants": [], "errors": []
        }))
        .unwrap();
        assert_eq!(r.state, ReportState::Generated);
        for (id, status) in [
            ("acme", TenantState::Generated),
            ("umbrella-labs", TenantState::Generated),
            ("off", TenantState::Disabled),
        ] {
            r.tenants.push(TenantReport {
                id: id.into(),
                file: format!("tenants/{id}/metadata.json"),
                status,
                errors: vec![],
            });
        }
        r
    }

    fn record(time: u64, commit: &str, outcome: Outcome) -> Record {
        Record {
            time,
            commit: commit.into(),
            generation: Some(format!("1-{commit}")),
            signer: None,
            summary: None,
            outcome,
            reason: String::new(),
        }
    }

    /// The same path as `run`, on the Fake: list, then timestamps, then rows.
    fn status_of(fake: &Fake, history: &[Record]) -> Vec<TenantStatus> {
        let pats = patterns("*", "/var/lib/tenants");
        let files = fake.unit_files(&pats).unwrap();
        let (units, since, skipped) = gather(fake, &pats, files).unwrap();
        let r = report();
        rows(&Inputs {
            report: Some(&r),
            report_time: Some(5_000_000),
            units: &units,
            since: &since,
            skipped: &skipped,
            history,
            tenants_dir: "/var/lib/tenants",
            only: None,
        })
    }

    /// `unit` loaded and running, as systemd reports a healthy service.
    fn running(fake: &Fake, unit: &str) {
        fake.set_state(UnitState::new(unit, "loaded", "active", "running"));
    }

    #[test]
    fn generated_units_of_a_tenant_from_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "tenant@acme.service",
            "tenant-network@acme.service",
            "var-lib-tenants-acme.mount",
            "tenant@globex.service",
            "tenants-0f-acme.slice",
            "tenants.target.wants",
        ] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let mut all = generated_units(dir.path(), "/var/lib/tenants", None);
        all.sort();
        assert_eq!(
            all,
            [
                "tenant-network@acme.service",
                "tenant@acme.service",
                "tenant@globex.service",
                "var-lib-tenants-acme.mount"
            ]
        );
        assert_eq!(
            generated_units(dir.path(), "/var/lib/tenants", Some("globex")),
            ["tenant@globex.service"]
        );
    }

    #[test]
    fn units_map_to_their_tenants() {
        let base = mount_prefix("/var/lib/tenants", "*").unwrap();
        assert_eq!(base, "var-lib-tenants-");
        assert_eq!(
            mount_prefix("/var/lib/tenants", "umbrella-labs").unwrap(),
            "var-lib-tenants-umbrella\\x2dlabs-"
        );
        for (unit, id) in [
            ("tenant@acme.service", "acme"),
            ("tenant-network@umbrella-labs.service", "umbrella-labs"),
            ("systemd-nspawn@acme.web.service", "acme"),
            ("tenant-vm@a-b_vm1.service", "a-b"),
            (
                "var-lib-tenants-umbrella\\x2dlabs-root-web.mount",
                "umbrella-labs",
            ),
            ("var-lib-tenants-umbrella\\x2dlabs.mount", "umbrella-labs"),
        ] {
            assert_eq!(owner(unit, &base).as_deref(), Some(id), "{unit}");
        }
        assert_eq!(owner("var-lib-other.mount", &base), None);
        assert_eq!(owner("sshd.service", &base), None);
    }

    #[test]
    fn steps_states_since_and_commits() {
        let fake = Fake::new();
        let up = |u: &str, t: u64| {
            fake.set_state(UnitState::new(u, "loaded", "active", "running"));
            fake.set_prop(u, "StateChangeTimestamp", Prop::U64(t * 1_000_000));
        };
        up("tenant@acme.service", 10);
        up("tenant-infra@acme.service", 11);
        up("tenant-network@acme.service", 12);
        up("var-lib-tenants-acme-root-web.mount", 13);
        // The quota's mount, skipped by its condition (no loop devices): not a problem.
        fake.set_state(UnitState::new(
            "var-lib-tenants-acme.mount",
            "loaded",
            "inactive",
            "dead",
        ));
        fake.set_prop(
            "var-lib-tenants-acme.mount",
            "ConditionResult",
            Prop::Bool(false),
        );
        fake.set_prop(
            "var-lib-tenants-acme.mount",
            "ConditionTimestamp",
            Prop::U64(9),
        );
        up("systemd-nspawn@acme.web.service", 30);
        up("tenant@umbrella-labs.service", 10);
        fake.set_state(UnitState::new(
            "systemd-nspawn@umbrella-labs.db.service",
            "loaded",
            "failed",
            "failed",
        ));
        fake.set_prop(
            "systemd-nspawn@umbrella-labs.db.service",
            "StateChangeTimestamp",
            Prop::U64(40_000_000),
        );
        let history = [
            record(1, "aaaa", Outcome::Applied),
            record(20, "bbbb", Outcome::Applied),
            record(25, "cccc", Outcome::Applied),
            record(26, "cccc", Outcome::RolledBack),
        ];
        let rows = status_of(&fake, &history);
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["acme", "off", "umbrella-labs"]);

        let acme = &rows[0];
        assert!(acme.healthy, "{acme:#?}");
        let states: Vec<State> = acme.steps.iter().map(|s| s.state).collect();
        assert_eq!(states, [State::Ok; 6]);
        // Units came up under aaaa; the container restarted at 30, after the rollback to bbbb.
        assert_eq!(acme.steps[1].since, Some(11_000_000));
        assert_eq!(acme.steps[1].commit.as_deref(), Some("aaaa"));
        assert_eq!(acme.steps[4].commit.as_deref(), Some("bbbb"));
        assert_eq!(acme.steps[5].since, Some(30_000_000));

        let off = &rows[1];
        assert_eq!(off.steps[0].state, State::Inactive);
        assert_eq!(off.steps[1].state, State::None);
        assert!(!off.healthy);

        let umbrella = &rows[2];
        assert!(!umbrella.healthy);
        assert_eq!(umbrella.steps[2].state, State::None, "no network unit");
        assert_eq!(umbrella.steps[4].state, State::Failed);
        assert!(umbrella.steps[4].detail.contains("failed/failed"));
        assert_eq!(umbrella.steps[5].state, State::Failed);
        assert_eq!(umbrella.steps[5].detail, "workloads: failed");

        // Four bulk calls, whatever the number of tenants (the fourth for inactive units).
        assert_eq!(fake.calls().len(), 4, "{:?}", fake.calls());
    }

    #[test]
    fn table_plain_and_coloured() {
        let fake = Fake::new();
        running(&fake, "tenant@acme.service");
        let rows = status_of(&fake, &[]);
        let plain = table(&rows, false, false);
        assert!(!plain.contains('\x1b'), "{plain}");
        assert!(plain.contains("acme"), "{plain}");
        assert!(plain.ends_with("3 tenants, 1 healthy\n"), "{plain}");
        assert!(table(&rows, false, true).contains("\x1b[32mok"));
        let one = table(&rows[..1], true, false);
        assert!(one.contains("workloads"), "{one}");
        assert!(one.contains("tenants/acme/metadata.json"), "{one}");
    }

    #[test]
    fn a_stopped_unit_with_a_file_is_inactive_not_absent() {
        let fake = Fake::new();
        running(&fake, "tenant@acme.service");
        fake.add_unit_file("tenant@acme.service");
        fake.add_unit_file("tenant-network@acme.service");
        fake.add_unit_file("tenant@.service");
        let rows = status_of(&fake, &[]);
        assert_eq!(rows[0].steps[2].state, State::Inactive);
        assert_eq!(
            rows[0].steps[2].detail,
            "tenant-network@acme.service inactive/dead"
        );
        assert!(!rows[0].healthy);
        assert_eq!(rows.len(), 3, "the template is no tenant's");
    }

    #[test]
    fn an_unstarted_mount_without_workloads_is_healthy() {
        let fake = Fake::new();
        running(&fake, "tenant@acme.service");
        fake.add_unit_file("var-lib-tenants-acme.mount");
        let rows = status_of(&fake, &[]);
        assert_eq!(rows[0].steps[3].state, State::Inactive);
        assert!(rows[0].healthy, "{:#?}", rows[0]);
        // With a container, the same mount not started is a problem.
        running(&fake, "systemd-nspawn@acme.web.service");
        let rows = status_of(&fake, &[]);
        assert!(!rows[0].healthy, "{:#?}", rows[0]);
        assert_eq!(rows[0].steps[5].detail, "overlays: inactive");
    }

    #[test]
    fn a_removed_tenant_with_units_is_shown() {
        let fake = Fake::new();
        fake.set_state(UnitState::new(
            "tenant@gone.service",
            "loaded",
            "deactivating",
            "stop",
        ));
        let rows = status_of(&fake, &[]);
        let gone = rows.iter().find(|r| r.id == "gone").unwrap();
        assert_eq!(gone.steps[0].state, State::Failed);
        assert_eq!(gone.steps[1].state, State::Pending);
    }
}
