//! Values and their escaping. Each constructor checks what no escaping can
//! save (NUL, a relative command path); rendering escapes the rest for the
//! file's [`Syntax`].

use std::fmt::Write as _;

/// Whether systemd expands `%` specifiers in the file's values.
///
/// Unit files and drop-ins do; `.nspawn` files and most networkd settings do
/// not, and there a `%%` would reach the program as two percent signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// `.service`, `.slice`, `.target`, drop-ins: `%` is a specifier.
    Unit,
    /// `.nspawn`, `.netdev`, `.network`, `.link`: `%` is a plain character.
    Plain,
}

/// A value that cannot be written safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{what} contains the control character {ch:?}, which systemd would read as syntax")]
    Control { what: &'static str, ch: char },
    #[error("{what} ends with a backslash, which systemd reads as a line continuation")]
    TrailingBackslash { what: &'static str },
    #[error("{what} has leading or trailing whitespace, which systemd would strip")]
    OuterWhitespace { what: &'static str },
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} {value:?} may only contain letters, digits and any of {allowed:?}")]
    Alphabet {
        what: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error(
        "command {0:?} must start with an absolute path (systemd reads a leading -, @, :, +, ! as flags)"
    )]
    RelativeCommand(String),
    #[error("environment variable name {0:?} must match [A-Za-z_][A-Za-z0-9_]*")]
    EnvName(String),
}

/// One value of a `key=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value(Kind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Free text that systemd takes as the whole rest of the line.
    Text(String),
    /// A token from a validated type: nothing in it is syntax anywhere.
    Literal(String),
    /// A whole number followed by `%` (`CPUQuota=`, which expands no specifiers).
    Percent(u64),
    /// A command line: each word quoted; `$` escaped for exec-time expansion.
    Command(Vec<String>),
    PrivilegedCommand(Vec<String>),
    /// Quoted words, such as `Environment="A=b c"` (no `$` expansion there).
    Words(Vec<String>),
    /// Quoted words for `.nspawn` `Parameters=`/`Environment=`, which
    /// systemd reads with `config_parse_strv()`:
    /// `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_RETAIN_ESCAPE)`. A
    /// backslash is never an escape there, so nothing is escaped: each run
    /// of characters goes in the quotes it does not contain.
    Verbatim(Vec<String>),
}

/// Characters allowed in a literal besides ASCII letters and digits.
const LITERAL_EXTRA: &str = "._:/@+=,_-\\";

impl Value {
    /// Free text such as a `Description=`: one line, kept exactly.
    pub fn text(text: &str) -> Result<Value, ValueError> {
        check_line("text", text)?;
        Ok(Value(Kind::Text(text.to_owned())))
    }

    /// An absolute path (for example `SourcePath=`).
    pub fn path(path: &str) -> Result<Value, ValueError> {
        check_line("path", path)?;
        Ok(Value(Kind::Text(path.to_owned())))
    }

