//! Every rendered file passes `systemd-analyze verify` (the host's systemd;
//! the lab's `verify-257` does the same under systemd 257). verify is
//! pointed at a root tree holding the host's units, ours, the rendered
//! files and the programs they run, so it checks the whole unit, not just
//! its syntax. verify exits 0 on many warnings, so any output is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A root tree for `systemd-analyze verify --root`.
fn verify_root(rendered: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let units = root.path().join("usr/lib/systemd/system");
    let host_units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").exists())
        .expect("the host has systemd's units (apt-get install systemd)");
    copy_tree(host_units, &units);
    // Masked units point at /dev/null, which the root lacks.
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::read_link(&path).is_ok_and(|t| t.is_absolute()) {
            std::fs::remove_file(&path).unwrap();
        }
    }
    copy_tree(&workspace().join("units"), &units);
    copy_tree(rendered, &root.path().join("etc/systemd/system"));
    let bin = root.path().join("usr/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_bbhv"), bin.join("bbhv")).unwrap();
    std::os::unix::fs::symlink("usr/bin", root.path().join("bin")).unwrap();
    for tool in ["ip", "systemctl", "sh", "true", "systemd-nspawn"] {
        let host_tool = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|d| PathBuf::from(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} is not installed"));
        std::fs::copy(host_tool, bin.join(tool)).unwrap();
    }
    root
}

fn verify(root: &Path, units: &[String]) -> String {
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .args(units)
        .output()
        .expect("systemd-analyze runs (apt-get install systemd)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // systemd 254 added RestartSteps= and RestartMaxDelaySec= (the
    // containers' back-off); an older host's verify does not know them. The
    // lab's verify-257 checks them under the target's systemd.
    let text: String = if host_systemd_version() < 254 {
        text.lines()
            .filter(|l| {
                !(l.contains("Unknown key 'RestartSteps'")
                    || l.contains("Unknown key 'RestartMaxDelaySec'"))
            })
            .map(|l| format!("{l}\n"))
            .collect()
    } else {
        text
    };
    if output.status.success() {
        text
    } else {
        format!("exit {}: {text}", output.status)
    }
}

/// The host's systemd version (`systemctl --version`: "systemd 252 (...)").
fn host_systemd_version() -> u32 {
    let output = Command::new("systemctl").arg("--version").output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The units a rendered tree defines or instantiates.
fn units_of(tree: &[(String, String)]) -> Vec<String> {
    let mut units: Vec<String> = tree
        .iter()
        // `.nspawn` settings are not units (nspawn reads them; the unit
        // tests below read them back).
        .filter(|(path, _)| !path.ends_with(".nspawn"))
        .map(|(path, _)| {
            let first = path.split('/').next().unwrap();
            let last = path.rsplit('/').next().unwrap();
            if let Some(unit) = first.strip_suffix(".d") {
                unit.to_owned()
            } else {
                last.to_owned()
            }
        })
        .collect();
    units.sort();
    units.dedup();
    units
}

#[test]
fn rendered_examples_and_static_units_pass_verify() {
    for case in ["examples", "hostile", "bad-tenants", "containers"] {
        let host = Host::with_repo(&workspace().join("tests/golden").join(case).join("input"));
        let out = host.dir.path().join("out");
        host.generate(&out);
        // Both generators write into systemd's one generator directory.
        host.generate_mounts(&out);
        let tree = snapshot(&out);
        let mut units = units_of(&tree);
        assert!(units.len() >= 2, "{case}: {units:?}");
        units.extend(
            [
                "tenants.target",
                "tenants.slice",
                "tenant-vm@acme_db.service",
                "bitbuilder-image@busybox.service",
                "bitbuilder-storage@acme.service",
                "bitbuilder-generator-rerun.service",
                "bitbuilder-generator-report.service",
                "bitbuilder-firewall.service",
            ]
            .map(String::from),
        );
        let root = verify_root(&out);
        let output = verify(root.path(), &units);
        assert_eq!(output, "", "{case}: systemd-analyze verify {units:?}");
    }
}

#[test]
fn verify_does_catch_a_broken_drop_in() {
    // The check above can fail: the same set-up with one bad line reports it.
    let host = Host::with_repo(&workspace().join("examples/repo"));
    let out = host.dir.path().join("out");
    host.generate(&out);
    std::fs::create_dir_all(out.join("tenant@acme.service.d")).unwrap();
    std::fs::write(
        out.join("tenant@acme.service.d/60-bad.conf"),
        "[Service]\nSlice=not a slice\n",
    )
    .unwrap();
    let root = verify_root(&out);
    let output = verify(root.path(), &["tenant@acme.service".into()]);
    assert!(output.contains("60-bad.conf"), "{output}");
}

#[test]
fn templates_are_hardened() {
    // Thresholds are the exposure level times ten (2.0 → 20): "safe".
    let root = verify_root(&workspace().join("units"));
    for (unit, threshold) in [
        ("tenant-infra@.service", 20),
        ("bitbuilder-image@.service", 20),
        ("bitbuilder-storage@.service", 20),
        ("bitbuilder-generator-report.service", 20),
    ] {
        let output = Command::new("systemd-analyze")
            .args([
                "security",
                "--offline=yes",
                "--no-pager",
                &format!("--threshold={threshold}"),
            ])
            .arg(format!("--root={}", root.path().display()))
            .arg(workspace().join("units").join(unit))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{unit} is above exposure {threshold}/10:\n{}",
            text.lines().last().unwrap_or("")
        );
    }
}

/// tenant@, tenant-vm@ and tenant-network@ carry no sandbox because they run nothing: no
/// start command, and `/bin/true` as the stop command systemd insists on
/// (the generated tenant@<id>.service too: see the golden trees).
/// A sandbox per tenant costs PID 1 memory, a BPF program and file
/// descriptors at 5,000 tenants (bench/README.md); this test keeps the
/// reason true.
#[test]
fn unsandboxed_templates_run_nothing() {
    // tenant-network@'s template only cleans up after a tenant that left the
    // checkout (its generated unit runs the network).
    for (unit, extra) in [
        ("tenant@.service", None),
        ("tenant-vm@.service", None),
        (
            "tenant-network@.service",
            Some("ExecStopPost=+/usr/bin/bbhv net down %i"),
        ),
    ] {
        let text = std::fs::read_to_string(workspace().join("units").join(unit)).unwrap();
        let commands: Vec<&str> = text.lines().filter(|l| l.starts_with("Exec")).collect();
        let want: Vec<&str> = std::iter::once("ExecStop=/bin/true").chain(extra).collect();
        assert_eq!(commands, want, "{unit}");
    }
}
