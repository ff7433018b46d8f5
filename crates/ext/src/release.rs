//! `extension-release.<name>`: the os-release(5) format systemd-sysext and
//! systemd-confext read to decide whether an image fits the host. Pure: a
//! parser (shell-like quoting as os-release(5) describes it) and a writer
//! whose output the parser reads back to the same fields.

use std::fmt;

/// What an image extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `/usr` and `/opt`: systemd-sysext, `/var/lib/extensions`.
    Sysext,
    /// `/etc`: systemd-confext, `/var/lib/confexts`.
    Confext,
}

impl Kind {
    /// The top-level directories an image of this kind may hold.
    pub fn allowed_top(self) -> &'static [&'static str] {
        match self {
            Kind::Sysext => &["usr", "opt"],
            Kind::Confext => &["etc"],
        }
    }

    /// Where the release file lives inside the image.
    pub fn release_dir(self) -> &'static str {
        match self {
            Kind::Sysext => "usr/lib/extension-release.d",
            Kind::Confext => "etc/extension-release.d",
        }
    }

    /// Where the host's images are activated from.
    pub fn activation_dir(self) -> &'static str {
        match self {
            Kind::Sysext => "/var/lib/extensions",
            Kind::Confext => "/var/lib/confexts",
        }
    }

    /// The systemd tool that merges this kind.
    pub fn tool(self) -> &'static str {
        match self {
            Kind::Sysext => "systemd-sysext",
            Kind::Confext => "systemd-confext",
        }
    }

    /// `SYSEXT_LEVEL` or `CONFEXT_LEVEL`.
    pub fn level_key(self) -> &'static str {
        match self {
            Kind::Sysext => "SYSEXT_LEVEL",
            Kind::Confext => "CONFEXT_LEVEL",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Sysext => "sysext",
            Kind::Confext => "confext",
        })
    }
}

/// What `bbhv ext build` writes into an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `ID=`: the host's os-release ID it fits, `_any` for every host.
    pub id: String,
    /// `VERSION_ID=` of the host it fits, if any.
    pub version_id: Option<String>,
    /// `SYSEXT_LEVEL=` / `CONFEXT_LEVEL=`, if any.
    pub level: Option<String>,
    /// `ARCHITECTURE=` (systemd's names: `x86-64`, `arm64`, ...), if any.
    pub architecture: Option<String>,
    /// `EXTENSION_RELOAD_MANAGER=1`: systemd reloads PID 1 after a merge.
    pub reload_manager: bool,
    /// `SYSEXT_VERSION_ID=` / `CONFEXT_VERSION_ID=`: the image's own version.
    pub image_version: Option<String>,
}

/// A problem with a release file or a value for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ReleaseError {
    /// 1-based; 0 for a value given to [`Release::render`].
    pub line: usize,
    pub message: String,
}

/// The largest release file read.
pub const MAX_RELEASE: usize = 64 * 1024;

/// Reads an os-release(5) text into its assignments, in order. Comments and
/// blank lines are skipped; a value is unquoted, or in `"…"` (with `\"`,
/// `\\`, `` \` `` and `\$` escapes) or `'…'`; a line that is none of these is
/// an error (systemd skips it, but a file we build or check must be clean).
pub fn parse(text: &str) -> Result<Vec<(String, String)>, ReleaseError> {
    if text.len() > MAX_RELEASE {
        return Err(ReleaseError {
            line: 0,
            message: format!("{} bytes; allowed: at most {MAX_RELEASE}", text.len()),
        });
    }
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| ReleaseError { line, message };
        let trimmed = raw.trim_matches([' ', '\t']);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(err(format!("{trimmed:?} is not KEY=VALUE")));
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(err(format!(
                "key {key:?}: allowed: uppercase letters, digits and '_'"
            )));
        }
        out.push((key.to_owned(), unquote(value).map_err(err)?));
    }
    Ok(out)
}

