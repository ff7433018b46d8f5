//! `images/<name>.json`: an image a container's root (or an extension, or
//! a VM's disk) is made from. Version 1 says where the image file is on the
//! host and its digest:
//!
//! ```json
//! { "schemaVersion": 1, "format": "squashfs",
//!   "file": "debian-base-12.squashfs",
//!   "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" }
//! ```
//!
//! Parsed with the rigour of metadata.json: strict JSON, no duplicate or
//! unknown keys, every problem at its line and column with the value and
//! what is allowed. Later versions add keys (`source` to pull from,
//! `signature`), never change these.

use std::fmt;

use bbhv_unit::Token;
use serde_json::Value;

use crate::diag::{Diagnostic, locate, show_value};
use crate::json::StrictValue;
use crate::values::ImageName;

/// Where image files live on the host (`file` is relative to it).
pub const IMAGES_DIR: &str = "/var/lib/bitbuilder/images";
/// Where a verified image file is mounted read-only (`<dir>/<name>`).
pub const IMAGE_MOUNT_DIR: &str = "/run/bitbuilder/images";
/// The keys of version 1.
const KEYS: [&str; 4] = ["file", "format", "schemaVersion", "sha256"];

/// What the image file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageFormat {
    /// A squashfs file system image (`mksquashfs`), mounted read-only.
    Squashfs,
    /// An EROFS image (`mkfs.erofs`), mounted read-only.
    Erofs,
    /// A directory tree, used as it is (no digest: for development).
    Directory,
}

impl ImageFormat {
    /// The file system type to mount, for image files.
    pub fn fs_type(self) -> Option<&'static str> {
        match self {
            ImageFormat::Squashfs => Some("squashfs"),
            ImageFormat::Erofs => Some("erofs"),
            ImageFormat::Directory => None,
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageFormat::Squashfs => "squashfs",
            ImageFormat::Erofs => "erofs",
            ImageFormat::Directory => "directory",
        })
    }
}

/// A SHA-256 digest: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256(String);

