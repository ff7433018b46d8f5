//! Hostile metadata costs time linear in its size and gives at most
//! `MAX_DIAGNOSTICS` positioned problems plus a count (issue #6: one file of
//! 90,000 unknown keys took 118 s and a 25 MB report). The sizes here are
//! the ones reported; `bench/hostile` times them.

use bbhv_spec::{MAX_DIAGNOSTICS, Tenant};

fn parse(text: &str) -> Vec<bbhv_spec::Diagnostic> {
    Tenant::parse("tenants/t/metadata.json", "t", text).expect_err("the text is invalid")
}

/// At most MAX_DIAGNOSTICS problems, then one that counts the rest.
fn assert_capped(diagnostics: &[bbhv_spec::Diagnostic], total: usize) {
    assert_eq!(diagnostics.len(), MAX_DIAGNOSTICS + 1, "{diagnostics:#?}");
    let last = diagnostics.last().unwrap();
    assert!(
        last.message
            .starts_with(&format!("{} more problems", total - MAX_DIAGNOSTICS)),
        "{last}"
    );
    for d in &diagnostics[..MAX_DIAGNOSTICS] {
        assert!(d.line >= 1, "{d}");
    }
}

#[test]
fn ninety_thousand_unknown_keys() {
    let keys: Vec<String> = (0..90_000).map(|i| format!("\"k{i}\":0")).collect();
    let text = format!(
        "{{\"schemaVersion\": 1, \"id\": \"t\", {}}}",
        keys.join(",")
    );
    assert!(text.len() < 1 << 20);
    let diagnostics = parse(&text);
    assert_capped(&diagnostics, 90_000);
    assert!(
        diagnostics[0].message.starts_with("unknown key \"k0\""),
        "{}",
        diagnostics[0]
    );
    assert_eq!(diagnostics[1].line, 1);
    assert!(
        diagnostics[1].column > diagnostics[0].column,
        "{}",
        diagnostics[1]
    );
}

#[test]
fn eight_thousand_badly_named_containers() {
    let containers: Vec<String> = (0..8_000)
        .map(|i| format!("\"C{i}\": {{\"image\": \"x\"}}"))
        .collect();
    let text = format!(
        "{{\"schemaVersion\": 1, \"id\": \"t\", \"containers\": {{{}}}}}",
        containers.join(",")
    );
    let diagnostics = parse(&text);
    assert!(
        diagnostics.len() <= MAX_DIAGNOSTICS + 1,
        "{}",
        diagnostics.len()
    );
    assert!(
        diagnostics
            .last()
            .unwrap()
            .message
            .contains("more problems")
    );
}

#[test]
fn two_hundred_thousand_bad_dns_entries() {
    let dns = vec!["\"x\""; 200_000].join(",");
    let text =
        format!("{{\"schemaVersion\": 1, \"id\": \"t\", \"network\": {{\"dns\": [{dns}]}}}}");
    let diagnostics = parse(&text);
    assert!(
        diagnostics.len() <= MAX_DIAGNOSTICS + 1,
        "{}",
        diagnostics.len()
    );
    assert!(
        diagnostics
            .last()
            .unwrap()
            .message
            .contains("more problems")
    );
}

#[test]
fn whole_numbers_written_as_floats_are_pointed_at() {
    for (text, pointer) in [
        (
            r#"{"schemaVersion": 1, "id": "t", "resources": {"tasksMax": 1.0}}"#,
            "/resources/tasksMax",
        ),
        (r#"{"schemaVersion": 1.0, "id": "t"}"#, "/schemaVersion"),
    ] {
        let diagnostics = parse(text);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        let d = &diagnostics[0];
        assert_eq!(d.path, pointer, "{d}");
        assert!(d.column > 1, "{d}");
        assert!(d.message.contains("whole number"), "{d}");
    }
}

#[test]
fn a_byte_order_mark_is_named() {
    let diagnostics = parse("\u{feff}{\"schemaVersion\": 1, \"id\": \"t\"}");
    assert_eq!(diagnostics.len(), 1);
    assert!(
        diagnostics[0].message.contains("byte order mark"),
        "{}",
        diagnostics[0]
    );
}

#[test]
fn json_that_serde_json_refuses_is_refused() {
    // A form feed between tokens: jsonc-parser takes it as whitespace,
    // serde_json (and every JSON editor) does not. serde_json decides.
    let diagnostics =
        parse("{\n  \"schemaVersion\":\u{c} 1,\n  \"id\": \"t\",\n   \"enabled\": false\n}\n");
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(
        (diagnostics[0].line, diagnostics[0].column),
        (2, 19),
        "{}",
        diagnostics[0]
    );
    assert!(
        diagnostics[0].message.starts_with("invalid JSON"),
        "{}",
        diagnostics[0]
    );
}

#[test]
fn fifty_thousand_duplicate_keys() {
    let dup = vec!["\"description\": \"x\""; 50_000].join(",");
    let diagnostics = parse(&format!("{{\"schemaVersion\": 1, \"id\": \"t\", {dup}}}"));
    assert_capped(&diagnostics, 49_999);
}

#[test]
fn serde_json_positions_are_given_in_characters() {
    // serde_json counts bytes; "€" is 3 of them and one character.
    let diagnostics = parse("{\"description\": \"€€€\"\u{c}}");
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(
        (diagnostics[0].line, diagnostics[0].column),
        (1, 22),
        "{}",
        diagnostics[0]
    );
}
