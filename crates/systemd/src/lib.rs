//! systemd's manager (PID 1) over D-Bus, behind the [`Systemd`] trait: daemon-reload, jobs
//! waited for by their `JobRemoved` signal, unit states. [`Dbus`] talks to the real manager
//! (zbus, blocking, no tokio); [`Fake`] records calls and plays scripted states for tests.
//! [`wait_healthy`] polls states until a set of units is active, one failed, or a deadline.
//!
//! Only long-standing manager methods are used (systemd 257 is the target).

mod dbus;
mod fake;

use std::time::{Duration, Instant};

pub use dbus::{Dbus, unit_path};
pub use fake::{Call, Fake};

/// What a job does to its unit: the manager methods StartUnit, RestartUnit, StopUnit,
/// TryRestartUnit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    Start,
    Restart,
    Stop,
    TryRestart,
}

impl JobKind {
    /// The manager method that enqueues this kind of job.
    pub fn method(self) -> &'static str {
        match self {
            JobKind::Start => "StartUnit",
            JobKind::Restart => "RestartUnit",
            JobKind::Stop => "StopUnit",
            JobKind::TryRestart => "TryRestartUnit",
        }
    }
}

/// One job to enqueue: `kind` on `unit` (a full unit name, e.g. `tenant@a.service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub unit: String,
    pub kind: JobKind,
}

impl Job {
    pub fn new(unit: impl Into<String>, kind: JobKind) -> Job {
        Job {
            unit: unit.into(),
            kind,
        }
    }
}

/// How a job ended. `result` is systemd's `JobRemoved` result ("done", "failed", "canceled",
/// "timeout", "dependency", "skipped", "invalid", "assert", "unsupported", "collected",
/// "once"), or, when the job could not be enqueued, "not-loaded" (no such unit) or
/// "error: NAME: MESSAGE" (the D-Bus error), or [`PENDING`] when it was still queued or running
/// at `run_jobs`' timeout (it is left running), or [`VANISHED`] (see there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    pub unit: String,
    pub kind: JobKind,
    pub result: String,
}

/// `JobOutcome::result` of a job still queued or running when `run_jobs` timed out.
pub const PENDING: &str = "pending";
/// `JobOutcome::result` of a job that left the manager's job list without a `JobRemoved`
/// signal reaching us (should not happen: we subscribe before enqueueing; this keeps a lost
/// signal from hanging `run_jobs` until its timeout). Look at the unit's state.
pub const VANISHED: &str = "vanished";

impl JobOutcome {
    /// The job ran to completion ("done").
    pub fn ok(&self) -> bool {
        self.result == "done"
    }
}

/// A unit's load, active and sub states, as `systemctl list-units` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub unit: String,
    /// "loaded", "not-found", "bad-setting", "error", "masked", "stub", "merged"
    pub load: String,
    /// "active", "reloading", "inactive", "failed", "activating", "deactivating", "maintenance", "refreshing"
    pub active: String,
    /// type-specific, e.g. "running", "exited", "dead", "auto-restart"
    pub sub: String,
}

impl UnitState {
    pub fn new(unit: &str, load: &str, active: &str, sub: &str) -> UnitState {
        UnitState {
            unit: unit.to_owned(),
            load: load.to_owned(),
            active: active.to_owned(),
            sub: sub.to_owned(),
        }
    }
}

/// A failed call. Every variant names the D-Bus method and the unit (or units) it was about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to the system bus: {0}")]
    Connect(#[source] Box<zbus::Error>),
    #[error("{method} {unit}: {source}")]
    Call {
        method: &'static str,
        /// The unit, or a comma-separated list of units; empty for manager-wide calls.
        unit: String,
        #[source]
        source: Box<zbus::Error>,
    },
    #[error("{method} {unit}: unexpected reply: {detail}")]
    Reply {
        method: &'static str,
        unit: String,
        detail: String,
    },
}

