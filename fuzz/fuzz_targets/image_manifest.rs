//! `bbhv_spec::Image::parse` (images/<name>.json, with #11's `source`) and
//! the pins `bbhv_ext::Pins::parse` (hosts/<hostname>.json) on arbitrary
//! text.
//!
//! Asserts: neither panics; an image `Err` has diagnostics naming the file
//! with a line of the text (0 for the whole file) and a message; an `Ok`
//! with `source` has an http://, https:// or file:/// URL of printable
//! ASCII and a digest, and then a host path in the store
//! (`/var/lib/bitbuilder/images/…`) without `..`; accepted pins name valid
//! image names, each once, never one as both sysext and confext.
//!
//! The same text as a SHA256SUMS file (`bbhv_ext::sign::parse_sums`, what
//! a pull downloads): accepted lines hold 64 lowercase hex digits and a
//! plain file name (no `/`, no control character); `update_sums` gives a
//! file that parses back sorted by name, with the updated name once and
//! every other line kept, and updating it again changes nothing.

#![no_main]

use bbhv_ext::Pins;
use bbhv_spec::Image;
use libfuzzer_sys::fuzz_target;

const FILE: &str = "images/base.json";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Image::parse(FILE, "base", text) {
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty());
            let lines = text.split('\n').count();
            for d in &diagnostics {
                assert_eq!(d.file, FILE);
                assert!(d.line <= lines + 1, "{d:?}");
                assert!(!d.message.is_empty());
            }
        }
        Ok(image) => {
            if let Some(origin) = &image.origin {
                assert!(
                    ["http://", "https://", "file:///"]
                        .iter()
                        .any(|s| origin.url.starts_with(s)),
                    "{origin:?}"
                );
                assert!(origin.url.bytes().all(|b| b.is_ascii_graphic()));
                assert!(bbhv_ext::store::pulled_digest(&image).is_some());
            }
            if let Some(path) = image.host_path() {
                assert!(path.as_str().starts_with("/var/lib/bitbuilder/images/"));
                assert!(!path.as_str().split('/').any(|c| c == ".."), "{path:?}");
            }
        }
    }
    if let Ok(pins) = Pins::parse("hosts/h.json", text) {
        let all: Vec<&str> = pins.all().map(|(_, n)| n).collect();
        for (i, name) in all.iter().enumerate() {
            assert!(
                bbhv_spec::values::ImageName::parse(name).is_ok(),
                "{name:?}"
            );
            assert!(!all[i + 1..].contains(name), "{name:?} twice");
        }
    }
    if let Ok(sums) = bbhv_ext::sign::parse_sums(text) {
        for line in &sums {
            assert!(line.sha256.len() == 64 && line.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(!line.sha256.bytes().any(|b| b.is_ascii_uppercase()));
            assert!(
                !line.name.is_empty() && !line.name.contains('/'),
                "{line:?}"
            );
            assert!(!line.name.chars().any(char::is_control), "{line:?}");
        }
        let digest = "ab".repeat(32);
        let name = sums.first().map_or("new.raw", |l| l.name.as_str());
        let updated = bbhv_ext::sign::update_sums(text, name, &digest).unwrap();
        let back = bbhv_ext::sign::parse_sums(&updated).unwrap();
        assert!(back.windows(2).all(|w| w[0].name <= w[1].name), "{updated}");
        assert_eq!(
            back.iter().filter(|l| l.name == name).count(),
            1,
            "{updated}"
        );
        assert!(back.iter().any(|l| l.name == name && l.sha256 == digest));
        for line in sums.iter().filter(|l| l.name != name) {
            assert!(back.iter().any(|l| l.name == line.name), "{line:?} lost");
        }
        assert_eq!(
            bbhv_ext::sign::update_sums(&updated, name, &digest).unwrap(),
            updated
        );
    }
});
