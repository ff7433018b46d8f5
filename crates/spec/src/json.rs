//! JSON with positions: a strict reader (no duplicate keys, bounded
//! nesting) for the fast path, and a syntax tree with byte ranges that
//! points a diagnostic at its key, built only when something is wrong.

use jsonc_parser::ast;
use jsonc_parser::common::Ranged;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::diag::{Diagnostic, LineIndex, pointer_segment, show_value};
use crate::schema;

/// Nesting deeper than this is refused before anything else looks at it.
/// metadata.json v1 needs 5 levels; the margin keeps errors about shape
/// readable while a hostile 100,000-deep file costs nothing.
pub const MAX_DEPTH: usize = 16;

/// A JSON value that refuses duplicate keys (serde_json keeps the last) and,
/// through serde_json's recursion limit, deep nesting.
pub(crate) struct StrictValue(pub(crate) Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            if object.insert(key, value).is_some() {
                return Err(serde::de::Error::custom("duplicate key"));
            }
        }
        Ok(Value::Object(object))
    }
}

/// A file's text with what it takes to point into it.
pub(crate) struct Document<'a> {
    file: &'a str,
    text: &'a str,
    lines: LineIndex<'a>,
    /// Problems found but not positioned (past the cap).
    pub(crate) dropped: std::cell::Cell<usize>,
}

impl<'a> Document<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Document {
            file,
            text,
            lines: LineIndex::new(text),
            dropped: std::cell::Cell::new(0),
        }
    }

    /// A diagnostic at serde_json's position (line, column in bytes): the
    /// column is given in characters, like every other diagnostic's.
    pub(crate) fn diagnostic_at_line(
        &self,
        line: usize,
        byte_column: usize,
        message: String,
    ) -> Diagnostic {
        let mut offset = self.lines.offset(line, byte_column);
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        self.diagnostic(offset, "", message)
    }

    pub(crate) fn diagnostic(&self, offset: usize, path: &str, message: String) -> Diagnostic {
        let (line, column) = self.lines.position(offset);
        Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            path: path.to_owned(),
            message,
        }
    }

    /// Strict JSON (RFC 8259): no comments, trailing commas or other JSON5.
    pub(crate) fn syntax(&self) -> Result<ast::Value<'a>, Vec<Diagnostic>> {
        let options = jsonc_parser::ParseOptions {
            allow_comments: false,
            allow_loose_object_property_names: false,
            allow_trailing_commas: false,
            allow_missing_commas: false,
            allow_single_quoted_strings: false,
            allow_hexadecimal_numbers: false,
            allow_unary_plus_numbers: false,
            allow_bare_decimal_point_numbers: false,
            allow_non_finite_numbers: false,
            allow_extended_string_escapes: false,
        };
        match jsonc_parser::parse_to_ast(self.text, &Default::default(), &options) {
            Ok(result) => match result.value {
                Some(value) => Ok(value),
                None => Err(vec![self.diagnostic(
                    0,
                    "",
                    "the file is empty; expected a JSON object".into(),
                )]),
            },
            Err(e) => Err(vec![self.diagnostic(
                e.range().start,
                "",
                format!("invalid JSON: {}", e.kind()),
            )]),
        }
    }

    /// A diagnostic at the node `pointer` names (or the nearest existing parent).
    pub(crate) fn at(&self, root: &ast::Value<'_>, pointer: &str, message: String) -> Diagnostic {
        self.diagnostic(locate(root, pointer).start, pointer, message)
    }

    /// Converts the syntax tree to a value, refusing duplicate keys and deep nesting.
    pub(crate) fn to_json(
        &self,
        node: &ast::Value<'_>,
        pointer: &str,
        out: &mut Vec<Diagnostic>,
    ) -> Option<Value> {
        if pointer.matches('/').count() > MAX_DEPTH {
            out.push(self.diagnostic(
                node.range().start,
                pointer,
                format!("nested deeper than {MAX_DEPTH} levels; metadata v1 needs no more than 5"),
            ));
            return None;
        }
        Some(match node {
            ast::Value::StringLit(s) => Value::String(s.value.to_string()),
            ast::Value::NumberLit(n) => match serde_json::from_str(n.value) {
                Ok(number) => Value::Number(number),
                Err(_) => {
                    out.push(self.diagnostic(
                        n.range.start,
                        pointer,
                        format!("the number {} is out of range", n.value),
                    ));
                    return None;
                }
            },
            ast::Value::BooleanLit(b) => Value::Bool(b.value),
            ast::Value::NullKeyword(_) => Value::Null,
            ast::Value::Array(array) => Value::Array(
                array
                    .elements
                    .iter()
                    .enumerate()
                    .map(|(i, e)| self.to_json(e, &format!("{pointer}/{i}"), out))
                    .collect::<Option<_>>()?,
            ),
            ast::Value::Object(object) => {
                let mut map = serde_json::Map::new();
                for prop in &object.properties {
                    let name = prop.name.as_str();
                    let path = format!("{pointer}/{}", pointer_segment(name));
                    if map.contains_key(name) {
                        if out.len() >= crate::parse::MAX_DIAGNOSTICS {
                            // Counted, not positioned: finding the first costs a scan.
                            self.dropped.set(self.dropped.get() + 1);
                            continue;
                        }
                        let first = object.properties.iter().find(|p| p.name.as_str() == name);
                        let first_line = first.map_or(0, |p| self.lines.position(p.range.start).0);
                        out.push(self.diagnostic(
                            prop.range.start,
                            &path,
                            format!("duplicate key {name:?} (first on line {first_line}); each key may appear once"),
                        ));
                        continue;
                    }
                    let value = self.to_json(&prop.value, &path, out)?;
                    map.insert(name.to_owned(), value);
                }
                Value::Object(map)
            }
        })
    }

    /// One schema error as diagnostics; an unknown key is reported at the key.
    /// One schema error as diagnostics, at most `budget` of them (an error
    /// can name 90,000 unknown keys); also returns how many it stands for.
    pub(crate) fn schema_error(
        &self,
        root: &ast::Value<'_>,
        error: &jsonschema::ValidationError<'_>,
        budget: usize,
    ) -> (Vec<Diagnostic>, usize) {
        let pointer = error.instance_path().as_str();
        let schema_pointer = error.schema_path().as_str();
        if let ValidationErrorKind::AdditionalProperties { unexpected } = error.kind() {
            let allowed = allowed_keys(schema_pointer);
            let shown = unexpected
                .iter()
                .take(budget)
                .map(|key| {
                    let path = format!("{pointer}/{}", pointer_segment(key));
                    let offset = locate_key(root, pointer, key)
                        .unwrap_or_else(|| locate(root, pointer).start);
                    self.diagnostic(
                        offset,
                        &path,
                        format!("unknown key {key:?}; allowed here: {allowed}"),
                    )
                })
                .collect();
            return (shown, unexpected.len());
        }
        if budget == 0 {
            return (Vec::new(), 1);
        }
        let message = match error.kind() {
            ValidationErrorKind::Required { property } => {
                format!("missing required key {property}")
            }
            _ => {
                let mut message = error
                    .to_string()
                    .replace(&error.instance().to_string(), &show_value(error.instance()));
                if let Some(hint) = schema::description_for(schema_pointer) {
                    message.push_str(&format!(" (allowed: {hint})"));
                }
                message
            }
        };
        (vec![self.at(root, pointer, message)], 1)
    }
}