impl Error {
    /// The D-Bus method the error came from ("connect" for [`Error::Connect`]).
    pub fn method(&self) -> &'static str {
        match self {
            Error::Connect(_) => "connect",
            Error::Call { method, .. } | Error::Reply { method, .. } => method,
        }
    }

    /// The D-Bus error name of a method error reply, e.g. "org.freedesktop.systemd1.NoSuchUnit".
    pub fn dbus_name(&self) -> Option<&str> {
        match self {
            Error::Call { source, .. } => match &**source {
                zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// systemd's manager, as much of it as the project uses. Implemented by [`Dbus`] and [`Fake`].
pub trait Systemd {
    /// daemon-reload; returns when the manager has finished reloading (generators re-ran).
    fn reload(&self) -> Result<(), Error>;
    /// Enqueues every job (mode "replace"), then waits until each has been removed
    /// (`JobRemoved` signal, subscribed before enqueueing so no signal is missed), or `timeout`
    /// (jobs still running then give [`PENDING`] and are left running). Outcomes come in the
    /// order of `jobs`. A job that cannot be enqueued (e.g. NoSuchUnit) gives an outcome, not
    /// an Err; Err is for a broken connection.
    fn run_jobs(&self, jobs: &[Job], timeout: Duration) -> Result<Vec<JobOutcome>, Error>;
    /// ListUnitsByNames: one call for many units, in the order asked (a unit never loaded
    /// comes back as load "not-found", active "inactive").
    fn states(&self, units: &[String]) -> Result<Vec<UnitState>, Error>;
    /// ExecMainPID of a service (0 when none, and when the unit is not loaded: a stopped
    /// unit is unloaded at once), for tests that prove a unit was not restarted.
    fn main_pid(&self, unit: &str) -> Result<u32, Error>;
    /// ListUnitsByPatterns(states=[], patterns): the loaded units matching glob patterns
    /// (e.g. "tenant@*.service"), sorted by name. An empty `patterns` lists every loaded unit.
    fn list(&self, patterns: &[String]) -> Result<Vec<UnitState>, Error>;
    /// Properties of the interface org.freedesktop.systemd1.Unit (e.g. "StateChangeTimestamp",
    /// "FragmentPath", "Requires") of many units, in the order asked. The calls are pipelined
    /// on one connection (many in flight), so 4,000 units cost about one round trip per
    /// window, not 4,000. A property that cannot be read comes back as [`Prop::Other`].
    fn properties(&self, units: &[String], names: &[&str]) -> Result<Vec<Props>, Error>;
    /// ListUnitFilesByPatterns(states=[], patterns): the names of the unit files (generated
    /// ones included) matching glob patterns, sorted: units that exist even when not loaded
    /// (a stopped unit is unloaded at once). Instances of templates without a file of their
    /// own are not listed.
    fn unit_files(&self, patterns: &[String]) -> Result<Vec<String>, Error>;
}

/// One property value of a unit, as much of D-Bus' types as the project reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prop {
    Str(String),
    /// Integers (timestamps are µs since the epoch, 0 for never).
    U64(u64),
    Bool(bool),
    Strs(Vec<String>),
    /// A type not modelled here, or the property does not exist on the unit.
    Other,
}

impl Prop {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Prop::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Prop::U64(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_strs(&self) -> &[String] {
        match self {
            Prop::Strs(v) => v,
            _ => &[],
        }
    }
}

/// The properties asked for, by name, of one unit.
pub type Props = std::collections::BTreeMap<String, Prop>;

/// The end of [`wait_healthy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Every unit is "active".
    Healthy,
    /// These units are in ActiveState "failed", or cannot load (load state "not-found",
    /// "bad-setting", "error", "masked"): terminal, waiting longer would not help.
    Failed(Vec<UnitState>),
    /// The deadline passed: these units were not active at the last poll.
    TimedOut(Vec<UnitState>),
}

/// [`wait_healthy`]'s poll interval.
pub const POLL_INTERVAL: Duration = Duration::from_millis(150);

/// Load states from which a unit cannot become active without a fix and a daemon-reload.
const DEAD_LOAD_STATES: [&str; 4] = ["not-found", "bad-setting", "error", "masked"];

/// Polls `states` until every unit is active ([`Health::Healthy`]), one is in ActiveState
/// "failed" or cannot load ([`Health::Failed`]: terminal; a unit whose Restart= is pending
/// shows "activating"/"auto-restart" instead and is waited for), or `deadline` passes
/// ([`Health::TimedOut`], listing the units not active). Polls every [`POLL_INTERVAL`].
pub fn wait_healthy(
    sd: &dyn Systemd,
    units: &[String],
    deadline: Duration,
) -> Result<Health, Error> {
    wait_healthy_every(sd, units, deadline, POLL_INTERVAL)
}

/// [`wait_healthy`] with its poll interval given (at least 1 ms). At most
/// `deadline / interval + 2` calls of `states`.
pub fn wait_healthy_every(
    sd: &dyn Systemd,
    units: &[String],
    deadline: Duration,
    interval: Duration,
) -> Result<Health, Error> {
    let interval = interval.max(Duration::from_millis(1));
    let start = Instant::now();
    // The cap bounds the calls even if the clock or a slow bus makes the loop misjudge time.
    let max_calls = deadline.as_millis() / interval.as_millis() + 2;
    let mut calls = 0u128;
    loop {
        let states = sd.states(units)?;
        calls += 1;
        let failed: Vec<UnitState> = states
            .iter()
            .filter(|s| s.active == "failed" || DEAD_LOAD_STATES.contains(&s.load.as_str()))
            .cloned()
            .collect();
        if !failed.is_empty() {
            return Ok(Health::Failed(failed));
        }
        let waiting: Vec<UnitState> = states
            .into_iter()
            .filter(|s| s.active != "active")
            .collect();
        if waiting.is_empty() {
            return Ok(Health::Healthy);
        }
        let elapsed = start.elapsed();
        if elapsed >= deadline || calls >= max_calls {
            return Ok(Health::TimedOut(waiting));
        }
        std::thread::sleep(interval.min(deadline - elapsed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn healthy_after_activating() {
        let fake = Fake::new();
        fake.script_states(
            "a.service",
            &[
                ("activating", "start"),
                ("activating", "start"),
                ("active", "running"),
            ],
        );
        fake.set_state(UnitState::new("b.service", "loaded", "active", "running"));
        let units = names(&["a.service", "b.service"]);
        let h = wait_healthy_every(
            &fake,
            &units,
            Duration::from_secs(5),
            Duration::from_millis(1),
        )
        .unwrap();
        assert_eq!(h, Health::Healthy);
        let polls = fake
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::States(_)))
            .count();
        assert_eq!(polls, 3, "{:?}", fake.calls());
    }

    #[test]
    fn failed_early_not_at_deadline() {
        let fake = Fake::new();
        fake.script_states(
            "a.service",
            &[("activating", "start"), ("failed", "failed")],
        );
        fake.set_state(UnitState::new("b.service", "loaded", "activating", "start"));
        let units = names(&["a.service", "b.service"]);
        let t = Instant::now();
        let h = wait_healthy_every(
            &fake,
            &units,
            Duration::from_secs(30),
            Duration::from_millis(1),
        )
        .unwrap();
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(
            h,
            Health::Failed(vec![UnitState::new(
                "a.service",
                "loaded",
                "failed",
                "failed"
            )])
        );
    }

    #[test]
    fn auto_restart_is_waited_for() {
        let fake = Fake::new();
        fake.script_states(
            "a.service",
            &[("activating", "auto-restart"), ("active", "running")],
        );
        let h = wait_healthy_every(
            &fake,
            &names(&["a.service"]),
            Duration::from_secs(5),
            Duration::from_millis(1),
        )
        .unwrap();
        assert_eq!(h, Health::Healthy);
    }

    #[test]
    fn unknown_unit_fails_at_once() {
        let fake = Fake::new();
        let h = wait_healthy(&fake, &names(&["nope.service"]), Duration::from_secs(30)).unwrap();
        assert_eq!(
            h,
            Health::Failed(vec![UnitState::new(
                "nope.service",
                "not-found",
                "inactive",
                "dead"
            )])
        );
        assert_eq!(fake.calls().len(), 1);
    }

    #[test]
    fn timeout_lists_units_not_active() {
        let fake = Fake::new();
        fake.set_state(UnitState::new("a.service", "loaded", "active", "running"));
        fake.set_state(UnitState::new("b.service", "loaded", "activating", "start"));
        let t = Instant::now();
        let h = wait_healthy_every(
            &fake,
            &names(&["a.service", "b.service"]),
            Duration::from_millis(300),
            Duration::from_millis(50),
        )
        .unwrap();
        let took = t.elapsed();
        assert_eq!(
            h,
            Health::TimedOut(vec![UnitState::new(
                "b.service",
                "loaded",
                "activating",
                "start"
            )])
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
        let polls = fake.calls().len();
        assert!((2..=8).contains(&polls), "{polls} polls");
    }

    #[test]
    fn states_error_is_passed_on() {
        let fake = Fake::new();
        fake.fail_next("ListUnitsByNames", "bus gone");
        let e = wait_healthy(&fake, &names(&["a.service"]), Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.method(), "ListUnitsByNames");
        assert!(e.to_string().contains("a.service"), "{e}");
    }
}
