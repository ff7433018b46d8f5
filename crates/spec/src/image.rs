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
//! A VM image (`"format": "vm"`) names its boot files instead: a kernel
//! (direct kernel boot) with an optional initrd and command line, and/or a
//! raw disk, each with its own digest:
//!
//! ```json
//! { "schemaVersion": 1, "format": "vm",
//!   "kernel": "tiny/vmlinuz", "kernelSha256": "…",
//!   "initrd": "tiny/initrd.img", "initrdSha256": "…",
//!   "cmdline": "quiet" }
//! ```
//!
//! Parsed with the rigour of metadata.json: strict JSON, no duplicate or
//! unknown keys, every problem at its line and column with the value and
//! what is allowed. Later versions add keys, never change these.
//!
//! `source` (added by #11, optional): the URL (`http://`, `https://` or
//! `file://`) `bbhv image pull` fetches the file from. The image is then
//! signed: `SHA256SUMS` and `SHA256SUMS.sig` beside it (systemd-importd's
//! and systemd-sysupdate's layout; the signature an SSH signature, see
//! docs/extensions.md), and it is stored content-addressed, so `file` may be
//! left out (it is `sha256-<digest>`).

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
/// The keys of version 1 (file system and directory images).
const KEYS: [&str; 5] = ["file", "format", "schemaVersion", "sha256", "source"];
/// The longest `source` URL.
pub const SOURCE_MAX: usize = 2048;
/// The keys of version 1 for `"format": "vm"`.
const VM_KEYS: [&str; 9] = [
    "cmdline",
    "disk",
    "diskSha256",
    "format",
    "initrd",
    "initrdSha256",
    "kernel",
    "kernelSha256",
    "schemaVersion",
];
/// The longest kernel command line an image may add (the kernel's own
/// limit on x86 is 2048 bytes, and `bbhv vm run` adds its part).
pub const CMDLINE_MAX: usize = 1024;

/// What the image file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageFormat {
    /// A squashfs file system image (`mksquashfs`), mounted read-only.
    Squashfs,
    /// An EROFS image (`mkfs.erofs`), mounted read-only.
    Erofs,
    /// A directory tree, used as it is (no digest: for development).
    Directory,
    /// A virtual machine's boot files (kernel, initrd, disk), each verified.
    Vm,
    /// The host's own Unified Kernel Image (docs/boot.md), pinned by
    /// `hosts/<hostname>.json`; never a tenant's.
    Uki,
}

impl ImageFormat {
    /// The file system type to mount, for image files.
    pub fn fs_type(self) -> Option<&'static str> {
        match self {
            ImageFormat::Squashfs => Some("squashfs"),
            ImageFormat::Erofs => Some("erofs"),
            ImageFormat::Directory | ImageFormat::Vm | ImageFormat::Uki => None,
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageFormat::Squashfs => "squashfs",
            ImageFormat::Erofs => "erofs",
            ImageFormat::Directory => "directory",
            ImageFormat::Vm => "vm",
            ImageFormat::Uki => "uki",
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
    pub content: Content,
    /// `source`: where `bbhv image pull` fetches the file from; `None`: the
    /// file is put on the host some other way.
    pub origin: Option<Origin>,
}

/// `source` of an image: a URL without whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub url: String,
}

impl Origin {
    pub fn parse(text: &str) -> Result<Origin, String> {
        let scheme_ok = ["http://", "https://", "file:///"]
            .iter()
            .any(|s| text.starts_with(s) && text.len() > s.len());
        let chars_ok = text.bytes().all(|b| b.is_ascii_graphic());
        let last = text.rsplit('/').next().unwrap_or("");
        if scheme_ok && chars_ok && text.len() <= SOURCE_MAX && !last.is_empty() {
            Ok(Origin {
                url: text.to_owned(),
            })
        } else {
            Err(format!(
                "{text:?} is not allowed; allowed: an http://, https:// or file:/// URL of a file (printable ASCII, no spaces, at most {SOURCE_MAX} bytes, not ending in '/')"
            ))
        }
    }
}
/// What an image is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A container's root: a squashfs or EROFS file and its digest, or a
    /// directory (no digest).
    Tree {
        /// Relative to [`IMAGES_DIR`]; a token (no character in it is syntax).
        file: Token,
        /// Required for image files; `None` for a directory.
        sha256: Option<Sha256>,
    },
    /// A VM's boot files.
    Vm(VmImage),
}