    /// A token that needs no escaping: a unit name, a size like `4G`, a
    /// number. `\` is allowed for escaped unit names (`\x2d`), never last.
    pub fn literal(token: impl Into<String>) -> Result<Value, ValueError> {
        let token = token.into();
        if token.is_empty() {
            return Err(ValueError::Empty { what: "literal" });
        }
        if !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LITERAL_EXTRA.contains(c))
        {
            return Err(ValueError::Alphabet {
                what: "literal",
                value: token,
                allowed: LITERAL_EXTRA,
            });
        }
        if token.ends_with('\\') {
            return Err(ValueError::TrailingBackslash { what: "literal" });
        }
        Ok(Value(Kind::Literal(token)))
    }

    /// A whole number; always safe.
    pub fn number(n: impl Into<u64>) -> Value {
        Value(Kind::Literal(n.into().to_string()))
    }

    /// A percentage like `200%`, for settings that do not expand specifiers
    /// (`CPUQuota=`): digits, then `%`.
    pub fn percent(text: &str) -> Result<Value, ValueError> {
        text.strip_suffix('%')
            .and_then(|digits| digits.parse::<u64>().ok())
            .map(|n| Value(Kind::Percent(n)))
            .ok_or_else(|| ValueError::Alphabet {
                what: "percentage",
                value: text.to_owned(),
                allowed: "digits, then %",
            })
    }

    /// `yes` or `no`.
    pub fn boolean(b: bool) -> Value {
        Value(Kind::Literal(if b { "yes" } else { "no" }.to_owned()))
    }

    /// Several tokens separated by spaces (`After=a.service b.service`).
    /// The empty assignment (`Key=`): for list settings, "none" (an empty
    /// `CapabilityBoundingSet=` drops every capability).
    pub fn empty() -> Value {
        Value(Kind::Literal(String::new()))
    }

    pub fn literals<I, S>(tokens: I) -> Result<Value, ValueError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out = Vec::new();
        for token in tokens {
            match Value::literal(token)?.0 {
                Kind::Literal(t) => out.push(t),
                _ => unreachable!("literal() builds a literal"),
            }
        }
        if out.is_empty() {
            return Err(ValueError::Empty { what: "list" });
        }
        Ok(Value(Kind::Literal(out.join(" "))))
    }

    /// A command line for `ExecStart=` and friends: every argument is quoted,
    /// so no argument can split, join, add a flag or expand a variable.
    /// NUL cannot be passed to a program at all and is refused.
    pub fn command<S: AsRef<str>>(argv: &[S]) -> Result<Value, ValueError> {
        let argv: Vec<String> = argv.iter().map(|a| a.as_ref().to_owned()).collect();
        let Some(first) = argv.first() else {
            return Err(ValueError::Empty { what: "command" });
        };
        if !first.starts_with('/') {
            return Err(ValueError::RelativeCommand(first.clone()));
        }
        for arg in &argv {
            check_no_nul("command argument", arg)?;
        }
        Ok(Value(Kind::Command(argv)))
    }

    /// [`Value::command`] with systemd's `+` prefix: the command runs with
    /// full privileges, outside the unit's sandbox (`ExecStartPre=` steps
    /// that configure the host for a sandboxed main process).
    pub fn privileged_command<S: AsRef<str>>(argv: &[S]) -> Result<Value, ValueError> {
        match Value::command(argv)?.0 {
            Kind::Command(argv) => Ok(Value(Kind::PrivilegedCommand(argv))),
            _ => unreachable!("command() makes a command"),
        }
    }

    /// Quoted words with C escapes, for settings read with
    /// `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)` and no `$`
    /// expansion. Not for `.nspawn` (nspawn keeps backslashes there: use
    /// [`Value::nspawn_words`]). NUL is refused.
    pub fn words<S: AsRef<str>>(words: &[S]) -> Result<Value, ValueError> {
        let words: Vec<String> = words.iter().map(|w| w.as_ref().to_owned()).collect();
        if words.is_empty() {
            return Err(ValueError::Empty { what: "word list" });
        }
        for word in &words {
            check_no_nul("argument", word)?;
        }
        Ok(Value(Kind::Words(words)))
    }

    /// Arguments for `.nspawn` `Parameters=` (quoted words, read without
    /// any escape: see [`Value::nspawn_env`]). NUL cannot reach a program,
    /// and CR and LF end the line whatever the quoting, so all three are
    /// refused; every other character round-trips.
    pub fn nspawn_words<S: AsRef<str>>(words: &[S]) -> Result<Value, ValueError> {
        let words: Vec<String> = words.iter().map(|w| w.as_ref().to_owned()).collect();
        if words.is_empty() {
            return Err(ValueError::Empty { what: "word list" });
        }
        for word in &words {
            check_verbatim("argument", word)?;
        }
        Ok(Value(Kind::Verbatim(words)))
    }

    /// One `.nspawn` `Environment=` assignment. nspawn reads it like
    /// `Parameters=` (`config_parse_strv()`: quotes, no escapes), so a
    /// newline cannot be written; systemd refuses the other control
    /// characters but tab in an environment value anyway.
    pub fn nspawn_env(name: &str, value: &str) -> Result<Value, ValueError> {
        check_env_name(name)?;
        if let Some(ch) = value.chars().find(|&c| c.is_control() && c != '\t') {
            return Err(ValueError::Control {
                what: "environment value",
                ch,
            });
        }
        Ok(Value(Kind::Verbatim(vec![format!("{name}={value}")])))
    }

    /// One `Environment=` assignment, quoted as a single word. systemd refuses
    /// environment values with control characters other than tab and newline.
    pub fn env(name: &str, value: &str) -> Result<Value, ValueError> {
        check_env_name(name)?;
        if let Some(ch) = value
            .chars()
            .find(|&c| c.is_control() && c != '\t' && c != '\n')
        {
            return Err(ValueError::Control {
                what: "environment value",
                ch,
            });
        }
        Ok(Value(Kind::Words(vec![format!("{name}={value}")])))
    }

    /// Appends the value as written for `syntax` to `out`.
    pub(crate) fn render_into(&self, syntax: Syntax, out: &mut String) {
        match &self.0 {
            Kind::Text(text) if syntax == Syntax::Unit && text.contains('%') => {
                out.push_str(&text.replace('%', "%%"));
            }
            Kind::Text(text) | Kind::Literal(text) => out.push_str(text),
            Kind::Percent(n) => {
                let _ = write!(out, "{n}%");
            }
            Kind::Command(words) => out.push_str(&quote_words(words, syntax, true)),
            Kind::PrivilegedCommand(words) => {
                out.push('+');
                out.push_str(&quote_words(words, syntax, true));
            }
            Kind::Words(words) => out.push_str(&quote_words(words, syntax, false)),
            Kind::Verbatim(words) => quote_verbatim(words, syntax, out),
        }
    }
}

