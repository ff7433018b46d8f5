//! A [`Systemd`] for unit tests: records every call in order and plays scripted states and
//! job results, with a small model of what jobs do to units.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::{Error, Job, JobKind, JobOutcome, Prop, Props, Systemd, UnitState};

/// One recorded call of a [`Fake`], with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Reload,
    RunJobs(Vec<Job>),
    States(Vec<String>),
    MainPid(String),
    List(Vec<String>),
    Properties(Vec<String>, Vec<String>),
    UnitFiles(Vec<String>),
}

/// A scripted systemd. Units start unknown (load "not-found"); [`Fake::set_state`] makes them
/// known. Jobs change states the way the manager would: a "done" start or restart makes the
/// unit active/running with a new main PID (a restart always gets a new one), a "done" stop
/// makes it inactive/dead with PID 0, try-restart restarts only an active unit, "failed" makes
/// it failed. A job on an unknown unit gives "not-loaded". Results can be scripted per unit
/// ([`Fake::set_outcome`]), and states per poll ([`Fake::script_states`]).
#[derive(Debug, Default)]
pub struct Fake {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    calls: Vec<Call>,
    units: BTreeMap<String, UnitState>,
    scripts: HashMap<String, VecDeque<(String, String)>>,
    outcomes: HashMap<String, String>,
    pids: HashMap<String, u32>,
    next_pid: u32,
    failures: HashMap<&'static str, String>,
    props: HashMap<String, Props>,
    files: std::collections::BTreeSet<String>,
}

impl Fake {
    pub fn new() -> Fake {
        Fake::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock has already failed; keep its data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every call so far, in order, and forgets them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.lock().calls)
    }

    /// Makes a unit known (loaded or not) with this state.
    pub fn set_state(&self, state: UnitState) {
        let mut inner = self.lock();
        inner.units.insert(state.unit.clone(), state);
    }

    /// The unit's current state (load "not-found" when unknown), without recording a call.
    pub fn state(&self, unit: &str) -> UnitState {
        self.lock().state(unit)
    }

    /// The unit (loaded) takes these (active, sub) states at the next calls of `states`, one per
    /// call; the last one stays.
    pub fn script_states(&self, unit: &str, seq: &[(&str, &str)]) {
        let mut inner = self.lock();
        let q = seq
            .iter()
            .map(|(a, s)| (a.to_string(), s.to_string()))
            .collect();
        inner.scripts.insert(unit.to_owned(), q);
    }

    /// Every job on `unit` ends with `result` (e.g. "failed", "timeout", "dependency").
    pub fn set_outcome(&self, unit: &str, result: &str) {
        self.lock()
            .outcomes
            .insert(unit.to_owned(), result.to_owned());
    }

    /// The unit's ExecMainPID.
    pub fn set_main_pid(&self, unit: &str, pid: u32) {
        self.lock().pids.insert(unit.to_owned(), pid);
    }

    /// A unit file exists (generated or installed), loaded or not.
    pub fn add_unit_file(&self, unit: &str) {
        self.lock().files.insert(unit.to_owned());
    }

    /// A property of a unit, as [`Systemd::properties`] returns it.
    pub fn set_prop(&self, unit: &str, name: &str, value: Prop) {
        self.lock()
            .props
            .entry(unit.to_owned())
            .or_default()
            .insert(name.to_owned(), value);
    }

    /// The next call of `method` ("Reload", "RunJobs", "ListUnitsByNames", "GetUnit",
    /// "ListUnitsByPatterns") fails with `message` (recorded all the same).
    pub fn fail_next(&self, method: &'static str, message: &str) {
        self.lock().failures.insert(method, message.to_owned());
    }
}

impl Inner {
    fn state(&self, unit: &str) -> UnitState {
        self.units
            .get(unit)
            .cloned()
            .unwrap_or_else(|| UnitState::new(unit, "not-found", "inactive", "dead"))
    }

