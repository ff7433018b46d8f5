//! The real manager over D-Bus (zbus; blocking calls, run_jobs' signal wait on zbus' own
//! async-io executor).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use zbus::zvariant::OwnedObjectPath;

use crate::{Error, Job, JobKind, JobOutcome, PENDING, Prop, Props, Systemd, UnitState, VANISHED};

/// How many property reads are in flight at once: enough to hide the round trip, few enough
/// that polling them all on each wake-up stays cheap.
const WINDOW: usize = 128;

/// The longest any one method call may take.
pub const METHOD_TIMEOUT: Duration = Duration::from_secs(300);
/// How often run_jobs cross-checks its pending jobs against ListJobs.
const RECHECK: Duration = Duration::from_secs(2);

/// ListUnits* entries: name, description, load, active, sub, following, unit path, job id,
/// job type, job path.
type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// ListJobs entries: id, unit, type, state, job path, unit path.
type JobRow = (
    u32,
    String,
    String,
    String,
    OwnedObjectPath,
    OwnedObjectPath,
);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    fn reload(&self) -> zbus::Result<()>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn try_restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn subscribe(&self) -> zbus::Result<()>;
    fn list_units_by_names(&self, names: &[&str]) -> zbus::Result<Vec<UnitRow>>;
    fn list_units_by_patterns(
        &self,
        states: &[&str],
        patterns: &[&str],
    ) -> zbus::Result<Vec<UnitRow>>;
    fn list_unit_files_by_patterns(
        &self,
        states: &[&str],
        patterns: &[&str],
    ) -> zbus::Result<Vec<(String, String)>>;
    fn list_jobs(&self) -> zbus::Result<Vec<JobRow>>;
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: zbus::zvariant::ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
trait Service {
    #[zbus(property(emits_changed_signal = "false"), name = "ExecMainPID")]
    fn exec_main_pid(&self) -> zbus::Result<u32>;
}

/// The manager of this machine (PID 1), over the system bus or its private socket.
#[derive(Debug, Clone)]
pub struct Dbus {
    conn: zbus::blocking::Connection,
}

fn call(method: &'static str, unit: impl Into<String>) -> impl FnOnce(zbus::Error) -> Error {
    move |source| Error::Call {
        method,
        unit: unit.into(),
        source: Box::new(source),
    }
}

impl Dbus {
    /// Connects to the system bus and subscribes to the manager's signals.
    ///
    /// Not PID 1's private socket (/run/systemd/private): systemd sends its messages there
    /// with the sender "org.freedesktop.systemd1", which zbus 5.19 rejects with a panic in
    /// its reader thread (zbus#965), leaving every call hanging. Tried on systemd 257.
    pub fn system() -> Result<Dbus, Error> {
        // A bound on every call: a reply that never comes (a dead reader thread) must not
        // hang the caller. Generous, as a daemon-reload of a big machine takes a while.
        let conn = zbus::blocking::connection::Builder::system()
            .and_then(|b| b.method_timeout(METHOD_TIMEOUT).build())
            .map_err(|e| Error::Connect(Box::new(e)))?;
        Dbus::from_connection(conn)
    }

    /// Uses a bus connection made elsewhere, and subscribes to the manager's signals (JobRemoved).
    pub fn from_connection(conn: zbus::blocking::Connection) -> Result<Dbus, Error> {
        let d = Dbus { conn };
        // Without a subscriber the manager emits no job signals. One subscription per
        // connection: a second Subscribe would fail with AlreadySubscribed.
        d.manager()?.subscribe().map_err(call("Subscribe", ""))?;
        Ok(d)
    }

