//! Property tests: any string that reaches a value comes back, through
//! systemd's parsing rules, as exactly that string, and the file keeps
//! exactly the sections and keys the code wrote.

use bbhv_unit::{
    Reader, Syntax, UnitFile, Value, ValueError, unescape_specifiers, unquote_verbatim,
    unquote_words,
};
use proptest::prelude::*;

/// Strings biased towards what breaks naive writers.
fn hostile() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\n",
        "\r",
        "\t",
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
        "é",
        "\\n",
        "\\x41",
    ]);
    prop::collection::vec(
        prop_oneof![pieces.prop_map(String::from), "\\PC{0,4}"],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

fn without_nul(s: String) -> String {
    s.replace('\0', "")
}

fn one_value(syntax: Syntax, key: &'static str, value: Value) -> Reader {
    let mut file = UnitFile::new(syntax);
    file.section("Service")
        .set(key, value)
        .set("After", Value::literal("end.target").unwrap());
    let text = file.render();
    let reader = Reader::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // Exactly one section with exactly the two keys written: nothing injected.
    assert_eq!(reader.section_names(), vec!["Service"], "{text}");
    let keys: Vec<&str> = reader.sections[0]
        .1
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, vec![key, "After"], "{text}");
    reader
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn command_round_trips(args in prop::collection::vec(hostile(), 0..5), syntax in prop_oneof![Just(Syntax::Unit), Just(Syntax::Plain)]) {
        let mut argv = vec!["/usr/bin/prog".to_owned()];
        argv.extend(args.into_iter().map(without_nul));
        let reader = one_value(syntax, "ExecStart", Value::command(&argv).unwrap());
        let raw = reader.values("Service", "ExecStart")[0];
        let words = unquote_words(raw, syntax == Syntax::Unit, true).unwrap();
        prop_assert_eq!(words, argv);
    }

    #[test]
    fn words_round_trip(args in prop::collection::vec(hostile(), 1..5)) {
        let args: Vec<String> = args.into_iter().map(without_nul).collect();
        let reader = one_value(Syntax::Plain, "Key", Value::words(&args).unwrap());
        let words = unquote_words(reader.values("Service", "Key")[0], false, false).unwrap();
        prop_assert_eq!(words, args);
    }

    /// `.nspawn` `Parameters=`: read by `config_parse_strv()`, where a
    /// backslash is no escape. Only NUL, CR and LF are refused.
    #[test]
    fn nspawn_words_round_trip_or_are_refused(args in prop::collection::vec(hostile(), 1..5)) {
        let args: Vec<String> = args.into_iter().map(without_nul).collect();
        match Value::nspawn_words(&args) {
            Ok(value) => {
                let reader = one_value(Syntax::Plain, "Parameters", value);
                let words = unquote_verbatim(reader.values("Service", "Parameters")[0]).unwrap();
                prop_assert_eq!(words, args);
            }
            Err(_) => prop_assert!(args.iter().any(|a| a.contains('\n') || a.contains('\r'))),
        }
    }

    #[test]
    fn nspawn_environment_round_trips_or_is_refused(value in hostile()) {
        match Value::nspawn_env("KEY", &value) {
            Ok(v) => {
                let reader = one_value(Syntax::Plain, "Environment", v);
                let words = unquote_verbatim(reader.values("Service", "Environment")[0]).unwrap();
                prop_assert_eq!(words, vec![format!("KEY={value}")]);
            }
            Err(_) => prop_assert!(value.chars().any(|c| c.is_control() && c != '\t')),
        }
    }

    #[test]
    fn environment_round_trips(value in hostile()) {
        let value: String = value.chars().filter(|&c| !c.is_control() || c == '\t' || c == '\n').collect();
        let reader = one_value(Syntax::Unit, "Environment", Value::env("KEY", &value).unwrap());
        let words = unquote_words(reader.values("Service", "Environment")[0], true, false).unwrap();
        prop_assert_eq!(words, vec![format!("KEY={value}")]);
    }

    #[test]
    fn text_round_trips_or_is_refused(text in hostile()) {
        match Value::text(&text) {
            Ok(value) => {
                let reader = one_value(Syntax::Unit, "Description", value);
                let back = unescape_specifiers(reader.values("Service", "Description")[0]).unwrap();
                prop_assert_eq!(back, text);
            }
            Err(_) => prop_assert!(
                text.is_empty() || text.chars().any(|c| c.is_ascii_control()) || text.ends_with('\\') || text.trim() != text
            ),
        }
    }

    #[test]
    fn literals_never_carry_syntax(token in hostile()) {
        if let Ok(value) = Value::literal(token.clone()) {
            let reader = one_value(Syntax::Unit, "Slice", value);
            prop_assert_eq!(reader.values("Service", "Slice")[0], token.as_str());
            prop_assert!(!token.contains('%') && !token.contains(' '));
        }
    }
}

