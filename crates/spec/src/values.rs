//! The typed values of a validated tenant. Each is parsed from the text of
//! metadata.json once; holding one means it is valid, and it renders itself
//! in the form systemd and networkd read. Errors are messages for a
//! diagnostic: what is wrong and what is allowed (the caller adds the key).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bbhv_unit::Token;
pub use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::names::is_name;

/// A size in bytes, written with base-1024 suffixes (`4G`), as systemd reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(u64);

impl Size {
    /// `1234`, `4K`, `512M`, `4G`, `1T`.
    pub fn parse(text: &str) -> Result<Size, String> {
        const UNITS: [(u8, u64); 4] = [
            (b'K', 1 << 10),
            (b'M', 1 << 20),
            (b'G', 1 << 30),
            (b'T', 1 << 40),
        ];
        match scaled(text, &UNITS) {
            Scaled::Value(n) => Ok(Size(n)),
            Scaled::Overflow => Err(format!("{text:?} is too large; allowed: at most 16E")),
            Scaled::Invalid => Err(format!(
                "{text:?} is not a size; allowed: bytes, or a number with K, M, G or T"
            )),
        }
    }

    pub fn bytes(self) -> u64 {
        self.0
    }

    /// The shortest exact form: `4G` for 4 GiB, `1536M` for 1.5 GiB.
    pub fn token(self) -> Token {
        Token::new(self.to_string()).expect("digits and a suffix are a token")
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
            if self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{suffix}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// A share of one CPU in percent (`CPUQuota=200%` is two CPUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent(u32);

impl Percent {
    pub fn parse(text: &str) -> Result<Percent, String> {
        text.strip_suffix('%')
            .filter(|d| !d.starts_with('+'))
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|&n| n > 0)
            .map(Percent)
            .ok_or_else(|| {
                format!(
                    "{text:?} is not a percentage; allowed: a whole number then %, like \"200%\""
                )
            })
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A rate in bits per second, written with base-1000 suffixes (`100M`), as
/// networkd's traffic control reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(u64);

impl Rate {
    pub fn parse(text: &str) -> Result<Rate, String> {
        const UNITS: [(u8, u64); 3] = [(b'K', 1_000), (b'M', 1_000_000), (b'G', 1_000_000_000)];
        match scaled(text, &UNITS) {
            Scaled::Value(n) => Ok(Rate(n)),
            Scaled::Overflow | Scaled::Invalid => Err(format!(
                "{text:?} is not a rate; allowed: bits per second, or a number with K, M or G"
            )),
        }
    }

    pub fn bits_per_second(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (suffix, factor) in [("G", 1_000_000_000), ("M", 1_000_000), ("K", 1_000)] {
            if self.0.is_multiple_of(factor) {
                return write!(f, "{}{suffix}", self.0 / factor);
            }
        }
        write!(f, "{}", self.0)
    }
}

enum Scaled {
    Value(u64),
    Overflow,
    Invalid,
}

/// A positive whole number with an optional unit suffix from `units`.
fn scaled(text: &str, units: &[(u8, u64)]) -> Scaled {
    let (digits, factor) = match units
        .iter()
        .find(|(suffix, _)| text.as_bytes().last() == Some(suffix))
    {
        Some(&(_, factor)) => (&text[..text.len() - 1], factor),
        None => (text, 1),
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && !digits.starts_with('+') => n
            .checked_mul(factor)
            .map_or(Scaled::Overflow, Scaled::Value),
        _ => Scaled::Invalid,
    }
}

/// The tenant's gateway on its bridge: an address with the prefix of its subnet.
pub fn parse_ipv4_interface(text: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = parse_net(text, "IPv4", 1)?;
    Ok(net)
}

/// Like [`parse_ipv4_interface`], for IPv6 (prefix 1 to 128).
pub fn parse_ipv6_interface(text: &str) -> Result<Ipv6Net, String> {
    let net: Ipv6Net = parse_net(text, "IPv6", 1)?;
    Ok(net)
}

/// A route (WireGuard `allowedIps`): prefix 0 means everything.
pub fn parse_route(text: &str) -> Result<IpNet, String> {
    if text.contains(':') {
        parse_net::<Ipv6Net>(text, "IPv6", 0).map(IpNet::V6)
    } else {
        parse_net::<Ipv4Net>(text, "IPv4", 0).map(IpNet::V4)
    }
}

fn parse_net<N: std::str::FromStr>(text: &str, family: &str, min: u8) -> Result<N, String> {
    let (addr, prefix) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected ADDRESS/PREFIX"))?;
    let addr_ok = match family {
        "IPv4" => addr.parse::<Ipv4Addr>().is_ok(),
        _ => addr.parse::<Ipv6Addr>().is_ok(),
    };
    if !addr_ok {
        return Err(format!("{text:?}: {addr:?} is not an {family} address"));
    }
    let max = if family == "IPv4" { 32 } else { 128 };
    let bad_prefix = || format!("{text:?}: the prefix length is {min} to {max}");
    if prefix.parse::<u8>().ok().is_none_or(|p| p < min || p > max) || prefix.starts_with('+') {
        return Err(bad_prefix());
    }
    text.parse::<N>().map_err(|_| bad_prefix())
}

/// A DNS server address.
pub fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IPv4 or IPv6 address"))
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// What a published port of this protocol claims on the host.
    pub fn claim_kind(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP port",
            Protocol::Udp => "UDP port",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A published port: `HOST:CONTAINER[/tcp|/udp]`, ports 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    pub host: u16,
    pub container: u16,
    pub protocol: Protocol,
}

impl PortMapping {
    pub fn parse(text: &str) -> Result<PortMapping, String> {
        let (ports, protocol) = match text.split_once('/') {
            None => (text, Protocol::Tcp),
            Some((ports, "tcp")) => (ports, Protocol::Tcp),
            Some((ports, "udp")) => (ports, Protocol::Udp),
            Some(_) => return Err(format!("{text:?}: the protocol is tcp or udp")),
        };
        let (host, container) = ports
            .split_once(':')
            .ok_or_else(|| format!("{text:?}: expected HOST:CONTAINER"))?;
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|&n| n > 0 && !p.starts_with('+'))
                .ok_or_else(|| format!("{text:?}: ports are 1 to 65535"))
        };
        Ok(PortMapping {
            host: port(host)?,
            container: port(container)?,
            protocol,
        })
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.container, self.protocol)
    }
}

