//! `bbhv net …`: what the network units run (docs/architecture.md, "Who
//! makes what"). The rules and arguments come from `bbhv-net`'s pure
//! functions; this module reads the tenant and the host config and runs them.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bbhv_generator::Checkout;
use bbhv_net::sys::{self, IP};
use bbhv_net::{HostNet, TenantNet, dns, firewall};
use bbhv_spec::TenantId;
use ipnet::{Ipv4Net, Ipv6Net};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create the project's nftables table and base chains
    /// (bitbuilder-firewall.service). Keeps the tenants' chains.
    Init,
    /// Remove the project's nftables table.
    Fini,
    /// Set up tenant ID's firewall chains and egress shaping, from the
    /// generation its units were made from (tenant-network@ID.service).
    Up {
        /// The generation directory (the generated unit names it).
        #[arg(long)]
        checkout: PathBuf,
        id: String,
    },
    /// Run tenant ID's DNS server (dnsmasq) in this process's place.
    Dns {
        #[arg(long)]
        checkout: PathBuf,
        id: String,
    },
    /// Remove exactly what `up` added for tenant ID. Needs no checkout.
    Down { id: String },
    /// In a workload's own network namespace (its unit's PrivateNetwork=):
    /// make the veth pair, move the outer end LINK to the host's namespace
    /// onto BRIDGE, and give the inner end (host0) its address and route.
    /// With --tap instead of --link (a VM, in the host's namespace): make
    /// the tap TAP on BRIDGE for qemu to open (a stale one is replaced).
    Attach {
        #[arg(long)]
        bridge: String,
        #[arg(long, required_unless_present = "tap", conflicts_with = "tap")]
        link: Option<String>,
        #[arg(long, conflicts_with_all = ["address", "gateway", "address6", "gateway6"])]
        tap: Option<String>,
        #[arg(long)]
        address: Option<Ipv4Net>,
        #[arg(long)]
        gateway: Option<std::net::Ipv4Addr>,
        #[arg(long)]
        address6: Option<Ipv6Net>,
        #[arg(long)]
        gateway6: Option<std::net::Ipv6Addr>,
    },
    /// Delete a VM's tap (tenant-vm@'s ExecStopPost; one already gone is fine).
    Detach {
        #[arg(long)]
        tap: String,
    },
    /// Delete the links and firewall chains of tenants the generated
    /// configuration no longer declares (networkd never deletes a link).
    Prune,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Init => sys::nft(&firewall::init_script(&crate::host::network()?))
            .context("creating the firewall table")?,
        Command::Fini => {
            sys::nft(&firewall::fini_script()).context("removing the firewall table")?
        }
        Command::Up { checkout, id } => {
            let (net, _) = load(&checkout, &id)?;
            sys::wait_for_link(&net.bridge, Duration::from_secs(30))?;
            // dnsmasq binds the gateway addresses once, when it starts.
            sys::wait_for_addresses(&net.gateways(), Duration::from_secs(30))?;
            let state = State::of(&net.id);
            let before = state.read_or_list();
            sys::nft(&firewall::up_script(&net, &before.elements))
                .with_context(|| format!("tenant {id}: firewall elements"))?;
            // Recorded before shaping, so a failure there still leaves the
            // record `down` needs.
            state.write(&firewall::elements_of(&net), before.shaped)?;
            match &net.egress {
                Some(ifb) => {
                    sys::wait_for_link(ifb, Duration::from_secs(30))?;
                    sys::redirect_ingress(&net.bridge, ifb, before.shaped)
                        .with_context(|| format!("tenant {id}: egress shaping"))?;
                    state.write(&firewall::elements_of(&net), true)?;
                }
                // Only when an earlier `up` shaped: a `tc` run costs a dump
                // of every link of the host.
                None if before.shaped => sys::remove_ingress(&net.bridge),
                None => {}
            }
            println!("tenant {id}: network up on {}", net.bridge);
        }
        Command::Dns { checkout, id } => {
            let (net, host) = load(&checkout, &id)?;
            let Some(args) = dns::dnsmasq_args(&net, &host) else {
                bail!("tenant {id} has no gateway address to serve DNS on");
            };
            let error = std::process::Command::new(dns::DNSMASQ).args(&args).exec();
            bail!("cannot run {}: {error}", dns::DNSMASQ);
        }
        Command::Down { id } => {
            let id = parse_id(&id)?;
            let state = State::of(&id);
            let before = state.read_or_list();
            if before.shaped {
                sys::remove_ingress(&id.interface(bbhv_spec::names::InterfacePrefix::Bridge));
            }
            sys::nft(&firewall::down_script(&before.elements))
                .with_context(|| format!("tenant {id}: removing its firewall elements"))?;
            state.remove();
            println!("tenant {id}: network down");
        }
        Command::Attach {
            bridge,
            link,
            tap,
            address,
            gateway,
            address6,
            gateway6,
        } => match (link, tap) {
            (_, Some(tap)) => attach_tap(&bridge, &tap)?,
            (Some(link), None) => attach(&bridge, &link, address, gateway, address6, gateway6)?,
            (None, None) => bail!("--link or --tap is required"),
        },
        Command::Detach { tap } => {
            check_ifname(&tap)?;
            if std::path::Path::new("/sys/class/net").join(&tap).exists() {
                ip(&["link", "delete", &tap]).with_context(|| format!("deleting {tap}"))?;
                println!("removed tap {tap}");
            } else {
                println!("tap {tap} is already gone");
            }
        }
        Command::Prune => prune()?,
    }
    Ok(ExitCode::SUCCESS)
}

