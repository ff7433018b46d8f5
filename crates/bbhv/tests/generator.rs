//! tenant-generator run the way systemd runs it.

mod common;

use std::process::Command;

use common::*;

#[test]
fn usage_needs_one_or_three_directories() {
    let output = Command::new(env!("CARGO_BIN_EXE_tenant-generator"))
        .args(["/tmp/a", "/tmp/b"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: tenant-generator NORMAL-DIR"));
}

#[test]
fn one_directory_works_too() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    let out = host.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let output = host
        .generator()
        .arg(&out)
        .env("BITBUILDER_CURRENT", host.current())
        .env("BITBUILDER_RUN_DIR", host.run_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.join(slice("acme")).is_file());
    assert!(
        out.join("tenants.target.wants/tenant@acme.service")
            .is_symlink()
    );
    // The disabled tenant keeps its slice but is not wanted.
    assert!(out.join(slice("umbrella-labs")).is_file());
    assert!(
        !out.join("tenants.target.wants/tenant@umbrella-labs.service")
            .exists()
    );
}

#[test]
fn without_current_it_succeeds_and_arranges_a_rerun() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    std::fs::remove_file(host.current()).unwrap();
    let out = host.dir.path().join("out");
    let output = host.generate(&out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        snapshot(&out),
        vec![(
            "multi-user.target.wants/bitbuilder-generator-rerun.service".to_owned(),
            "-> /usr/lib/systemd/system/bitbuilder-generator-rerun.service".to_owned()
        )]
    );
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(host.run_dir().join("generator-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["state"], "waiting-for-current");
    assert_eq!(report["tenants"], serde_json::json!([]));
}

#[test]
fn without_var_lib_bitbuilder_it_waits_too() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    let out = host.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let output = host
        .generator()
        .arg(&out)
        .env(
            "BITBUILDER_CURRENT",
            host.dir.path().join("var/lib/bitbuilder/current"),
        )
        .env("BITBUILDER_RUN_DIR", host.run_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        out.join("multi-user.target.wants/bitbuilder-generator-rerun.service")
            .is_symlink()
    );
}

/// `current` exists but cannot be read: an error (exit 1, a message naming
/// the path and the reason, state `error`), never a silent wait.
fn assert_current_is_an_error(host: &Host, reason: &str) {
    let out = host.dir.path().join("out");
    let output = host.generate(&out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let current = host.current().display().to_string();
    assert!(
        stderr.contains(&format!(
            "tenant-generator: the applied checkout {current}: {reason}"
        )),
        "{stderr}"
    );
    assert_eq!(snapshot(&out), vec![], "nothing generated, no re-run unit");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(host.run_dir().join("generator-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["state"], "error");
    assert!(
        report["errors"][0].as_str().unwrap().contains(reason),
        "{report}"
    );
    // bbhv report reads it and fails too.
    let output = Command::new(env!("CARGO_BIN_EXE_bbhv"))
        .arg("report")
        .env("BITBUILDER_RUN_DIR", host.run_dir())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with(&format!("no tenants: {current} cannot be read\n")),
        "{text}"
    );
    assert!(text.contains(reason), "{text}");
}

#[test]
fn a_dangling_current_is_an_error() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    std::fs::remove_dir_all(host.dir.path().join("generations")).unwrap();
    assert_current_is_an_error(
        &host,
        &format!(
            "is a symlink to generations/1-{SHA}, which does not exist (a pruned generation?)"
        ),
    );
}

#[test]
fn a_current_symlink_loop_is_an_error() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    std::fs::remove_file(host.current()).unwrap();
    std::os::unix::fs::symlink("current", host.current()).unwrap();
    assert_current_is_an_error(&host, "is a symlink loop");
}

#[test]
fn a_current_that_is_a_file_is_an_error() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    std::fs::remove_file(host.current()).unwrap();
    std::fs::write(host.current(), "generations/1\n").unwrap();
    assert_current_is_an_error(&host, "is not a directory");
}

#[test]
fn a_current_pointing_at_a_file_is_an_error() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    std::fs::remove_file(host.current()).unwrap();
    std::fs::write(host.dir.path().join("file"), "").unwrap();
    std::os::unix::fs::symlink("file", host.current()).unwrap();
    assert_current_is_an_error(&host, "is not a directory");
}

