//! The unit writer against the reader that follows systemd's parsing rules:
//! arbitrary strings → `Value` → `UnitFile::render` → `Reader::parse` +
//! `unquote_words` / `unescape_specifiers` → the same strings.
//!
//! Asserts (the property of crates/unit/tests/escaping.rs, with coverage
//! guidance instead of proptest's sampling):
//! - each constructor refuses exactly what it documents: `command` an empty
//!   argv, a relative first word or NUL; `words` an empty list or NUL; `env`
//!   a bad name or a control character other than tab and newline; `text` an
//!   empty string, ASCII control characters, a trailing backslash or outer
//!   whitespace; `literal` anything outside its alphabet; `comment` ASCII
//!   control characters and a trailing backslash;
//! - the rendered file parses, has exactly the sections and keys written (in
//!   order; header comments add none), and every value reads back as the
//!   string it was made from, in both `Syntax::Unit` and `Syntax::Plain`.
//!
//! Regression (regressions/unit_roundtrip/, fixed in a94d218): a comment
//! ending in `\` was accepted, and `Reader::parse` refused the file (a
//! continuation line); `comment` now refuses it.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bbhv_unit::{Reader, Syntax, UnitFile, Value, unescape_specifiers, unquote_words};
use libfuzzer_sys::fuzz_target;

/// A string biased towards what breaks naive writers: pieces of syntax
/// mixed with arbitrary text.
#[derive(Debug)]
struct Hostile(String);

const PIECES: &[&str] = &[
    "\n",
    "\r",
    "\t",
    "\0",
    "\\",
    "\"",
    "'",
    "%",
    "%i",
    "%%",
    "$",
    "$HOME",
    "${X}",
    ";",
    " ",
    "=",
    "[Service]",
    "ExecStart=/bin/sh",
    "#",
    "\u{7f}",
    "\u{1b}",
    "\u{85}",
    "\u{a0}",
    "\u{2028}",
    "é",
    "\\n",
    "\\x41",
    "\\x00",
    "/",
    "/bin/true",
    "-",
    "@",
];

impl<'a> Arbitrary<'a> for Hostile {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut s = String::new();
        for _ in 0..u.int_in_range(0..=8)? {
            if u.arbitrary()? {
                s.push_str(u.choose(PIECES)?);
            } else {
                s.push_str(<&str>::arbitrary(u)?);
            }
        }
        Ok(Hostile(s))
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    unit: bool,
    comments: Vec<Hostile>,
    argv: Vec<Hostile>,
    words: Vec<Hostile>,
    env_name: Hostile,
    env_value: Hostile,
    text: Hostile,
    literal: Hostile,
}

fn strings(v: &[Hostile]) -> Vec<String> {
    v.iter().take(6).map(|h| h.0.clone()).collect()
}

fn env_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn text_ok(text: &str) -> bool {
    !text.is_empty()
        && !text.chars().any(|c| c.is_ascii_control())
        && !text.ends_with('\\')
        && text.trim() == text
}

fn literal_ok(token: &str) -> bool {
    !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/@+=,_-\\".contains(c))
        && !token.ends_with('\\')
}

fn fail<T>(key: &str, raw: &str, e: bbhv_unit::ReadError, rendered: &str) -> T {
    panic!("{key}={raw}: {e}\n{rendered}")
}

/// What was written, to compare with what is read.
enum Expect {
    /// Words of a command (`$` escaped too).
    Command(Vec<String>),
    Words(Vec<String>),
    /// Whole-line text.
    Text(String),
    /// Exactly these characters.
    Raw(String),
}

