//! `/etc/bitbuilder/host.toml`: the host's own settings, parsed once into
//! typed, validated values. Every problem names the file, the position, the
//! key (dotted, `network.uplink`), the value and what is allowed. A missing
//! file means every default. Pure but for [`load`].
//!
//! ```toml
//! hostname = "hv1"
//! [network]
//! uplink = "eth0"
//! uplink_network = "10-uplink.network"
//! dns_upstream = ["192.0.2.53"]
//! host_subnets = ["192.168.1.0/24"]
//! [sync]
//! remote = "file:///srv/tenants.git"
//! branch = "main"
//! interval = "60s"
//! health_deadline = "2min"
//! keep_generations = 10
//! [trust]
//! allowed_signers = "/etc/bitbuilder/allowed_signers"
//! image_signers = "/etc/bitbuilder/image_signers"
//! [boot]
//! esp = "/efi"
//! ```
//!
//! `docs/host-config.md` documents every key.

pub mod boot;
mod values;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use ipnet::IpNet;
pub use values::{
    InterfaceName, NetworkFileName, RESERVED_PREFIXES, Remote, parse_branch, parse_timespan,
};

/// Where the host's settings are (fixed).
pub const HOST_CONFIG: &str = "/etc/bitbuilder/host.toml";
/// The environment variable that moves [`HOST_CONFIG`] (tests).
pub const HOST_CONFIG_ENV: &str = "BITBUILDER_HOST_CONFIG";
/// The default of `trust.allowed_signers`.
pub const ALLOWED_SIGNERS: &str = "/etc/bitbuilder/allowed_signers";
/// The default of `trust.image_signers` (images and extensions, #11).
pub const IMAGE_SIGNERS: &str = "/etc/bitbuilder/image_signers";

/// The whole file, validated. `Default` is what a missing file means.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostConfig {
    /// `hostname`: the name this host goes by in `hosts/<hostname>.json`;
    /// `None`: the machine's hostname.
    pub hostname: Option<String>,
    pub network: Network,
    pub sync: Sync,
    pub trust: Trust,
    pub boot: boot::Boot,
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Network {
    /// The interface tenant traffic leaves by (and VLANs sit on).
    pub uplink: Option<InterfaceName>,
    /// The `.network` file that configures the uplink: tenants' VLANs are
    /// listed in a drop-in for it, since networkd makes a VLAN only when
    /// its parent's `.network` names it with `VLAN=`.
    pub uplink_network: Option<NetworkFileName>,
    /// Where the tenants' DNS servers forward; empty: the host's resolvers
    /// (`/run/systemd/resolve/resolv.conf`).
    pub dns_upstream: Vec<IpAddr>,
    /// Subnets the host itself uses: no tenant subnet may overlap them.
    pub host_subnets: Vec<IpNet>,
}

/// `[sync]`: where the tenant repository comes from and how it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sync {
    /// `None`: no remote configured, nothing to sync.
    pub remote: Option<Remote>,
    pub branch: String,
    pub interval: Duration,
    pub health_deadline: Duration,
    pub keep_generations: u32,
}

impl Default for Sync {
    fn default() -> Sync {
        Sync {
            remote: None,
            branch: "main".into(),
            interval: Duration::from_secs(60),
            health_deadline: Duration::from_secs(120),
            keep_generations: 10,
        }
    }
}

/// `[trust]`: who may sign the commits a host applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// git's SSH allowed-signers file.
    pub allowed_signers: PathBuf,
    /// The keys images and extensions may be signed with (the same
    /// allowed-signers format; signatures in namespace `bbhv-image`).
    pub image_signers: PathBuf,
}

