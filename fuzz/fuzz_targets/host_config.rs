//! `bbhv_host::HostConfig::parse` on arbitrary text (host.toml).
//!
//! Asserts: it never panics and is deterministic; an `Err` has at least one
//! error, each naming the file, a line of the text (1 ..= lines + 1) and a
//! column inside it (1 ..= characters + 1), a key that is empty or dotted
//! (no control characters; a space only in a quoted key) and a message
//! without control characters, printed on one line; an `Ok` holds only
//! values in their documented ranges: an uplink of 1 to 15 bytes without
//! `/`, `:`, whitespace or a project prefix, an uplink `.network` file name
//! not starting with `bbhv-`, host subnets in their network form, time
//! spans above zero and at most a week, 1 to 1000 generations kept, an
//! absolute `allowed_signers`; each accepted value parses again to itself.

#![no_main]

use bbhv_host::{
    HostConfig, InterfaceName, NetworkFileName, RESERVED_PREFIXES, Remote, parse_branch,
    parse_timespan,
};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "host.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = HostConfig::parse(text, FILE);
    assert_eq!(parsed, HostConfig::parse(text, FILE), "not deterministic");
    match parsed {
        Err(errors) => {
            assert!(!errors.is_empty());
            let lines: Vec<&str> = text.split('\n').collect();
            for e in &errors {
                assert_eq!(e.file, FILE);
                assert!(!e.message.is_empty(), "{e:?}");
                // The key and the message quote the file's text: never a
                // control character (a line break would forge a line of the
                // log); a key with a space is a quoted TOML key.
                assert!(!e.key.chars().any(char::is_control), "{e:?}");
                assert!(!e.message.chars().any(char::is_control), "{e:?}");
                assert!(!e.key.contains(' ') || e.key.contains('"'), "{e:?}");
                assert_eq!(e.to_string().lines().count(), 1, "{e:?}");
                if e.line > 0 {
                    assert!(e.line <= lines.len() + 1, "{e:?}");
                    let width = lines.get(e.line - 1).map_or(0, |l| l.chars().count());
                    assert!((1..=width + 1).contains(&e.column), "{e:?}");
                }
                assert!(e.to_string().starts_with(FILE));
            }
        }
        Ok(config) => {
            let n = &config.network;
            if let Some(uplink) = &n.uplink {
                let name = uplink.as_str();
                assert!((1..=15).contains(&name.len()), "{name:?}");
                assert!(
                    !name
                        .chars()
                        .any(|c| c == '/' || c == ':' || c.is_whitespace()),
                    "{name:?}"
                );
                assert!(!RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)));
                assert_eq!(InterfaceName::parse(name).as_ref(), Ok(uplink));
            }
            if let Some(file) = &n.uplink_network {
                let name = file.as_str();
                assert!(name.ends_with(".network") && !name.starts_with("bbhv-"));
                assert!(!name.contains('/') && !name.starts_with('.'));
                assert_eq!(NetworkFileName::parse(name).as_ref(), Ok(file));
            }
            for subnet in &n.host_subnets {
                assert_eq!(*subnet, subnet.trunc(), "{subnet}");
            }
            let s = &config.sync;
            if let Some(remote) = &s.remote {
                assert_eq!(Remote::parse(remote.as_str()).as_ref(), Ok(remote));
            }
            assert_eq!(parse_branch(&s.branch).as_deref(), Ok(s.branch.as_str()));
            for span in [s.interval, s.health_deadline] {
                assert!(!span.is_zero() && span.as_secs() <= 7 * 86_400, "{span:?}");
                let ms = format!("{}ms", span.as_millis());
                assert_eq!(parse_timespan(&ms), Ok(span));
            }
            assert!((1..=1000).contains(&s.keep_generations));
            assert!(config.trust.allowed_signers.is_absolute());
        }
    }
});