/// Writes each word in double quotes, with C escapes for what would be syntax
/// inside them. systemd reads these with `extract_first_word(EXTRACT_UNQUOTE |
/// EXTRACT_CUNESCAPE)`, then expands specifiers (and, for commands, `$VAR`).
fn quote_words(words: &[String], syntax: Syntax, command: bool) -> String {
    let mut out = String::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('"');
        for c in word.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '%' if syntax == Syntax::Unit => out.push_str("%%"),
                '$' if command => out.push_str("$$"),
                // The other ASCII control characters as \xNN, which
                // systemd's cunescape() turns back into the same byte.
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

/// Writes words for `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_RETAIN_ESCAPE)`:
/// inside quotes every character is literal up to the closing quote, and
/// quoted runs with nothing between them make one word. So a word goes in
/// double quotes, and each `"` in it is closed off and written as `'"'`
/// (`a"b` → `"a"'"'"b"`); an empty word is `""`. `%` is doubled only where
/// it is a specifier (never in `.nspawn`).
fn quote_verbatim(words: &[String], syntax: Syntax, out: &mut String) {
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('"');
        for c in word.chars() {
            match c {
                '"' => out.push_str("\"'\"'\""),
                '%' if syntax == Syntax::Unit => out.push_str("%%"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

fn check_env_name(name: &str) -> Result<(), ValueError> {
    let mut chars = name.chars();
    let valid_name = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid_name {
        Ok(())
    } else {
        Err(ValueError::EnvName(name.to_owned()))
    }
}

/// What no quoting in a `.nspawn` word can carry: NUL, and CR and LF, which
/// end the line.
fn check_verbatim(what: &'static str, text: &str) -> Result<(), ValueError> {
    match text.chars().find(|&c| matches!(c, '\0' | '\n' | '\r')) {
        Some(ch) => Err(ValueError::Control { what, ch }),
        None => Ok(()),
    }
}

/// Whole-line text: no control character, no continuation, nothing systemd strips.
fn check_line(what: &'static str, text: &str) -> Result<(), ValueError> {
    if text.is_empty() {
        return Err(ValueError::Empty { what });
    }
    check_no_control(text, what)?;
    if text.ends_with('\\') {
        return Err(ValueError::TrailingBackslash { what });
    }
    if text.trim() != text {
        return Err(ValueError::OuterWhitespace { what });
    }
    Ok(())
}

pub(crate) fn check_no_control(text: &str, what: &'static str) -> Result<(), ValueError> {
    match text.chars().find(char::is_ascii_control) {
        Some(ch) => Err(ValueError::Control { what, ch }),
        None => Ok(()),
    }
}

fn check_no_nul(what: &'static str, text: &str) -> Result<(), ValueError> {
    if text.contains('\0') {
        return Err(ValueError::Control { what, ch: '\0' });
    }
    Ok(())
}

/// Section names and keys: code constants, checked in debug builds.
pub(crate) fn is_plain_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// One line of free text, checked once: no control character, no trailing
/// backslash, no outer whitespace, not empty. Holding a `Line` means it can
/// be written as a value or a comment without any further check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Line(String);

impl Line {
    pub fn new(text: &str) -> Result<Line, ValueError> {
        check_line("text", text)?;
        Ok(Line(text.to_owned()))
    }

    /// A line of code's own text: a bug, not bad data, when it is invalid.
    ///
    /// # Panics
    /// If `text` is not a valid line.
    pub fn constant(text: &'static str) -> Line {
        Line::new(text).unwrap_or_else(|e| panic!("constant {text:?}: {e}"))
    }

    /// `head`, `separator`, `tail`: a line, since `head` starts and `tail`
    /// ends it, and the separator (code, checked in debug builds) has no
    /// control character.
    pub fn join(head: &Line, separator: &'static str, tail: &Line) -> Line {
        debug_assert!(!separator.chars().any(|c| c.is_ascii_control()));
        Line(format!("{}{separator}{}", head.0, tail.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Token> for Line {
    /// A token is a line: it has neither controls, nor spaces, nor a trailing `\`.
    fn from(token: Token) -> Line {
        Line(token.0)
    }
}

impl From<Line> for Value {
    fn from(line: Line) -> Value {
        Value(Kind::Text(line.0))
    }
}

/// A token that is syntax nowhere (unit names, sizes, numbers, hex ids):
/// letters, digits and `._:/@+=,_-\`, not ending in `\`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Result<Token, ValueError> {
        match Value::literal(token)?.0 {
            Kind::Literal(t) => Ok(Token(t)),
            _ => unreachable!("literal() builds a literal"),
        }
    }

    /// A token of code's own text.
    ///
    /// # Panics
    /// If `token` is not a valid token.
    pub fn constant(token: &'static str) -> Token {
        Token::new(token).unwrap_or_else(|e| panic!("constant {token:?}: {e}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Token> for Value {
    fn from(token: Token) -> Value {
        Value(Kind::Literal(token.0))
    }
}

impl Value {
    /// A percentage like `200%` (`CPUQuota=`).
    pub fn percent_of(n: u32) -> Value {
        Value(Kind::Percent(n.into()))
    }

    /// A whole line of text that was checked when it became a [`Line`].
    pub fn line(line: &Line) -> Value {
        Value(Kind::Text(line.0.clone()))
    }
}
