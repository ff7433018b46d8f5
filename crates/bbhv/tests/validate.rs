//! Negative fixtures: each `tests/invalid/<case>/` is a repository that
//! `bbhv validate` must refuse (exit 1), printing exactly `expected.txt`:
//! file, line, column, key path, the value and what is allowed, every
//! problem of every tenant in one run. `BLESS=1` rewrites the expectations.

mod common;

use common::*;

#[test]
fn invalid_repositories_are_refused_with_exact_diagnostics() {
    for (name, case) in cases("tests/invalid", 10) {
        let output = bbhv(&["validate", case.to_str().unwrap()]);
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
    let output = bbhv(&[
        "validate",
        workspace().join("examples/repo").to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(output.stdout.is_empty());
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
