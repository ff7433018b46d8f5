//! `bbhv_trust::AllowedSigners::parse` on arbitrary text (git's SSH
//! allowed-signers format: `/etc/bitbuilder/allowed_signers` and
//! `image_signers`), then `verify_in` with the same bytes as a signature.
//!
//! Asserts: it never panics and is deterministic; an `Err` names the file
//! and a line of the text (1 ..= lines) and prints on one line; an `Ok`
//! holds signers whose lines are in the text, in order, with principals
//! that are not empty, and namespace lists without empty names; a
//! signature made of the input never verifies (there is no private key).

#![no_main]

use bbhv_trust::AllowedSigners;
use libfuzzer_sys::fuzz_target;

const FILE: &str = "allowed_signers";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = AllowedSigners::parse(text, FILE);
    let again = AllowedSigners::parse(text, FILE);
    match (&parsed, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a.signers, b.signers, "not deterministic"),
        (Err(a), Err(b)) => assert_eq!(a, b, "not deterministic"),
        _ => panic!("not deterministic"),
    }
    let lines = text.lines().count();
    match parsed {
        Err(e) => {
            assert_eq!(e.file, FILE);
            assert!((1..=lines).contains(&e.line), "{e:?}");
            assert!(e.to_string().starts_with(&format!("{FILE}:{}: ", e.line)));
        }
        Ok(signers) => {
            let mut last = 0;
            for s in &signers.signers {
                assert!(s.line > last && s.line <= lines, "{s:?}");
                last = s.line;
                assert!(
                    s.principals.split(',').all(|p| !p.trim().is_empty()),
                    "{s:?}"
                );
                if let Some(list) = &s.namespaces {
                    assert!(!list.is_empty(), "{s:?}");
                    assert!(list.iter().all(|n| !n.trim().is_empty()), "{s:?}");
                }
            }
            for namespace in ["git", "bbhv-image"] {
                assert!(
                    signers
                        .verify_in(namespace, "commit", data, data, 0)
                        .is_err()
                );
            }
        }
    }
});
