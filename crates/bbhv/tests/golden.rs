//! Golden trees: `tests/golden/<case>/input` (a repository) is applied as a
//! generation on a host with `host.toml` (the case's own, else
//! `examples/host.toml`), tenant-generator runs as systemd runs it, and its
//! output directory must equal `expected/` (file list with symlinks first,
//! then contents), what it wrote into `/run/systemd/network`
//! `expected-network/` and into `/run/systemd/nspawn` `expected-nspawn/`
//! (absent when empty), and the report `report.json`; mount-generator's
//! output must equal `mounts/` (absent when it writes nothing). `BLESS=1`
//! (or `make bless`) rewrites them.

mod common;

use common::*;

#[test]
fn golden_trees() {
    for (name, case) in cases("tests/golden", 3) {
        let host = Host::with_repo(&case.join("input"));
        if case.join("host.toml").exists() {
            std::fs::copy(case.join("host.toml"), host.host_config()).unwrap();
        }
        let out = host.dir.path().join("out");
        let output = host.generate(&out);
        let stderr = host.normalize(&String::from_utf8_lossy(&output.stderr));
        let tree = |dir: &std::path::Path| -> Vec<(String, String)> {
            if !dir.exists() {
                return Vec::new();
            }
            snapshot(dir)
                .into_iter()
                .map(|(path, content)| (path, host.normalize(&content)))
                .collect()
        };
        let actual = tree(&out);
        let shared = [
            ("expected-network", tree(&host.network_dir())),
            ("expected-nspawn", tree(&host.nspawn_dir())),
        ];
        let report = host.normalize(
            &std::fs::read_to_string(host.run_dir().join("generator-report.json")).unwrap(),
        );
        let status = format!("exit={}\n{stderr}", output.status.code().unwrap_or(-1));
        let mounts_out = host.dir.path().join("mounts");
        let mounts_run = host.generate_mounts(&mounts_out);
        assert!(
            mounts_run.status.success(),
            "{name}: mount-generator: {}",
            String::from_utf8_lossy(&mounts_run.stderr)
        );
        let mounts: Vec<(String, String)> = snapshot(&mounts_out)
            .into_iter()
            .map(|(path, content)| (path, host.normalize(&content)))
            .collect();

        if bless() {
            if mounts.is_empty() {
                let _ = std::fs::remove_dir_all(case.join("mounts"));
            } else {
                write_snapshot(&case.join("mounts"), &mounts);
            }
            write_snapshot(&case.join("expected"), &actual);
            for (name, tree) in &shared {
                let _ = std::fs::remove_dir_all(case.join(name));
                if !tree.is_empty() {
                    write_snapshot(&case.join(name), tree);
                }
            }
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
        let expected_mounts = if case.join("mounts").exists() {
            snapshot(&case.join("mounts"))
        } else {
            Vec::new()
        };
        assert_same_text(
            &format!("{case_name}: mount-generator's file list"),
            &list(&expected_mounts),
            &list(&mounts),
        );
        for ((path, want), (_, got)) in expected_mounts.iter().zip(&mounts) {
            assert_same_text(&format!("{case_name}: mounts/{path}"), want, got);
        }
        assert_same_text(
            &format!("{case_name}: file list"),
            &list(&expected),
            &list(&actual),
        );
        for ((path, want), (_, got)) in expected.iter().zip(&actual) {
            assert_same_text(&format!("{case_name}: {path}"), want, got);
        }
        for (name, actual) in &shared {
            let expected = if case.join(name).exists() {
                snapshot(&case.join(name))
            } else {
                Vec::new()
            };
            assert_same_text(
                &format!("{case_name}: {name} file list"),
                &list(&expected),
                &list(actual),
            );
            for ((path, want), (_, got)) in expected.iter().zip(actual) {
                assert_same_text(&format!("{case_name}: {name}/{path}"), want, got);
            }
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
