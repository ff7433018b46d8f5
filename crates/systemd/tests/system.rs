//! Against a real, booted systemd (as root; it writes units to /run/systemd/system):
//!
//!     BBHV_SYSTEMD_IT=1 cargo test -p bbhv-systemd --test system -- --ignored --nocapture
//!
//! or in a lab container (systemd 257): `LAB_KEEP=1 lab/run daemon-reload` prints the PID of
//! the kept machine; `cargo test -p bbhv-systemd --test system --no-run` prints the binary;
//! `nsenter -t PID -m -u -i -n -p -C -- sh -c 'cat > /root/it; chmod +x /root/it' < BINARY`,
//! then `nsenter … -- env BBHV_SYSTEMD_IT=1 /root/it --ignored --nocapture`; `lab/run --cleanup`.
//! Without BBHV_SYSTEMD_IT=1 an explicit `--ignored` run fails rather than passing unchecked.

use std::path::Path;
use std::time::{Duration, Instant};

use bbhv_systemd::{Dbus, Health, Job, JobKind, JobOutcome, PENDING, Systemd, wait_healthy};

const DIR: &str = "/run/systemd/system";
const PREFIX: &str = "bbhv-it-";
/// How many sleeper services run_jobs starts at once.
const N: usize = 100;

fn sleeper(i: usize) -> String {
    format!("{PREFIX}sleep-{i}.service")
}

fn write_units() {
    for i in 0..N {
        std::fs::write(
            Path::new(DIR).join(sleeper(i)),
            "[Service]\nExecStart=/bin/sleep infinity\n",
        )
        .unwrap();
    }
    let units = [
        (
            "fail.service",
            "[Service]\nType=oneshot\nExecStart=/bin/false\n",
        ),
        (
            "slow.service",
            "[Service]\nType=oneshot\nExecStart=/bin/sleep 5\n",
        ),
        (
            "dep.service",
            "[Unit]\nRequires=bbhv-it-fail.service\nAfter=bbhv-it-fail.service\n\
             [Service]\nExecStart=/bin/sleep infinity\n",
        ),
    ];
    for (name, text) in units {
        std::fs::write(Path::new(DIR).join(format!("{PREFIX}{name}")), text).unwrap();
    }
}

