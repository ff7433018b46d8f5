//! Writing is an I/O edge: links planted in an output or run directory are
//! never followed, a failure belongs to one tenant, two generators into one
//! directory leave whole files only, and there is always a report.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// A host whose generation holds tenants `ids` (enabled, a memory limit).
fn host_with(ids: &[String]) -> Host {
    let repo = tempfile::tempdir().unwrap();
    for id in ids {
        let dir = repo.path().join("tenants").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("metadata.json"),
            format!(
                r#"{{ "schemaVersion": 1, "id": "{id}", "enabled": true, "resources": {{ "memoryMax": "1G" }}, "network": {{}} }}"#
            ),
        )
        .unwrap();
    }
    Host::with_repo(repo.path())
}

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn report(run_dir: &Path) -> serde_json::Value {
    let path = run_dir.join("generator-report.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn statuses(report: &serde_json::Value) -> Vec<(String, String)> {
    report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn render_out(repo: &Path, out: &Path) -> Output {
    bbhv(&[
        "render",
        repo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn render_out_never_writes_through_links_planted_in_dir_and_drops_old_files() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    let reference = host.dir.path().join("reference");
    assert!(host.generate(&reference).status.success());
    assert!(host.generate_mounts(&reference).status.success());

    let out = host.dir.path().join("out");
    assert!(render_out(&host.current(), &out).status.success());
    let units = out.join("units");
    // Plant links where the next render writes.
    let outside = host.dir.path().join("outside");
    std::fs::create_dir_all(outside.join("wants")).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let unit_victim = outside.join("unit-victim");
    std::fs::write(&unit_victim, "precious").unwrap();
    std::fs::remove_file(units.join("tenant@acme.service")).unwrap();
    std::os::unix::fs::symlink(&unit_victim, units.join("tenant@acme.service")).unwrap();
    std::fs::remove_dir_all(units.join("tenants.target.wants")).unwrap();
    std::os::unix::fs::symlink(outside.join("wants"), units.join("tenants.target.wants")).unwrap();
    std::fs::remove_file(units.join(slice("acme"))).unwrap();
    std::fs::hard_link(&victim, units.join(slice("acme"))).unwrap();
    std::fs::hard_link(&victim, units.join(format!(".{}.tmp", slice("acme")))).unwrap();
    // A deleted tenant's file from an earlier render.
    std::fs::write(units.join("tenants-gone.slice"), "[Slice]\n").unwrap();

    let output = render_out(&host.current(), &out);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&unit_victim).unwrap(), "precious");
    assert_eq!(std::fs::read_dir(outside.join("wants")).unwrap().count(), 0);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(std::fs::metadata(&victim).unwrap().len(), 8);
    // Exactly the rendered tree: nothing old, nothing planted.
    assert_eq!(snapshot(&units), snapshot(&reference));
    assert_eq!(
        snapshot(&out.join("network")),
        snapshot(&host.network_dir())
    );
    let roots: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(roots, ["network", "nspawn", "units"]);
    // No staging directory left beside it.
    let mut siblings: Vec<String> = std::fs::read_dir(host.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    siblings.sort();
    assert_eq!(siblings, Vec::<String>::new());
}

#[test]
fn render_out_refuses_a_symlink_or_a_file() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    let real = host.dir.path().join("real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::write(real.join("keep"), "mine").unwrap();
    let link = host.dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let output = render_out(&host.current(), &link);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "{}: is a symlink; --out never writes through one",
            link.display()
        )),
        "{}",
        stderr(&output)
    );
    assert_eq!(snapshot(&real), vec![("keep".into(), "mine".into())]);
    assert!(link.is_symlink());

    let file = host.dir.path().join("file");
    std::fs::write(&file, "mine").unwrap();
    let output = render_out(&host.current(), &file);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("file: exists and is not a directory"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
}

#[test]
fn render_help_says_what_out_does() {
    let output = bbhv(&["render", "--help"]);
    let text = String::from_utf8(output.stdout).unwrap();
    for words in [
        "exactly the rendered tree",
        "RENAME_EXCHANGE",
        "the old tree is removed without",
        "a DIR that is a symlink or a file is refused",
    ] {
        assert!(text.contains(words), "{words:?} missing in:\n{text}");
    }
}

#[test]
fn two_generators_into_one_directory_write_whole_files_only() {
    let ids: Vec<String> = (0..2000).map(|i| format!("t{i:04}")).collect();
    let host = host_with(&ids);
    let reference = host.dir.path().join("reference");
    let output = render_out(&host.current(), &reference);
    assert!(output.status.success(), "{}", stderr(&output));
    let expected = snapshot(&reference.join("units"));
    let expected_network = snapshot(&reference.join("network"));
    assert_eq!(expected_network.len(), 2 * ids.len());

    for round in 0..3 {
        let out = host.dir.path().join(format!("out-{round}"));
        std::fs::create_dir_all(&out).unwrap();
        let run_dirs: Vec<PathBuf> = (0..2)
            .map(|i| host.dir.path().join(format!("run-{round}-{i}")))
            .collect();
        let children: Vec<_> = run_dirs
            .iter()
            .map(|run_dir| {
                host.generator()
                    .arg(&out)
                    .env("BITBUILDER_CURRENT", host.current())
                    .env("BITBUILDER_RUN_DIR", run_dir)
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            child.wait().unwrap();
        }
        // Both runs end with a report; each tenant was written by exactly
        // one of them, and the other one saw its files and left them alone.
        let reports: Vec<_> = run_dirs.iter().map(|d| statuses(&report(d))).collect();
        for (i, id) in ids.iter().enumerate() {
            let (a, b) = (&reports[0][i], &reports[1][i]);
            assert_eq!((&a.0, &b.0), (id, id));
            let written = [&a.1, &b.1].iter().filter(|s| **s == "generated").count();
            assert_eq!(written, 1, "round {round}: tenant {id}: {} / {}", a.1, b.1);
        }
        // Whole files only: the tree is exactly the rendered one.
        let actual = snapshot(&out);
        assert_eq!(actual.len(), expected.len(), "round {round}");
        for (got, want) in actual.iter().zip(&expected) {
            assert_eq!(got, want, "round {round}");
        }
        // The shared network directory holds the whole set: the runs
        // replaced it one after the other.
        assert!(
            snapshot(&host.network_dir()) == expected_network,
            "round {round}: the network files differ"
        );
    }
}

#[test]
fn one_unwritable_path_fails_only_its_tenant() {
    let host = host_with(&ids(&["a", "b", "c"]));
    let out = host.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(out.join("tenant@a.service")).unwrap();
    std::fs::write(out.join("tenant@a.service/in-the-way"), "x").unwrap();
    let output = host.generate(&out);
    assert_eq!(output.status.code(), Some(1));
    let report = report(&host.run_dir());
    assert_eq!(
        statuses(&report),
        vec![
            ("a".into(), "failed".into()),
            ("b".into(), "generated".into()),
            ("c".into(), "generated".into())
        ]
    );
    let message = report["tenants"][0]["errors"][0]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.starts_with(&format!(
            "not written: {}: already exists",
            out.join("tenant@a.service").display()
        )),
        "{message}"
    );
    assert!(stderr(&output).contains(message), "{}", stderr(&output));
    // a is not half written; b and c are whole.
    assert!(!out.join(slice("a")).exists());
    assert!(
        !out.join("tenants.target.wants/tenant@a.service")
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(out.join("tenant@a.service/in-the-way")).unwrap(),
        "x"
    );
    for id in ["b", "c"] {
        assert!(out.join(slice(id)).is_file());
        assert!(out.join(format!("tenant@{id}.service")).is_file());
        assert!(
            out.join(format!("tenants.target.wants/tenant@{id}.service"))
                .is_symlink()
        );
    }
}

#[test]
fn an_output_directory_that_cannot_be_opened_fails_every_tenant_with_a_report() {
    let host = host_with(&ids(&["a", "b"]));
    let out = host.dir.path().join("out");
    std::fs::write(&out, "not a directory").unwrap();
    let output = host
        .generator()
        .arg(&out)
        .env("BITBUILDER_CURRENT", host.current())
        .env("BITBUILDER_RUN_DIR", host.run_dir())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = report(&host.run_dir());
    assert_eq!(
        statuses(&report),
        vec![("a".into(), "failed".into()), ("b".into(), "failed".into())]
    );
    let error = report["errors"][0].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "cannot open the output directory {}: ",
            out.display()
        )),
        "{error}"
    );
    assert!(
        report["tenants"][1]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("not written: cannot open the output directory"),
        "{report}"
    );
    assert!(
        stderr(&output).contains("no tenant was written"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn links_planted_in_the_run_directory_are_not_followed() {
    let host = host_with(&ids(&["a"]));
    let run = host.run_dir();
    std::fs::create_dir_all(&run).unwrap();
    let outside = host.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    // The old fixed temporary name, the report itself, and a dangling lock link.
    std::os::unix::fs::symlink(&victim, run.join(".generator-report.json.tmp")).unwrap();
    std::os::unix::fs::symlink(&victim, run.join("generator-report.json")).unwrap();
    std::os::unix::fs::symlink(outside.join("created"), run.join("lock")).unwrap();

    let out = host.dir.path().join("out");
    let output = host.generate(&out);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "cannot take the generator lock: {}: is a symlink; the lock is never taken through one; reading current without it",
            run.join("lock").display()
        )),
        "{}",
        stderr(&output)
    );
    assert!(!outside.join("created").exists());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!run.join("generator-report.json").is_symlink());
    assert_eq!(report(&run)["state"], "generated");

    // A lock hard-linked to another file is refused, and not truncated.
    std::fs::remove_file(run.join("lock")).unwrap();
    std::fs::hard_link(&victim, run.join("lock")).unwrap();
    let output = host.generate(&host.dir.path().join("out2"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("lock: has 2 hard links; the lock must have exactly one"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}