/// What `bbhv net up` added for a tenant, kept in
/// `/run/bitbuilder/net/<id>.elements` (one `set<TAB>key` per line, and
/// `tc<TAB>ingress` when it redirected the bridge's ingress), so that `down`
/// (and the next `up`) remove exactly that without listing the whole table,
/// which costs O(tenants) (75 ms at 1,000).
struct State {
    path: PathBuf,
}

/// What a tenant's last `up` added.
struct Recorded {
    elements: Vec<(String, String)>,
    /// The ingress redirect of egress shaping.
    shaped: bool,
}

impl State {
    fn of(id: &TenantId) -> State {
        let dir = bbhv_generator::HostPaths::from_env().run_dir.join("net");
        State {
            path: dir.join(format!("{id}.elements")),
        }
    }

    fn read_or_list(&self) -> Recorded {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Recorded {
                elements: text
                    .lines()
                    .filter_map(|l| l.split_once('\t'))
                    .filter(|(set, _)| firewall::SETS.contains(set))
                    .map(|(set, key)| (set.to_owned(), key.to_owned()))
                    .collect(),
                shaped: text.lines().any(|l| l == "tc\tingress"),
            },
            // No record: the tenant has nothing (the records live in /run
            // with the table, and `up` records before it returns). What a
            // crash between the two left is removed by `bbhv net prune`,
            // which lists the table once for all tenants: listing it here
            // would cost every tenant's start O(tenants).
            Err(_) => Recorded {
                elements: Vec::new(),
                shaped: false,
            },
        }
    }

    fn write(&self, elements: &[firewall::Element], shaped: bool) -> anyhow::Result<()> {
        let mut text: String = elements
            .iter()
            .map(|e| format!("{}\t{}\n", e.set, e.key))
            .collect();
        if shaped {
            text.push_str("tc\tingress\n");
        }
        let dir = self.path.parent().expect("a file in a directory");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        bbhv_generator::replace_file(&self.path, text.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn table_listing() -> Result<String, sys::SysError> {
    sys::run(sys::NFT, &["list", "table", "inet", firewall::TABLE], None)
}

fn parse_id(id: &str) -> anyhow::Result<TenantId> {
    TenantId::new(id).with_context(|| format!("{id:?} is not a tenant id"))
}

fn load(checkout: &std::path::Path, id: &str) -> anyhow::Result<(TenantNet, HostNet)> {
    parse_id(id)?;
    let checkout = Checkout::open(checkout)?;
    let (tenant, _) = crate::tenant::load_from(&checkout, id)?;
    let net = TenantNet::of(&tenant).with_context(|| {
        format!(
            "tenant {id} declares no network in {}",
            checkout.root.display()
        )
    })?;
    Ok((net, crate::host::network()?))
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    sys::run(IP, args, None)?;
    Ok(())
}

fn attach(
    bridge: &str,
    link: &str,
    address: Option<Ipv4Net>,
    gateway: Option<std::net::Ipv4Addr>,
    address6: Option<Ipv6Net>,
    gateway6: Option<std::net::Ipv6Addr>,
) -> anyhow::Result<()> {
    for name in [bridge, link] {
        check_ifname(name)?;
    }
    // PID 1's namespace is the host's: the unit's PrivateNetwork= gave this
    // process a new one, not a new PID namespace.
    ip(&[
        "link", "add", "host0", "type", "veth", "peer", "name", link, "netns", "1",
    ])
    .context("creating the workload's veth pair")?;
    sys::run(
        "/usr/bin/nsenter",
        &[
            "--net=/proc/1/ns/net",
            IP,
            "link",
            "set",
            link,
            "master",
            bridge,
            "up",
        ],
        None,
    )
    .with_context(|| format!("attaching {link} to {bridge} in the host's namespace"))?;
    ip(&["link", "set", "lo", "up"])?;
    if let Some(a) = address {
        ip(&["address", "add", &a.to_string(), "dev", "host0"])?;
    }
    if let Some(a) = address6 {
        ip(&[
            "-6",
            "address",
            "add",
            &a.to_string(),
            "dev",
            "host0",
            "nodad",
        ])?;
    }
    ip(&["link", "set", "host0", "up"])?;
    if let Some(g) = gateway {
        ip(&[
            "route",
            "add",
            "default",
            "via",
            &g.to_string(),
            "dev",
            "host0",
        ])?;
    }
    if let Some(g) = gateway6 {
        ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            &g.to_string(),
            "dev",
            "host0",
        ])?;
    }
    println!("attached host0 <-> {link} on {bridge}");
    Ok(())
}