fn remove_units() {
    for e in std::fs::read_dir(DIR).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with(PREFIX) {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
}

fn results(out: &[JobOutcome]) -> Vec<&str> {
    out.iter().map(|o| o.result.as_str()).collect()
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    eprintln!("{what}: {:.3} s", t.elapsed().as_secs_f64());
    r
}

#[test]
#[ignore = "needs a booted systemd, as root: BBHV_SYSTEMD_IT=1 … -- --ignored"]
fn against_the_system_manager() {
    assert_eq!(
        std::env::var("BBHV_SYSTEMD_IT").as_deref(),
        Ok("1"),
        "set BBHV_SYSTEMD_IT=1 to run this against the machine's systemd (as root)"
    );
    let sd = Dbus::system().expect("connect");
    // What an earlier, failed run left running.
    let left: Vec<Job> = sd
        .list(&[format!("{PREFIX}*")])
        .unwrap()
        .into_iter()
        .map(|s| Job::new(s.unit, JobKind::Stop))
        .collect();
    sd.run_jobs(&left, Duration::from_secs(30)).unwrap();
    remove_units();
    write_units();
    timed("reload", || sd.reload()).unwrap();

    let sleepers: Vec<String> = (0..N).map(sleeper).collect();
    let st = sd.states(&sleepers).unwrap();
    assert_eq!(st.len(), N);
    assert!(
        st.iter()
            .all(|s| s.load == "loaded" && s.active == "inactive"),
        "{st:?}"
    );
    let ghost = format!("{PREFIX}ghost.service");
    let st = sd.states(std::slice::from_ref(&ghost)).unwrap();
    assert_eq!(
        (st[0].load.as_str(), st[0].active.as_str()),
        ("not-found", "inactive")
    );

    // N starts, a failing oneshot, a unit whose dependency fails, a unit that does not exist.
    let mut jobs: Vec<Job> = sleepers
        .iter()
        .map(|u| Job::new(u, JobKind::Start))
        .collect();
    jobs.push(Job::new(format!("{PREFIX}fail.service"), JobKind::Start));
    jobs.push(Job::new(format!("{PREFIX}dep.service"), JobKind::Start));
    jobs.push(Job::new(&ghost, JobKind::Start));
    let out = timed(&format!("run_jobs: start {N} + 3"), || {
        sd.run_jobs(&jobs, Duration::from_secs(60))
    })
    .unwrap();
    assert_eq!(out.len(), jobs.len());
    assert!(out[..N].iter().all(|o| o.ok()), "{:?}", &out[..N]);
    assert_eq!(results(&out[N..]), ["failed", "dependency", "not-loaded"]);
    assert_eq!(out[N].unit, format!("{PREFIX}fail.service"));

    let st = timed(&format!("states of {N}"), || sd.states(&sleepers)).unwrap();
    assert!(
        st.iter()
            .all(|s| s.active == "active" && s.sub == "running"),
        "{st:?}"
    );
    assert_eq!(
        timed("wait_healthy", || wait_healthy(
            &sd,
            &sleepers,
            Duration::from_secs(10)
        ))
        .unwrap(),
        Health::Healthy
    );
    let mut with_fail = sleepers[..3].to_vec();
    with_fail.push(format!("{PREFIX}fail.service"));
    match wait_healthy(&sd, &with_fail, Duration::from_secs(10)).unwrap() {
        Health::Failed(f) => assert_eq!(f.len(), 1, "{f:?}"),
        h => panic!("expected Failed, got {h:?}"),
    }

    let listed = timed("list", || sd.list(&[format!("{PREFIX}sleep-*.service")])).unwrap();
    assert_eq!(listed.len(), N, "{listed:?}");
    assert!(listed.iter().all(|s| s.active == "active"));

    // Restart and try-restart give a new main PID; the untouched unit keeps its own.
    let pid0 = sd.main_pid(&sleepers[0]).unwrap();
    let pid1 = sd.main_pid(&sleepers[1]).unwrap();
    let pid2 = sd.main_pid(&sleepers[2]).unwrap();
    assert!(pid0 > 1 && pid1 > 1 && pid2 > 1);
    let out = sd
        .run_jobs(
            &[
                Job::new(&sleepers[0], JobKind::Restart),
                Job::new(&sleepers[1], JobKind::TryRestart),
            ],
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(results(&out), ["done", "done"]);
    assert_ne!(sd.main_pid(&sleepers[0]).unwrap(), pid0);
    assert_ne!(sd.main_pid(&sleepers[1]).unwrap(), pid1);
    assert_eq!(sd.main_pid(&sleepers[2]).unwrap(), pid2);
    assert_eq!(sd.main_pid(&ghost).unwrap(), 0);
    let e = sd.main_pid("-.mount").unwrap_err();
    assert_eq!(e.method(), "Get ExecMainPID");
    assert!(e.to_string().contains("-.mount"), "{e}");

    // A job still running at the timeout is reported pending and left alone.
    let slow = format!("{PREFIX}slow.service");
    let t = Instant::now();
    let out = sd
        .run_jobs(
            &[Job::new(&slow, JobKind::Start)],
            Duration::from_millis(500),
        )
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(results(&out), [PENDING]);
    assert_eq!(
        sd.states(std::slice::from_ref(&slow)).unwrap()[0].active,
        "activating"
    );

    // Stop everything; try-restart of a stopped unit does not start it.
    let mut stops: Vec<Job> = sleepers
        .iter()
        .map(|u| Job::new(u, JobKind::Stop))
        .collect();
    stops.push(Job::new(&slow, JobKind::Stop));
    stops.push(Job::new(format!("{PREFIX}dep.service"), JobKind::Stop));
    let out = timed(&format!("run_jobs: stop {N} + 2"), || {
        sd.run_jobs(&stops, Duration::from_secs(60))
    })
    .unwrap();
    assert!(out[..N].iter().all(|o| o.ok()), "{out:?}");
    // slow's start job is canceled by the stop (mode replace); the stop itself is done.
    assert_eq!(out[N].result, "done", "{:?}", out[N]);
    let out = sd
        .run_jobs(
            &[Job::new(&sleepers[0], JobKind::TryRestart)],
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(results(&out), ["done"]);
    let st = sd.states(&sleepers).unwrap();
    assert!(st.iter().all(|s| s.active == "inactive"), "{st:?}");
    assert_eq!(sd.main_pid(&sleepers[0]).unwrap(), 0);

    // Stopping a unit that does not exist.
    let out = sd
        .run_jobs(&[Job::new(&ghost, JobKind::Stop)], Duration::from_secs(10))
        .unwrap();
    eprintln!("stop of a unit that does not exist: {:?}", out[0].result);
    assert!(
        out[0].result == "not-loaded" || out[0].result == "done",
        "{out:?}"
    );

    // Reload, then the units are gone.
    remove_units();
    sd.reload().unwrap();
    let _ = sd.run_jobs(
        &[Job::new(format!("{PREFIX}fail.service"), JobKind::Stop)],
        Duration::from_secs(10),
    );
    let left = sd.list(&[format!("{PREFIX}sleep-*")]).unwrap();
    eprintln!("left after removal and reload: {}", left.len());
}