#[test]
fn a_held_lock_delays_but_never_blocks_the_generator() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    std::fs::create_dir_all(host.run_dir()).unwrap();
    let lock = std::fs::File::create(host.run_dir().join("lock")).unwrap();
    // A sync holding the lock exclusively (as if it waited for the reload).
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let out = host.dir.path().join("out");
    let output = host
        .generator()
        .arg(&out)
        .env("BITBUILDER_CURRENT", host.current())
        .env("BITBUILDER_RUN_DIR", host.run_dir())
        .env("BITBUILDER_LOCK_WAIT_MS", "300")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("the generator lock stayed taken for 300 ms"),
        "{stderr}"
    );
    assert!(out.join(slice("acme")).is_file());
}

#[test]
fn bbhv_render_writes_what_the_generator_writes() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    let generated = host.dir.path().join("generated");
    assert!(host.generate(&generated).status.success());
    assert!(host.generate_mounts(&generated).status.success());
    let rendered = host.dir.path().join("rendered");
    let output = bbhv(&[
        "render",
        host.current().to_str().unwrap(),
        "--out",
        rendered.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(snapshot(&generated), snapshot(&rendered.join("units")));
    assert_eq!(
        snapshot(&host.network_dir()),
        snapshot(&rendered.join("network"))
    );
    assert!(
        snapshot(&rendered.join("network"))
            .iter()
            .any(|(path, _)| path == "bbhv-bt-initech.netdev")
    );

    let dryrun = bbhv(&["render", host.current().to_str().unwrap(), "--dryrun"]);
    let text = String::from_utf8(dryrun.stdout).unwrap();
    assert!(
        text.starts_with(&format!(
            "---units/{}---\n# Automatically generated by tenant-generator\n",
            slice("acme")
        )),
        "{text}"
    );
    assert!(text.contains(
        "---units/tenants.target.wants/tenant@acme.service---\n-> ../tenant@acme.service\n"
    ));
    assert!(text.contains("---network/bbhv-wt-initech.netdev---\n# Automatically generated"));
}

#[test]
fn bbhv_render_writes_what_both_generators_write() {
    let host = Host::with_repo(&workspace().join("examples/containers"));
    let generated = host.dir.path().join("generated");
    assert!(host.generate(&generated).status.success());
    assert!(host.generate_mounts(&generated).status.success());
    let rendered = host.dir.path().join("rendered");
    let output = bbhv(&[
        "render",
        host.current().to_str().unwrap(),
        "--out",
        rendered.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Both generators' units are the render's units/.
    let tree = snapshot(&rendered.join("units"));
    assert_eq!(snapshot(&generated), tree);
    assert!(
        tree.iter().any(
            |(path, content)| path == "var-lib-tenants-shop-root-web.mount"
                && content.starts_with("# Automatically generated by mount-generator\n")
        ),
        "{tree:#?}"
    );
}

#[test]
fn bbhv_report_logs_the_skipped_tenants_for_the_journal() {
    let host = Host::with_repo(&workspace().join("tests/golden/bad-tenants/input"));
    host.generate(&host.dir.path().join("out"));
    let run = |journal: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bbhv"));
        command
            .arg("report")
            .env("BITBUILDER_RUN_DIR", host.run_dir());
        if journal {
            command.env("JOURNAL_STREAM", "8:1234");
        }
        command.output().unwrap()
    };
    let output = run(true);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("7 tenants: 1 enabled, 0 disabled, 6 failed; from "),
        "{text}"
    );
    assert!(lines.contains(&"<3>tenants/wrong-id/metadata.json:1:29: /id: id \"someone-else\" must equal its directory name \"wrong-id\""), "{text}");
    // On a terminal, no priority prefix.
    assert!(
        !String::from_utf8(run(false).stdout)
            .unwrap()
            .contains("<3>")
    );
}

#[test]
fn bbhv_render_reads_the_host_config_it_is_given() {
    let host = Host::with_repo(&workspace().join("examples/repo"));
    let bad = host.dir.path().join("bad.toml");
    std::fs::write(&bad, "[network]\nuplink = \"eth0:1\"\n").unwrap();
    let output = bbhv(&[
        "render",
        "--host-config",
        bad.to_str().unwrap(),
        host.current().to_str().unwrap(),
        "--dryrun",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2:10: network.uplink: \"eth0:1\" is not an interface name",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("/network/vlan: VLAN 120 needs network.uplink"),
        "{stderr}"
    );
    // The tenants that do not need host.toml are rendered as usual.
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains(&format!("---units/{}---", slice("acme"))));
    assert!(!text.contains("initech"), "{text}");

    // A missing file is every default: initech's VLAN has no uplink.
    let output = bbhv(&[
        "validate",
        "--host-config",
        host.dir.path().join("absent.toml").to_str().unwrap(),
        host.current().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with(
            "tenants/initech/metadata.json:11:13: /network/vlan: VLAN 120 needs the uplink"
        ),
        "{stdout}"
    );
}
