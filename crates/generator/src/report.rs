//! The generator's report and the one place that turns it into log lines.
//! Tenant ids and file names come from directory names in git, which can
//! hold newlines and escape sequences: every line is escaped here, so no
//! caller can print a raw control character or forge a log record.

use std::borrow::Cow;
use std::fmt::Write as _;

use bbhv_spec::Diagnostic;
use serde::{Deserialize, Serialize};

use crate::GENERATOR;

/// The machine-readable outcome, written to `<run dir>/generator-report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub generator: String,
    pub version: String,
    /// The checkout that was read (resolved); when it could not be read, the
    /// path that was looked at (`None` in reports of older versions).
    pub current: Option<String>,
    pub commit: Option<String>,
    pub state: State,
    pub tenants: Vec<TenantReport>,
    /// Problems that are not any one tenant's (the repository or the output
    /// directory could not be used).
    pub errors: Vec<String>,
}

/// What the generator could do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// `current` was read.
    Generated,
    /// `current` did not exist (yet): no tenants, the re-run unit enabled.
    WaitingForCurrent,
    /// `current` exists but cannot be read (a symlink loop, a dangling
    /// symlink, not a directory, no permission): no tenants, see `errors`.
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantReport {
    pub id: String,
    pub file: String,
    pub status: Status,
    pub errors: Vec<Diagnostic>,
}

/// What became of one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Rendered and enabled.
    Generated,
    /// Rendered, not started with `tenants.target`.
    Disabled,
    /// Skipped: see its errors.
    Failed,
}

/// A syslog priority (the `<N>` of kmsg and of the journal's stdout stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Err = 3,
    Warning = 4,
    Info = 6,
}

impl Priority {
    pub fn syslog(self) -> u8 {
        self as u8
    }

    /// A problem (goes to stderr); info goes to the journal only.
    pub fn is_problem(self) -> bool {
        self <= Priority::Warning
    }
}

/// One printable line: escaped, never containing a control character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub priority: Priority,
    pub text: String,
}

impl Line {
    pub fn new(priority: Priority, text: &str) -> Line {
        Line {
            priority,
            text: escape(text).into_owned(),
        }
    }
}

/// Escapes C0 and C1 control characters and DEL (`\n`, `\x1b`, `\u{9b}`), so
/// text from the repository can neither break a line nor drive a terminal.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_control(c: char) -> bool {
    let c = c as u32;
    c < 0x20 || (0x7f..=0x9f).contains(&c)
}

impl Report {
    pub(crate) fn new(current: Option<String>, commit: Option<String>, state: State) -> Report {
        Report {
            generator: GENERATOR.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            current,
            commit,
            state,
            tenants: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn count(&self, status: Status) -> usize {
        self.tenants.iter().filter(|t| t.status == status).count()
    }

    pub fn failed(&self) -> impl Iterator<Item = &TenantReport> {
        self.tenants.iter().filter(|t| t.status == Status::Failed)
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.failed().next().is_some()
    }

    /// One line for logs: counts, source and commit (not escaped: see [`Report::lines`]).
    pub fn summary(&self) -> String {
        let current = self.current.as_deref().unwrap_or("the applied checkout");
        match self.state {
            State::Generated => format!(
                "{} tenants: {} enabled, {} disabled, {} failed; from {} (commit {})",
                self.tenants.len(),
                self.count(Status::Generated),
                self.count(Status::Disabled),
                self.count(Status::Failed),
                current,
                self.commit.as_deref().unwrap_or("unknown"),
            ),
            State::WaitingForCurrent => format!(
                "no tenants yet: {current} does not exist (yet); \
                 the generators run again once it is mounted"
            ),
            State::Error => format!("no tenants: {current} cannot be read"),
        }
    }

    /// Everything a person should see, in order: the summary (info), the
    /// errors that are no tenant's, then each failed tenant's diagnostics
    /// (err). Every caller prints these; it only chooses where they go.
    pub fn lines(&self) -> impl Iterator<Item = Line> + '_ {
        let summary = std::iter::once(Line::new(Priority::Info, &self.summary()));
        let errors = self.errors.iter().map(|e| Line::new(Priority::Err, e));
        let tenants = self.failed().flat_map(|tenant| {
            let lines: Vec<Line> = if tenant.errors.is_empty() {
                vec![Line::new(
                    Priority::Err,
                    &format!("{}: tenant {} failed", tenant.file, tenant.id),
                )]
            } else {
                // A diagnostic starts with the tenant's file, which names it.
                tenant
                    .errors
                    .iter()
                    .map(|d| Line::new(Priority::Err, &d.to_string()))
                    .collect()
            };
            lines
        });
        summary.chain(errors).chain(tenants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_is_kept() {
        assert_eq!(escape("plain ü \\x2d"), "plain ü \\x2d");
        assert_eq!(
            escape("evil\n\x1b[31mfake\r\t\x7f\u{9b}\u{85}end"),
            "evil\\n\\x1b[31mfake\\r\\t\\x7f\\u{9b}\\u{85}end"
        );
    }

    #[test]
    fn every_line_is_escaped() {
        let mut report = Report::new(Some("/r".into()), None, State::Generated);
        report.errors.push("bad\nline".into());
        report.tenants.push(TenantReport {
            id: "evil\n\x1b[31mfake: 0 tenants failed".into(),
            file: "tenants/evil\n/metadata.json".into(),
            status: Status::Failed,
            errors: vec![Diagnostic {
                file: "tenants/evil\n/metadata.json".into(),
                line: 0,
                column: 0,
                path: String::new(),
                message: "not a tenant id".into(),
            }],
        });
        let lines: Vec<Line> = report.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].priority, Priority::Info);
        assert_eq!(lines[1].text, "bad\\nline");
        assert_eq!(
            lines[2].text,
            "tenants/evil\\n/metadata.json: not a tenant id"
        );
        assert!(lines.iter().all(|l| !l.text.chars().any(is_control)));
    }
}