fn unquote(value: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => loop {
                match chars.next() {
                    None => return Err(format!("{value:?}: an unterminated '\"'")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(e @ ('"' | '\\' | '`' | '$')) => out.push(e),
                        Some(e) => {
                            out.push('\\');
                            out.push(e);
                        }
                        None => return Err(format!("{value:?}: ends in '\\'")),
                    },
                    Some(c) => out.push(c),
                }
            },
            '\'' => loop {
                match chars.next() {
                    None => return Err(format!("{value:?}: an unterminated \"'\"")),
                    Some('\'') => break,
                    Some(c) => out.push(c),
                }
            },
            '\\' => match chars.next() {
                Some(e) => out.push(e),
                None => return Err(format!("{value:?}: ends in '\\'")),
            },
            c if c.is_whitespace() || matches!(c, '$' | '`' | ';' | '&' | '|' | '<' | '>') => {
                return Err(format!(
                    "{value:?}: {c:?} outside quotes; allowed: quote the value"
                ));
            }
            c => out.push(c),
        }
    }
    if out.chars().any(char::is_control) {
        return Err(format!("{value:?}: a control character"));
    }
    Ok(out)
}

/// `"value"`, escaped so [`parse`] reads `value` back.
pub fn quote(value: &str) -> Result<String, String> {
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{value:?}: a control character (a line break would start a new assignment)"
        ));
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '`' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// A value of `ID`, `VERSION_ID`, a level or an architecture: what
/// os-release(5) allows (`[a-z0-9._-]`, `_any` for ID; levels and versions
/// also `[A-Za-z0-9._~+-]`).
fn check_word(key: &str, value: &str) -> Result<(), ReleaseError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(ReleaseError {
            line: 0,
            message: format!(
                "{key}={value:?}: allowed: 1 to 64 of letters, digits, '.', '_', '-', '~', '+'"
            ),
        })
    }
}

impl Release {
    /// For every host (`ID=_any`).
    pub fn any() -> Release {
        Release {
            id: "_any".into(),
            version_id: None,
            level: None,
            architecture: None,
            reload_manager: false,
            image_version: None,
        }
    }

    /// The file's text, or which value cannot be written.
    pub fn render(&self, kind: Kind) -> Result<String, ReleaseError> {
        let mut fields: Vec<(&str, &str)> = vec![("ID", &self.id)];
        if let Some(v) = &self.version_id {
            fields.push(("VERSION_ID", v));
        }
        if let Some(v) = &self.level {
            fields.push((kind.level_key(), v));
        }
        let version_key = match kind {
            Kind::Sysext => "SYSEXT_VERSION_ID",
            Kind::Confext => "CONFEXT_VERSION_ID",
        };
        if let Some(v) = &self.image_version {
            fields.push((version_key, v));
        }
        if let Some(v) = &self.architecture {
            fields.push(("ARCHITECTURE", v));
        }
        let mut text = String::new();
        for (key, value) in fields {
            check_word(key, value)?;
            let quoted = quote(value).map_err(|message| ReleaseError { line: 0, message })?;
            text.push_str(&format!("{key}={quoted}\n"));
        }
        if self.reload_manager {
            text.push_str("EXTENSION_RELOAD_MANAGER=1\n");
        }
        Ok(text)
    }

