//! One `metadata.json`, from text to a validated [`Tenant`]: strict JSON →
//! schema (all errors at once) → raw [`Metadata`] → typed [`Tenant`].
//!
//! A valid file (nearly all of them) is read once, straight into a value.
//! Only a file with problems pays for the syntax tree that positions them,
//! and a hostile one costs time linear in its size: at most
//! [`MAX_DIAGNOSTICS`] problems are positioned, the rest are counted.

use std::sync::LazyLock;

use crate::diag::Diagnostic;
use crate::json::{Document, MAX_DEPTH, StrictValue};
use crate::model::Metadata;
use crate::schema;
use crate::tenant::{Problem, Tenant};

/// Problems shown per file; a count stands for the rest.
pub const MAX_DIAGNOSTICS: usize = 20;

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::options()
        .build(schema::metadata_schema())
        .expect("the generated schema is valid")
});

impl Tenant {
    /// Parses and checks `tenants/<dir_name>/metadata.json`; `file` is the
    /// name used in diagnostics.
    pub fn parse(file: &str, dir_name: &str, text: &str) -> Result<Tenant, Vec<Diagnostic>> {
        if let Ok(StrictValue(json)) = serde_json::from_str::<StrictValue>(text)
            && VALIDATOR.is_valid(&json)
            && let Ok(metadata) = serde_json::from_value::<Metadata>(json)
        {
            return Tenant::from_raw(metadata, file, dir_name)
                .map_err(|problems| positioned(file, text, problems));
        }
        Err(diagnose(file, dir_name, text))
    }
}

/// The raw metadata of a file, or its problems (for tools that want the
/// JSON's own view, such as the schema tests).
pub fn parse_metadata(file: &str, text: &str) -> Result<Metadata, Vec<Diagnostic>> {
    match serde_json::from_str::<StrictValue>(text) {
        Ok(StrictValue(json)) if VALIDATOR.is_valid(&json) => {
            serde_json::from_value(json).map_err(|_| diagnose(file, "", text))
        }
        _ => Err(diagnose(file, "", text)),
    }
}

/// Every problem of a file that did not make it to the typed stage.
fn diagnose(file: &str, dir_name: &str, text: &str) -> Vec<Diagnostic> {
    let doc = Document::new(file, text);
    if text.starts_with('\u{feff}') {
        let e = serde_json::from_str::<serde::de::IgnoredAny>(text).expect_err("a BOM is not JSON");
        return vec![syntax_error(&doc, text, &e)];
    }
    // serde_json is the authority on syntax (every JSON tool agrees with
    // it); the syntax tree's parser words most errors better, so its message
    // is used when it refuses the text too.
    let ast = match (
        serde_json::from_str::<serde::de::IgnoredAny>(text),
        doc.syntax(),
    ) {
        (Ok(_), Ok(ast)) => ast,
        (Err(e), Ok(_)) => return vec![syntax_error(&doc, text, &e)],
        (_, Err(diagnostics)) => return diagnostics,
    };
    let mut diagnostics = Vec::new();
    let Some(json) = doc.to_json(&ast, "", &mut diagnostics) else {
        return diagnostics;
    };
    // Duplicate keys are reported with, not instead of, the schema's findings.
    let mut total = diagnostics.len() + doc.dropped.get();
    for error in VALIDATOR.iter_errors(&json) {
        let budget = MAX_DIAGNOSTICS.saturating_sub(diagnostics.len());
        let (shown, count) = doc.schema_error(&ast, &error, budget);
        diagnostics.extend(shown);
        total += count;
    }
    if diagnostics.is_empty() {
        // The schema passed; the types did not (a number like 1.0 where a
        // whole one belongs): serde names the path.
        match serde_path_to_error::deserialize::<_, Metadata>(json) {
            // The fast path read the same value: this is for callers that
            // come here directly.
            Ok(metadata) => {
                return Tenant::from_raw(metadata, file, dir_name)
                    .err()
                    .map_or_else(Vec::new, |problems| positioned(file, text, problems));
            }
            Err(e) => {
                let pointer = pointer_of(e.path());
                let mut message = e.inner().to_string();
                if message.contains("floating point") {
                    message.push_str("; write a whole number, without a decimal point");
                }
                return vec![doc.at(&ast, &pointer, message)];
            }
        }
    }
    finish(&doc, diagnostics, total)
}

/// Problems of the typed stage, given their line and column.
fn positioned(file: &str, text: &str, problems: Vec<Problem>) -> Vec<Diagnostic> {
    let doc = Document::new(file, text);
    let total = problems.len();
    let Ok(ast) = doc.syntax() else {
        // Cannot happen for text serde_json read; point at the file then.
        return problems
            .into_iter()
            .take(MAX_DIAGNOSTICS)
            .map(|(path, message)| Diagnostic {
                file: file.to_owned(),
                line: 0,
                column: 0,
                path,
                message,
            })
            .collect();
    };
    let shown = problems
        .into_iter()
        .take(MAX_DIAGNOSTICS)
        .map(|(path, message)| doc.at(&ast, &path, message))
        .collect();
    finish(&doc, shown, total)
}

/// Sorts by position and says how many were left out.
fn finish(doc: &Document<'_>, mut shown: Vec<Diagnostic>, total: usize) -> Vec<Diagnostic> {
    shown.sort_by_key(|d| (d.line, d.column));
    if total > shown.len() {
        shown.push(doc.diagnostic(
            0,
            "",
            format!(
                "{} more problems in this file are not shown (at most {MAX_DIAGNOSTICS} are)",
                total - shown.len()
            ),
        ));
    }
    shown
}

fn syntax_error(doc: &Document<'_>, text: &str, e: &serde_json::Error) -> Diagnostic {
    let message = if text.starts_with('\u{feff}') {
        "the file starts with a byte order mark (U+FEFF); JSON text is UTF-8 without one: remove it"
            .to_owned()
    } else if text.trim().is_empty() {
        "the file is empty; expected a JSON object".to_owned()
    } else if e.to_string().contains("recursion limit") {
        format!("nested deeper than {MAX_DEPTH} levels; metadata v1 needs no more than 5")
    } else {
        // serde_json's message ends with " at line L column C": the position
        // is given as such.
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m)
            .to_owned();
        format!("invalid JSON: {message}")
    };
    if e.line() > 0 && !text.starts_with('\u{feff}') {
        doc.diagnostic_at_line(e.line(), e.column().max(1), message)
    } else {
        doc.diagnostic(0, "", message)
    }
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&crate::diag::pointer_segment(key));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    pointer
}
