//! One run of `tenant-generator`: lock, resolve `current`, plan, render,
//! write, report. It always ends with a report: a failure belongs to a
//! tenant, or (when nothing could be read or written) to the run, and is
//! said in the report's `errors`.

use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use crate::{
    Checkout, Current, GENERATOR, Host, HostDirs, HostPaths, Line, ManagedDir, NETWORK_OWNERSHIP,
    NSPAWN_OWNERSHIP, OutputDir, Priority, Report, SharedLock, State, plan, replace_file,
};

/// Where the generator's lines go: stderr (problems only) and `/dev/kmsg`
/// (Quadlet learned that kmsg alone hides errors from `systemd-analyze
/// verify`; stderr alone is lost at early boot), or a buffer for tests.
#[derive(Debug)]
pub struct Log {
    /// The program the lines are from.
    name: &'static str,
    kmsg: Option<std::fs::File>,
    stderr: bool,
    captured: Option<Mutex<Vec<Line>>>,
}

impl Log {
    /// stderr and `/dev/kmsg` (when it can be opened).
    pub fn open() -> Log {
        Log::open_as(GENERATOR)
    }

    /// stderr and `/dev/kmsg`, the lines from program `name`.
    pub fn open_as(name: &'static str) -> Log {
        Log {
            name,
            kmsg: std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/kmsg")
                .ok(),
            stderr: true,
            captured: None,
        }
    }

    /// Keeps every line, for tests.
    pub fn capture() -> Log {
        Log {
            name: GENERATOR,
            kmsg: None,
            stderr: false,
            captured: Some(Mutex::new(Vec::new())),
        }
    }

