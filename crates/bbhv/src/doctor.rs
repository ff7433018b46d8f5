//! `bbhv doctor`: can this host run the platform? Each check says ok, warn (works, with
//! less: e.g. VMs under TCG) or fail (something the platform needs is missing), and the fix.
//! The facts are gathered at the edge ([`Facts::gather`]); [`checks`] is pure.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use bbhv_generator::{HostPaths, SharedLock};
use bbhv_gitops::store::Store;
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: String,
    pub level: Level,
    pub detail: String,
    /// What to do about it; empty when ok.
    pub fix: String,
}

fn check(name: &str, level: Level, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        check: name.to_owned(),
        level,
        detail: detail.into(),
        fix: if level == Level::Ok {
            String::new()
        } else {
            fix.into()
        },
    }
}

/// How a kernel feature is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    /// Built in or loaded (/sys/module, /proc/filesystems).
    Present,
    /// Not loaded, but `modprobe -n` finds it.
    Loadable,
    Missing,
}

/// What the checks look at.
#[derive(Debug, Clone)]
pub struct Facts {
    pub systemd: Option<u32>,
    pub vmspawn: Option<u32>,
    /// The first vmspawn option the project needs that the host's lacks.
    pub vmspawn_missing: Option<&'static str>,
    pub programs: Vec<(&'static str, bool)>,
    pub modules: Vec<(&'static str, Module)>,
    pub controllers: Option<String>,
    pub kvm: (bool, String),
    pub host_config: String,
    pub host_errors: Vec<String>,
    pub host_config_exists: bool,
    /// None: lock free; Some(why) otherwise.
    pub lock: Result<(), String>,
    /// (link, Ok(target generation) | Err(problem)), None when the link does not exist.
    pub links: Vec<(&'static str, Option<Result<String, String>>)>,
}

/// Kernel features: (module, fs name in /proc/filesystems, needed, what for).
const KERNEL: [(&str, &str, bool, &str); 6] = [
    (
        "bridge",
        "",
        true,
        "tenant networks (one bridge per tenant)",
    ),
    (
        "overlay",
        "overlay",
        true,
        "container roots (overlayfs over images)",
    ),
    (
        "squashfs",
        "squashfs",
        false,
        "squashfs images and extensions",
    ),
    ("erofs", "erofs", false, "erofs images and extensions"),
    ("8021q", "", false, "tenant VLANs (network.vlan)"),
    ("wireguard", "", false, "tenant WireGuard links"),
];

/// Programs and the features they enable: (path, needed, feature, since systemd).
const PROGRAMS: [(&str, bool, &str, u32); 5] = [
    (
        "/usr/bin/systemd-nspawn",
        true,
        "containers (package systemd-container)",
        0,
    ),
    ("/usr/bin/systemd-sysext", false, "system extensions", 248),
    (
        "/usr/bin/systemd-confext",
        false,
        "configuration extensions",
        254,
    ),
    (
        "/usr/bin/importctl",
        false,
        "image import by systemd-importd",
        256,
    ),
    (
        "/usr/bin/systemd-repart",
        false,
        "DDI images (systemd-repart)",
        255,
    ),
];

/// cgroup v2 controllers the tenant slices set limits with.
const CONTROLLERS: [&str; 4] = ["cpu", "memory", "io", "pids"];

/// Oldest systemd the project is tested with (the lab's trixie).
const SYSTEMD_TESTED: u32 = 257;
/// Oldest systemd the units can run on at all.
const SYSTEMD_MIN: u32 = 252;

pub fn checks(f: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(match f.systemd {
        Some(v) if v >= SYSTEMD_TESTED => check("systemd", Level::Ok, format!("systemd {v}"), ""),
        Some(v) if v >= SYSTEMD_MIN => check(
            "systemd",
            Level::Warn,
            format!(
                "systemd {v}: older than {SYSTEMD_TESTED}, the version the project is tested with"
            ),
            format!("upgrade systemd to {SYSTEMD_TESTED} or later (Debian trixie)"),
        ),
        Some(v) => check(
            "systemd",
            Level::Fail,
            format!("systemd {v}: older than {SYSTEMD_MIN}"),
            format!("upgrade systemd to {SYSTEMD_TESTED} or later (Debian trixie)"),
        ),
        None => check(
            "systemd",
            Level::Fail,
            "systemctl --version gave no version",
            "install systemd and boot with it as PID 1",
        ),
    });
    out.push(match (f.vmspawn, f.vmspawn_missing) {
        (Some(v), None) if v >= 256 => check(
            "vmspawn",
            Level::Ok,
            format!("systemd-vmspawn {v}: VMs run under vmspawn"),
            "",
        ),
        (Some(v), Some(o)) if v >= 256 => check(
            "vmspawn",
            Level::Warn,
            format!("systemd-vmspawn {v} lacks {o}: VMs run under plain qemu"),
            "install a newer systemd-container (systemd 258 or later) for vmspawn",
        ),
        (Some(v), _) => check(
            "vmspawn",
            Level::Warn,
            format!("systemd-vmspawn {v} is older than 256: VMs run under plain qemu"),
            "install systemd-container 256 or later",
        ),
        (None, _) => check(
            "vmspawn",
            Level::Warn,
            "no systemd-vmspawn: VMs run under plain qemu",
            "install systemd-container 256 or later (Debian sid/forky) for vmspawn",
        ),
    });
    for (path, needed, feature, since) in PROGRAMS {
        let found = f.programs.iter().any(|(p, ok)| *p == path && *ok);
        let name = path.rsplit('/').next().unwrap_or(path);
        out.push(if found {
            check(name, Level::Ok, format!("{path}: {feature}"), "")
        } else {
            check(
                name,
                if needed { Level::Fail } else { Level::Warn },
                format!("{path} missing: no {feature}"),
                if since > 0 {
                    format!("install systemd {since} or later with {name}")
                } else {
                    "apt install systemd-container".to_owned()
                },
            )
        });
    }
    for (module, _, needed, what) in KERNEL {
        let state = f
            .modules
            .iter()
            .find(|(m, _)| *m == module)
            .map_or(Module::Missing, |(_, s)| *s);
        out.push(match state {
            Module::Present => check(
                &format!("kernel {module}"),
                Level::Ok,
                format!("{module}: {what}"),
                "",
            ),
            Module::Loadable => check(
                &format!("kernel {module}"),
                Level::Ok,
                format!("{module} (loadable module): {what}"),
                "",
            ),
            Module::Missing => check(
                &format!("kernel {module}"),
                if needed { Level::Fail } else { Level::Warn },
                format!("{module} neither built in nor a loadable module: no {what}"),
                format!(
                    "use a kernel with {module} (CONFIG_{}), e.g. Debian's linux-image-amd64",
                    module.to_uppercase()
                ),
            ),
        });
    }
    out.push(match &f.controllers {
        None => check("cgroup2", Level::Fail, "/sys/fs/cgroup/cgroup.controllers is missing: not the unified cgroup v2 hierarchy", "boot with the unified hierarchy (systemd.unified_cgroup_hierarchy=1, the default since systemd 247)"),
        Some(c) => {
            let have: Vec<&str> = c.split_whitespace().collect();
            let missing: Vec<&str> = CONTROLLERS.iter().copied().filter(|x| !have.contains(x)).collect();
            if missing.is_empty() {
                check("cgroup2", Level::Ok, format!("controllers: {}", have.join(" ")), "")
            } else {
                check("cgroup2", Level::Fail, format!("controllers missing: {} (have: {})", missing.join(" "), have.join(" ")), "enable them in the kernel (CONFIG_MEMCG, CONFIG_CGROUP_PIDS, ...) or delegate them to this container")
            }
        }
    });
    out.push(if f.kvm.0 {
        check("kvm", Level::Ok, f.kvm.1.clone(), "")
    } else {
        check("kvm", Level::Warn, format!("{}: VMs fall back to TCG (slow)", f.kvm.1), "enable hardware virtualization (VT-x/AMD-V) and load kvm_intel or kvm_amd; give this user /dev/kvm")
    });
    out.push(if !f.host_errors.is_empty() {
        check(
            "host.toml",
            Level::Fail,
            f.host_errors.join("; "),
            format!("fix {} (docs/host-config.md)", f.host_config),
        )
    } else if f.host_config_exists {
        check(
            "host.toml",
            Level::Ok,
            format!("{} is valid", f.host_config),
            "",
        )
    } else {
        check(
            "host.toml",
            Level::Ok,
            format!("{} does not exist: every default", f.host_config),
            "",
        )
    });
    out.push(match &f.lock {
        Ok(()) => check("lock", Level::Ok, "the generator lock is free", ""),
        Err(why) => check(
            "lock",
            Level::Warn,
            why.clone(),
            "wait for the running sync to end (systemctl status bitbuilder-sync.service)",
        ),
    });
    for (link, state) in &f.links {
        out.push(match state {
            Some(Ok(g)) => check(link, Level::Ok, format!("{link} -> generation {g}"), ""),
            Some(Err(e)) => check(link, Level::Fail, format!("{link}: {e}"), "bbhv rollback, or bbhv sync to apply a generation again"),
            None if *link == "current" => check(link, Level::Warn, "no generation applied yet", "configure the repository in host.toml and run bbhv sync (or start bitbuilder-sync.timer)"),
            None => check(link, Level::Ok, "no previous generation (nothing to roll back to yet)", ""),
        });
    }
    out
}

impl Facts {
    pub fn gather() -> Facts {
        let paths = HostPaths::from_env();
        let systemd = std::process::Command::new("systemctl")
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| crate::vm::parse_systemd_version(&String::from_utf8_lossy(&o.stdout)));
        let vmspawn = crate::vm::vmspawn_version();
        let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
        let modules = KERNEL
            .iter()
            .map(|(m, fs, _, _)| {
                // In use is present too: a bridge or VLAN link exists (a container may not
                // see the host's modules).
                let in_use = match *m {
                    "bridge" => std::fs::read_dir("/sys/class/net")
                        .is_ok_and(|d| d.flatten().any(|e| e.path().join("bridge").is_dir())),
                    "8021q" => Path::new("/proc/net/vlan/config").exists(),
                    _ => false,
                };
                let present = in_use
                    || Path::new("/sys/module").join(m).exists()
                    || (!fs.is_empty()
                        && filesystems
                            .lines()
                            .any(|l| l.split_whitespace().last() == Some(fs)));
                let loadable = || {
                    std::process::Command::new("modprobe")
                        .args(["-n", "-q", m])
                        .status()
                        .is_ok_and(|s| s.success())
                };
                let state = if present {
                    Module::Present
                } else if loadable() {
                    Module::Loadable
                } else {
                    Module::Missing
                };
                (*m, state)
            })
            .collect();
        let (host_errors, host_config_exists) = match bbhv_host::load(&paths.host_config) {
            Ok(_) => (Vec::new(), paths.host_config.exists()),
            Err(errors) => (errors.iter().map(|e| e.to_string()).collect(), true),
        };
        // No lock file yet: no generator ran; taking it would create it.
        let lock = match SharedLock::acquire(&paths.lock, Duration::ZERO) {
            _ if !paths.lock.exists() => Ok(()),
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!(
                "{} is held exclusively (a sync is applying a generation)",
                paths.lock.display()
            )),
            Err(e) => Err(format!("{}: {e}", paths.lock.display())),
        };
        let store = Store::new(&paths.state_dir);
        let link = |p: &Path| -> Option<Result<String, String>> {
            let target = std::fs::read_link(p).ok()?;
            Some(match store.link(p) {
                Some(g) if store.generation_dir(&g).is_dir() => Ok(g.name()),
                Some(g) => Err(format!("points to generation {g}, which is missing")),
                None => Err(format!("points to {}, not a generation", target.display())),
            })
        };
        Facts {
            systemd,
            vmspawn_missing: vmspawn.and_then(|_| crate::vm::vmspawn_missing_option()),
            vmspawn,
            programs: PROGRAMS
                .iter()
                .map(|(p, ..)| (*p, Path::new(p).exists()))
                .collect(),
            modules,
            controllers: std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").ok(),
            kvm: crate::vm::kvm_usable(),
            host_config: paths.host_config.display().to_string(),
            host_errors,
            host_config_exists,
            lock,
            links: vec![
                ("current", link(&store.current())),
                ("previous", link(&store.previous())),
            ],
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let results = checks(&Facts::gather());
    let failed = results.iter().any(|c| c.level == Level::Fail);
    if args.json {
        let value = serde_json::json!({ "ok": !failed, "checks": results });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for c in &results {
            let level = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            println!(
                "{level}  {:<18} {}",
                c.check,
                bbhv_generator::escape(&c.detail)
            );
            if !c.fix.is_empty() {
                println!("      {:<18} fix: {}", "", bbhv_generator::escape(&c.fix));
            }
        }
        let (w, f) = (
            results.iter().filter(|c| c.level == Level::Warn).count(),
            results.iter().filter(|c| c.level == Level::Fail).count(),
        );
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        println!(
            "{}: {}, {}",
            plural(results.len(), "check"),
            plural(f, "problem"),
            plural(w, "warning")
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Facts {
        Facts {
            systemd: Some(257),
            vmspawn: None,
            vmspawn_missing: None,
            programs: PROGRAMS.iter().map(|(p, ..)| (*p, true)).collect(),
            modules: KERNEL.iter().map(|(m, ..)| (*m, Module::Present)).collect(),
            controllers: Some("cpuset cpu io memory hugetlb pids rdma misc\n".into()),
            kvm: (false, "no /dev/kvm".into()),
            host_config: "/etc/bitbuilder/host.toml".into(),
            host_errors: vec![],
            host_config_exists: false,
            lock: Ok(()),
            links: vec![("current", Some(Ok("1-abc".into()))), ("previous", None)],
        }
    }

    fn level(c: &[Check], name: &str) -> Level {
        c.iter()
            .find(|c| c.check == name)
            .unwrap_or_else(|| panic!("{name}: {c:#?}"))
            .level
    }

    #[test]
    fn a_good_host_has_no_problem() {
        let c = checks(&good());
        assert!(c.iter().all(|c| c.level != Level::Fail), "{c:#?}");
        assert_eq!(level(&c, "kvm"), Level::Warn);
        assert_eq!(level(&c, "vmspawn"), Level::Warn);
        assert!(
            c.iter()
                .filter(|c| c.level == Level::Ok)
                .all(|c| c.fix.is_empty())
        );
    }

    #[test]
    fn each_problem_fails_with_a_fix() {
        let mut f = good();
        f.systemd = Some(249);
        f.modules[0].1 = Module::Missing; // bridge
        f.modules[4].1 = Module::Missing; // 8021q: optional
        f.controllers = Some("cpu io\n".into());
        f.host_errors = vec!["host.toml:3:1: network.uplink: ...".into()];
        f.links[0].1 = Some(Err("points to generation 2-x, which is missing".into()));
        f.programs[0].1 = false;
        let c = checks(&f);
        for name in [
            "systemd",
            "kernel bridge",
            "cgroup2",
            "host.toml",
            "current",
            "systemd-nspawn",
        ] {
            assert_eq!(level(&c, name), Level::Fail, "{name}");
            assert!(!c.iter().find(|c| c.check == name).unwrap().fix.is_empty());
        }
        assert_eq!(level(&c, "kernel 8021q"), Level::Warn);
        let cg = c.iter().find(|c| c.check == "cgroup2").unwrap();
        assert!(cg.detail.contains("memory pids"), "{cg:?}");
    }
}
