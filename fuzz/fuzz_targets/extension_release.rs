//! `bbhv_ext::release`: the extension-release (os-release) parser and writer.
//!
//! Asserts: `parse` never panics; what it accepts has keys of `[A-Z0-9_]`
//! and values without control characters; every accepted value, written
//! back with `quote`, parses to the same single assignment; a `Release`
//! read by `from_text` renders (when its values are words) to a text that
//! reads back as the same `Release` for both kinds.

#![no_main]

use bbhv_ext::release::{Kind, Release, parse, quote};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(fields) = parse(text) else {
        return;
    };
    for (key, value) in &fields {
        assert!(!key.is_empty());
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        );
        assert!(!value.chars().any(char::is_control), "{value:?}");
        let line = format!("{key}={}\n", quote(value).expect("no control characters"));
        assert_eq!(
            parse(&line).unwrap(),
            vec![(key.clone(), value.clone())],
            "{line:?}"
        );
    }
    for kind in [Kind::Sysext, Kind::Confext] {
        let Ok(release) = Release::from_text(kind, text) else {
            continue;
        };
        if let Ok(rendered) = release.render(kind) {
            assert_eq!(
                Release::from_text(kind, &rendered).unwrap(),
                release,
                "{rendered:?}"
            );
        }
    }
});
