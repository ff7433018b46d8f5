//! Every host path in one place: the fixed defaults of the architecture and
//! the environment overrides the binaries honour (tests and the bench point
//! them at temporary directories).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// `/var/lib/bitbuilder` (fixed): mirror, generations, `current`, `previous`.
pub const STATE_DIR: &str = "/var/lib/bitbuilder";
/// `/run/bitbuilder` (fixed): the lock and the generator report.
pub const RUN_DIR: &str = "/run/bitbuilder";
/// `/var/lib/tenants` (fixed): per-tenant state.
pub const TENANTS_DIR: &str = "/var/lib/tenants";
/// Where systemd puts the normal generator output.
pub const GENERATOR_DIR: &str = "/run/systemd/generator";
/// The report's file name in the run directory.
pub const REPORT_FILE: &str = "generator-report.json";
/// The lock's file name in the run directory.
pub const LOCK_FILE: &str = "lock";
/// Where networkd reads runtime configuration; the generator owns `bbhv-*` there.
pub const NETWORK_DIR: &str = "/run/systemd/network";
/// Where systemd-nspawn reads runtime `.nspawn` settings.
pub const NSPAWN_DIR: &str = "/run/systemd/nspawn";

/// The host layout, built once from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// `$BITBUILDER_STATE_DIR`, else `/var/lib/bitbuilder`: the mirror,
    /// generations, links and the sync's history.
    pub state_dir: PathBuf,
    /// The applied checkout (`$BITBUILDER_CURRENT`, else `<state>/current`).
    pub current: PathBuf,
    /// The rollback target (`<state>/previous`).
    pub previous: PathBuf,
    /// Verified checkouts (`<state>/generations`).
    pub generations: PathBuf,
    /// `$BITBUILDER_RUN_DIR`, else `/run/bitbuilder`.
    pub run_dir: PathBuf,
    /// `<run dir>/generator-report.json`.
    pub report: PathBuf,
    /// `<run dir>/lock`: shared by generators, exclusive for the sync.
    pub lock: PathBuf,
    /// `$BITBUILDER_TENANTS_DIR`, else `/var/lib/tenants`.
    pub tenants_dir: PathBuf,
    /// Image files (`$BITBUILDER_IMAGES_DIR`, else `<state>/images`).
    pub images_dir: PathBuf,
    /// Tenants' state file systems (`$BITBUILDER_STORAGE_DIR`, else
    /// `<state>/storage`): `<id>.img`, see `bbhv tenant storage`.
    pub storage_dir: PathBuf,
    /// Where the static units are (the target of `.wants` symlinks).
    pub system_unit_dir: PathBuf,
    /// systemd's normal generator directory (what the templates' conditions check).
    pub generator_dir: PathBuf,
    /// How long a generator waits for the lock (`$BITBUILDER_LOCK_WAIT_MS`, else 10 s).
    pub lock_wait: Duration,
    /// The host's settings (`$BITBUILDER_HOST_CONFIG`, else
    /// `/etc/bitbuilder/host.toml`); a missing file is every default.
    pub host_config: PathBuf,
    /// networkd's runtime directory (`$BITBUILDER_NETWORK_DIR`, else
    /// `/run/systemd/network`): the generator replaces its `bbhv-*` files.
    pub network_dir: PathBuf,
    /// nspawn's runtime directory (`$BITBUILDER_NSPAWN_DIR`, else
    /// `/run/systemd/nspawn`): the generator replaces the `.nspawn` files it wrote.
    pub nspawn_dir: PathBuf,
}

impl Default for HostPaths {
    fn default() -> HostPaths {
        HostPaths::from_lookup(|_| None)
    }
}

impl HostPaths {
    /// From the process environment.
    pub fn from_env() -> HostPaths {
        HostPaths::from_lookup(|name| std::env::var_os(name))
    }

