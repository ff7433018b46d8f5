//! The sync state machine end to end: a real upstream with signed commits,
//! a real mirror and store, systemd faked.

mod common;

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use bbhv_generator::{Host, HostPaths};
use bbhv_gitops::store::{Outcome, Store};
use bbhv_gitops::sync::{Done, Effects, Options, Sync};
use bbhv_systemd::{Call, Fake, JobKind, Systemd, UnitState};
use common::{Sign, Upstream};

struct Test {
    fake: Fake,
    lines: RefCell<Vec<String>>,
    /// What verify_images and apply_extensions answer, and the checkouts they saw.
    images: RefCell<Result<(), String>>,
    extensions: RefCell<Result<(), String>>,
    applied: RefCell<Vec<String>>,
    /// What stage_uki answers, and "stage GEN" / "unstage GEN" per call.
    uki: RefCell<Result<Option<String>, String>>,
    boot: RefCell<Vec<String>>,
}

impl Test {
    fn new() -> Test {
        Test {
            fake: Fake::new(),
            lines: RefCell::default(),
            images: RefCell::new(Ok(())),
            extensions: RefCell::new(Ok(())),
            applied: RefCell::default(),
            uki: RefCell::new(Ok(None)),
            boot: RefCell::default(),
        }
    }
}

impl Effects for Test {
    fn systemd(&self) -> &dyn Systemd {
        &self.fake
    }
    fn reload_networks(&self) -> Result<(), String> {
        self.lines.borrow_mut().push("networks reloaded".into());
        Ok(())
    }
    fn status(&self, text: &str) {
        self.lines.borrow_mut().push(text.to_owned());
    }
    fn verify_images(&self, _: &Path) -> Result<(), String> {
        self.images.borrow().clone()
    }
    fn apply_extensions(&self, checkout: &Path) -> Result<(), String> {
        let name = checkout.file_name().unwrap().to_string_lossy().into_owned();
        self.applied.borrow_mut().push(name);
        self.extensions.borrow().clone()
    }
    fn stage_uki(&self, checkout: &Path) -> Result<Option<String>, String> {
        let name = checkout.file_name().unwrap().to_string_lossy().into_owned();
        self.boot.borrow_mut().push(format!("stage {name}"));
        self.uki.borrow().clone()
    }
    fn unstage_uki(&self, checkout: &Path) -> Result<Option<String>, String> {
        let name = checkout.file_name().unwrap().to_string_lossy().into_owned();
        self.boot.borrow_mut().push(format!("unstage {name}"));
        Ok(None)
    }
}

fn sync<'a>(root: &Path, upstream: &Upstream, effects: &'a Test, deadline: &str) -> Sync<'a> {
    let host_file = root.join("host.toml");
    std::fs::write(
        &host_file,
        format!(
            "[sync]\nremote = \"{}\"\nhealth_deadline = \"{deadline}\"\nkeep_generations = 3\n[trust]\nallowed_signers = \"{}\"\n",
            upstream.url(),
            upstream.allowed_signers.display()
        ),
    )
    .unwrap();
    let paths = HostPaths::from_lookup(|name| match name {
        "BITBUILDER_STATE_DIR" => Some(root.join("state").into()),
        "BITBUILDER_RUN_DIR" => Some(root.join("run").into()),
        _ => None,
    });
    std::fs::create_dir_all(root.join("state")).unwrap();
    Sync {
        store: Store::new(root.join("state")),
        paths,
        host: Host::load(&host_file),
        effects,
        job_timeout: Duration::from_secs(5),
    }
}

fn loaded(fake: &Fake, units: &[&str]) {
    for unit in units {
        fake.set_state(UnitState::new(unit, "loaded", "inactive", "dead"));
    }
}

