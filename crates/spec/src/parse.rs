//! One `metadata.json`: strict JSON with positions → schema check (all
//! errors at once) → typed [`Metadata`] → semantic checks.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use jsonc_parser::ast;
use jsonc_parser::common::Ranged;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::diag::{Diagnostic, LineIndex, pointer_segment, show_value};
use crate::fleet::{Claim, claims_of};
use crate::model::Metadata;
use crate::names::TenantId;
use crate::schema;

/// Nesting deeper than this is refused before anything else looks at it.
/// metadata.json v1 needs 5 levels; the margin keeps errors about shape
/// readable while a hostile 100,000-deep file costs nothing.
pub const MAX_DEPTH: usize = 16;

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::options()
        .build(schema::metadata_schema())
        .expect("the generated schema is valid")
});

/// Parses and checks one tenant's metadata. `file` is the name used in
/// diagnostics, `dir_name` the tenant directory the id must equal.
pub fn parse_metadata(file: &str, dir_name: &str, text: &str) -> Result<Metadata, Vec<Diagnostic>> {
    // A valid file (nearly all of them) is parsed once, straight into a value;
    // only a file with problems pays for the syntax tree that positions them.
    if let Some(metadata) = parse_valid(dir_name, text) {
        return Ok(metadata);
    }
    let doc = Document::new(file, text);
    let ast = doc.syntax()?;
    let mut diagnostics = Vec::new();
    let Some(json) = doc.to_json(&ast, "", &mut diagnostics) else {
        return Err(diagnostics);
    };
    // Duplicate keys are reported with, not instead of, the schema's findings.
    for error in VALIDATOR.iter_errors(&json) {
        diagnostics.extend(doc.schema_error(&ast, &error));
    }
    if !diagnostics.is_empty() {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        return Err(diagnostics);
    }
    let metadata: Metadata = serde_json::from_value(json)
        .map_err(|e| vec![doc.at(&ast, "", format!("does not fit metadata v1: {e}"))])?;
    let problems = semantic_problems(&metadata, dir_name);
    if problems.is_empty() {
        Ok(metadata)
    } else {
        let mut diagnostics: Vec<Diagnostic> = problems
            .into_iter()
            .map(|(path, message)| doc.at(&ast, &path, message))
            .collect();
        diagnostics.sort_by_key(|d| (d.line, d.column));
        Err(diagnostics)
    }
}

/// The fast path: `Some` only when the text is valid in every respect.
fn parse_valid(dir_name: &str, text: &str) -> Option<Metadata> {
    let StrictValue(json) = serde_json::from_str(text).ok()?;
    if !VALIDATOR.is_valid(&json) {
        return None;
    }
    let metadata: Metadata = serde_json::from_value(json).ok()?;
    semantic_problems(&metadata, dir_name)
        .is_empty()
        .then_some(metadata)
}

/// A JSON value that refuses duplicate keys (serde_json keeps the last) and,
/// through serde_json's recursion limit, deep nesting.
struct StrictValue(Value);

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
}

