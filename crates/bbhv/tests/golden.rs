//! Golden trees: `tests/golden/<case>/input` (a repository) is applied as a
//! generation, tenant-generator runs as systemd runs it, and the output tree
//! must equal `expected/` (file list with symlinks first, then contents), and
//! the report `report.json`. `BLESS=1` (or `make bless`) rewrites them.

mod common;

use common::*;

#[test]
fn golden_trees() {
    for (name, case) in cases("tests/golden", 3) {
        let host = Host::with_repo(&case.join("input"));
        let out = host.dir.path().join("out");
        let output = host.generate(&out);
        let stderr = host.normalize(&String::from_utf8_lossy(&output.stderr));
        let actual: Vec<(String, String)> = snapshot(&out)
            .into_iter()
            .map(|(path, content)| (path, host.normalize(&content)))
            .collect();
        let report = host.normalize(
            &std::fs::read_to_string(host.run_dir().join("generator-report.json")).unwrap(),
        );
        let status = format!("exit={}\n{stderr}", output.status.code().unwrap_or(-1));

        if bless() {
            write_snapshot(&case.join("expected"), &actual);
            std::fs::write(case.join("report.json"), &report).unwrap();
            std::fs::write(case.join("stderr.txt"), &status).unwrap();
            continue;
        }
        let expected = snapshot(&case.join("expected"));
        let list = |tree: &[(String, String)]| {
            tree.iter()
                .map(|(p, c)| {
                    if c.starts_with("-> ") {
                        format!("{p} {c}\n")
                    } else {
                        format!("{p}\n")
                    }
                })
                .collect::<String>()
        };
        let case_name = &name;
        assert_same_text(
            &format!("{case_name}: file list"),
            &list(&expected),
            &list(&actual),
        );
        for ((path, want), (_, got)) in expected.iter().zip(&actual) {
            assert_same_text(&format!("{case_name}: {path}"), want, got);
        }
        assert_same_text(
            &format!("{case_name}: report.json"),
            &std::fs::read_to_string(case.join("report.json")).unwrap(),
            &report,
        );
        assert_same_text(
            &format!("{case_name}: exit status and stderr"),
            &std::fs::read_to_string(case.join("stderr.txt")).unwrap(),
            &status,
        );
    }
}