fn started(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .flat_map(|c| match c {
            Call::RunJobs(jobs) => jobs
                .iter()
                .map(|j| format!("{:?} {}", j.kind, j.unit))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// An upstream whose one signed commit declares tenant acme, and effects
/// that know acme's and beta's units.
fn acme() -> (tempfile::TempDir, Upstream, String, Test) {
    let root = tempfile::tempdir().unwrap();
    let upstream = Upstream::new(root.path());
    upstream.tenant("acme", "");
    let first = upstream.commit("acme", Sign::Trusted);
    let effects = Test::new();
    loaded(
        &effects.fake,
        &["tenant@acme.service", "tenant@beta.service"],
    );
    (root, upstream, first, effects)
}

#[test]
fn apply_refuse_downgrade_and_roll_back() {
    let (root, upstream, first, effects) = acme();
    let s = sync(root.path(), &upstream, &effects, "2s");

    // A signed commit is applied: acme starts.
    let done = s.run(&Options::default()).unwrap();
    assert!(matches!(done, Done::Applied { .. }), "{done:?}");
    assert_eq!(s.store.current_generation().unwrap().commit, first);
    assert_eq!(
        started(&effects.fake.take_calls()),
        vec!["Start tenant@acme.service"]
    );
    assert!(matches!(
        s.run(&Options::default()).unwrap(),
        Done::UpToDate { .. }
    ));

    // Unsigned, then untrusted: refused, nothing changes, history says why.
    upstream.tenant("beta", "");
    let unsigned = upstream.commit("beta unsigned", Sign::No);
    let done = s.run(&Options::default()).unwrap();
    assert!(
        matches!(&done, Done::Refused { reason, .. } if reason.contains("not signed")),
        "{done:?}"
    );
    assert_eq!(done.exit_code(), 1);
    upstream.write("x", "y");
    let untrusted = upstream.commit("beta untrusted", Sign::Untrusted);
    let done = s.run(&Options::default()).unwrap();
    assert!(
        matches!(&done, Done::Refused { reason, .. } if reason.contains("is not in")),
        "{done:?}"
    );
    assert_eq!(s.store.current_generation().unwrap().commit, first);
    let history = s.store.history();
    let refused: Vec<&str> = history
        .iter()
        .filter(|r| r.outcome == Outcome::Refused)
        .map(|r| r.commit.as_str())
        .collect();
    assert_eq!(refused, vec![unsigned.as_str(), untrusted.as_str()]);
    // Remembered: not tried again (and not recorded again) until the branch moves.
    assert!(matches!(
        s.run(&Options::default()).unwrap(),
        Done::Refused { .. }
    ));
    assert_eq!(s.store.history().len(), history.len());

    // A signed commit on top applies beta, and acme is not touched.
    let second = upstream.commit("beta signed", Sign::Trusted);
    let done = s.run(&Options::default()).unwrap();
    assert!(matches!(done, Done::Applied { .. }), "{done:?}");
    assert_eq!(
        started(&effects.fake.take_calls()),
        vec!["Start tenant@beta.service"]
    );

    // A force-push back to the first commit is refused...
    upstream.reset(&first);
    let done = s.run(&Options::default()).unwrap();
    assert!(
        matches!(&done, Done::Refused { reason, .. } if reason.contains("does not descend")),
        "{done:?}"
    );
    assert_eq!(s.store.current_generation().unwrap().commit, second);
    // ...unless allowed (the flag asks again about that refusal): beta stops.
    let done = s
        .run(&Options {
            allow_rollback: true,
        })
        .unwrap();
    assert!(matches!(done, Done::Applied { .. }), "{done:?}");
    assert_eq!(s.store.current_generation().unwrap().commit, first);
    assert!(started(&effects.fake.take_calls()).contains(&"Stop tenant@beta.service".to_owned()));
    upstream.write("z", "moved on");
    upstream.commit("acme only, moved on", Sign::Trusted);
    assert!(matches!(
        s.run(&Options::default()).unwrap(),
        Done::Applied { .. }
    ));
    effects.fake.take_calls();

    // A tenant that fails to start is rolled back within the deadline.
    upstream.tenant("gamma", "");
    loaded(&effects.fake, &["tenant@gamma.service"]);
    effects.fake.set_outcome("tenant@gamma.service", "failed");
    let bad = upstream.commit("gamma fails", Sign::Trusted);
    let before = s.store.current_generation().unwrap();
    let done = s.run(&Options::default()).unwrap();
    assert!(
        matches!(&done, Done::RolledBack { reason, .. } if reason.contains("tenant@gamma.service (failed/failed)")),
        "{done:?}"
    );
    assert_eq!(s.store.current_generation().unwrap(), before);
    let jobs = started(&effects.fake.take_calls());
    assert_eq!(
        jobs,
        vec!["Start tenant@gamma.service", "Stop tenant@gamma.service"]
    );
    let last = s.store.history().pop().unwrap();
    assert_eq!(
        (last.commit.as_str(), last.outcome),
        (bad.as_str(), Outcome::RolledBack)
    );
    assert!(!s.store.dir.join("unsettled").exists());
    // Not retried until the branch moves.
    assert!(matches!(
        s.run(&Options::default()).unwrap(),
        Done::Refused { .. }
    ));
    assert!(effects.fake.take_calls().is_empty());

    // Generations are pruned to keep_generations (current and previous kept).
    assert!(s.store.list().unwrap().len() <= 3, "{:?}", s.store.list());
    let _ = JobKind::Start;
}

#[test]
fn an_invalid_tree_is_never_applied() {
    let root = tempfile::tempdir().unwrap();
    let upstream = Upstream::new(root.path());
    upstream.tenant("acme", r#", "resources": { "memoryMax": "lots" }"#);
    upstream.commit("bad acme", Sign::Trusted);
    let effects = Test::new();
    let s = sync(root.path(), &upstream, &effects, "2s");
    let done = s.run(&Options::default()).unwrap();
    assert!(
        matches!(&done, Done::Refused { reason, .. } if reason.contains("memoryMax")),
        "{done:?}"
    );
    assert!(s.store.current_generation().is_none());
    assert!(
        s.store.list().unwrap().is_empty(),
        "the refused checkout is removed"
    );
    assert!(effects.fake.calls().is_empty());
}

#[test]
fn rollback_goes_back_offline_and_is_remembered() {
    let (root, upstream, first, effects) = acme();
    let s = sync(root.path(), &upstream, &effects, "2s");
    assert!(matches!(
        s.run(&Options::default()).unwrap(),
        Done::Applied { .. }
    ));
    upstream.tenant("beta", "");
    let second = upstream.commit("beta", Sign::Trusted);
    assert!(matches!(
        s.run(&Options::default()).unwrap(),
        Done::Applied { .. }
    ));
    effects.fake.take_calls();

    // Offline: the remote is gone.
    std::fs::remove_dir_all(&upstream.dir).unwrap();
    let done = s.rollback(None).unwrap();
    assert!(
        matches!(&done, Done::RolledBack { commit, .. } if *commit == second),
        "{done:?}"
    );
    assert_eq!(s.store.current_generation().unwrap().commit, first);
    assert_eq!(
        started(&effects.fake.take_calls()),
        vec!["Stop tenant@beta.service"]
    );
    let last = s.store.history().pop().unwrap();
    assert_eq!(
        (last.commit.as_str(), last.outcome),
        (second.as_str(), Outcome::ManualRollback)
    );
    assert!(s.store.remembered_bad(&second).is_some());

    // --to a generation by number, and an unknown one is an error naming what is allowed.
    let e = s.rollback(Some("99")).unwrap_err();
    assert!(e.reason.contains("allowed: a sequence number"), "{e}");
    assert!(matches!(
        s.rollback(Some("2")).unwrap(),
        Done::RolledBack { .. }
    ));
    assert_eq!(s.store.current_generation().unwrap().commit, second);
}

#[test]
fn images_gate_the_commit_and_extensions_follow_every_flip() {
    let (root, upstream, _, effects) = acme();
    let s = sync(root.path(), &upstream, &effects, "2s");
    assert!(matches!(
        s.run(&Options::default()).unwrap(),
        Done::Applied { .. }
    ));
    let first = s.store.current_generation().unwrap().name();
    assert_eq!(*effects.applied.borrow(), vec![first.clone()]);

    // A pinned image that does not verify refuses the commit: nothing flips.
    upstream.tenant("beta", "");
    let tampered = upstream.commit("beta, tampered image", Sign::Trusted);
    *effects.images.borrow_mut() = Err("image \"hello\": sha256 mismatch".into());
    let done = s.run(&Options::default()).unwrap();
    assert!(
        matches!(&done, Done::Refused { reason, .. } if reason.contains("sha256 mismatch")),
        "{done:?}"
    );
    assert_eq!(s.store.current_generation().unwrap().name(), first);
    assert_eq!(effects.applied.borrow().len(), 1);
    assert!(s.store.remembered_bad(&tampered).is_some());

    // Extensions that cannot be activated make the apply unhealthy: rolled
    // back, and the previous generation's extensions are activated again.
    *effects.images.borrow_mut() = Ok(());
    *effects.extensions.borrow_mut() = Err("systemd-sysext refresh failed".into());
    upstream.write("x", "moved");
    upstream.commit("beta again", Sign::Trusted);
    let done = s.run(&Options::default()).unwrap();
    assert!(
        matches!(&done, Done::RolledBack { reason, .. } if reason.contains("systemd-sysext refresh failed")),
        "{done:?}"
    );
    assert_eq!(s.store.current_generation().unwrap().name(), first);
    let applied = effects.applied.borrow();
    assert_eq!(applied.len(), 3, "{applied:?}");
    assert_eq!(applied[2], first);
}

#[test]
fn the_uki_is_staged_only_after_a_healthy_apply_and_withdrawn_on_rollback() {
    let (root, upstream, _, effects) = acme();
    let s = sync(root.path(), &upstream, &effects, "2s");
    *effects.uki.borrow_mut() = Ok(Some("staged bbhv-b-3+3.efi".into()));
    assert!(matches!(
        s.run(&Options::default()).unwrap(),
        Done::Applied { .. }
    ));
    let first = s.store.current_generation().unwrap().name();
    assert_eq!(*effects.boot.borrow(), vec![format!("stage {first}")]);
    assert!(
        effects
            .lines
            .borrow()
            .iter()
            .any(|l| l == "staged bbhv-b-3+3.efi")
    );

    // A re-sync of the same commit is up to date: the boot slots are not touched.
    assert!(matches!(
        s.run(&Options::default()).unwrap(),
        Done::UpToDate { .. }
    ));
    assert_eq!(effects.boot.borrow().len(), 1);

    // A refused commit (its images do not verify) never reaches the boot slots.
    upstream.tenant("beta", "");
    upstream.commit("beta, bad image", Sign::Trusted);
    *effects.images.borrow_mut() = Err("image \"uki\": sha256 mismatch".into());
    assert!(matches!(
        s.run(&Options::default()).unwrap(),
        Done::Refused { .. }
    ));
    assert_eq!(effects.boot.borrow().len(), 1);

    // A UKI that cannot be staged rolls the commit back, and the rollback
    // withdraws what the commit left staged.
    *effects.images.borrow_mut() = Ok(());
    *effects.uki.borrow_mut() = Err("the running UKI has not been blessed yet".into());
    upstream.write("x", "moved");
    upstream.commit("beta again", Sign::Trusted);
    let done = s.run(&Options::default()).unwrap();
    assert!(
        matches!(&done, Done::RolledBack { reason, .. } if reason.contains("boot slot (the running UKI has not been blessed yet)")),
        "{done:?}"
    );
    assert_eq!(s.store.current_generation().unwrap().name(), first);
    let boot = effects.boot.borrow().clone();
    assert_eq!(boot.len(), 3, "{boot:?}");
    assert!(boot[1].starts_with("stage "), "{boot:?}");
    assert_eq!(boot[2], format!("unstage {first}"));

    // An operator rollback withdraws too.
    *effects.uki.borrow_mut() = Ok(None);
    upstream.write("x", "moved again");
    upstream.commit("third", Sign::Trusted);
    assert!(matches!(
        s.run(&Options::default()).unwrap(),
        Done::Applied { .. }
    ));
    assert!(matches!(s.rollback(None).unwrap(), Done::RolledBack { .. }));
    let boot = effects.boot.borrow().clone();
    assert_eq!(
        boot.last().unwrap(),
        &format!("unstage {first}"),
        "{boot:?}"
    );
}
