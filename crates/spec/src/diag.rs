//! Diagnostics: every problem names the file, line, column, key path, the
//! bad value and what is allowed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The file as the user knows it (relative to the repository root).
    pub file: String,
    /// 1-based line; 0 when the problem is about the file as a whole.
    pub line: usize,
    /// 1-based column in characters; 0 when the problem is about the file.
    pub column: usize,
    /// JSON pointer of the key (`/network/vlan`); empty for the whole document.
    pub path: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Maps byte offsets of a text to 1-based line and column (in characters).
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, line_starts }
    }

    /// The byte offset of a 1-based line and 1-based byte column (what
    /// serde_json reports), clamped to the text.
    pub(crate) fn offset(&self, line: usize, byte_column: usize) -> usize {
        let start = self.line_starts[line.clamp(1, self.line_starts.len()) - 1];
        (start + byte_column.saturating_sub(1)).min(self.text.len())
    }

    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }
}

/// A JSON pointer segment, escaped per RFC 6901.
pub(crate) fn pointer_segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Shortens a value for a message: long or multi-line values would drown it.
pub(crate) fn show_value(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let short: String = text.chars().take(77).collect();
        format!("{short}...")
    } else {
        text
    }
}

/// A diagnostic at `pointer` of `text` (the file named `file`), for a
/// problem found after parsing (a fleet conflict); line 0 when the text no
/// longer parses (it changed since it was checked).
pub fn locate(file: &str, text: &str, pointer: &str, message: String) -> Diagnostic {
    let doc = crate::json::Document::new(file, text);
    match doc.syntax() {
        Ok(root) => doc.at(&root, pointer, message),
        Err(_) => Diagnostic {
            file: file.to_owned(),
            line: 0,
            column: 0,
            path: pointer.to_owned(),
            message,
        },
    }
}