fuzz_target!(|input: Input| {
    let syntax = if input.unit {
        Syntax::Unit
    } else {
        Syntax::Plain
    };
    let unit = input.unit;
    let mut file = UnitFile::new(syntax);

    for comment in input.comments.iter().take(3) {
        let refused = comment.0.chars().any(|c| c.is_ascii_control()) || comment.0.ends_with('\\');
        assert_eq!(
            file.comment(&comment.0).is_err(),
            refused,
            "comment {:?}",
            comment.0
        );
    }

    let mut written: Vec<(&'static str, Vec<(&'static str, Expect)>)> = Vec::new();
    let mut service = Vec::new();

    let argv = strings(&input.argv);
    let command_ok =
        argv.first().is_some_and(|a| a.starts_with('/')) && !argv.iter().any(|a| a.contains('\0'));
    match Value::command(&argv) {
        Ok(v) => {
            assert!(command_ok, "command accepted {argv:?}");
            service.push(("ExecStart", v, Expect::Command(argv)));
        }
        Err(e) => assert!(!command_ok, "command refused {argv:?}: {e}"),
    }

    let (name, value) = (&input.env_name.0, &input.env_value.0);
    let env_ok = env_name_ok(name)
        && !value
            .chars()
            .any(|c| c.is_control() && c != '\t' && c != '\n');
    match Value::env(name, value) {
        Ok(v) => {
            assert!(env_ok, "env accepted {name:?}={value:?}");
            service.push((
                "Environment",
                v,
                Expect::Words(vec![format!("{name}={value}")]),
            ));
        }
        Err(e) => assert!(!env_ok, "env refused {name:?}={value:?}: {e}"),
    }

    let text = &input.text.0;
    match Value::text(text) {
        Ok(v) => {
            assert!(text_ok(text), "text accepted {text:?}");
            service.push(("Description", v, Expect::Text(text.clone())));
        }
        Err(e) => assert!(!text_ok(text), "text refused {text:?}: {e}"),
    }

    let token = &input.literal.0;
    match Value::literal(token.clone()) {
        Ok(v) => {
            assert!(literal_ok(token), "literal accepted {token:?}");
            service.push(("Slice", v, Expect::Raw(token.clone())));
        }
        Err(e) => assert!(!literal_ok(token), "literal refused {token:?}: {e}"),
    }

    let mut exec = Vec::new();
    let words = strings(&input.words);
    let words_ok = !words.is_empty() && !words.iter().any(|w| w.contains('\0'));
    match Value::words(&words) {
        Ok(v) => {
            assert!(words_ok, "words accepted {words:?}");
            exec.push(("Parameters", v, Expect::Words(words)));
        }
        Err(e) => assert!(!words_ok, "words refused {words:?}: {e}"),
    }

    // A sentinel after each section's data: a value that swallowed the
    // line end, or opened a section, would move or hide it.
    for (section, entries) in [("Service", service), ("Exec", exec)] {
        let f = file.section(section);
        let mut expect = Vec::new();
        for (key, value, e) in entries {
            f.set(key, value);
            expect.push((key, e));
        }
        f.set("After", Value::literal("end.target").unwrap());
        expect.push(("After", Expect::Raw("end.target".into())));
        written.push((section, expect));
    }

    let rendered = file.render();
    let reader = Reader::parse(&rendered)
        .unwrap_or_else(|e| panic!("the written file does not read: {e}\n{rendered}"));
    assert_eq!(
        reader.section_names(),
        written.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        "sections:\n{rendered}"
    );
    for ((section, entries), (_, read)) in written.iter().zip(&reader.sections) {
        let keys: Vec<&str> = read.iter().map(|(k, _)| k.as_str()).collect();
        let want: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, want, "keys of [{section}]:\n{rendered}");
        for ((key, expect), (_, raw)) in entries.iter().zip(read) {
            match expect {
                Expect::Command(argv) => {
                    assert_eq!(
                        &unquote_words(raw, unit, true)
                            .unwrap_or_else(|e| fail(key, raw, e, &rendered)),
                        argv,
                        "{rendered}"
                    )
                }
                Expect::Words(words) => {
                    assert_eq!(
                        &unquote_words(raw, unit, false)
                            .unwrap_or_else(|e| fail(key, raw, e, &rendered)),
                        words,
                        "{rendered}"
                    )
                }
                Expect::Text(text) => {
                    let back = if unit {
                        unescape_specifiers(raw).unwrap_or_else(|e| fail(key, raw, e, &rendered))
                    } else {
                        raw.clone()
                    };
                    assert_eq!(&back, text, "{rendered}");
                }
                Expect::Raw(token) => assert_eq!(raw, token, "{rendered}"),
            }
        }
    }
});