#[test]
fn hostile_values_stay_data() {
    let argv = [
        "/bin/echo",
        "a\nExecStartPre=/bin/rm -rf /",
        "%i",
        "$HOME",
        "\"",
        "\\",
        ";",
    ];
    let mut file = UnitFile::new(Syntax::Unit);
    file.section("Service")
        .set("ExecStart", Value::command(&argv).unwrap());
    assert_eq!(
        file.render(),
        "[Service]\nExecStart=\"/bin/echo\" \"a\\nExecStartPre=/bin/rm -rf /\" \"%%i\" \"$$HOME\" \"\\\"\" \"\\\\\" \";\"\n"
    );
}

#[test]
fn refusals_name_the_problem() {
    assert_eq!(
        Value::text("two\nlines").unwrap_err(),
        ValueError::Control {
            what: "text",
            ch: '\n'
        }
    );
    assert_eq!(
        Value::text("c:\\").unwrap_err(),
        ValueError::TrailingBackslash { what: "text" }
    );
    assert_eq!(
        Value::command(&["-/bin/true"]).unwrap_err(),
        ValueError::RelativeCommand("-/bin/true".into())
    );
    assert!(matches!(
        Value::command(&["/bin/x", "a\0b"]),
        Err(ValueError::Control { ch: '\0', .. })
    ));
    assert_eq!(
        Value::env("A=B", "x").unwrap_err(),
        ValueError::EnvName("A=B".into())
    );
    assert!(matches!(
        Value::literal("4G\n[Unit]"),
        Err(ValueError::Alphabet { .. })
    ));
    assert!(matches!(
        Value::literal("%i"),
        Err(ValueError::Alphabet { .. })
    ));
    assert!(Value::percent("%i%").is_err());
    assert!(Value::percent("200").is_err());
    let mut file = UnitFile::new(Syntax::Unit);
    assert!(file.comment("x\ny").is_err());
}

#[test]
fn nspawn_words_are_never_escaped() {
    let mut file = UnitFile::new(Syntax::Plain);
    file.section("Exec").set(
        "Parameters",
        Value::nspawn_words(&["/bin/echo", "a\"b", "c\\", "'", "", "$HOME %i"]).unwrap(),
    );
    assert_eq!(
        file.render(),
        "[Exec]\nParameters=\"/bin/echo\" \"a\"'\"'\"b\" \"c\\\" \"'\" \"\" \"$HOME %i\"\n"
    );
    assert!(Value::nspawn_words(&["a\nb"]).is_err());
    assert!(Value::nspawn_words(&["a\rb"]).is_err());
    assert!(Value::nspawn_env("K", "a\nb").is_err());
    assert!(Value::nspawn_env("K", "a\tb").is_ok());
}

#[test]
fn plain_syntax_keeps_percent() {
    let mut file = UnitFile::new(Syntax::Plain);
    file.section("Exec")
        .set("Parameters", Value::nspawn_words(&["100%"]).unwrap());
    assert_eq!(file.render(), "[Exec]\nParameters=\"100%\"\n");
}
