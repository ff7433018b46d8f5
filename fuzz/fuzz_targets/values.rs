//! The small value parsers of bbhv-spec, public and used by the renderer
//! and the fleet check: `parse_size`, `parse_port`, `parse_ipv4_cidr`,
//! `parse_ipv6_cidr`.
//!
//! Asserts: they never panic; what they accept is in range (ports 1 to
//! 65535, prefixes 1 to 32 / 1 to 128) and written back in canonical form
//! reads as the same value.

#![no_main]

use bbhv_spec::{PortMapping, parse_ipv4_cidr, parse_ipv6_cidr, parse_port, parse_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    if let Some(bytes) = parse_size(s) {
        assert_eq!(parse_size(&bytes.to_string()), Some(bytes), "{s:?}");
        for (suffix, shift) in [("K", 10), ("M", 20), ("G", 30), ("T", 40)] {
            if bytes % (1 << shift) == 0 {
                let short = format!("{}{suffix}", bytes >> shift);
                assert_eq!(parse_size(&short), Some(bytes), "{s:?} as {short}");
            }
        }
    }

    if let Ok(m) = parse_port(s) {
        assert!(m.host > 0 && m.container > 0, "{s:?}: {m:?}");
        let proto = if m.udp { "udp" } else { "tcp" };
        let canonical = format!("{}:{}/{proto}", m.host, m.container);
        assert_eq!(parse_port(&canonical), Ok(m), "{s:?} as {canonical}");
        if !m.udp {
            let short = format!("{}:{}", m.host, m.container);
            assert_eq!(
                parse_port(&short),
                Ok(PortMapping { ..m }),
                "{s:?} as {short}"
            );
        }
    }

    if let Ok((addr, prefix)) = parse_ipv4_cidr(s) {
        assert!((1..=32).contains(&prefix), "{s:?}");
        assert_eq!(
            parse_ipv4_cidr(&format!("{addr}/{prefix}")),
            Ok((addr, prefix)),
            "{s:?}"
        );
    }
    if let Ok((addr, prefix)) = parse_ipv6_cidr(s) {
        assert!((1..=128).contains(&prefix), "{s:?}");
        assert_eq!(
            parse_ipv6_cidr(&format!("{addr}/{prefix}")),
            Ok((addr, prefix)),
            "{s:?}"
        );
    }
});