impl Default for Trust {
    fn default() -> Trust {
        Trust {
            allowed_signers: ALLOWED_SIGNERS.into(),
            image_signers: IMAGE_SIGNERS.into(),
        }
    }
}

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct HostError {
    /// The file as named (`/etc/bitbuilder/host.toml`).
    pub file: String,
    /// 1-based line and column (in characters); 0 when the problem is the
    /// file as a whole (it cannot be read).
    pub line: usize,
    pub column: usize,
    /// The dotted key (`network.uplink`, `network.host_subnets[1]`); empty
    /// for the file as a whole.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Reads `path`; a file that does not exist is every default. Anything else
/// that stops the read (a directory, no permission, not UTF-8) is an error.
pub fn load(path: &Path) -> Result<HostConfig, Vec<HostError>> {
    let file = path.display().to_string();
    let whole = |message: String| {
        vec![HostError {
            file: file.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            message,
        }]
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HostConfig::default()),
        Err(e) => return Err(whole(format!("cannot be read: {e}"))),
    };
    if bytes.len() > MAX_SIZE {
        return Err(whole(format!(
            "is {} bytes; allowed: at most {MAX_SIZE}",
            bytes.len()
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| whole("is not UTF-8".into()))?;
    HostConfig::parse(&text, &file)
}

/// The largest host.toml read (it is a few lines).
pub const MAX_SIZE: usize = 1 << 20;

impl HostConfig {
    /// The path to read: `$BITBUILDER_HOST_CONFIG` when set and not empty,
    /// else [`HOST_CONFIG`].
    pub fn path_from_lookup(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
        lookup(HOST_CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| HOST_CONFIG.into(), PathBuf::from)
    }

    /// Parses the text of `file`: every problem, or the settings.
    pub fn parse(text: &str, file: &str) -> Result<HostConfig, Vec<HostError>> {
        let lines = LineIndex::new(text);
        let toml_error = |e: &toml::de::Error, key: String| {
            let (line, column) = e.span().map_or((0, 0), |s| lines.position(s.start));
            HostError {
                file: file.to_owned(),
                line,
                column,
                key,
                message: printable(e.message().trim_end()),
            }
        };
        let deserializer =
            toml::Deserializer::parse(text).map_err(|e| vec![toml_error(&e, String::new())])?;
        let raw: Raw = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = dotted(e.path());
            vec![toml_error(e.inner(), key)]
        })?;

        let mut check = Check {
            file,
            lines: &lines,
            errors: Vec::new(),
        };
        let defaults = HostConfig::default();
        let hostname = check.one("hostname", raw.hostname, values::parse_hostname);
        let n = raw.network;
        let network = Network {
            uplink: check.one("network.uplink", n.uplink, |t| InterfaceName::parse(t)),
            uplink_network: check.one("network.uplink_network", n.uplink_network, |t| {
                NetworkFileName::parse(t)
            }),
            dns_upstream: check.each("network.dns_upstream", n.dns_upstream, |t| {
                t.parse::<IpAddr>().map_err(|_| {
                    format!("{t:?} is not an address; allowed: IPv4 or IPv6 addresses")
                })
            }),
            host_subnets: check.each("network.host_subnets", n.host_subnets, values::parse_subnet),
        };
        let s = raw.sync;
        let sync = Sync {
            remote: check.one("sync.remote", s.remote, |t| Remote::parse(t)),
            branch: check
                .one("sync.branch", s.branch, |t| parse_branch(t))
                .unwrap_or(defaults.sync.branch),
            interval: check
                .one("sync.interval", s.interval, |t| parse_timespan(t))
                .unwrap_or(defaults.sync.interval),
            health_deadline: check
                .one("sync.health_deadline", s.health_deadline, |t| {
                    parse_timespan(t)
                })
                .unwrap_or(defaults.sync.health_deadline),
            keep_generations: check
                .one("sync.keep_generations", s.keep_generations, |&n| {
                    u32::try_from(n)
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| format!("{n} is out of range; allowed: 1 to 1000"))
                })
                .unwrap_or(defaults.sync.keep_generations),
        };
        let trust = Trust {
            allowed_signers: check
                .one("trust.allowed_signers", raw.trust.allowed_signers, |t| {
                    values::parse_absolute_path(t)
                })
                .unwrap_or(defaults.trust.allowed_signers),
            image_signers: check
                .one("trust.image_signers", raw.trust.image_signers, |t| {
                    values::parse_absolute_path(t)
                })
                .unwrap_or(defaults.trust.image_signers),
        };
        let boot = boot::check(&mut check, raw.boot);
        if check.errors.is_empty() {
            Ok(HostConfig {
                hostname,
                network,
                sync,
                trust,
                boot,
            })
        } else {
            Err(check.errors)
        }
    }
}

/// `network.dns_upstream[1]`: the path serde took, without the private
/// field `Spanned` deserializes through.
fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut key = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Map { key: k } if k.starts_with("$__serde_spanned") => {}
            Segment::Map { key: k } | Segment::Enum { variant: k } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(&key_segment(k));
            }
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Unknown => {}
        }
    }
    key
}

/// A key as TOML writes it: bare when it can be, else quoted with its
/// control characters escaped. An unknown key is the file's text: it must
/// not put a line break or a terminal escape into a message.
fn key_segment(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        return k.to_owned();
    }
    let mut out = String::from("\"");
    for c in k.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A message that may quote the file's text, with its control characters
/// escaped (one line, no terminal escapes).
fn printable(message: &str) -> String {
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The file as TOML gives it: every value with its position.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    hostname: Option<Spanned<String>>,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    trust: RawTrust,
    #[serde(default)]
    boot: boot::RawBoot,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    uplink: Option<Spanned<String>>,
    uplink_network: Option<Spanned<String>>,
    #[serde(default)]
    dns_upstream: Vec<Spanned<String>>,
    #[serde(default)]
    host_subnets: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    remote: Option<Spanned<String>>,
    branch: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    health_deadline: Option<Spanned<String>>,
    keep_generations: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrust {
    allowed_signers: Option<Spanned<String>>,
    image_signers: Option<Spanned<String>>,
}

/// Collects every bad value, each at its position.
struct Check<'a> {
    file: &'a str,
    lines: &'a LineIndex<'a>,
    errors: Vec<HostError>,
}

impl Check<'_> {
    fn one<R, T>(
        &mut self,
        key: &str,
        raw: Option<Spanned<R>>,
        parse: impl FnOnce(&R) -> Result<T, String>,
    ) -> Option<T> {
        let raw = raw?;
        match parse(raw.get_ref()) {
            Ok(value) => Some(value),
            Err(message) => {
                let (line, column) = self.lines.position(raw.span().start);
                self.errors.push(HostError {
                    file: self.file.to_owned(),
                    line,
                    column,
                    key: key.to_owned(),
                    message: printable(&message),
                });
                None
            }
        }
    }

    fn each<R, T>(
        &mut self,
        key: &str,
        raw: Vec<Spanned<R>>,
        parse: impl Fn(&R) -> Result<T, String>,
    ) -> Vec<T> {
        raw.into_iter()
            .enumerate()
            .filter_map(|(i, r)| self.one(&format!("{key}[{i}]"), Some(r), &parse))
            .collect()
    }
}

/// Byte offsets to 1-based line and column (in characters).
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }
}

#[cfg(test)]
mod tests;