/// The node a JSON pointer names, or its nearest existing parent: one walk
/// down the pointer, each step a scan of one object's keys.
fn node_at<'b, 'a>(root: &'b ast::Value<'a>, pointer: &str) -> &'b ast::Value<'a> {
    let mut node = root;
    for segment in pointer.split('/').skip(1) {
        let key = segment.replace("~1", "/").replace("~0", "~");
        let next = match node {
            ast::Value::Object(object) => object
                .properties
                .iter()
                .find(|p| p.name.as_str() == key)
                .map(|p| &p.value),
            ast::Value::Array(array) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| array.elements.get(i)),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => break,
        }
    }
    node
}

/// The range of the node a JSON pointer names, or of its nearest existing parent.
pub(crate) fn locate(root: &ast::Value<'_>, pointer: &str) -> jsonc_parser::common::Range {
    node_at(root, pointer).range()
}

/// Where `key` is in the object `object_pointer` names.
fn locate_key(root: &ast::Value<'_>, object_pointer: &str, key: &str) -> Option<usize> {
    match node_at(root, object_pointer) {
        ast::Value::Object(object) => object
            .properties
            .iter()
            .find(|p| p.name.as_str() == key)
            .map(|p| p.range.start),
        _ => None,
    }
}

fn allowed_keys(schema_pointer: &str) -> String {
    let object = schema_pointer
        .strip_suffix("/additionalProperties")
        .unwrap_or(schema_pointer);
    let keys = schema::property_names(object);
    if keys.is_empty() {
        "no keys".to_owned()
    } else {
        keys.join(", ")
    }
}