impl<'a> Document<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Document {
            file,
            text,
            lines: LineIndex::new(text),
        }
    }

    fn diagnostic(&self, offset: usize, path: &str, message: String) -> Diagnostic {
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
    fn to_json(
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
    fn schema_error(
        &self,
        root: &ast::Value<'_>,
        error: &jsonschema::ValidationError<'_>,
    ) -> Vec<Diagnostic> {
        let pointer = error.instance_path().as_str();
        let schema_pointer = error.schema_path().as_str();
        if let ValidationErrorKind::AdditionalProperties { unexpected } = error.kind() {
            let allowed = allowed_keys(schema_pointer);
            return unexpected
                .iter()
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
        vec![self.at(root, pointer, message)]
    }
}

/// The range of the node a JSON pointer names, or of its nearest existing parent.
pub(crate) fn locate(root: &ast::Value<'_>, pointer: &str) -> jsonc_parser::common::Range {
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
    node.range()
}

fn locate_key(root: &ast::Value<'_>, object_pointer: &str, key: &str) -> Option<usize> {
    let object_start = locate(root, object_pointer).start;
    let mut found = None;
    visit_objects(root, &mut |object| {
        if object.range.start == object_start {
            found = object
                .properties
                .iter()
                .find(|p| p.name.as_str() == key)
                .map(|p| p.range.start);
        }
    });
    found
}

fn visit_objects<'b>(node: &'b ast::Value<'_>, f: &mut impl FnMut(&'b ast::Object<'_>)) {
    match node {
        ast::Value::Object(object) => {
            f(object);
            object
                .properties
                .iter()
                .for_each(|p| visit_objects(&p.value, f));
        }
        ast::Value::Array(array) => array.elements.iter().for_each(|e| visit_objects(e, f)),
        _ => {}
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

/// Checks the schema cannot express. Returns (JSON pointer, message) pairs.
fn semantic_problems(m: &Metadata, dir_name: &str) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut problem = |path: String, message: String| problems.push((path, message));

    if m.id != dir_name {
        problem(
            "/id".into(),
            format!("id {:?} must equal its directory name {dir_name:?}", m.id),
        );
    }
    if m.description.ends_with('\\') || m.description.trim() != m.description {
        problem(
            "/description".into(),
            format!(
                "{:?} may not start or end with whitespace or end with a backslash",
                m.description
            ),
        );
    }

    let r = &m.resources;
    if let (Some(high), Some(max)) = (&r.memory_high, &r.memory_max)
        && let (Some(h), Some(x)) = (parse_size(high), parse_size(max))
        && h > x
    {
        problem(
            "/resources/memoryHigh".into(),
            format!("{high:?} is above memoryMax {max:?}; allowed: at most memoryMax"),
        );
    }
    for (key, size) in [
        ("memoryMax", &r.memory_max),
        ("memoryHigh", &r.memory_high),
        ("storageQuota", &r.storage_quota),
    ] {
        if let Some(size) = size.as_ref().filter(|s| parse_size(s).is_none()) {
            problem(
                format!("/resources/{key}"),
                format!("{size:?} is too large; allowed: at most 16E"),
            );
        }
    }

    if let Some(net) = &m.network {
        if let Some(v4) = &net.ipv4
            && let Err(e) = parse_ipv4_cidr(v4)
        {
            problem("/network/ipv4".into(), format!("{v4:?}: {e}"));
        }
        if let Some(v6) = &net.ipv6
            && let Err(e) = parse_ipv6_cidr(v6)
        {
            problem("/network/ipv6".into(), format!("{v6:?}: {e}"));
        }
        for (i, dns) in net.dns.iter().enumerate() {
            if dns.parse::<IpAddr>().is_err() {
                problem(
                    format!("/network/dns/{i}"),
                    format!("{dns:?} is not an IPv4 or IPv6 address"),
                );
            }
        }
        if let Some(wg) = &net.wireguard {
            for (i, peer) in wg.peers.iter().enumerate() {
                if let Some(endpoint) = &peer.endpoint {
                    let port = endpoint
                        .rsplit_once(':')
                        .and_then(|(_, p)| p.parse::<u16>().ok());
                    if port.is_none_or(|p| p == 0) {
                        problem(
                            format!("/network/wireguard/peers/{i}/endpoint"),
                            format!("{endpoint:?} has no port between 1 and 65535"),
                        );
                    }
                }
                for (j, cidr) in peer.allowed_ips.iter().enumerate() {
                    if let Err(e) = parse_cidr(cidr) {
                        problem(
                            format!("/network/wireguard/peers/{i}/allowedIps/{j}"),
                            format!("{cidr:?}: {e}"),
                        );
                    }
                }
            }
        }
    }

    for (name, c) in &m.containers {
        let base = format!("/containers/{name}");
        if let Some(command) = &c.command {
            if !command[0].starts_with('/') {
                problem(
                    format!("{base}/command/0"),
                    format!("{:?} must be an absolute path", command[0]),
                );
            }
            for (i, arg) in command.iter().enumerate() {
                if arg.contains('\0') {
                    problem(
                        format!("{base}/command/{i}"),
                        "contains a NUL character, which no program can receive".into(),
                    );
                }
            }
        }
        for (key, value) in &c.environment {
            if value
                .chars()
                .any(|ch| ch.is_ascii_control() && ch != '\t' && ch != '\n')
            {
                problem(
                    format!("{base}/environment/{}", pointer_segment(key)),
                    "contains a control character; allowed: any text, with tab and newline as the only control characters".into(),
                );
            }
        }
        for (i, port) in c.ports.iter().enumerate() {
            if let Err(e) = parse_port(port) {
                problem(format!("{base}/ports/{i}"), format!("{port:?}: {e}"));
            }
        }
    }
    for (name, vm) in &m.vms {
        if parse_size(&vm.memory).is_none_or(|bytes| bytes < 64 << 20) {
            problem(
                format!("/vms/{name}/memory"),
                format!("{:?}: allowed: at least 64M", vm.memory),
            );
        }
    }
    // What a host has once, a tenant may not claim twice either (two
    // containers publishing one port, a container named like a VM).
    if let Some(id) = TenantId::new(&m.id) {
        let mut seen: HashMap<Claim, String> = HashMap::new();
        for (claim, pointer) in claims_of(&id, m) {
            match seen.get(&claim) {
                Some(first) => problem(
                    pointer,
                    format!(
                        "{} {} is also used by {first} of this tenant",
                        claim.kind, claim.value
                    ),
                ),
                None => {
                    seen.insert(claim, pointer);
                }
            }
        }
    }
    problems
}

/// Bytes of a size like `4G` (base 1024), `None` on overflow or bad syntax.
pub fn parse_size(size: &str) -> Option<u64> {
    let (digits, shift) = match size.as_bytes().last()? {
        b'K' => (&size[..size.len() - 1], 10),
        b'M' => (&size[..size.len() - 1], 20),
        b'G' => (&size[..size.len() - 1], 30),
        b'T' => (&size[..size.len() - 1], 40),
        _ => (size, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// A published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    pub host: u16,
    pub container: u16,
    pub udp: bool,
}

pub fn parse_port(port: &str) -> Result<PortMapping, String> {
    let (ports, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
    let (host, container) = ports.split_once(':').ok_or("expected HOST:CONTAINER")?;
    let number = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or("ports are 1 to 65535".to_owned())
    };
    Ok(PortMapping {
        host: number(host)?,
        container: number(container)?,
        udp: protocol == "udp",
    })
}

/// An IPv4 address with prefix length 1 to 32: (address, prefix).
pub fn parse_ipv4_cidr(cidr: &str) -> Result<(Ipv4Addr, u8), String> {
    split_cidr(cidr, 1, 32, "IPv4")
}

/// An IPv6 address with prefix length 1 to 128: (address, prefix).
pub fn parse_ipv6_cidr(cidr: &str) -> Result<(Ipv6Addr, u8), String> {
    split_cidr(cidr, 1, 128, "IPv6")
}

/// A route (WireGuard `allowedIps`): prefix 0 is allowed, for "everything".
fn parse_cidr(cidr: &str) -> Result<(), String> {
    if cidr.contains(':') {
        split_cidr::<Ipv6Addr>(cidr, 0, 128, "IPv6").map(drop)
    } else {
        split_cidr::<Ipv4Addr>(cidr, 0, 32, "IPv4").map(drop)
    }
}

fn split_cidr<A: std::str::FromStr>(
    cidr: &str,
    min: u8,
    max: u8,
    family: &str,
) -> Result<(A, u8), String> {
    let (addr, prefix) = cidr.split_once('/').ok_or("expected ADDRESS/PREFIX")?;
    let addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an {family} address"))?;
    let prefix = prefix
        .parse()
        .ok()
        .filter(|p| (min..=max).contains(p))
        .ok_or(format!("the prefix length is {min} to {max}"))?;
    Ok((addr, prefix))
}
