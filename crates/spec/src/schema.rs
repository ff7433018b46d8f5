//! The JSON Schema of metadata.json, generated from the types in
//! [`crate::model`]. The checked-in `schema/metadata.schema.json` is this
//! value, pretty-printed; a test fails when it is stale.

use std::sync::LazyLock;

use schemars::generate::SchemaSettings;
use serde_json::Value;

use crate::model::Metadata;

static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            // Inline everything: an error's schema path then points straight
            // at the key's description, with no $ref to follow.
            s.inline_subschemas = true;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<Metadata>().to_value();
    forbid_null(&mut schema);
    if let Some(root) = schema.as_object_mut() {
        root.insert(
            "$id".into(),
            "https://bitbuilder.dev/schema/metadata.schema.json".into(),
        );
    }
    schema
});

/// The schema as a JSON value.
pub fn metadata_schema() -> &'static Value {
    &SCHEMA
}

/// The schema as the checked-in file's text.
pub fn metadata_schema_text() -> String {
    let mut text =
        serde_json::to_string_pretty(metadata_schema()).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// An optional key is left out, never `null`: schemars allows `null` for
/// every `Option`, so take that back out (`"type": ["string", "null"]` →
/// `"type": "string"`).
fn forbid_null(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(any_of)) = map.get_mut("anyOf") {
                any_of.retain(|s| s.get("type").is_none_or(|t| t != "null"));
                if any_of.len() == 1 {
                    let only = any_of.remove(0);
                    map.remove("anyOf");
                    if let Value::Object(inner) = only {
                        for (k, v) in inner {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
            }
            map.values_mut().for_each(forbid_null);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_null),
        _ => {}
    }
}

/// The `description` of the key whose check failed at `keyword_pointer`
/// (a schema path like `/properties/network/properties/vlan/maximum`).
pub(crate) fn description_for(keyword_pointer: &str) -> Option<String> {
    let mut pointer = keyword_pointer;
    // Walk up from the failed keyword to the nearest schema with a description
    // (for an array item, that is the array's).
    while let Some((parent, _)) = pointer.rsplit_once('/') {
        pointer = parent;
        if let Some(description) = SCHEMA.pointer(pointer).and_then(|s| s.get("description")) {
            return description
                .as_str()
                .map(|d| d.trim_end_matches('.').replace('\n', " "));
        }
        if pointer.ends_with("/properties") || pointer.is_empty() {
            return None;
        }
    }
    None
}

/// The keys an object schema at `pointer` allows.
pub(crate) fn property_names(pointer: &str) -> Vec<String> {
    SCHEMA
        .pointer(pointer)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}