    fn fail(&mut self, method: &'static str, unit: &str) -> Result<(), Error> {
        match self.failures.remove(method) {
            Some(msg) => Err(Error::Call {
                method,
                unit: unit.to_owned(),
                source: Box::new(zbus::Error::Failure(msg)),
            }),
            None => Ok(()),
        }
    }

    fn set(&mut self, unit: &str, active: &str, sub: &str) {
        let s = self
            .units
            .entry(unit.to_owned())
            .or_insert_with(|| UnitState::new(unit, "loaded", "inactive", "dead"));
        s.active = active.to_owned();
        s.sub = sub.to_owned();
    }

    fn new_pid(&mut self, unit: &str) {
        self.next_pid = self.next_pid.max(1000) + 1;
        let pid = self.next_pid;
        self.pids.insert(unit.to_owned(), pid);
    }

    fn run(&mut self, job: &Job) -> String {
        let known = self
            .units
            .get(&job.unit)
            .is_some_and(|s| s.load == "loaded");
        let result = match self.outcomes.get(&job.unit) {
            Some(r) => r.clone(),
            None if !known => return "not-loaded".to_owned(),
            None => "done".to_owned(),
        };
        let active = self.state(&job.unit).active == "active";
        match (result.as_str(), job.kind) {
            ("done", JobKind::Start) if !active => {
                self.set(&job.unit, "active", "running");
                self.new_pid(&job.unit);
            }
            ("done", JobKind::Restart) => {
                self.set(&job.unit, "active", "running");
                self.new_pid(&job.unit);
            }
            ("done", JobKind::TryRestart) if active => {
                self.set(&job.unit, "active", "running");
                self.new_pid(&job.unit);
            }
            ("done", JobKind::Stop) => {
                self.set(&job.unit, "inactive", "dead");
                self.pids.insert(job.unit.clone(), 0);
            }
            ("failed", _) => {
                self.set(&job.unit, "failed", "failed");
                self.pids.insert(job.unit.clone(), 0);
            }
            _ => {}
        }
        result
    }
}

impl Systemd for Fake {
    fn reload(&self) -> Result<(), Error> {
        let mut inner = self.lock();
        inner.calls.push(Call::Reload);
        inner.fail("Reload", "")
    }

    fn run_jobs(&self, jobs: &[Job], _timeout: Duration) -> Result<Vec<JobOutcome>, Error> {
        let mut inner = self.lock();
        inner.calls.push(Call::RunJobs(jobs.to_vec()));
        let all = jobs
            .iter()
            .map(|j| j.unit.as_str())
            .collect::<Vec<_>>()
            .join(",");
        inner.fail("RunJobs", &all)?;
        Ok(jobs
            .iter()
            .map(|job| JobOutcome {
                unit: job.unit.clone(),
                kind: job.kind,
                result: inner.run(job),
            })
            .collect())
    }

    fn states(&self, units: &[String]) -> Result<Vec<UnitState>, Error> {
        let mut inner = self.lock();
        inner.calls.push(Call::States(units.to_vec()));
        inner.fail("ListUnitsByNames", &units.join(","))?;
        let mut out = Vec::with_capacity(units.len());
        for u in units {
            let next = inner.scripts.get_mut(u).and_then(|q| {
                if q.len() > 1 {
                    q.pop_front()
                } else {
                    q.front().cloned()
                }
            });
            if let Some((active, sub)) = next {
                inner.set(u, &active, &sub);
            }
            out.push(inner.state(u));
        }
        Ok(out)
    }

    fn main_pid(&self, unit: &str) -> Result<u32, Error> {
        let mut inner = self.lock();
        inner.calls.push(Call::MainPid(unit.to_owned()));
        inner.fail("GetUnit", unit)?;
        Ok(inner.pids.get(unit).copied().unwrap_or(0))
    }

