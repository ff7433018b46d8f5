//! The typed values of `bbhv_spec::values` on arbitrary text: each parser
//! gets the whole input.
//!
//! Asserts: they never panic, what they accept is in range, and printed it
//! parses back to the same value:
//! - `Size`: more than 0 bytes, written as digits with an optional `K`,
//!   `M`, `G` or `T`; `Display` (and `token()`) is the shortest exact form:
//!   it parses back to the same size, every exact form (`4294967296`,
//!   `4194304K`, `4096M`, `4G`) parses to it too, and none is shorter;
//! - `Rate`: likewise with base-1000 `K`, `M`, `G`;
//! - `Percent`: more than 0, digits then `%`; `N%` parses back;
//! - `PortMapping`: ports 1 to 65535; `Display` (`80:80/tcp`) parses back,
//!   and a TCP mapping reads the same without `/tcp`;
//! - `parse_ipv4_interface` / `parse_ipv6_interface`: prefix 1 to 32 / 1 to
//!   128, the address kept as written (a gateway, not the network); the
//!   `ipnet` `Display` parses back, and `parse_route` reads the same text as
//!   the same net;
//! - `parse_route`: prefix 0 to 32 / 0 to 128; `Display` parses back;
//! - `parse_ip`: `Display` parses back;
//! - `Endpoint`: port 1 to 65535, a non-empty host; `Display` parses back;
//! - the checked names (`WorkloadName`, `ImageName`, `CredentialName`,
//!   `EnvName`, `WireGuardKey`) print as the text they were parsed from.

#![no_main]

use bbhv_spec::values::{
    CredentialName, Endpoint, EnvName, ImageName, IpNet, Percent, PortMapping, Protocol, Rate,
    Size, WireGuardKey, WorkloadName, parse_ip, parse_ipv4_interface, parse_ipv6_interface,
    parse_route,
};
use libfuzzer_sys::fuzz_target;

/// `text` is digits, then one of `suffixes` or nothing.
fn digits_with_suffix(text: &str, suffixes: &str) -> bool {
    let digits = text.strip_suffix(|c| suffixes.contains(c)).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Every exact form of `n` with these suffixes (plain digits included).
fn exact_forms(n: u64, suffixes: &[(&str, u64)]) -> Vec<String> {
    let mut forms = vec![n.to_string()];
    for &(suffix, factor) in suffixes {
        if n % factor == 0 {
            forms.push(format!("{}{suffix}", n / factor));
        }
    }
    forms
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(size) = Size::parse(s) {
        assert!(size.bytes() > 0, "{s:?}");
        assert!(digits_with_suffix(s, "KMGT"), "{s:?} accepted as {size:?}");
        let shown = size.to_string();
        assert_eq!(size.token().as_str(), shown, "{s:?}");
        assert_eq!(Size::parse(&shown), Ok(size), "{s:?} shown as {shown}");
        let forms = exact_forms(
            size.bytes(),
            &[
                ("K", 1 << 10),
                ("M", 1 << 20),
                ("G", 1 << 30),
                ("T", 1 << 40),
            ],
        );
        for form in forms {
            assert_eq!(Size::parse(&form), Ok(size), "{s:?} as {form}");
            assert!(
                shown.len() <= form.len(),
                "{s:?} shown as {shown}, but {form} is shorter"
            );
        }
    }

    if let Ok(rate) = Rate::parse(s) {
        assert!(rate.bits_per_second() > 0, "{s:?}");
        assert!(digits_with_suffix(s, "KMG"), "{s:?} accepted as {rate:?}");
        let shown = rate.to_string();
        assert_eq!(Rate::parse(&shown), Ok(rate), "{s:?} shown as {shown}");
        let forms = exact_forms(
            rate.bits_per_second(),
            &[("K", 1_000), ("M", 1_000_000), ("G", 1_000_000_000)],
        );
        for form in forms {
            assert_eq!(Rate::parse(&form), Ok(rate), "{s:?} as {form}");
            assert!(
                shown.len() <= form.len(),
                "{s:?} shown as {shown}, but {form} is shorter"
            );
        }
    }

    if let Ok(p) = Percent::parse(s) {
        assert!(p.get() > 0, "{s:?}");
        assert!(digits_with_suffix(s, "%") && s.ends_with('%'), "{s:?}");
        assert_eq!(Percent::parse(&format!("{}%", p.get())), Ok(p), "{s:?}");
    }

    if let Ok(m) = PortMapping::parse(s) {
        assert!(m.host > 0 && m.container > 0, "{s:?}: {m:?}");
        let shown = m.to_string();
        assert_eq!(PortMapping::parse(&shown), Ok(m), "{s:?} shown as {shown}");
        if m.protocol == Protocol::Tcp {
            let short = format!("{}:{}", m.host, m.container);
            assert_eq!(PortMapping::parse(&short), Ok(m), "{s:?} as {short}");
        }
    }

    if let Ok(net) = parse_ipv4_interface(s) {
        assert!((1..=32).contains(&net.prefix_len()), "{s:?}");
        let addr = s.split_once('/').map(|(a, _)| a).unwrap_or_default();
        assert_eq!(addr.parse(), Ok(net.addr()), "{s:?}: the gateway moved");
        let shown = net.to_string();
        assert_eq!(
            parse_ipv4_interface(&shown),
            Ok(net),
            "{s:?} shown as {shown}"
        );
        assert_eq!(parse_route(s), Ok(IpNet::V4(net)), "{s:?} as a route");
    }
    if let Ok(net) = parse_ipv6_interface(s) {
        assert!((1..=128).contains(&net.prefix_len()), "{s:?}");
        let addr = s.split_once('/').map(|(a, _)| a).unwrap_or_default();
        assert_eq!(addr.parse(), Ok(net.addr()), "{s:?}: the gateway moved");
        let shown = net.to_string();
        assert_eq!(
            parse_ipv6_interface(&shown),
            Ok(net),
            "{s:?} shown as {shown}"
        );
        assert_eq!(parse_route(s), Ok(IpNet::V6(net)), "{s:?} as a route");
    }
    if let Ok(route) = parse_route(s) {
        assert!(route.prefix_len() <= route.max_prefix_len(), "{s:?}");
        let shown = route.to_string();
        assert_eq!(parse_route(&shown), Ok(route), "{s:?} shown as {shown}");
    }
    if let Ok(ip) = parse_ip(s) {
        assert_eq!(parse_ip(&ip.to_string()), Ok(ip), "{s:?}");
    }

    if let Ok(e) = Endpoint::parse(s) {
        assert!(e.port > 0 && !e.host.is_empty(), "{s:?}: {e:?}");
        let shown = e.to_string();
        assert_eq!(Endpoint::parse(&shown), Ok(e), "{s:?} shown as {shown}");
    }

    macro_rules! name_round_trip {
        ($($t:ty),*) => {$(
            if let Ok(name) = <$t>::parse(s) {
                assert_eq!(name.as_str(), s);
                assert_eq!(name.to_string(), s);
                assert_eq!(<$t>::parse(&name.to_string()), Ok(name));
            }
        )*};
    }
    name_round_trip!(
        WorkloadName,
        ImageName,
        CredentialName,
        EnvName,
        WireGuardKey
    );
});