    pub fn captured(&self) -> Vec<Line> {
        self.captured
            .as_ref()
            .map(|c| c.lock().map(|c| c.clone()).unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn emit(&self, priority: Priority, text: &str) {
        self.line(&Line::new(priority, text));
    }

    /// One record per line; the line is already escaped.
    pub fn line(&self, line: &Line) {
        if self.stderr && line.priority.is_problem() {
            eprintln!("{}: {}", self.name, line.text);
        }
        if let Some(mut kmsg) = self.kmsg.as_ref() {
            let _ = kmsg.write_all(
                format!(
                    "<{}>{}[{}]: {}\n",
                    line.priority.syslog(),
                    self.name,
                    std::process::id(),
                    line.text
                )
                .as_bytes(),
            );
        }
        if let Some(captured) = &self.captured
            && let Ok(mut captured) = captured.lock()
        {
            captured.push(line.clone());
        }
    }
}

/// The whole generator run into `normal_dir`; the report is also written to
/// `paths.report` and logged.
pub fn run(paths: &HostPaths, normal_dir: &Path, log: &Log) -> Report {
    let _lock = match SharedLock::acquire(&paths.lock, paths.lock_wait) {
        Ok(Some(lock)) => Some(lock),
        Ok(None) => {
            log.emit(
                Priority::Warning,
                &format!(
                    "the generator lock stayed taken for {} ms; reading current without it",
                    paths.lock_wait.as_millis()
                ),
            );
            None
        }
        Err(e) => {
            log.emit(
                Priority::Warning,
                &format!("cannot take the generator lock: {e}; reading current without it"),
            );
            None
        }
    };

    let current = paths.current.display().to_string();
    let host = Host::load(&paths.host_config);
    let report = match Checkout::current(&paths.current) {
        Ok(Current::Ready(checkout)) => {
            // What the host ran before `current` moved: incumbents keep their claims.
            let mut plan = plan(&checkout, Some(&paths.previous), &host);
            match OutputDir::open(normal_dir) {
                Ok(units) => {
                    // networkd's and nspawn's directories are shared: the
                    // generator replaces its own set there.
                    let mut dirs = HostDirs {
                        units,
                        network: ManagedDir::new(&paths.network_dir, NETWORK_OWNERSHIP),
                        nspawn: ManagedDir::new(&paths.nspawn_dir, NSPAWN_OWNERSHIP),
                    };
                    plan.render_each(|entries| dirs.write(entries));
                    for problem in dirs.prune() {
                        plan.report
                            .errors
                            .push(format!("cannot remove a file of an earlier run: {problem}"));
                    }
                }
                Err(e) => {
                    let reason = format!("cannot open the output directory {e}");
                    plan.render_each(|_| Err(&reason));
                    plan.report.errors.push(format!(
                        "cannot open the output directory {e}: no tenant was written"
                    ));
                }
            }
            plan.report
        }
        Ok(Current::Missing(why)) => {
            log.emit(Priority::Info, &why);
            let mut report = Report::new(Some(current), None, State::WaitingForCurrent);
            let written = OutputDir::open(normal_dir)
                .and_then(|mut out| out.write(&bbhv_render::render_rerun()));
            if let Err(e) = written {
                report
                    .errors
                    .push(format!("cannot enable the re-run unit: {e}"));
            }
            report
        }
        Err(e) => {
            let mut report = Report::new(Some(current), None, State::Error);
            report.errors.push(format!(
                "the applied checkout {e}; no tenant is generated until it is fixed"
            ));
            report
        }
    };

    // The sync timer's period, whatever the state of `current` (the first
    // sync is what makes it); the static unit has the default.
    if host.config.sync.remote.is_some()
        && host.config.sync.interval != bbhv_host::Sync::default().interval
    {
        let written = OutputDir::open(normal_dir).and_then(|mut out| {
            out.write(&[bbhv_render::render_sync_interval(host.config.sync.interval)])
        });
        if let Err(e) = written {
            log.emit(
                Priority::Warning,
                &format!("cannot write the sync timer's interval: {e}"),
            );
        }
    }
    for line in report.lines() {
        log.line(&line);
    }
    match serde_json::to_vec_pretty(&report) {
        Ok(json) => {
            if let Err(e) = replace_file(&paths.report, &json) {
                log.emit(Priority::Warning, &format!("cannot write the report: {e}"));
            }
        }
        Err(e) => log.emit(
            Priority::Warning,
            &format!("cannot serialize the report: {e}"),
        ),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    fn paths(root: &Path) -> HostPaths {
        HostPaths::from_lookup(|name| match name {
            "BITBUILDER_STATE_DIR" => Some(root.join("state").into()),
            "BITBUILDER_RUN_DIR" => Some(root.join("run").into()),
            "BITBUILDER_HOST_CONFIG" => Some(root.join("host.toml").into()),
            "BITBUILDER_NETWORK_DIR" => Some(root.join("network").into()),
            "BITBUILDER_NSPAWN_DIR" => Some(root.join("nspawn").into()),
            _ => None,
        })
    }

    #[test]
    fn a_run_always_ends_with_a_report_and_logs_its_lines() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let log = Log::capture();
        let report = run(&paths, &dir.path().join("out"), &log);
        assert_eq!(report.state, State::WaitingForCurrent);
        assert!(!report.has_errors());
        assert!(paths.report.is_file());
        let lines = log.captured();
        assert!(lines[0].text.contains("/var not mounted yet?"), "{lines:?}");
        assert_eq!(lines[1].text, report.summary());

        // A tenant whose write fails is failed; the run still reports.
        let repo = paths.generations.join("1-0123456789");
        std::fs::create_dir_all(repo.join("tenants/a")).unwrap();
        std::fs::write(
            repo.join("tenants/a/metadata.json"),
            r#"{ "schemaVersion": 1, "id": "a" }"#,
        )
        .unwrap();
        std::os::unix::fs::symlink(&repo, &paths.current).unwrap();
        let out = dir.path().join("out2");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("tenant@a.service"), "planted").unwrap();
        let report = run(&paths, &out, &Log::capture());
        assert_eq!(report.state, State::Generated);
        assert_eq!(report.commit.as_deref(), Some("0123456789"));
        assert_eq!(report.count(Status::Failed), 1);
        assert_eq!(
            std::fs::read_to_string(out.join("tenant@a.service")).unwrap(),
            "planted"
        );
    }

    fn tenant(repo: &Path, id: &str, network: &str) {
        std::fs::create_dir_all(repo.join("tenants").join(id)).unwrap();
        std::fs::write(
            repo.join("tenants").join(id).join("metadata.json"),
            format!(r#"{{ "schemaVersion": 1, "id": "{id}", "network": {network} }}"#),
        )
        .unwrap();
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn network_files_are_replaced_as_a_set_and_host_toml_gates_vlans() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let repo = paths.generations.join("1-0123456789");
        tenant(&repo, "a", r#"{ "vlan": 10, "ipv4": "10.0.0.1/24" }"#);
        tenant(&repo, "b", r#"{ "ipv4": "10.1.0.1/24" }"#);
        tenant(&repo, "c", r#"{ "ipv4": "192.168.1.1/24" }"#);
        std::fs::create_dir_all(paths.current.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&repo, &paths.current).unwrap();
        std::fs::create_dir_all(&paths.network_dir).unwrap();
        std::fs::write(paths.network_dir.join("10-uplink.network"), "admin").unwrap();
        std::fs::write(paths.network_dir.join("bbhv-bt-old.netdev"), "old").unwrap();
        std::fs::write(
            &paths.host_config,
            "[network]\nuplink = \"eth0\"\nuplink_network = \"10-uplink.network\"\n\
             host_subnets = [\"192.168.0.0/16\"]\n",
        )
        .unwrap();
        let out = dir.path().join("out");
        let report = run(&paths, &out, &Log::capture());
        assert_eq!(report.errors, Vec::<String>::new());
        let failed: Vec<&str> = report.failed().map(|t| t.id.as_str()).collect();
        assert_eq!(failed, ["c"], "c overlaps the host's subnet");
        let c = &report.tenants[2].errors[0];
        assert_eq!(c.path, "/network/ipv4");
        assert!(
            c.message
                .contains("overlaps the host's subnet 192.168.0.0/16"),
            "{c}"
        );
        assert_eq!(
            listing(&paths.network_dir),
            [
                "10-uplink.network",
                "10-uplink.network.d",
                "bbhv-bt-a.netdev",
                "bbhv-bt-a.network",
                "bbhv-bt-b.netdev",
                "bbhv-bt-b.network",
                "bbhv-vt-a.netdev",
                "bbhv-vt-a.network",
            ]
        );
        assert!(
            std::fs::read_to_string(
                paths
                    .network_dir
                    .join("10-uplink.network.d/bbhv-vlans.conf")
            )
            .unwrap()
            .ends_with("[Network]\nVLAN=vt-a\n")
        );

        // host.toml turns bad: a keeps nothing, b is generated as usual.
        std::fs::write(&paths.host_config, "[network]\nuplink = \"bt-x\"\n").unwrap();
        let out = dir.path().join("out2");
        let report = run(&paths, &out, &Log::capture());
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert!(
            report.errors[0].contains("network.uplink: \"bt-x\""),
            "{:?}",
            report.errors
        );
        let failed: Vec<&str> = report.failed().map(|t| t.id.as_str()).collect();
        assert_eq!(failed, ["a"]);
        assert!(
            report.tenants[0].errors[0]
                .message
                .contains("which has errors")
        );
        assert_eq!(
            listing(&paths.network_dir),
            [
                "10-uplink.network",
                "10-uplink.network.d",
                "bbhv-bt-b.netdev",
                "bbhv-bt-b.network",
                "bbhv-bt-c.netdev",
                "bbhv-bt-c.network",
            ]
        );
        assert!(listing(&paths.network_dir.join("10-uplink.network.d")).is_empty());

        // No host.toml: a VLAN needs the uplink.
        std::fs::remove_file(&paths.host_config).unwrap();
        let report = run(&paths, &dir.path().join("out3"), &Log::capture());
        assert!(report.errors.is_empty());
        let a = &report.tenants[0].errors[0];
        assert_eq!(a.path, "/network/vlan");
        assert!(
            a.message.starts_with(&format!(
                "VLAN 10 needs the uplink, but {} has no network.uplink and no network.uplink_network",
                paths.host_config.display()
            )),
            "{a}"
        );
    }
}
