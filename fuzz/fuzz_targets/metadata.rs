//! `bbhv_spec::parse_metadata` on arbitrary text.
//!
//! Asserts:
//! - it never panics, on either path (the serde_json fast path or the
//!   jsonc-parser slow path with positions);
//! - an `Err` holds at least one diagnostic, each naming the file, on a line
//!   that exists (1 ..= number of lines) and a column within that line
//!   (1 ..= characters in the line + 1), with an empty or `/`-rooted JSON
//!   pointer and a non-empty message;
//! - an `Ok` metadata has the directory's id and schema version 1, and the
//!   text is strict JSON that serde_json alone reads as the same metadata
//!   (so the slow path accepts nothing the fast path would refuse);
//! - serializing an `Ok` metadata with serde_json and parsing that again
//!   gives `Ok` with an equal metadata.
//!
//! Regressions (regressions/metadata/, fixed in f911762): `1e555` gave
//! `Err` with no diagnostic; `Metadata` serialized absent keys as `null`,
//! which its own schema refuses.
//!
//! The directory name is the text's own `"id"` when it has one (so valid
//! seeds stay valid), else `t`.

#![no_main]

use bbhv_spec::{Diagnostic, Metadata, parse_metadata};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const FILE: &str = "tenants/t/metadata.json";

fuzz_target!(|data: &[u8]| {
    // Non-UTF-8 files are refused by the reader before parse_metadata.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir_name = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("id")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "t".to_owned());

    match parse_metadata(FILE, &dir_name, text) {
        Err(diagnostics) => check_diagnostics(text, &diagnostics),
        Ok(metadata) => {
            assert_eq!(metadata.id, dir_name);
            assert_eq!(metadata.schema_version, 1);

            let direct: Metadata = serde_json::from_str(text).unwrap_or_else(|e| {
                panic!("parse_metadata accepted what serde_json refuses ({e}): {text:?}")
            });
            assert_eq!(direct, metadata, "serde_json reads other values: {text:?}");

            let again = serde_json::to_string_pretty(&metadata).expect("metadata serializes");
            match parse_metadata(FILE, &dir_name, &again) {
                Ok(back) => assert_eq!(back, metadata, "round trip changed it: {again}"),
                Err(d) => panic!(
                    "the serialized metadata does not parse again:\n{again}\n{}",
                    d.iter().map(|d| format!("{d}\n")).collect::<String>()
                ),
            }
        }
    }
});

fn check_diagnostics(text: &str, diagnostics: &[Diagnostic]) {
    assert!(!diagnostics.is_empty(), "Err without a diagnostic");
    let lines: Vec<&str> = text.split('\n').collect();
    for d in diagnostics {
        assert_eq!(d.file, FILE, "{d:?}");
        assert!(!d.message.is_empty(), "{d:?}");
        assert!(
            d.path.is_empty() || d.path.starts_with('/'),
            "not a JSON pointer: {d:?}"
        );
        // parse_metadata always has the text, so every diagnostic has a
        // position (line 0 is only for `locate` on a changed file).
        assert!(d.line >= 1, "no line: {d:?}");
        assert!(
            d.line <= lines.len(),
            "line past the end ({}): {d:?}",
            lines.len()
        );
        let width = lines[d.line - 1].chars().count();
        assert!(
            (1..=width + 1).contains(&d.column),
            "column outside line {} ({width} characters): {d:?}",
            d.line
        );
    }
}
