//! The reader (systemd's parsing rules, used by tests to prove what systemd
//! sees) on arbitrary text.
//!
//! Asserts:
//! - `Reader::parse`, `unquote_words` (all four modes),
//!   `unescape_specifiers` and `unescape_variables` never panic;
//! - a parsed file's keys and values carry no line break or outer
//!   whitespace, and keys no `=`; a comment or blank line adds nothing;
//! - reader → writer → reader: words that `unquote_words` reads from a value
//!   are written back by `Value::words` / `Value::command` and read again as
//!   the same words; a value read with `unescape_specifiers` is written back
//!   by `Value::text` (when it accepts it) and read again as itself;
//! - `unescape_*` undo exactly the doubling of their marker: doubling every
//!   marker of any string and undoing it gives the string back.

#![no_main]

use bbhv_unit::{
    Reader, Syntax, UnitFile, Value, unescape_specifiers, unescape_variables, unquote_words,
};
use libfuzzer_sys::fuzz_target;

fn ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn one(syntax: Syntax, key: &'static str, value: Value) -> String {
    let mut file = UnitFile::new(syntax);
    file.section("X").set(key, value);
    let text = file.render();
    let reader = Reader::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(reader.sections.len(), 1, "{text}");
    assert_eq!(reader.sections[0].1.len(), 1, "{text}");
    reader.sections[0].1[0].1.clone()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    for marker in ['%', '$'] {
        let doubled = text.replace(marker, &format!("{marker}{marker}"));
        let back = if marker == '%' {
            unescape_specifiers(&doubled)
        } else {
            unescape_variables(&doubled)
        };
        assert_eq!(back.as_deref(), Ok(text), "undoubling {marker}");
    }

    if let Ok(reader) = Reader::parse(text) {
        // With the comment and blank lines taken out, the same file.
        let stripped: String = text
            .split('\n')
            .filter(|l| {
                let l = l.trim_matches(ws);
                !(l.is_empty() || l.starts_with('#') || l.starts_with(';'))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            Reader::parse(&stripped).as_ref(),
            Ok(&reader),
            "{stripped:?}"
        );
        for (_, entries) in &reader.sections {
            for (key, value) in entries {
                assert!(!key.contains('=') && !key.contains('\n'), "{key:?}");
                assert!(!value.contains('\n'), "{value:?}");
                assert_eq!(key.trim_matches(ws), key);
                assert_eq!(value.trim_matches(ws), value);
            }
        }
    }

    for line in text.split('\n') {
        let raw = line.split_once('=').map_or(line, |(_, v)| v);
        let _ = unescape_specifiers(raw);
        let _ = unescape_variables(raw);
        for unit in [false, true] {
            let syntax = if unit { Syntax::Unit } else { Syntax::Plain };
            if let Ok(words) = unquote_words(raw, unit, false)
                && let Ok(value) = Value::words(&words)
            {
                let again = one(syntax, "Parameters", value);
                assert_eq!(
                    unquote_words(&again, unit, false),
                    Ok(words.clone()),
                    "{again}"
                );
            }
            if let Ok(argv) = unquote_words(raw, unit, true)
                && let Ok(value) = Value::command(&argv)
            {
                let again = one(syntax, "ExecStart", value);
                assert_eq!(
                    unquote_words(&again, unit, true),
                    Ok(argv.clone()),
                    "{again}"
                );
            }
        }
        if let Ok(text) = unescape_specifiers(raw)
            && let Ok(value) = Value::text(&text)
        {
            let again = one(Syntax::Unit, "Description", value);
            assert_eq!(unescape_specifiers(&again), Ok(text.clone()), "{again}");
        }
    }
});
