//! The host's configuration (`/etc/bitbuilder/host.toml`) as the network
//! run time needs it: read at each `bbhv net up`/`dns` (a tenant restarted
//! after host.toml changed gets the new uplink and upstream).

use anyhow::bail;
use bbhv_generator::HostPaths;
use bbhv_net::HostNet;

/// The `[network]` section. host.toml with errors is refused: a tenant's
/// firewall is not set up from defaults the operator did not mean.
pub fn network() -> anyhow::Result<HostNet> {
    let path = HostPaths::from_env().host_config;
    match bbhv_host::load(&path) {
        Ok(config) => Ok(HostNet {
            uplink: config.network.uplink.map(|u| u.to_string()),
            dns_upstream: config.network.dns_upstream,
        }),
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            bail!("{} has {} errors", path.display(), errors.len())
        }
    }
}
