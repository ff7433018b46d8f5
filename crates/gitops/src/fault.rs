//! Fault injection: `BBHV_FAULT=<point>` kills the sync with SIGKILL when it
//! reaches that point, so the lab can prove that a kill at any step leaves
//! the host able to converge (lab scenario `gitops-crash`).

/// Every point, in the order a sync reaches them.
pub const POINTS: &[&str] = &[
    "after-fetch",
    "during-checkout",
    "after-checkout",
    "before-flip",
    "between-links",
    "after-flip",
    "after-reload",
    "after-jobs",
    "before-rollback",
    "after-rollback-flip",
];

/// The environment variable that names the point.
pub const ENV: &str = "BBHV_FAULT";

/// Dies here if asked to.
pub fn point(name: &str) {
    debug_assert!(POINTS.contains(&name), "unknown fault point {name}");
    if std::env::var(ENV).is_ok_and(|wanted| wanted == name) {
        eprintln!("fault injection: killed at {name}");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL is not delivered synchronously everywhere: never go on.
        std::process::abort();
    }
}
