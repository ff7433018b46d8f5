//! The typed values of host.toml. Each is parsed from its text once; an
//! error is a message saying what is wrong and what is allowed (the caller
//! adds the file and key).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// Interface name prefixes the project makes links with (`bt-` bridge,
/// `vt-` VLAN, `wt-` WireGuard, `et-` egress IFB, `vw-` a workload's veth,
/// `tv-` a VM's tap): an uplink may not look like one of them.
pub const RESERVED_PREFIXES: [&str; 6] = ["bt-", "vt-", "wt-", "et-", "vw-", "tv-"];

/// A network interface name as the kernel takes it: 1 to 15 bytes, not `.`
/// or `..`, no `/`, `:`, whitespace or control character; and none of the
/// project's own prefixes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceName(String);

impl InterfaceName {
    pub fn parse(text: &str) -> Result<InterfaceName, String> {
        let allowed = "allowed: 1 to 15 bytes without '/', ':', whitespace or control \
                       characters, not \".\" or \"..\"";
        if text.is_empty() || text.len() > 15 || text == "." || text == ".." {
            return Err(format!("{text:?} is not an interface name; {allowed}"));
        }
        if text
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(format!("{text:?} is not an interface name; {allowed}"));
        }
        if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| text.starts_with(*p)) {
            return Err(format!(
                "{text:?} starts with {prefix:?}, a prefix the project names its own links \
                 with; allowed: an interface name not starting with any of {}",
                RESERVED_PREFIXES.join(", ")
            ));
        }
        Ok(InterfaceName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The file name of a `.network` in networkd's search path, such as
/// `10-uplink.network`: letters, digits and `._@+-`, ending in `.network`,
/// not starting with `.` or with `bbhv-` (the generator owns those names in
/// `/run/systemd/network` and removes the ones it did not write).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetworkFileName(String);

impl NetworkFileName {
    pub fn parse(text: &str) -> Result<NetworkFileName, String> {
        let allowed = "allowed: a plain file name of letters, digits and '._@+-' ending in \
                       \".network\", at most 200 bytes, not starting with '.' or \"bbhv-\", \
                       like \"10-uplink.network\"";
        let stem = text.strip_suffix(".network").unwrap_or("");
        let ok = !stem.is_empty()
            && text.len() <= 200
            && !text.starts_with('.')
            && !text.starts_with("bbhv-")
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b));
        if ok {
            Ok(NetworkFileName(text.to_owned()))
        } else {
            Err(format!("{text:?} is not a .network file name; {allowed}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NetworkFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the tenant repository is fetched from: a `file://` (absolute
/// path), `ssh://`, `https://` or `git://` URL, without whitespace or
/// control characters. `git://` has no authentication: like every
/// transport, it only carries commits, and the sync applies none that a
/// trusted key did not sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote(String);

impl Remote {
    pub fn parse(text: &str) -> Result<Remote, String> {
        let allowed = "allowed: a file:///absolute/path, ssh://[user@]host[:port]/path, \
                       https://host/path or git://host[:port]/path URL";
        let rest = ["file://", "ssh://", "https://", "git://"]
            .iter()
            .find_map(|scheme| text.strip_prefix(scheme).map(|rest| (*scheme, rest)));
        let ok = match rest {
            Some(("file://", path)) => path.starts_with('/') && path.len() > 1,
            Some((_, rest)) => {
                let host = rest.split('/').next().unwrap_or("");
                !host.is_empty() && !host.starts_with('-')
            }
            None => false,
        } && !text.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Remote(text.to_owned()))
        } else {
            Err(format!("{text:?} is not a remote; {allowed}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A branch name as `git check-ref-format --branch` accepts it: no control
/// characters, space or any of `~^:?*[\`, no `..` or `@{`, no component
/// starting with `.` or ending in `.lock`, not starting with `-` or `/`,
/// not ending with `/` or `.`, no `//`, not `@`.
pub fn parse_branch(text: &str) -> Result<String, String> {
    let bad = text.is_empty()
        || text.len() > 255
        || text == "@"
        || text.starts_with('-')
        || text.starts_with('/')
        || text.ends_with('/')
        || text.ends_with('.')
        || text.contains("..")
        || text.contains("@{")
        || text.contains("//")
        || text
            .chars()
            .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c))
        || text
            .split('/')
            .any(|part| part.starts_with('.') || part.ends_with(".lock"));
    if bad {
        Err(format!(
            "{text:?} is not a branch name; allowed: a git ref name such as \"main\" or \
             \"release/2026\" (no spaces, control characters, ~^:?*[\\, \"..\", \"@{{\" or \
             \"//\"; no part starting with '.' or ending in \".lock\")"
        ))
    } else {
        Ok(text.to_owned())
    }
}

/// A time span as systemd writes one: `60s`, `2min`, `1h 30min`, `500ms`; a
/// bare number is seconds. Above zero, at most a week.
pub fn parse_timespan(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "{text:?} is not a time span; allowed: a positive time like \"60s\", \"2min\", \
             \"1h 30min\" (units ms, s, sec, m, min, h, hr, d; a bare number is seconds), \
             at most 7d"
        )
    };
    const UNITS: [(&str, u64); 11] = [
        ("ms", 1),
        ("msec", 1),
        ("s", 1_000),
        ("sec", 1_000),
        ("m", 60_000),
        ("min", 60_000),
        ("h", 3_600_000),
        ("hr", 3_600_000),
        ("d", 86_400_000),
        ("day", 86_400_000),
        ("days", 86_400_000),
    ];
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(invalid());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = rest[digits..].trim_start();
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let factor = if letters == 0 {
            1_000
        } else {
            UNITS
                .iter()
                .find(|(unit, _)| *unit == &rest[..letters])
                .map(|&(_, f)| f)
                .ok_or_else(invalid)?
        };
        rest = rest[letters..].trim_start();
        total = n
            .checked_mul(factor)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(invalid)?;
    }
    if total == 0 || total > 7 * 86_400_000 {
        return Err(invalid());
    }
    Ok(Duration::from_millis(total))
}

/// A subnet the host uses: `address/prefix` (host bits may be set; the
/// subnet is what counts).
pub(crate) fn parse_subnet(text: &String) -> Result<IpNet, String> {
    text.parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
        format!(
            "{text:?} is not a subnet; allowed: ADDRESS/PREFIX, like \"192.168.1.0/24\" or \
             \"fd00:1::/64\""
        )
    })
}

/// An absolute path without control characters.
pub(crate) fn parse_absolute_path(text: &String) -> Result<PathBuf, String> {
    if text.starts_with('/') && !text.chars().any(char::is_control) {
        Ok(PathBuf::from(text))
    } else {
        Err(format!(
            "{text:?} is not an absolute path; allowed: a path starting with '/', without \
             control characters"
        ))
    }
}

/// A host name: dot-separated labels of 1 to 63 letters, digits and `-`,
/// not starting or ending with `-`; at most 253 bytes.
pub(crate) fn parse_hostname(text: &String) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(text.clone())
    } else {
        Err(format!(
            "{text:?} is not a host name; allowed: labels of letters, digits and '-' \
             separated by '.', like \"hv1\" or \"hv1.example.org\""
        ))
    }
}
