//! The edges: running `nft`, `tc` and `ip`, waiting for a link. Each
//! failure names the command and what it printed.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{link} did not appear within {seconds} s: {hint}")]
    NoLink {
        link: String,
        seconds: u64,
        hint: &'static str,
    },
}

pub const NFT: &str = "/usr/sbin/nft";
pub const TC: &str = "/usr/sbin/tc";
pub const IP: &str = "/usr/sbin/ip";

/// Runs `program args...` with `input` on stdin; its stderr becomes the error.
pub fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<String, SysError> {
    let command = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SysError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if let Some(text) = input {
        let mut stdin = child.stdin.take().expect("piped");
        // A write error shows up as the command's failure below.
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|source| SysError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    if !out.status.success() {
        return Err(SysError::Failed {
            command,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Applies an nft script as one transaction.
pub fn nft(script: &str) -> Result<(), SysError> {
    run(NFT, &["-f", "-"], Some(script)).map(drop)
}

pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Waits for networkd to have made `link`.
pub fn wait_for_link(link: &str, timeout: Duration) -> Result<(), SysError> {
    let start = Instant::now();
    while !link_exists(link) {
        if start.elapsed() >= timeout {
            return Err(SysError::NoLink {
                link: format!("link {link}"),
                seconds: timeout.as_secs(),
                hint: "systemd-networkd has not made it: is it running, and was it reloaded \
                       (`networkctl reload`, which `bbhv reload` runs) since the tenant was added?",
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Waits until every address can be bound: networkd has put it on the
/// bridge, and an IPv6 address has finished duplicate address detection.
pub fn wait_for_addresses(
    addresses: &[std::net::IpAddr],
    timeout: Duration,
) -> Result<(), SysError> {
    let start = Instant::now();
    for &address in addresses {
        while std::net::UdpSocket::bind((address, 0)).is_err() {
            if start.elapsed() >= timeout {
                return Err(SysError::NoLink {
                    link: address.to_string(),
                    seconds: timeout.as_secs(),
                    hint: "the gateway address is not on the bridge (or still tentative): \
                           see `networkctl status` for the bridge",
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// Sends everything the bridge passes up to the host (the tenant's routed
/// egress) through the IFB, whose qdisc (networkd's) shapes it. One `tc`
/// process (`-batch`): each `tc` that names a device first dumps every link
/// of the host, so at 1,000 tenants (4,000 links) the number of `tc` runs is
/// what costs. `replace_existing` removes an ingress qdisc of an earlier
/// `up` first.
pub fn redirect_ingress(bridge: &str, ifb: &str, replace_existing: bool) -> Result<(), SysError> {
    if replace_existing {
        remove_ingress(bridge);
    }
    let mut batch = String::new();
    batch.push_str(&format!(
        "qdisc add dev {bridge} handle ffff: ingress\n\
         filter add dev {bridge} parent ffff: protocol all prio 1 u32 match u32 0 0 \
         action mirred egress redirect dev {ifb}\n"
    ));
    // u32 matching everything: every kernel has it (matchall is often not built).
    run(TC, &["-batch", "-"], Some(&batch)).map(drop)
}

/// Removes what [`redirect_ingress`] added; a missing link or qdisc is fine.
pub fn remove_ingress(bridge: &str) {
    if link_exists(bridge) {
        let _ = run(TC, &["qdisc", "del", "dev", bridge, "ingress"], None);
    }
}