/// A WireGuard peer's endpoint: `host:port` or `[v6]:port`, port 1 to 65535.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?}: expected HOST:PORT"))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0 && !port.starts_with('+'))
            .ok_or_else(|| format!("{text:?} has no port between 1 and 65535"))?;
        let valid_host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
            None => {
                !host.is_empty()
                    && host.len() <= 253
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            }
        };
        if !valid_host {
            return Err(format!(
                "{text:?}: {host:?} is not a host name or [IPv6] address"
            ));
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Declares a newtype over a string whose every value passed `$check`.
macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $check:expr, $allowed:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<$name, String> {
                let check: fn(&str) -> bool = $check;
                if check(text) {
                    Ok($name(text.to_owned()))
                } else {
                    Err(format!("{text:?} is not allowed; allowed: {}", $allowed))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_name!(
    /// A container or VM name: the tenant id's rule.
    WorkloadName,
    is_name,
    "a lowercase letter, then up to 30 lowercase letters, digits or dashes, not ending in a dash"
);
checked_name!(
    /// An image or extension name (`images/<name>.json`, `extensions/<name>/`).
    ImageName,
    |s| {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 64
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter().all(|&c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
            })
    },
    "1 to 64 of lowercase letters, digits, '.', '_', '-', starting with a letter or digit"
);
checked_name!(
    /// A systemd credential name.
    CredentialName,
    |s| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    },
    "1 to 64 of letters, digits, '_', '.', '-'"
);
checked_name!(
    /// An environment variable name.
    EnvName,
    |s| {
        let b = s.as_bytes();
        (1..=128).contains(&b.len())
            && (b[0].is_ascii_alphabetic() || b[0] == b'_')
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
    },
    "letters, digits and '_', not starting with a digit, at most 128"
);
checked_name!(
    /// A WireGuard public key: 32 bytes in base64 (44 characters).
    WireGuardKey,
    |s| {
        let b = s.as_bytes();
        b.len() == 44
            && b[43] == b'='
            && b[..43]
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
            && b"AEIMQUYcgkosw480".contains(&b[42])
    },
    "44 characters of base64, a 32-byte key"
);

/// A command line: the program (an absolute path) and its arguments, none
/// with a NUL (no program can receive one), a CR or a LF (a `.nspawn`
/// `Parameters=` line cannot carry them: nspawn reads it without escapes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command(Vec<String>);

impl Command {
    /// Every bad argument: its index and what is wrong.
    pub fn parse(argv: &[String]) -> Result<Command, Vec<(usize, String)>> {
        let Some(program) = argv.first() else {
            return Err(vec![(
                0,
                "the command is empty; allowed: a program and its arguments".into(),
            )]);
        };
        let mut problems = Vec::new();
        if !program.starts_with('/') {
            problems.push((0, format!("{program:?} must be an absolute path")));
        }
        for (i, arg) in argv.iter().enumerate() {
            if arg.contains('\0') {
                problems.push((
                    i,
                    "contains a NUL character, which no program can receive".into(),
                ));
            } else if arg.contains(['\n', '\r']) {
                problems.push((
                    i,
                    format!("{arg:?} contains a line break, which a .nspawn file cannot carry; allowed: any text on one line"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(Command(argv.to_vec()))
        } else {
            Err(problems)
        }
    }

    pub fn argv(&self) -> &[String] {
        &self.0
    }
}

/// An environment value: any text but control characters other than tab
/// (systemd refuses the others but newline, and a `.nspawn` `Environment=`
/// line, read without escapes, cannot carry a newline).
pub fn check_env_value(value: &str) -> Result<(), String> {
    match value.chars().find(|&c| c.is_control() && c != '\t') {
        Some(_) => Err(format!(
            "{value:?} contains a control character; allowed: any text on one line, with tab as the only control character"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip_in_their_shortest_form() {
        for (text, bytes, shown) in [
            ("4G", 4 << 30, "4G"),
            ("1536M", 1536 << 20, "1536M"),
            ("2048M", 2 << 30, "2G"),
            ("1000", 1000, "1000"),
            ("1024", 1024, "1K"),
        ] {
            let size = Size::parse(text).unwrap();
            assert_eq!(size.bytes(), bytes, "{text}");
            assert_eq!(size.to_string(), shown, "{text}");
        }
        for bad in ["", "0", "G", "4g", "-1", "+1", "99999999999T", "1.5G"] {
            assert!(Size::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_and_endpoints() {
        let p = PortMapping::parse("8080:80").unwrap();
        assert_eq!((p.host, p.container, p.protocol), (8080, 80, Protocol::Tcp));
        assert_eq!(
            PortMapping::parse("53:53/udp").unwrap().protocol,
            Protocol::Udp
        );
        for bad in ["0:80", "80", "80:65536", "80:80/sctp", "+1:80"] {
            assert!(PortMapping::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Endpoint::parse("[fd00::1]:51820").unwrap().port, 51820);
        for bad in ["vpn.example", "vpn.example:0", "[zz]:1", ":1"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn networks() {
        let gw = parse_ipv4_interface("10.0.0.1/24").unwrap();
        assert_eq!(gw.addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(gw.network(), Ipv4Addr::new(10, 0, 0, 0));
        assert!(parse_ipv4_interface("10.0.0.1/0").is_err());
        assert!(parse_ipv4_interface("10.0.0.1/33").is_err());
        assert!(parse_ipv4_interface("fd00::1/64").is_err());
        assert!(parse_route("0.0.0.0/0").is_ok());
        assert!(parse_route("::/0").is_ok());
    }

    #[test]
    fn rates() {
        assert_eq!(Rate::parse("100M").unwrap().bits_per_second(), 100_000_000);
        assert_eq!(Rate::parse("1500K").unwrap().to_string(), "1500K");
        assert!(Rate::parse("0").is_err());
    }
}