/// A VM image: a kernel for direct kernel boot (with an optional initrd and
/// command line), a raw disk, or both; at least one of kernel and disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmImage {
    pub kernel: Option<ImageFile>,
    /// Only with a kernel.
    pub initrd: Option<ImageFile>,
    /// Attached read-only with a throw-away overlay (the guest's writes are
    /// discarded when it stops).
    pub disk: Option<ImageFile>,
    /// Appended to the kernel command line (only with a kernel): printable
    /// ASCII, at most [`CMDLINE_MAX`] bytes.
    pub cmdline: Option<String>,
}

/// One verified file of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Relative to [`IMAGES_DIR`].
    pub file: Token,
    pub sha256: Sha256,
}

impl ImageFile {
    /// `/var/lib/bitbuilder/images/<file>`.
    pub fn host_path(&self) -> Token {
        Token::new(format!("{IMAGES_DIR}/{}", self.file)).expect("a checked file makes a token")
    }
}

impl VmImage {
    /// Every file with the key that names it (`kernel`, `initrd`, `disk`).
    pub fn files(&self) -> Vec<(&'static str, &ImageFile)> {
        [
            ("kernel", &self.kernel),
            ("initrd", &self.initrd),
            ("disk", &self.disk),
        ]
        .into_iter()
        .filter_map(|(key, file)| Some((key, file.as_ref()?)))
        .collect()
    }
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
        let format = match map.get("format") {
            None => Some(ImageFormat::Squashfs),
            Some(Value::String(s)) if s == "squashfs" => Some(ImageFormat::Squashfs),
            Some(Value::String(s)) if s == "erofs" => Some(ImageFormat::Erofs),
            Some(Value::String(s)) if s == "directory" => Some(ImageFormat::Directory),
            Some(Value::String(s)) if s == "vm" => Some(ImageFormat::Vm),
            Some(Value::String(s)) if s == "uki" => Some(ImageFormat::Uki),
            Some(v) => {
                problems.push((
                    "/format".into(),
                    format!(
                        "{}: allowed: \"squashfs\" (the default), \"erofs\", \"directory\", \"vm\" or \"uki\"",
                        show_value(v)
                    ),
                ));
                None
            }
        };
        let keys: &[&str] = if format == Some(ImageFormat::Vm) {
            &VM_KEYS
        } else {
            &KEYS
        };
        for key in map.keys() {
            if !keys.contains(&key.as_str()) {
                problems.push((
                    format!("/{}", crate::diag::pointer_segment(key)),
                    format!("unknown key {key:?}; allowed here: {}", keys.join(", ")),
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
        let origin = match map
            .get("source")
            .filter(|_| format != Some(ImageFormat::Vm))
        {
            None => None,
            Some(_) if format == Some(ImageFormat::Directory) => {
                problems.push((
                    "/source".into(),
                    "a directory image cannot be pulled; allowed: \"source\" with \"squashfs\" or \"erofs\"".into(),
                ));
                None
            }
            Some(Value::String(s)) => match Origin::parse(s) {
                Ok(origin) => Some(origin),
                Err(message) => {
                    problems.push(("/source".into(), message));
                    None
                }
            },
            Some(v) => {
                problems.push((
                    "/source".into(),
                    format!(
                        "{}: allowed: a string, the URL to pull the image from",
                        show_value(v)
                    ),
                ));
                None
            }
        };
        let content = match format {
            Some(ImageFormat::Vm) => vm_content(map, &mut problems).map(Content::Vm),
            Some(format) => tree_content(map, format, &mut problems),
            None => None,
        };
        match (format, content, problems.is_empty()) {
            (Some(format), Some(content), true) => Ok(Image {
                name,
                source: file.to_owned(),
                format,
                content,
                origin,
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

    /// The image file or tree on the host (`/var/lib/bitbuilder/images/<file>`);
    /// `None` for a VM image.
    pub fn host_path(&self) -> Option<Token> {
        match &self.content {
            Content::Tree { file, .. } => Some(
                Token::new(format!("{IMAGES_DIR}/{file}")).expect("a checked file makes a token"),
            ),
            Content::Vm(_) => None,
        }
    }

    /// Where the container overlay finds the image's tree: the read-only
    /// mount of a verified image file (`/run/bitbuilder/images/<name>`), or
    /// the directory itself; `None` for a VM image (no tree).
    pub fn tree(&self) -> Option<Token> {
        match self.format {
            ImageFormat::Directory => self.host_path(),
            ImageFormat::Vm | ImageFormat::Uki => None,
            _ => Some(
                Token::new(format!("{IMAGE_MOUNT_DIR}/{}", self.name))
                    .expect("an image name makes a token"),
            ),
        }
    }

    /// The VM part, for a VM image.
    pub fn vm(&self) -> Option<&VmImage> {
        match &self.content {
            Content::Vm(vm) => Some(vm),
            Content::Tree { .. } => None,
        }
    }
}

type Problems = Vec<(String, String)>;

/// `file` and `sha256` of a squashfs, erofs or directory image.
fn tree_content(
    map: &serde_json::Map<String, Value>,
    format: ImageFormat,
    problems: &mut Problems,
) -> Option<Content> {
    let image_file = match map.get("file") {
        // A pulled image is stored content-addressed.
        None if map.contains_key("source") => match map.get("sha256") {
            Some(Value::String(s)) => Sha256::parse(s)
                .ok()
                .map(|d| Token::new(format!("sha256-{d}")).expect("a digest makes a token")),
            _ => None,
        },
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
                format!("missing key \"file\" (the image's path under {IMAGES_DIR}/), or \"source\" to pull it from"),
            ));
            None
        }
    };
    let sha256 = match (map.get("sha256"), format) {
        (Some(_), ImageFormat::Directory) => {
            problems.push((
                "/sha256".into(),
                "a directory has no single digest; allowed: no sha256 with \"format\": \"directory\"".into(),
            ));
            None
        }
        (Some(v), _) => digest(v, "/sha256", problems),
        (None, ImageFormat::Directory) => None,
        (None, format) => {
            problems.push((
                String::new(),
                format!("missing key \"sha256\": a {format} image is verified before it is used"),
            ));
            None
        }
    };
    Some(Content::Tree {
        file: image_file?,
        sha256,
    })
}

fn digest(value: &Value, pointer: &str, problems: &mut Problems) -> Option<Sha256> {
    match value {
        Value::String(s) => match Sha256::parse(s) {
            Ok(d) => Some(d),
            Err(message) => {
                problems.push((pointer.into(), message));
                None
            }
        },
        v => {
            problems.push((
                pointer.into(),
                format!(
                    "{}: allowed: a string of 64 lowercase hexadecimal digits",
                    show_value(v)
                ),
            ));
            None
        }
    }
}

/// `kernel`, `initrd`, `disk` (each with its `…Sha256`) and `cmdline` of a
/// VM image.
fn vm_content(map: &serde_json::Map<String, Value>, problems: &mut Problems) -> Option<VmImage> {
    let mut ok = true;
    let mut part = |key: &'static str, problems: &mut Problems| -> Option<ImageFile> {
        let digest_key = format!("{key}Sha256");
        let file = match map.get(key) {
            None => None,
            Some(Value::String(s)) => match check_file(s) {
                Ok(token) => Some(token),
                Err(message) => {
                    problems.push((format!("/{key}"), message));
                    ok = false;
                    None
                }
            },
            Some(v) => {
                problems.push((
                    format!("/{key}"),
                    format!(
                        "{}: allowed: a string, the file's path under {IMAGES_DIR}/",
                        show_value(v)
                    ),
                ));
                ok = false;
                None
            }
        };
        let sha256 = match map.get(&digest_key) {
            None => None,
            Some(v) => {
                let d = digest(v, &format!("/{digest_key}"), problems);
                ok &= d.is_some();
                d
            }
        };
        match (map.contains_key(key), map.contains_key(&digest_key)) {
            (true, false) => {
                problems.push((
                    String::new(),
                    format!("missing key {digest_key:?}: the {key} is verified before it is used"),
                ));
                ok = false;
            }
            (false, true) => {
                problems.push((
                    format!("/{digest_key}"),
                    format!("a digest without {key:?}; allowed: both keys or neither"),
                ));
                ok = false;
            }
            _ => {}
        }
        Some(ImageFile {
            file: file?,
            sha256: sha256?,
        })
    };
    let kernel = part("kernel", problems);
    let initrd = part("initrd", problems);
    let disk = part("disk", problems);
    let has = |key: &str| map.contains_key(key);
    if !has("kernel") && !has("disk") {
        problems.push((
            String::new(),
            "a VM image needs \"kernel\" (direct kernel boot) or \"disk\" (booted by the firmware), or both".into(),
        ));
        ok = false;
    }
    for key in ["initrd", "cmdline"] {
        if has(key) && !has("kernel") {
            problems.push((
                format!("/{key}"),
                format!("{key:?} is only used with \"kernel\" (direct kernel boot); allowed: add a kernel, or remove {key:?}"),
            ));
            ok = false;
        }
    }
    let cmdline = match map.get("cmdline") {
        None => None,
        Some(Value::String(s))
            if s.len() <= CMDLINE_MAX
                && s.bytes().all(|b| (0x20..0x7f).contains(&b))
                && s.trim() == s =>
        {
            Some(s.clone())
        }
        Some(v) => {
            problems.push((
                "/cmdline".into(),
                format!(
                    "{}: allowed: printable ASCII (no control characters), at most {CMDLINE_MAX} bytes, no leading or trailing space",
                    show_value(v)
                ),
            ));
            ok = false;
            None
        }
    };
    ok.then_some(VmImage {
        kernel,
        initrd,
        disk,
        cmdline,
    })
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
            image.host_path().unwrap().as_str(),
            "/var/lib/bitbuilder/images/base/v1.squashfs"
        );
        assert_eq!(
            image.tree().unwrap().as_str(),
            "/run/bitbuilder/images/base"
        );
        let dir =
            parse(r#"{ "schemaVersion": 1, "format": "directory", "file": "base" }"#).unwrap();
        assert!(matches!(dir.content, Content::Tree { sha256: None, .. }));
        assert_eq!(
            dir.tree().unwrap().as_str(),
            "/var/lib/bitbuilder/images/base"
        );
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
                "/format: \"qcow2\": allowed: \"squashfs\" (the default), \"erofs\", \"directory\", \"vm\" or \"uki\"",
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

    #[test]
    fn a_pulled_image_is_stored_by_its_digest() {
        let image = parse(&format!(
            r#"{{ "schemaVersion": 1, "source": "http://127.0.0.1:8080/x/base_1.raw", "sha256": "{DIGEST}" }}"#
        ))
        .unwrap();
        assert_eq!(
            image.origin.as_ref().unwrap().url,
            "http://127.0.0.1:8080/x/base_1.raw"
        );
        assert_eq!(
            image.host_path().unwrap().as_str(),
            format!("/var/lib/bitbuilder/images/sha256-{DIGEST}")
        );
        for (text, expected) in [
            (
                format!(r#"{{ "schemaVersion": 1, "source": "ftp://x/y", "sha256": "{DIGEST}" }}"#),
                "/source: \"ftp://x/y\" is not allowed; allowed: an http://",
            ),
            (
                format!(r#"{{ "schemaVersion": 1, "source": "http://x/", "sha256": "{DIGEST}" }}"#),
                "not ending in '/'",
            ),
            (
                format!(r#"{{ "schemaVersion": 1, "source": "http://x/a b", "sha256": "{DIGEST}" }}"#),
                "no spaces",
            ),
            (
                r#"{ "schemaVersion": 1, "format": "directory", "file": "d", "source": "http://x/y" }"#.to_owned(),
                "a directory image cannot be pulled",
            ),
            (
                r#"{ "schemaVersion": 1, "source": "http://x/y" }"#.to_owned(),
                "missing key \"sha256\"",
            ),
        ] {
            let errors = parse(&text).unwrap_err();
            assert!(errors.iter().any(|e| e.contains(expected)), "{expected}\n{errors:#?}");
        }
    }

    #[test]
    fn a_vm_image() {
        let image = parse(&format!(
            r#"{{ "schemaVersion": 1, "format": "vm", "kernel": "tiny/vmlinuz", "kernelSha256": "{DIGEST}",
                 "initrd": "tiny/initrd.img", "initrdSha256": "{DIGEST}", "cmdline": "quiet loglevel=3" }}"#
        ))
        .unwrap();
        assert_eq!(image.format, ImageFormat::Vm);
        assert_eq!(image.tree(), None);
        assert_eq!(image.host_path(), None);
        let vm = image.vm().unwrap();
        assert_eq!(
            vm.kernel.as_ref().unwrap().host_path().as_str(),
            "/var/lib/bitbuilder/images/tiny/vmlinuz"
        );
        assert_eq!(vm.cmdline.as_deref(), Some("quiet loglevel=3"));
        let keys: Vec<&str> = vm.files().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["kernel", "initrd"]);
        let disk = parse(&format!(
            r#"{{ "schemaVersion": 1, "format": "vm", "disk": "d.raw", "diskSha256": "{DIGEST}" }}"#
        ))
        .unwrap();
        assert!(disk.vm().unwrap().kernel.is_none());
    }

    #[test]
    fn vm_image_problems() {
        for (text, expected) in [
            (
                r#"{ "schemaVersion": 1, "format": "vm" }"#.to_owned(),
                "a VM image needs \"kernel\" (direct kernel boot) or \"disk\"",
            ),
            (
                r#"{ "schemaVersion": 1, "format": "vm", "kernel": "k" }"#.to_owned(),
                "missing key \"kernelSha256\": the kernel is verified",
            ),
            (
                format!(
                    r#"{{ "schemaVersion": 1, "format": "vm", "disk": "d", "diskSha256": "{DIGEST}", "initrdSha256": "{DIGEST}" }}"#
                ),
                "/initrdSha256: a digest without \"initrd\"",
            ),
            (
                format!(
                    r#"{{ "schemaVersion": 1, "format": "vm", "disk": "d", "diskSha256": "{DIGEST}", "cmdline": "quiet" }}"#
                ),
                "/cmdline: \"cmdline\" is only used with \"kernel\"",
            ),
            (
                format!(
                    r#"{{ "schemaVersion": 1, "format": "vm", "kernel": "k", "kernelSha256": "{DIGEST}", "cmdline": "a\nb" }}"#
                ),
                "/cmdline: \"a\\nb\": allowed: printable ASCII",
            ),
            (
                format!(
                    r#"{{ "schemaVersion": 1, "format": "vm", "kernel": "../k", "kernelSha256": "{DIGEST}" }}"#
                ),
                "/kernel: \"../k\" is not allowed",
            ),
            (
                format!(
                    r#"{{ "schemaVersion": 1, "format": "vm", "kernel": "k", "kernelSha256": "{DIGEST}", "file": "x" }}"#
                ),
                "/file: unknown key \"file\"; allowed here: cmdline, disk, diskSha256, format, initrd",
            ),
            (
                r#"{ "schemaVersion": 1, "format": "vm", "kernel": "k", "kernelSha256": "x" }"#
                    .to_owned(),
                "/kernelSha256: \"x\" is not a SHA-256 digest",
            ),
        ] {
            let errors = parse(&text).unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected}\n{errors:#?}"
            );
        }
    }
}