    fn manager(&self) -> Result<ManagerProxyBlocking<'_>, Error> {
        ManagerProxyBlocking::new(&self.conn).map_err(call("proxy", ""))
    }

    async fn enqueue(mgr: &ManagerProxy<'_>, job: &Job) -> zbus::Result<OwnedObjectPath> {
        let (u, mode) = (job.unit.as_str(), "replace");
        match job.kind {
            JobKind::Start => mgr.start_unit(u, mode).await,
            JobKind::Restart => mgr.restart_unit(u, mode).await,
            JobKind::Stop => mgr.stop_unit(u, mode).await,
            JobKind::TryRestart => mgr.try_restart_unit(u, mode).await,
        }
    }

    async fn run_jobs_async(
        &self,
        jobs: &[Job],
        timeout: Duration,
    ) -> Result<Vec<JobOutcome>, Error> {
        let deadline = Instant::now() + timeout;
        let all = || {
            jobs.iter()
                .map(|j| j.unit.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mgr = ManagerProxy::new(self.conn.inner())
            .await
            .map_err(call("proxy", all()))?;
        // The match rule is in place when this returns: every JobRemoved from now on is queued.
        let mut removed = mgr
            .receive_job_removed()
            .await
            .map_err(call("AddMatch JobRemoved", all()))?;
        // Job path -> result, for every JobRemoved seen (ours or not: a signal can be read
        // before the reply that tells us the path).
        let results: RefCell<HashMap<OwnedObjectPath, String>> = RefCell::default();
        let note = |sig: JobRemoved| -> Result<(), Error> {
            let args = sig.args().map_err(call("JobRemoved", all()))?;
            results
                .borrow_mut()
                .insert(args.job.clone().into(), args.result.to_owned());
            Ok(())
        };

        // Enqueue while draining the signal stream: zbus' queues are bounded and a full one
        // stops the reader, so not draining would deadlock on the enqueue replies.
        let enqueue = async {
            let mut paths: Vec<Result<OwnedObjectPath, String>> = Vec::with_capacity(jobs.len());
            for job in jobs {
                match Dbus::enqueue(&mgr, job).await {
                    Ok(p) => paths.push(Ok(p)),
                    Err(zbus::Error::MethodError(name, msg, _)) => {
                        paths.push(Err(enqueue_failure(name.as_str(), msg.as_deref())))
                    }
                    Err(e) => return Err(call(job.kind.method(), job.unit.clone())(e)),
                }
            }
            Ok(paths)
        };
        let drain = async {
            while let Some(sig) = removed.next().await {
                note(sig)?;
            }
            Err(Error::Reply {
                method: "JobRemoved",
                unit: all(),
                detail: "the signal stream ended (connection closed)".into(),
            })
        };
        let paths = futures_lite::future::or(enqueue, drain).await?;

        // Wait for the rest, cross-checking with ListJobs now and then so that a lost signal
        // cannot hang us until the timeout.
        let mut vanished: HashSet<OwnedObjectPath> = HashSet::new();
        let pending = |vanished: &HashSet<OwnedObjectPath>| -> bool {
            let r = results.borrow();
            paths
                .iter()
                .flatten()
                .any(|p| !r.contains_key(p) && !vanished.contains(p))
        };
        let mut next_check = Instant::now() + RECHECK;
        while pending(&vanished) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let wake = deadline.min(next_check);
            let sig = futures_lite::future::or(async { Some(removed.next().await) }, async {
                async_io::Timer::at(wake).await;
                None
            })
            .await;
            match sig {
                Some(Some(sig)) => note(sig)?,
                Some(None) => {
                    return Err(Error::Reply {
                        method: "JobRemoved",
                        unit: all(),
                        detail: "the signal stream ended (connection closed)".into(),
                    });
                }
                None if Instant::now() >= next_check => {
                    let listed = mgr.list_jobs().await.map_err(call("ListJobs", all()))?;
                    // Signals sent before the ListJobs reply have been queued by now.
                    while let Some(Some(sig)) =
                        futures_lite::future::poll_once(removed.next()).await
                    {
                        note(sig)?;
                    }
                    let live: HashSet<OwnedObjectPath> = listed.into_iter().map(|j| j.4).collect();
                    let r = results.borrow();
                    for p in paths.iter().flatten() {
                        if !r.contains_key(p) && !live.contains(p) {
                            vanished.insert(p.clone());
                        }
                    }
                    next_check = Instant::now() + RECHECK;
                }
                None => {}
            }
        }

        let r = results.borrow();
        Ok(jobs
            .iter()
            .zip(paths)
            .map(|(job, path)| JobOutcome {
                unit: job.unit.clone(),
                kind: job.kind,
                result: match path {
                    Err(msg) => msg,
                    Ok(p) => match r.get(&p) {
                        Some(res) => res.clone(),
                        None if vanished.contains(&p) => VANISHED.to_owned(),
                        None => PENDING.to_owned(),
                    },
                },
            })
            .collect())
    }
}

