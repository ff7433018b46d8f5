//! The host's configuration (`/etc/bitbuilder/host.toml`) as the network
//! run time needs it: read at each `bbhv net up`/`dns` (a tenant restarted
//! after host.toml changed gets the new uplink and upstream).

use anyhow::bail;
use bbhv_generator::HostPaths;
use bbhv_net::HostNet;

/// host.toml at `path`; with errors it is refused, each error printed:
/// nothing is set up from defaults the operator did not mean.
pub fn config(path: &std::path::Path) -> anyhow::Result<bbhv_host::HostConfig> {
    match bbhv_host::load(path) {
        Ok(config) => Ok(config),
        Err(errors) => {
            for e in &errors {
                eprintln!("{}", bbhv_generator::escape(&e.to_string()));
            }
            bail!("{} has {} errors", path.display(), errors.len())
        }
    }
}

/// The `[network]` section.
pub fn network() -> anyhow::Result<HostNet> {
    let config = config(&HostPaths::from_env().host_config)?;
    Ok(HostNet {
        uplink: config.network.uplink.map(|u| u.to_string()),
        dns_upstream: config.network.dns_upstream,
    })
}