    fn list(&self, patterns: &[String]) -> Result<Vec<UnitState>, Error> {
        let mut inner = self.lock();
        inner.calls.push(Call::List(patterns.to_vec()));
        inner.fail("ListUnitsByPatterns", &patterns.join(","))?;
        Ok(inner
            .units
            .values()
            .filter(|s| s.load != "not-found" || s.active != "inactive")
            .filter(|s| patterns.is_empty() || patterns.iter().any(|p| glob(p, &s.unit)))
            .cloned()
            .collect())
    }

    fn properties(&self, units: &[String], names: &[&str]) -> Result<Vec<Props>, Error> {
        self.props_of(units, names)
    }

    fn unit_files(&self, patterns: &[String]) -> Result<Vec<String>, Error> {
        let mut inner = self.lock();
        inner.calls.push(Call::UnitFiles(patterns.to_vec()));
        inner.fail("ListUnitFilesByPatterns", &patterns.join(","))?;
        Ok(inner
            .files
            .iter()
            .filter(|f| patterns.is_empty() || patterns.iter().any(|p| glob(p, f)))
            .cloned()
            .collect())
    }
}

impl Fake {
    fn props_of(&self, units: &[String], names: &[&str]) -> Result<Vec<Props>, Error> {
        let mut inner = self.lock();
        inner.calls.push(Call::Properties(
            units.to_vec(),
            names.iter().map(|n| n.to_string()).collect(),
        ));
        inner.fail("Get", &units.join(","))?;
        Ok(units
            .iter()
            .map(|u| {
                let known = inner.props.get(u);
                names
                    .iter()
                    .map(|n| {
                        let v = known.and_then(|p| p.get(*n)).cloned();
                        ((*n).to_owned(), v.unwrap_or(Prop::Other))
                    })
                    .collect()
            })
            .collect())
    }
}

/// fnmatch-style `*` and `?` (what the patterns of ListUnitsByPatterns mostly use).
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_fnmatch() {
        assert!(glob("tenant@*.service", "tenant@a.service"));
        assert!(glob("*", "x"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("tenant@*.service", "tenant-infra@a.service"));
        assert!(!glob("a*b", "acbx"));
    }

    #[test]
    fn jobs_change_states_and_pids() {
        let fake = Fake::new();
        fake.set_state(UnitState::new("a.service", "loaded", "inactive", "dead"));
        fake.set_state(UnitState::new("b.service", "loaded", "inactive", "dead"));
        fake.set_outcome("b.service", "failed");
        let out = fake
            .run_jobs(
                &[
                    Job::new("a.service", JobKind::Start),
                    Job::new("b.service", JobKind::Start),
                    Job::new("c.service", JobKind::Start),
                ],
                Duration::from_secs(1),
            )
            .unwrap();
        let results: Vec<&str> = out.iter().map(|o| o.result.as_str()).collect();
        assert_eq!(results, ["done", "failed", "not-loaded"]);
        assert_eq!(fake.state("a.service").active, "active");
        assert_eq!(fake.state("b.service").active, "failed");
        let pid = fake.main_pid("a.service").unwrap();
        assert_ne!(pid, 0);
        fake.run_jobs(
            &[Job::new("a.service", JobKind::TryRestart)],
            Duration::ZERO,
        )
        .unwrap();
        assert_ne!(fake.main_pid("a.service").unwrap(), pid);
        fake.run_jobs(&[Job::new("a.service", JobKind::Stop)], Duration::ZERO)
            .unwrap();
        assert_eq!(fake.main_pid("a.service").unwrap(), 0);
        assert_eq!(fake.main_pid("c.service").unwrap(), 0);
        let listed = fake.list(&["*.service".to_owned()]).unwrap();
        let names: Vec<&str> = listed.iter().map(|s| s.unit.as_str()).collect();
        assert_eq!(names, ["a.service", "b.service"]);
        assert_eq!(fake.calls().len(), 8);
        assert!(matches!(&fake.calls()[0], Call::RunJobs(j) if j.len() == 3));
    }
}