/// The object path of a unit, as systemd derives it (sd_bus_path_encode: every byte that is
/// not an ASCII letter or digit, and a leading digit, becomes `_xx`).
pub fn unit_path(unit: &str) -> String {
    let mut path = String::from("/org/freedesktop/systemd1/unit/");
    if unit.is_empty() {
        path.push('_');
    }
    for (i, b) in unit.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (b.is_ascii_digit() && i > 0) {
            path.push(b as char);
        } else {
            path.push_str(&format!("_{b:02x}"));
        }
    }
    path
}

fn prop(value: &zbus::zvariant::Value<'_>) -> Prop {
    use zbus::zvariant::Value;
    match value {
        Value::Value(inner) => prop(inner),
        Value::Str(s) => Prop::Str(s.to_string()),
        Value::ObjectPath(p) => Prop::Str(p.to_string()),
        Value::Bool(b) => Prop::Bool(*b),
        Value::U64(n) => Prop::U64(*n),
        Value::U32(n) => Prop::U64(u64::from(*n)),
        Value::U16(n) => Prop::U64(u64::from(*n)),
        Value::U8(n) => Prop::U64(u64::from(*n)),
        Value::I64(n) => u64::try_from(*n).map_or(Prop::Other, Prop::U64),
        Value::I32(n) => u64::try_from(*n).map_or(Prop::Other, Prop::U64),
        Value::Array(a) => {
            let strs: Option<Vec<String>> = a
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Some(s.to_string()),
                    _ => None,
                })
                .collect();
            strs.map_or(Prop::Other, Prop::Strs)
        }
        _ => Prop::Other,
    }
}

/// Polls every future until all are ready; outputs in order. Quadratic in the window, so
/// callers pass at most [`WINDOW`] futures.
async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// The outcome of a job the manager refused to enqueue.
fn enqueue_failure(name: &str, msg: Option<&str>) -> String {
    match name {
        "org.freedesktop.systemd1.NoSuchUnit" => "not-loaded".to_owned(),
        _ => format!("error: {name}: {}", msg.unwrap_or("")),
    }
}

fn unit_state(row: UnitRow) -> UnitState {
    UnitState {
        unit: row.0,
        load: row.2,
        active: row.3,
        sub: row.4,
    }
}

impl Systemd for Dbus {
    fn reload(&self) -> Result<(), Error> {
        // The manager replies once the reload is complete.
        self.manager()?.reload().map_err(call("Reload", ""))
    }

