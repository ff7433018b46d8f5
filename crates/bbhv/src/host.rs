//! The host's configuration (`/etc/bitbuilder/host.toml`) as the run time
//! needs it.

use bbhv_net::HostNet;

/// The `[network]` section. (Until host.toml's parser lands: defaults.)
pub fn network() -> anyhow::Result<HostNet> {
    Ok(HostNet::default())
}