    /// Reads a release file back (what `bbhv ext build` wrote, or another
    /// tool): `ID` is required, unknown keys are kept out.
    pub fn from_text(kind: Kind, text: &str) -> Result<Release, ReleaseError> {
        let fields = parse(text)?;
        let get = |key: &str| {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let id = get("ID").ok_or(ReleaseError {
            line: 0,
            message: "no ID= (the host's os-release ID, or _any)".into(),
        })?;
        let version_key = match kind {
            Kind::Sysext => "SYSEXT_VERSION_ID",
            Kind::Confext => "CONFEXT_VERSION_ID",
        };
        Ok(Release {
            id,
            version_id: get("VERSION_ID"),
            level: get(kind.level_key()),
            architecture: get("ARCHITECTURE"),
            reload_manager: get("EXTENSION_RELOAD_MANAGER").as_deref() == Some("1"),
            image_version: get(version_key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn os_release_quoting() {
        let fields = parse(
            "# comment\n\nID=debian\nVERSION_ID=\"13\"\nNAME='Debian GNU/Linux'\nX=\"a\\\"b\\\\c\\$d\"\n",
        )
        .unwrap();
        assert_eq!(
            fields,
            [
                ("ID".into(), "debian".into()),
                ("VERSION_ID".into(), "13".into()),
                ("NAME".into(), "Debian GNU/Linux".into()),
                ("X".into(), "a\"b\\c$d".into()),
            ]
        );
        for (text, expected) in [
            ("ID", "line 1: \"ID\" is not KEY=VALUE"),
            ("id=x", "key \"id\""),
            ("ID=\"x", "unterminated"),
            ("\nID=a b", "line 2: \"a b\": ' ' outside quotes"),
            ("ID=$(reboot)", "'$' outside quotes"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_written_file() {
        let release = Release {
            version_id: Some("13".into()),
            level: Some("1.0".into()),
            architecture: Some("x86-64".into()),
            reload_manager: true,
            image_version: Some("1.2.3".into()),
            ..Release::any()
        };
        assert_eq!(
            release.render(Kind::Sysext).unwrap(),
            "ID=\"_any\"\nVERSION_ID=\"13\"\nSYSEXT_LEVEL=\"1.0\"\nSYSEXT_VERSION_ID=\"1.2.3\"\nARCHITECTURE=\"x86-64\"\nEXTENSION_RELOAD_MANAGER=1\n"
        );
        let text = release.render(Kind::Confext).unwrap();
        assert!(text.contains("CONFEXT_LEVEL=\"1.0\"\n"), "{text}");
        assert_eq!(Release::from_text(Kind::Confext, &text).unwrap(), release);
        let bad = Release {
            image_version: Some("1\nID=evil".into()),
            ..Release::any()
        };
        let e = bad.render(Kind::Sysext).unwrap_err().to_string();
        assert!(
            e.contains("SYSEXT_VERSION_ID=\"1\\nID=evil\": allowed"),
            "{e}"
        );
    }

    proptest! {
        /// Any value without control characters, quoted, reads back as itself
        /// and adds no assignment.
        #[test]
        fn quote_round_trips(value in "[^\\p{Cc}]{0,40}", key in "[A-Z][A-Z0-9_]{0,10}") {
            let text = format!("{key}={}\n", quote(&value).unwrap());
            let fields = parse(&text).unwrap();
            prop_assert_eq!(fields, vec![(key, value)]);
        }

        /// A value with a control character is refused, never written.
        #[test]
        fn control_characters_are_refused(a in "[a-z]{0,5}", c in "\\p{Cc}", b in "[a-z]{0,5}") {
            let value = format!("{a}{c}{b}");
            prop_assert!(quote(&value).is_err());
        }

        /// The parser never panics, and what it returns has clean keys and
        /// one-line values.
        #[test]
        fn parse_never_panics(text in "(?s).{0,200}") {
            if let Ok(fields) = parse(&text) {
                for (k, v) in fields {
                    prop_assert!(!k.is_empty() && !k.contains('='));
                    prop_assert!(!v.chars().any(char::is_control));
                }
            }
        }

        /// Every release that renders reads back equal.
        #[test]
        fn release_round_trips(
            id in "_any|[a-z0-9._-]{1,20}",
            version in proptest::option::of("[0-9][0-9.~+a-z-]{0,10}"),
            level in proptest::option::of("[0-9.]{1,5}"),
            arch in proptest::option::of("x86-64|arm64|riscv64"),
            reload in any::<bool>(),
            image_version in proptest::option::of("[0-9][0-9a-z.+~_-]{0,10}"),
            confext in any::<bool>(),
        ) {
            let kind = if confext { Kind::Confext } else { Kind::Sysext };
            let release = Release { id, version_id: version, level, architecture: arch, reload_manager: reload, image_version };
            let text = release.render(kind).unwrap();
            prop_assert_eq!(Release::from_text(kind, &text).unwrap(), release);
        }
    }
}