fn check_ifname(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= bbhv_spec::names::IFNAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        bail!("{name:?} is not an interface name of ours");
    }
    Ok(())
}

/// A VM's tap, in the host's namespace (the VM unit has no private
/// network): made persistent (`ip tuntap add`), enslaved to the bridge and
/// up; qemu opens it by name. A tap left by a monitor that died without
/// its ExecStopPost is replaced.
fn attach_tap(bridge: &str, tap: &str) -> anyhow::Result<()> {
    check_ifname(bridge)?;
    check_ifname(tap)?;
    if !tap.starts_with(bbhv_spec::names::InterfacePrefix::Tap.as_str()) {
        bail!("{tap:?} is not a VM tap (tv-...)");
    }
    if std::path::Path::new("/sys/class/net").join(tap).exists() {
        ip(&["link", "delete", tap]).with_context(|| format!("removing the stale {tap}"))?;
    }
    sys::wait_for_link(bridge, Duration::from_secs(30))?;
    ip(&["tuntap", "add", "dev", tap, "mode", "tap"])
        .with_context(|| format!("creating the tap {tap}"))?;
    ip(&["link", "set", tap, "master", bridge, "up"])
        .with_context(|| format!("attaching {tap} to {bridge}"))?;
    println!("attached tap {tap} on {bridge}");
    Ok(())
}

/// Links are ours by prefix (host.toml refuses an uplink with one), and
/// declared by the generator's `bbhv-<link>.netdev` files.
fn prune() -> anyhow::Result<()> {
    let paths = bbhv_generator::HostPaths::from_env();
    let network_dir = &paths.network_dir;
    let declared: std::collections::BTreeSet<String> = match std::fs::read_dir(network_dir) {
        Ok(dir) => dir
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                Some(
                    name.strip_prefix("bbhv-")?
                        .strip_suffix(".netdev")?
                        .to_owned(),
                )
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(e) => bail!("reading {}: {e}", network_dir.display()),
    };
    let ours = |name: &str| {
        ["bt-", "vt-", "wt-", "et-"]
            .iter()
            .any(|p| name.starts_with(p))
    };
    let mut failed = 0;
    for entry in std::fs::read_dir("/sys/class/net").context("listing links")? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if ours(&name) && !declared.contains(&name) {
            match ip(&["link", "delete", &name]) {
                Ok(()) => println!("removed link {name}"),
                Err(e) => {
                    eprintln!("bbhv: cannot remove link {name}: {e:#}");
                    failed += 1;
                }
            }
        }
    }
    // Firewall elements of tenants no generated unit declares (their
    // comment is the tenant's id).
    let generated = &paths.generator_dir;
    let listing = table_listing().unwrap_or_default();
    let mut gone = std::collections::BTreeSet::new();
    for piece in listing.split(" comment \"").skip(1) {
        let Some((id, _)) = piece.split_once('"') else {
            continue;
        };
        if let Some(id) = TenantId::new(id)
            && !generated.join(format!("tenant@{id}.service")).exists()
        {
            gone.insert(id);
        }
    }
    for id in gone {
        let found = firewall::tenant_elements(&listing, &id);
        match sys::nft(&firewall::down_script(&found)) {
            Ok(()) => {
                State::of(&id).remove();
                println!("removed the firewall elements of tenant {id}");
            }
            Err(e) => {
                eprintln!("bbhv: cannot remove the firewall elements of tenant {id}: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} objects could not be removed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    fn parse(args: &[&str]) -> Result<Command, String> {
        Cli::try_parse_from(std::iter::once("net").chain(args.iter().copied()))
            .map(|c| c.command)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn attach_takes_a_link_or_a_tap() {
        assert!(matches!(
            parse(&["attach", "--bridge", "bt-a", "--tap", "tv-abc"]),
            Ok(Command::Attach {
                tap: Some(_),
                link: None,
                ..
            })
        ));
        assert!(matches!(
            parse(&[
                "attach",
                "--bridge",
                "bt-a",
                "--link",
                "vw-abc",
                "--address",
                "10.0.0.2/24"
            ]),
            Ok(Command::Attach {
                link: Some(_),
                tap: None,
                ..
            })
        ));
        // Neither, both, or a tap with an address (the guest sets its own).
        for bad in [
            &["attach", "--bridge", "bt-a"][..],
            &[
                "attach", "--bridge", "bt-a", "--link", "vw-a", "--tap", "tv-a",
            ],
            &[
                "attach",
                "--bridge",
                "bt-a",
                "--tap",
                "tv-a",
                "--address",
                "10.0.0.2/24",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_our_taps_are_made() {
        let e = attach_tap("bt-a", "vw-abc").unwrap_err().to_string();
        assert!(e.contains("is not a VM tap"), "{e}");
        let e = attach_tap("bt-a", "tv-a;rm").unwrap_err().to_string();
        assert!(e.contains("is not an interface name of ours"), "{e}");
        let e = attach_tap("bt-a", "tv-this-is-far-too-long")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not an interface name of ours"), "{e}");
    }
}