impl Sha256 {
    pub fn parse(text: &str) -> Result<Sha256, String> {
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Sha256(text.to_owned()))
        } else {
            Err(format!(
                "{text:?} is not a SHA-256 digest; allowed: 64 lowercase hexadecimal digits (sha256sum's output)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One image, valid in itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub name: ImageName,
    /// `images/<name>.json`, as named in diagnostics.
    pub source: String,
    pub format: ImageFormat,
    /// Relative to [`IMAGES_DIR`]; a token (no character in it is syntax).
    pub file: Token,
    /// Required for image files; `None` for a directory.
    pub sha256: Option<Sha256>,
}

impl Image {
    /// `images/<name>.json` as a path relative to the repository.
    pub fn source_file(name: &str) -> String {
        format!("images/{name}.json")
    }

    /// Parses `images/<name>.json` (`file` is its name in diagnostics).
    pub fn parse(file: &str, name: &str, text: &str) -> Result<Image, Vec<Diagnostic>> {
        let whole = |message: String| Diagnostic {
            file: file.to_owned(),
            line: 0,
            column: 0,
            path: String::new(),
            message,
        };
        let name = ImageName::parse(name)
            .map_err(|e| vec![whole(format!("the image name (the file name): {e}"))])?;
        let json = match serde_json::from_str::<StrictValue>(text) {
            Ok(StrictValue(json)) => json,
            Err(e) => {
                let message = e.to_string();
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(m, _)| m);
                let mut d = locate(file, text, "", format!("invalid JSON: {message}"));
                if e.line() > 0 {
                    d.line = e.line();
                    d.column = e.column();
                }
                return Err(vec![d]);
            }
        };
        let mut problems: Vec<(String, String)> = Vec::new();
        let Value::Object(map) = &json else {
            return Err(vec![whole(format!(
                "{} is not an object; expected {{\"schemaVersion\": 1, \"file\": ..., \"sha256\": ...}}",
                show_value(&json)
            ))]);
        };
        for key in map.keys() {
            if !KEYS.contains(&key.as_str()) {
                problems.push((
                    format!("/{}", crate::diag::pointer_segment(key)),
                    format!("unknown key {key:?}; allowed here: {}", KEYS.join(", ")),
                ));
            }
        }
        match map.get("schemaVersion") {
            Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
            Some(v) => problems.push((
                "/schemaVersion".into(),
                format!("{}: allowed: 1", show_value(v)),
            )),
            None => problems.push((String::new(), "missing key \"schemaVersion\" (1)".into())),
        }
        let format = match map.get("format") {
            None => Some(ImageFormat::Squashfs),
            Some(Value::String(s)) if s == "squashfs" => Some(ImageFormat::Squashfs),
            Some(Value::String(s)) if s == "erofs" => Some(ImageFormat::Erofs),
            Some(Value::String(s)) if s == "directory" => Some(ImageFormat::Directory),
            Some(v) => {
                problems.push((
                    "/format".into(),
                    format!(
                        "{}: allowed: \"squashfs\" (the default), \"erofs\" or \"directory\"",
                        show_value(v)
                    ),
                ));
                None
            }
        };
        let image_file = match map.get("file") {
            Some(Value::String(s)) => match check_file(s) {
                Ok(token) => Some(token),
                Err(message) => {
                    problems.push(("/file".into(), message));
                    None
                }
            },
            Some(v) => {
                problems.push((
                    "/file".into(),
                    format!(
                        "{}: allowed: a string, the image's path under {IMAGES_DIR}/",
                        show_value(v)
                    ),
                ));
                None
            }
            None => {
                problems.push((
                    String::new(),
                    format!("missing key \"file\" (the image's path under {IMAGES_DIR}/)"),
                ));
                None
            }
        };
        let sha256 = match (map.get("sha256"), format) {
            (Some(_), Some(ImageFormat::Directory)) => {
                problems.push((
                    "/sha256".into(),
                    "a directory has no single digest; allowed: no sha256 with \"format\": \"directory\"".into(),
                ));
                None
            }
            (Some(Value::String(s)), _) => match Sha256::parse(s) {
                Ok(d) => Some(d),
                Err(message) => {
                    problems.push(("/sha256".into(), message));
                    None
                }
            },
            (Some(v), _) => {
                problems.push((
                    "/sha256".into(),
                    format!(
                        "{}: allowed: a string of 64 lowercase hexadecimal digits",
                        show_value(v)
                    ),
                ));
                None
            }
            (None, Some(ImageFormat::Directory) | None) => None,
            (None, Some(format)) => {
                problems.push((
                    String::new(),
                    format!(
                        "missing key \"sha256\": a {format} image is verified before it is used"
                    ),
                ));
                None
            }
        };
        match (format, image_file, problems.is_empty()) {
            (Some(format), Some(file_token), true) => Ok(Image {
                name,
                source: file.to_owned(),
                format,
                file: file_token,
                sha256,
            }),
            _ => {
                let mut diagnostics: Vec<Diagnostic> = problems
                    .into_iter()
                    .map(|(pointer, message)| locate(file, text, &pointer, message))
                    .collect();
                diagnostics.sort_by_key(|d| (d.line, d.column));
                Err(diagnostics)
            }
        }
    }

    /// The image on the host: `/var/lib/bitbuilder/images/<file>`.
    pub fn host_path(&self) -> Token {
        Token::new(format!("{IMAGES_DIR}/{}", self.file)).expect("a checked file makes a token")
    }

    /// Where the container overlay finds the image's tree: the read-only
    /// mount of a verified image file (`/run/bitbuilder/images/<name>`), or
    /// the directory itself.
    pub fn tree(&self) -> Token {
        match self.format {
            ImageFormat::Directory => self.host_path(),
            _ => Token::new(format!("{IMAGE_MOUNT_DIR}/{}", self.name))
                .expect("an image name makes a token"),
        }
    }
}

/// A relative path of plain components (letters, digits, `.`, `_`, `-`,
/// not starting with `.`), at most 8 deep and 255 bytes.
fn check_file(text: &str) -> Result<Token, String> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.len() <= 128
            && !c.starts_with('.')
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    let parts: Vec<&str> = text.split('/').collect();
    if text.len() <= 255 && parts.len() <= 8 && parts.iter().all(|c| component_ok(c)) {
        Token::new(text).map_err(|e| e.to_string())
    } else {
        Err(format!(
            "{text:?} is not allowed; allowed: a path relative to {IMAGES_DIR}/ of up to 8 components of letters, digits, '.', '_', '-', none starting with '.'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn parse(text: &str) -> Result<Image, Vec<String>> {
        Image::parse("images/base.json", "base", text)
            .map_err(|d| d.into_iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn a_valid_image() {
        let image = parse(&format!(
            r#"{{ "schemaVersion": 1, "file": "base/v1.squashfs", "sha256": "{DIGEST}" }}"#
        ))
        .unwrap();
        assert_eq!(image.format, ImageFormat::Squashfs);
        assert_eq!(
            image.host_path().as_str(),
            "/var/lib/bitbuilder/images/base/v1.squashfs"
        );
        assert_eq!(image.tree().as_str(), "/run/bitbuilder/images/base");
        let dir =
            parse(r#"{ "schemaVersion": 1, "format": "directory", "file": "base" }"#).unwrap();
        assert_eq!(dir.sha256, None);
        assert_eq!(dir.tree().as_str(), "/var/lib/bitbuilder/images/base");
    }

    #[test]
    fn problems_name_the_key_the_value_and_what_is_allowed() {
        for (text, expected) in [
            (
                r#"{ "schemaVersion": 1, "file": "../../etc/shadow", "sha256": "x" }"#,
                "images/base.json:1:31: /file: \"../../etc/shadow\" is not allowed; allowed: a path relative to /var/lib/bitbuilder/images/",
            ),
            (
                r#"{ "schemaVersion": 1, "file": "a", "sha256": "ABC" }"#,
                "/sha256: \"ABC\" is not a SHA-256 digest",
            ),
            (
                r#"{ "schemaVersion": 1, "file": "a" }"#,
                "missing key \"sha256\": a squashfs image is verified",
            ),
            (
                r#"{ "schemaVersion": 2, "file": "a", "sha256": "x" }"#,
                "/schemaVersion: 2: allowed: 1",
            ),
            (
                r#"{ "schemaVersion": 1, "format": "qcow2", "file": "a" }"#,
                "/format: \"qcow2\": allowed: \"squashfs\"",
            ),
            (
                r#"{ "schemaVersion": 1, "format": "directory", "file": "a", "sha256": "x" }"#,
                "a directory has no single digest",
            ),
            (
                r#"{ "schemaVersion": 1, "file": "a", "url": "http://x" }"#,
                "/url: unknown key \"url\"; allowed here: file, format, schemaVersion, sha256",
            ),
            (
                r#"{ "schemaVersion": 1, "file": "a", "file": "b" }"#,
                "duplicate",
            ),
            (
                "{ \"schemaVersion\": 1,\n  \"file\": }",
                "images/base.json:2:11: invalid JSON",
            ),
            ("[]", "is not an object"),
        ] {
            let errors = parse(text).unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected}\n{errors:#?}"
            );
        }
        assert!(Image::parse("images/Bad.json", "Bad", "{}").is_err());
    }
}
