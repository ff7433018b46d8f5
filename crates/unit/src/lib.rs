//! A typed writer for systemd's unit-style files (units, drop-ins, `.netdev`,
//! `.network`, `.nspawn`), and a reader that follows systemd's own parsing
//! rules so tests can prove what systemd will see.
//!
//! No crate escapes values for systemd, so this one is written by hand. The
//! guarantee: whatever string reaches a [`Value`], the written file has exactly
//! the sections and keys the code chose, and systemd reads the value back as
//! that same string. Keys and section names are `&'static str` (they come
//! from code, never from data); every value goes through a [`Value`]
//! constructor that rejects or escapes what would otherwise be syntax:
//! newlines, NUL and other control characters, `%` specifiers, `$` variable
//! expansion in command lines, quotes, backslashes and line continuations.

mod escape;
mod read;
mod value;

pub use escape::{PathNameError, UNIT_NAME_MAX, unit_name_from_path};
pub use read::{
    ReadError, Reader, unescape_specifiers, unescape_variables, unquote_verbatim, unquote_words,
};
pub use value::{Line, Syntax, Token, Value, ValueError};

/// One file: header comments, then sections in the order they were opened.
#[derive(Debug, Clone)]
pub struct UnitFile {
    syntax: Syntax,
    header: Vec<String>,
    sections: Vec<Section>,
    /// Index of the section `set` appends to.
    open: Option<usize>,
}

#[derive(Debug, Clone)]
struct Section {
    name: &'static str,
    entries: Vec<(&'static str, Value)>,
}

impl UnitFile {
    /// A file whose values are written for `syntax` (whether systemd expands
    /// `%` specifiers in it).
    pub fn new(syntax: Syntax) -> Self {
        UnitFile {
            syntax,
            header: Vec::new(),
            sections: Vec::new(),
            open: None,
        }
    }

    /// Adds a `# …` line to the header. Comment text is data too: a control
    /// character is refused, so it can never end the comment early, and so is
    /// a trailing backslash, which a reader might take for a continuation.
    pub fn comment(&mut self, text: &str) -> Result<&mut Self, ValueError> {
        value::check_no_control(text, "comment")?;
        if text.ends_with('\\') {
            return Err(ValueError::TrailingBackslash { what: "comment" });
        }
        self.header.push(text.to_owned());
        Ok(self)
    }

    /// Adds a checked line to the header: cannot fail.
    pub fn comment_line(&mut self, line: &Line) -> &mut Self {
        self.header.push(line.as_str().to_owned());
        self
    }

    /// Opens section `[name]` (or returns to it if it is already open).
    pub fn section(&mut self, name: &'static str) -> &mut Self {
        debug_assert!(value::is_plain_token(name), "section name {name:?}");
        let index = match self.sections.iter().position(|s| s.name == name) {
            Some(index) => index,
            None => {
                self.sections.push(Section {
                    name,
                    entries: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        self.open = Some(index);
        self
    }

    /// Opens a new section `[name]` even when one of that name exists
    /// (networkd's repeated sections: `[WireGuardPeer]`, `[Address]`).
    pub fn add_section(&mut self, name: &'static str) -> &mut Self {
        debug_assert!(value::is_plain_token(name), "section name {name:?}");
        self.sections.push(Section {
            name,
            entries: Vec::new(),
        });
        self.open = Some(self.sections.len() - 1);
        self
    }

    /// Appends `key=value` to the open section.
    ///
    /// # Panics
    /// If no section was opened: that is a bug in the calling code, not bad data.
    pub fn set(&mut self, key: &'static str, value: Value) -> &mut Self {
        debug_assert!(value::is_plain_token(key), "key {key:?}");
        let index = self.open.expect("set() before section()");
        self.sections[index].entries.push((key, value));
        self
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(512);
        for line in &self.header {
            if line.is_empty() {
                out.push_str("#\n");
            } else {
                out.push_str("# ");
                out.push_str(line);
                out.push('\n');
            }
        }
        for (i, section) in self.sections.iter().enumerate() {
            if i > 0 || !self.header.is_empty() {
                out.push('\n');
            }
            out.push('[');
            out.push_str(section.name);
            out.push_str("]\n");
            for (key, value) in &section.entries {
                out.push_str(key);
                out.push('=');
                value.render_into(self.syntax, &mut out);
                out.push('\n');
            }
        }
        out
    }
}