    /// From `lookup(name)`; unset and empty variables mean the default.
    /// `$BITBUILDER_STATE_DIR` moves current, previous and generations
    /// together; `$BITBUILDER_CURRENT` moves current alone.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> HostPaths {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let state = var("BITBUILDER_STATE_DIR").unwrap_or_else(|| STATE_DIR.into());
        let run_dir = var("BITBUILDER_RUN_DIR").unwrap_or_else(|| RUN_DIR.into());
        let lock_wait = lookup("BITBUILDER_LOCK_WAIT_MS")
            .and_then(|ms| ms.to_str()?.parse().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis);
        HostPaths {
            current: var("BITBUILDER_CURRENT").unwrap_or_else(|| state.join("current")),
            previous: state.join("previous"),
            state_dir: state.clone(),
            generations: state.join("generations"),
            report: run_dir.join(REPORT_FILE),
            lock: run_dir.join(LOCK_FILE),
            run_dir,
            tenants_dir: var("BITBUILDER_TENANTS_DIR").unwrap_or_else(|| TENANTS_DIR.into()),
            images_dir: var("BITBUILDER_IMAGES_DIR").unwrap_or_else(|| state.join("images")),
            storage_dir: var("BITBUILDER_STORAGE_DIR").unwrap_or_else(|| state.join("storage")),
            system_unit_dir: bbhv_render::SYSTEM_UNIT_DIR.into(),
            generator_dir: GENERATOR_DIR.into(),
            lock_wait,
            host_config: bbhv_host::HostConfig::path_from_lookup(&lookup),
            network_dir: var("BITBUILDER_NETWORK_DIR").unwrap_or_else(|| NETWORK_DIR.into()),
            nspawn_dir: var("BITBUILDER_NSPAWN_DIR").unwrap_or_else(|| NSPAWN_DIR.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_fixed_paths() {
        let paths = HostPaths::default();
        assert_eq!(paths.current, PathBuf::from(bbhv_render::CURRENT));
        assert_eq!(
            paths.previous,
            PathBuf::from("/var/lib/bitbuilder/previous")
        );
        assert_eq!(
            paths.generations,
            PathBuf::from("/var/lib/bitbuilder/generations")
        );
        assert_eq!(
            paths.report,
            PathBuf::from("/run/bitbuilder/generator-report.json")
        );
        assert_eq!(paths.lock, PathBuf::from("/run/bitbuilder/lock"));
        assert_eq!(paths.tenants_dir, PathBuf::from("/var/lib/tenants"));
        assert_eq!(
            paths.images_dir,
            PathBuf::from(bbhv_spec::image::IMAGES_DIR)
        );
        assert_eq!(
            paths.storage_dir,
            PathBuf::from(bbhv_render::mounts::STORAGE_DIR)
        );
        assert_eq!(
            paths.system_unit_dir,
            PathBuf::from("/usr/lib/systemd/system")
        );
        assert_eq!(paths.lock_wait, Duration::from_secs(10));
        assert_eq!(
            paths.host_config,
            PathBuf::from("/etc/bitbuilder/host.toml")
        );
        assert_eq!(paths.network_dir, PathBuf::from("/run/systemd/network"));
        assert_eq!(paths.nspawn_dir, PathBuf::from("/run/systemd/nspawn"));
    }

    #[test]
    fn overrides_apply_and_empty_means_default() {
        let env = |name: &str| -> Option<OsString> {
            match name {
                "BITBUILDER_STATE_DIR" => Some("/s".into()),
                "BITBUILDER_CURRENT" => Some("/c/current".into()),
                "BITBUILDER_RUN_DIR" => Some("/r".into()),
                "BITBUILDER_TENANTS_DIR" => Some("".into()),
                "BITBUILDER_LOCK_WAIT_MS" => Some("300".into()),
                "BITBUILDER_HOST_CONFIG" => Some("/h/host.toml".into()),
                "BITBUILDER_NETWORK_DIR" => Some("/n".into()),
                "BITBUILDER_NSPAWN_DIR" => Some("/ns".into()),
                _ => None,
            }
        };
        let paths = HostPaths::from_lookup(env);
        assert_eq!(paths.current, PathBuf::from("/c/current"));
        assert_eq!(paths.previous, PathBuf::from("/s/previous"));
        assert_eq!(paths.report, PathBuf::from("/r/generator-report.json"));
        assert_eq!(paths.lock, PathBuf::from("/r/lock"));
        assert_eq!(paths.tenants_dir, PathBuf::from("/var/lib/tenants"));
        assert_eq!(paths.lock_wait, Duration::from_millis(300));
        assert_eq!(paths.host_config, PathBuf::from("/h/host.toml"));
        assert_eq!(paths.network_dir, PathBuf::from("/n"));
        assert_eq!(paths.nspawn_dir, PathBuf::from("/ns"));
    }
}