    fn run_jobs(&self, jobs: &[Job], timeout: Duration) -> Result<Vec<JobOutcome>, Error> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        async_io::block_on(self.run_jobs_async(jobs, timeout))
    }

    fn states(&self, units: &[String]) -> Result<Vec<UnitState>, Error> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = units.iter().map(String::as_str).collect();
        let rows = self
            .manager()?
            .list_units_by_names(&names)
            .map_err(call("ListUnitsByNames", units.join(",")))?;
        if rows.len() != units.len() {
            return Err(Error::Reply {
                method: "ListUnitsByNames",
                unit: units.join(","),
                detail: format!("{} entries for {} names", rows.len(), units.len()),
            });
        }
        Ok(rows.into_iter().map(unit_state).collect())
    }

    fn main_pid(&self, unit: &str) -> Result<u32, Error> {
        let path = match self.manager()?.get_unit(unit) {
            Ok(p) => p,
            // Not loaded: a stopped unit is garbage-collected at once, so no process.
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
            {
                return Ok(0);
            }
            Err(e) => return Err(call("GetUnit", unit)(e)),
        };
        let service = ServiceProxyBlocking::builder(&self.conn)
            .path(path)
            .and_then(|b| b.cache_properties(zbus::proxy::CacheProperties::No).build())
            .map_err(call("proxy", unit))?;
        service
            .exec_main_pid()
            .map_err(call("Get ExecMainPID", unit))
    }

    fn list(&self, patterns: &[String]) -> Result<Vec<UnitState>, Error> {
        let pats: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let rows = self
            .manager()?
            .list_units_by_patterns(&[], &pats)
            .map_err(call("ListUnitsByPatterns", patterns.join(",")))?;
        let mut out: Vec<UnitState> = rows.into_iter().map(unit_state).collect();
        out.sort_by(|a, b| a.unit.cmp(&b.unit));
        Ok(out)
    }

    fn unit_files(&self, patterns: &[String]) -> Result<Vec<String>, Error> {
        let pats: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let rows = self
            .manager()?
            .list_unit_files_by_patterns(&[], &pats)
            .map_err(call("ListUnitFilesByPatterns", patterns.join(",")))?;
        let mut out: Vec<String> = rows
            .into_iter()
            .filter_map(|(path, _)| Some(path.rsplit_once('/')?.1.to_owned()))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn properties(&self, units: &[String], names: &[&str]) -> Result<Vec<Props>, Error> {
        let conn = self.conn.inner();
        let get = |unit: &str, name: &str| {
            let path = unit_path(unit);
            let name = name.to_owned();
            async move {
                let reply = conn
                    .call_method(
                        Some("org.freedesktop.systemd1"),
                        path.as_str(),
                        Some("org.freedesktop.DBus.Properties"),
                        "Get",
                        &("org.freedesktop.systemd1.Unit", name.as_str()),
                    )
                    .await;
                match reply {
                    Ok(msg) => msg
                        .body()
                        .deserialize::<zbus::zvariant::OwnedValue>()
                        .map_or(Ok(Prop::Other), |v| Ok(prop(&v))),
                    // The property or unit does not exist: a value, not a failure.
                    Err(zbus::Error::MethodError(..)) => Ok(Prop::Other),
                    Err(e) => Err(e),
                }
            }
        };
        let pairs: Vec<(usize, &str)> = (0..units.len())
            .flat_map(|i| names.iter().map(move |n| (i, *n)))
            .collect();
        let mut out: Vec<Props> = units.iter().map(|_| Props::new()).collect();
        for window in pairs.chunks(WINDOW) {
            let futs: Vec<_> = window.iter().map(|(i, n)| get(&units[*i], n)).collect();
            let values = async_io::block_on(join_all(futs));
            for ((i, n), value) in window.iter().zip(values) {
                let value = value.map_err(call("Get", units[*i].clone()))?;
                out[*i].insert((*n).to_owned(), value);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_like_systemd() {
        // busctl tree org.freedesktop.systemd1 on systemd 257.
        assert_eq!(
            unit_path("tenant@acme.service"),
            "/org/freedesktop/systemd1/unit/tenant_40acme_2eservice"
        );
        assert_eq!(
            unit_path("systemd-nspawn@a.web.service"),
            "/org/freedesktop/systemd1/unit/systemd_2dnspawn_40a_2eweb_2eservice"
        );
        assert_eq!(unit_path("1x"), "/org/freedesktop/systemd1/unit/_31x");
    }

    #[test]
    fn refused_jobs_become_outcomes() {
        assert_eq!(
            enqueue_failure(
                "org.freedesktop.systemd1.NoSuchUnit",
                Some("Unit x not found.")
            ),
            "not-loaded"
        );
        assert_eq!(
            enqueue_failure("org.freedesktop.DBus.Error.AccessDenied", Some("no")),
            "error: org.freedesktop.DBus.Error.AccessDenied: no"
        );
    }
}
