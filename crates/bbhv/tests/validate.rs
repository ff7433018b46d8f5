//! Negative fixtures: each `tests/invalid/<case>/` is a repository that
//! `bbhv validate` must refuse (exit 1), printing exactly `expected.txt`:
//! file, line, column, key path, the value and what is allowed, every
//! problem of every tenant in one run. `BLESS=1` rewrites the expectations.

mod common;

use common::*;

#[test]
fn invalid_repositories_are_refused_with_exact_diagnostics() {
    for (name, case) in cases("tests/invalid", 10) {
        // A case's own host.toml, else examples/host.toml.
        let host_config = case.join("host.toml");
        let output = if host_config.exists() {
            // Run in the case, so messages name it "host.toml".
            std::process::Command::new(env!("CARGO_BIN_EXE_bbhv"))
                .current_dir(&case)
                .args(["validate", "--host-config", "host.toml"])
                .arg(&case)
                .output()
                .unwrap()
        } else {
            bbhv(&["validate", case.to_str().unwrap()])
        };
        let stdout = String::from_utf8(output.stdout).unwrap();
        let expected_file = case.join("expected.txt");
        if bless() {
            std::fs::write(&expected_file, &stdout).unwrap();
            continue;
        }
        assert_eq!(
            output.status.code(),
            Some(1),
            "{name:?} must be refused; stdout:\n{stdout}"
        );
        let expected = std::fs::read_to_string(&expected_file).unwrap();
        assert_same_text(&name, &expected, &stdout);
    }
}

#[test]
fn the_example_repository_is_valid() {
    for example in ["examples/repo", "examples/containers"] {
        let output = bbhv(&["validate", workspace().join(example).to_str().unwrap()]);
        assert!(
            output.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn json_output_is_the_generator_report() {
    let output = bbhv(&[
        "validate",
        "--json",
        workspace()
            .join("tests/invalid/fleet-conflicts")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let statuses: Vec<(&str, &str)> = report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        vec![("a", "generated"), ("a-b", "failed"), ("z", "generated")]
    );
    assert_eq!(report["tenants"][1]["errors"][0]["line"], 2);
}

#[test]
fn the_checked_in_schema_is_current() {
    let file = workspace().join("schema/metadata.schema.json");
    let output = bbhv(&["schema", "--check", file.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A newcomer cannot take what a running tenant holds (issue #6): tenant
/// `zeta` holds VLAN 7 in the applied checkout; `alpha` arrives with VLAN 7
/// and fails, whatever the id order. Without the applied checkout the first
/// by id keeps it.
#[test]
fn the_incumbent_keeps_its_claim() {
    let dir = tempfile::tempdir().unwrap();
    let write = |repo: &str, id: &str, vlan: u16| {
        let tenant = dir.path().join(repo).join("tenants").join(id);
        std::fs::create_dir_all(&tenant).unwrap();
        let text =
            format!(r#"{{"schemaVersion": 1, "id": "{id}", "network": {{"vlan": {vlan}}}}}"#);
        std::fs::write(tenant.join("metadata.json"), text).unwrap();
    };
    write("applied", "zeta", 7);
    write("new", "zeta", 7);
    write("new", "alpha", 7);
    let status = |extra: &[&str]| {
        let new = dir.path().join("new");
        let mut args = vec!["validate", "--json", new.to_str().unwrap()];
        args.extend(extra);
        let output = bbhv(&args);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        report["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let errors = t["errors"].as_array().unwrap();
                let message = errors
                    .first()
                    .map_or("", |e| e["message"].as_str().unwrap());
                format!(
                    "{} {} {message}",
                    t["id"].as_str().unwrap(),
                    t["status"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    let applied = dir.path().join("applied");
    assert_eq!(
        status(&["--applied", applied.to_str().unwrap()]),
        [
            r#"alpha failed VLAN 7 of tenant "alpha" is already used by tenant "zeta" (tenants/zeta/metadata.json)"#,
            "zeta generated ",
        ]
    );
    assert_eq!(
        status(&[]),
        [
            "alpha generated ",
            r#"zeta failed VLAN 7 of tenant "zeta" is already used by tenant "alpha" (tenants/alpha/metadata.json)"#,
        ]
    );
}

/// Tenant ids come from directory names in git: a newline or an escape
/// sequence in one must never reach a terminal or forge a log line.
#[test]
fn control_characters_in_names_are_escaped_everywhere() {
    let evil = "evil\n\x1b[31mfake: 0 tenants failed";
    let repo = tempfile::tempdir().unwrap();
    for id in [evil, "good"] {
        let dir = repo.path().join("tenants").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("metadata.json"),
            r#"{ "schemaVersion": 1, "id": "good" }"#,
        )
        .unwrap();
    }
    let escaped = "tenants/evil\\n\\x1b[31mfake: 0 tenants failed/metadata.json";
    let clean = |what: &str, text: &str, lines: usize| {
        assert!(!text.contains('\x1b'), "{what}: raw ESC in {text:?}");
        assert_eq!(text.lines().count(), lines, "{what}: {text:?}");
        assert!(text.contains(escaped), "{what}: {text:?}");
    };

    let output = bbhv(&["validate", repo.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    clean("validate stdout", &stdout, 1);
    assert!(stdout.starts_with(escaped), "{stdout:?}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains('\x1b'));

    // The generator's log and bbhv report, from the same repository.
    let host = Host::with_repo(repo.path());
    let output = host.generate(&host.dir.path().join("out"));
    clean(
        "generator stderr",
        &String::from_utf8_lossy(&output.stderr),
        1,
    );
    for journal in [false, true] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_bbhv"));
        command
            .arg("report")
            .env("BITBUILDER_RUN_DIR", host.run_dir());
        if journal {
            command.env("JOURNAL_STREAM", "8:1234");
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stdout = String::from_utf8(output.stdout).unwrap();
        clean("bbhv report", &stdout, 2);
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(lines[0].starts_with("2 tenants: 1 enabled, 0 disabled, 1 failed; from "));
        let prefix = if journal { "<3>" } else { "" };
        assert!(
            lines[1].starts_with(&format!("{prefix}{escaped}: directory name ")),
            "{stdout:?}"
        );
    }
}
