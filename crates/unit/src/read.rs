//! A reader that applies systemd's parsing rules (`config_parse()`,
//! `extract_first_word()`, `cunescape()`, specifier and `$` expansion) so that
//! tests can check what systemd will make of a written file. It is strict:
//! anything systemd would treat as more syntax than the writer meant (a
//! continuation line, a specifier, a variable) is an error here.

/// What the reader refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("line {0}: continuation line (trailing backslash)")]
    Continuation(usize),
    #[error("line {0}: not a section, comment or assignment: {1:?}")]
    Garbage(usize, String),
    #[error("line {0}: assignment outside of a section")]
    NoSection(usize),
    #[error("unbalanced quotes in {0:?}")]
    Quotes(String),
    #[error("bad escape in {0:?}")]
    Escape(String),
    #[error("{0:?} would expand a specifier")]
    Specifier(String),
    #[error("{0:?} would expand a variable")]
    Variable(String),
}

/// A parsed file: sections with their assignments, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reader {
    pub sections: Vec<(String, Vec<(String, String)>)>,
}

impl Reader {
    pub fn parse(text: &str) -> Result<Reader, ReadError> {
        let mut reader = Reader::default();
        for (i, raw) in text.split('\n').enumerate() {
            let number = i + 1;
            if raw.ends_with('\\') {
                return Err(ReadError::Continuation(number));
            }
            let line = raw.trim_matches(is_whitespace);
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                reader.sections.push((name.to_owned(), Vec::new()));
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(ReadError::Garbage(number, line.to_owned()));
            };
            let Some((_, entries)) = reader.sections.last_mut() else {
                return Err(ReadError::NoSection(number));
            };
            entries.push((
                key.trim_matches(is_whitespace).to_owned(),
                value.trim_matches(is_whitespace).to_owned(),
            ));
        }
        Ok(reader)
    }

    /// All values of `key` in every `[section]`, in order.
    pub fn values(&self, section: &str, key: &str) -> Vec<&str> {
        self.sections
            .iter()
            .filter(|(name, _)| name == section)
            .flat_map(|(_, entries)| entries.iter())
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Section names in file order.
    pub fn section_names(&self) -> Vec<&str> {
        self.sections
            .iter()
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Splits a value into words like `extract_first_word(EXTRACT_UNQUOTE |
/// EXTRACT_CUNESCAPE)`, then undoes `%%` (`unit` syntax) and `$$`
/// (`command`); a lone `%x` or `$NAME` is an error.
pub fn unquote_words(raw: &str, unit: bool, command: bool) -> Result<Vec<String>, ReadError> {
    let mut words = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.next_if(|&c| is_whitespace(c)).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut word: Vec<u8> = Vec::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if is_whitespace(c) => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => cunescape_one(&mut chars, &mut word, raw)?,
                (_, c) => word.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        if quote.is_some() {
            return Err(ReadError::Quotes(raw.to_owned()));
        }
        let word = String::from_utf8(word).map_err(|_| ReadError::Escape(raw.to_owned()))?;
        let word = if unit {
            unescape_specifiers(&word)?
        } else {
            word
        };
        let word = if command {
            unescape_variables(&word)?
        } else {
            word
        };
        words.push(word);
    }
    Ok(words)
}

fn cunescape_one(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut Vec<u8>,
    raw: &str,
) -> Result<(), ReadError> {
    let bad = || ReadError::Escape(raw.to_owned());
    let c = chars.next().ok_or_else(bad)?;
    let simple = match c {
        'a' => Some(7),
        'b' => Some(8),
        'f' => Some(12),
        'n' => Some(b'\n'),
        'r' => Some(b'\r'),
        't' => Some(b'\t'),
        'v' => Some(11),
        's' => Some(b' '),
        '\\' => Some(b'\\'),
        '"' => Some(b'"'),
        '\'' => Some(b'\''),
        _ => None,
    };
    if let Some(byte) = simple {
        out.push(byte);
        return Ok(());
    }
    if c == 'x' {
        let hi = chars.next().and_then(|c| c.to_digit(16)).ok_or_else(bad)?;
        let lo = chars.next().and_then(|c| c.to_digit(16)).ok_or_else(bad)?;
        let byte = (hi << 4 | lo) as u8;
        if byte == 0 {
            return Err(bad());
        }
        out.push(byte);
        return Ok(());
    }
    Err(bad())
}

/// `%%` → `%`; any other `%` would be a specifier.
pub fn unescape_specifiers(s: &str) -> Result<String, ReadError> {
    unescape_doubled(s, '%').ok_or_else(|| ReadError::Specifier(s.to_owned()))
}

/// `$$` → `$`; any other `$` would start a variable reference.
pub fn unescape_variables(s: &str) -> Result<String, ReadError> {
    unescape_doubled(s, '$').ok_or_else(|| ReadError::Variable(s.to_owned()))
}

fn unescape_doubled(s: &str, marker: char) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == marker && chars.next()? != marker {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

/// Splits a value into words like `config_parse_strv()` does (`.nspawn`
/// `Parameters=`, `Environment=`): `extract_first_word(EXTRACT_UNQUOTE |
/// EXTRACT_RETAIN_ESCAPE)`. Quotes group, a backslash is an ordinary
/// character, and no specifier or variable is expanded.
pub fn unquote_verbatim(raw: &str) -> Result<Vec<String>, ReadError> {
    let mut words = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.next_if(|&c| is_whitespace(c)).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        for c in chars.by_ref() {
            match (quote, c) {
                (None, c) if is_whitespace(c) => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, c) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err(ReadError::Quotes(raw.to_owned()));
        }
        words.push(word);
    }
    Ok(words)
}
