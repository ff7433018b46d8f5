//! What a checkout pins, verified and activated: the two calls `bbhv sync`
//! makes. [`verify_checkout`] runs before a commit is accepted (a pinned
//! image that is missing, tampered or unsigned refuses the commit);
//! [`apply()`] then links exactly the pinned images into
//! `/var/lib/extensions` and `/var/lib/confexts` and runs
//! `systemd-sysext refresh` / `systemd-confext refresh`.
//!
//! The pins are `hosts/<hostname>.json`:
//!
//! ```json
//! { "schemaVersion": 1, "sysexts": ["hello"], "confexts": ["motd"] }
//! ```
//!
//! It may also pin the host's own UKI (docs/boot.md), by version and
//! digest, and name the image it comes from:
//!
//! ```json
//! { "schemaVersion": 1,
//!   "uki": { "image": "host-uki", "version": "3", "sha256": "<64 hex>" } }
//! ```
//!
//! `images/host-uki.json` is a `"format": "uki"` image with `source` and
//! the same `sha256`: pulled and verified like an extension image, its
//! Secure Boot signature checked by `bbhv-boot` before the commit is
//! accepted ([`verify_uki`]), staged after the apply.
//!
//! Each extension name is an image of the same checkout (`images/<name>.json`, with
//! `source` and `sha256`: the version is the digest, so the commit pins
//! it), built as extension `<name>`. The images stay in the store after a
//! newer commit replaces them: applying the older checkout again relinks
//! them without the network.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::Error;
use crate::release::Kind;
use crate::sign::TrustedKeys;
use crate::store::{Store, checkout_image, pulled_digest};

/// The largest `hosts/<hostname>.json` read.
pub const MAX_PINS: u64 = 64 << 10;
/// The most extensions of one kind a host pins.
pub const MAX_PINNED: usize = 64;

/// What a checkout pins for one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    /// `hosts/<hostname>.json`, or `None` when the host has none (nothing pinned).
    pub file: Option<String>,
    pub sysexts: Vec<String>,
    pub confexts: Vec<String>,
    /// The host's UKI, when pinned.
    pub uki: Option<UkiPin>,
}

/// `"uki"` of `hosts/<hostname>.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UkiPin {
    /// `images/<image>.json`, of `"format": "uki"`.
    pub image: String,
    /// Its `.osrel` `IMAGE_VERSION`, the slot's version.
    pub version: bbhv_boot::Version,
    pub sha256: String,
}

impl UkiPin {
    fn parse(value: &Value, bad: &dyn Fn(String) -> Error) -> Result<UkiPin, Error> {
        const KEYS: [&str; 3] = ["image", "sha256", "version"];
        let Value::Object(map) = value else {
            return Err(bad(
                "/uki: allowed: {\"image\": NAME, \"version\": VERSION, \"sha256\": DIGEST}".into(),
            ));
        };
        for key in map.keys() {
            if !KEYS.contains(&key.as_str()) {
                return Err(bad(format!(
                    "/uki/{key}: unknown key {key:?}; allowed here: {}",
                    KEYS.join(", ")
                )));
            }
        }
        let string = |key: &str, what: &str| -> Result<&str, Error> {
            map.get(key).and_then(Value::as_str).ok_or_else(|| {
                bad(format!(
                    "/uki/{key}: missing or not a string; allowed: {what}"
                ))
            })
        };
        let image = string("image", "an image name (images/<name>.json)")?;
        crate::build::check_name(image).map_err(|e| bad(format!("/uki/image: {e}")))?;
        let version = bbhv_boot::Version::parse(string("version", "the UKI's version")?)
            .map_err(|e| bad(format!("/uki/version: {e}")))?;
        let sha256 = string("sha256", "64 lowercase hex digits")?;
        bbhv_spec::image::Sha256::parse(sha256).map_err(|e| bad(format!("/uki/sha256: {e}")))?;
        Ok(UkiPin {
            image: image.to_owned(),
            version,
            sha256: sha256.to_owned(),
        })
    }
}

impl Pins {
    pub fn all(&self) -> impl Iterator<Item = (Kind, &str)> {
        self.sysexts
            .iter()
            .map(|n| (Kind::Sysext, n.as_str()))
            .chain(self.confexts.iter().map(|n| (Kind::Confext, n.as_str())))
    }

    /// Parses the text of `file`.
    pub fn parse(file: &str, text: &str) -> Result<Pins, Error> {
        let bad = |message: String| Error::Repo {
            file: file.to_owned(),
            message,
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(bad("not an object; expected {\"schemaVersion\": 1, \"sysexts\": [...], \"confexts\": [...]}".into()));
        };
        const KEYS: [&str; 4] = ["confexts", "schemaVersion", "sysexts", "uki"];
        for key in map.keys() {
            if !KEYS.contains(&key.as_str()) {
                return Err(bad(format!(
                    "/{key}: unknown key {key:?}; allowed here: {}",
                    KEYS.join(", ")
                )));
            }
        }
        if map.get("schemaVersion").and_then(Value::as_u64) != Some(1) {
            return Err(bad("/schemaVersion: allowed: 1".into()));
        }
        let list = |key: &str| -> Result<Vec<String>, Error> {
            let Some(v) = map.get(key) else {
                return Ok(Vec::new());
            };
            let Value::Array(items) = v else {
                return Err(bad(format!("/{key}: allowed: an array of image names")));
            };
            if items.len() > MAX_PINNED {
                return Err(bad(format!(
                    "/{key}: {} names; allowed: at most {MAX_PINNED}",
                    items.len()
                )));
            }
            let mut names = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let name = item
                    .as_str()
                    .ok_or_else(|| bad(format!("/{key}/{i}: allowed: a string (an image name)")))?;
                crate::build::check_name(name).map_err(|e| bad(format!("/{key}/{i}: {e}")))?;
                if names.iter().any(|n| n == name) {
                    return Err(bad(format!("/{key}/{i}: {name:?} is listed twice")));
                }
                names.push(name.to_owned());
            }
            Ok(names)
        };
        let pins = Pins {
            file: Some(file.to_owned()),
            sysexts: list("sysexts")?,
            confexts: list("confexts")?,
            uki: map.get("uki").map(|v| UkiPin::parse(v, &bad)).transpose()?,
        };
        if let Some(name) = pins.sysexts.iter().find(|n| pins.confexts.contains(n)) {
            return Err(bad(format!(
                "{name:?} is both a sysext and a confext; allowed: one image per kind"
            )));
        }
        Ok(pins)
    }

    /// `hosts/<hostname>.json` of a checkout; no file: nothing pinned.
    pub fn read(checkout: &Path, hostname: &str) -> Result<Pins, Error> {
        let file = format!("hosts/{hostname}.json");
        let valid = !hostname.is_empty()
            && hostname.len() <= 64
            && !hostname.starts_with(['.', '-'])
            && hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !valid {
            return Err(Error::Usage(format!(
                "host name {hostname:?} cannot name {file}"
            )));
        }
        let path = checkout.join(&file);
        let hosts = checkout.join("hosts");
        let bad = |message: String| Error::Repo {
            file: file.clone(),
            message,
        };
        match std::fs::symlink_metadata(&hosts) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pins::default()),
            Ok(m) if !m.is_dir() => {
                return Err(bad(
                    "hosts/ is not a directory (a symlink is refused)".into()
                ));
            }
            Err(e) => return Err(bad(e.to_string())),
            Ok(_) => {}
        }
        let meta = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pins::default()),
            Err(e) => return Err(bad(e.to_string())),
            Ok(m) => m,
        };
        if !meta.is_file() {
            return Err(bad("not a regular file (a symlink is refused)".into()));
        }
        if meta.len() > MAX_PINS {
            return Err(bad(format!("larger than {} KiB", MAX_PINS >> 10)));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        Pins::parse(&file, &text)
    }
}

/// Where things are; [`ApplyOptions::host`] for the real host.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Prefix of `/var/lib/extensions` and `/var/lib/confexts` (`/`; a
    /// temporary directory in tests).
    pub root: PathBuf,
    pub store: Store,
    /// `trust.image_signers`.
    pub signers: PathBuf,
    pub hostname: String,
    /// Run `systemd-sysext refresh` / `systemd-confext refresh`.
    pub refresh: bool,
}

impl ApplyOptions {
    /// The host's paths, its name and trusted keys from host.toml.
    pub fn host(config: &bbhv_host::HostConfig, store: PathBuf) -> ApplyOptions {
        let hostname = config.hostname.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default()
        });
        ApplyOptions {
            root: PathBuf::from("/"),
            store: Store::new(store),
            signers: config.trust.image_signers.clone(),
            hostname,
            refresh: true,
        }
    }
}

/// One pinned image, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub kind: Kind,
    pub name: String,
    pub sha256: String,
    /// In the store.
    pub path: PathBuf,
    /// The principal whose key signed it.
    pub signer: String,
}

/// Checks every image the checkout pins for this host: in the store, the
/// bytes the checkout pins, signed by a trusted key. Every refusal, named.
pub fn verify_checkout(checkout: &Path, opts: &ApplyOptions) -> Result<Vec<Verified>, Error> {
    let pins = Pins::read(checkout, &opts.hostname)?;
    if pins.sysexts.is_empty() && pins.confexts.is_empty() {
        return Ok(Vec::new());
    }
    let keys = TrustedKeys::load(&opts.signers).map_err(|e| Error::Refused {
        image: pins.all().map(|(_, n)| n).collect::<Vec<_>>().join(", "),
        reason: e.to_string(),
    })?;
    let mut verified = Vec::new();
    let mut refusals = Vec::new();
    for (kind, name) in pins.all() {
        let result = (|| {
            let image = checkout_image(checkout, name)?;
            let sha256 = pulled_digest(&image).ok_or_else(|| Error::Refused {
                image: name.to_owned(),
                reason: format!(
                    "{} has no \"source\" and \"sha256\"; a pinned extension is a signed, pulled image",
                    image.source
                ),
            })?;
            let signer = opts.store.verify(name, sha256, &keys)?;
            Ok::<_, Error>(Verified {
                kind,
                name: name.to_owned(),
                sha256: sha256.to_owned(),
                path: opts.store.paths(sha256).image,
                signer,
            })
        })();
        match result {
            Ok(v) => verified.push(v),
            Err(e) => refusals.push(e.to_string()),
        }
    }
    if refusals.is_empty() {
        Ok(verified)
    } else {
        Err(Error::Checkout {
            checkout: checkout.display().to_string(),
            refusals,
        })
    }
}

/// Everything `bbhv sync` runs before it accepts a commit: pull every image
/// of the checkout that has a `source` (already stored ones are only
/// verified), then [`verify_checkout`]. Any refusal refuses the commit;
/// the errors name each image.
pub fn fetch_and_verify(
    checkout: &Path,
    opts: &ApplyOptions,
    progress: bool,
) -> Result<Vec<Verified>, Error> {
    let images: Vec<_> = crate::store::checkout_images(checkout)?
        .into_iter()
        .filter(|i| i.origin.is_some())
        .collect();
    if !images.is_empty() {
        let keys = TrustedKeys::load(&opts.signers).map_err(|e| Error::Refused {
            image: images
                .iter()
                .map(|i| i.name.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            reason: e.to_string(),
        })?;
        let refusals: Vec<String> = images
            .iter()
            .filter_map(|i| crate::store::pull(&opts.store, i, &keys, progress).err())
            .map(|e| e.to_string())
            .collect();
        if !refusals.is_empty() {
            return Err(Error::Checkout {
                checkout: checkout.display().to_string(),
                refusals,
            });
        }
    }
    verify_checkout(checkout, opts)
}

/// The host's pinned UKI, verified as an image: in the store, the bytes
/// both the pin and `images/<image>.json` name, its SHA256SUMS signed by a
/// trusted key. `None` when nothing is pinned. (Its Secure Boot signature
/// is `bbhv-boot`'s to check, against `[boot]`'s certificate.)
pub fn verify_uki(checkout: &Path, opts: &ApplyOptions) -> Result<Option<VerifiedUki>, Error> {
    let pins = Pins::read(checkout, &opts.hostname)?;
    let Some(pin) = pins.uki else {
        return Ok(None);
    };
    let refused = |reason: String| Error::Refused {
        image: pin.image.clone(),
        reason,
    };
    let image = checkout_image(checkout, &pin.image)?;
    if image.format != bbhv_spec::image::ImageFormat::Uki {
        return Err(refused(format!(
            "{} is a {} image; the UKI {} pins must be \"format\": \"uki\"",
            image.source,
            image.format,
            pins.file.as_deref().unwrap_or("hosts/<hostname>.json")
        )));
    }
    let sha256 = pulled_digest(&image).ok_or_else(|| {
        refused(format!(
            "{} has no \"source\" and \"sha256\"; a pinned UKI is a signed, pulled image",
            image.source
        ))
    })?;
    if sha256 != pin.sha256 {
        return Err(refused(format!(
            "{} pins sha256 {}, but {} has {sha256}; they must agree",
            pins.file.as_deref().unwrap_or("hosts/<hostname>.json"),
            pin.sha256,
            image.source
        )));
    }
    let keys = TrustedKeys::load(&opts.signers).map_err(|e| refused(e.to_string()))?;
    let signer = opts.store.verify(&pin.image, sha256, &keys)?;
    Ok(Some(VerifiedUki {
        path: opts.store.paths(sha256).image,
        pin,
        signer,
    }))
}

/// A pinned UKI, verified as an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedUki {
    pub pin: UkiPin,
    /// In the store.
    pub path: PathBuf,
    pub signer: String,
}

/// What an apply changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Active after the apply: (kind, name, sha256).
    pub active: Vec<(Kind, String, String)>,
    /// Links made or changed (`/var/lib/extensions/<name>.raw`).
    pub linked: Vec<PathBuf>,
    /// Links removed (no longer pinned).
    pub unlinked: Vec<PathBuf>,
    /// The kinds refreshed.
    pub refreshed: Vec<Kind>,
}

impl ApplyReport {
    pub fn changed(&self) -> bool {
        !self.linked.is_empty() || !self.unlinked.is_empty()
    }
}

/// Verifies the checkout, then links exactly what it pins (and nothing
/// else of ours) and refreshes. Idempotent; nothing changes when
/// verification fails.
pub fn apply(checkout: &Path, opts: &ApplyOptions) -> Result<ApplyReport, Error> {
    let verified = verify_checkout(checkout, opts)?;
    let mut report = ApplyReport::default();
    for kind in [Kind::Sysext, Kind::Confext] {
        let dir = opts
            .root
            .join(kind.activation_dir().trim_start_matches('/'));
        let wanted: Vec<&Verified> = verified.iter().filter(|v| v.kind == kind).collect();
        let io = |path: &Path, e: std::io::Error| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if !wanted.is_empty() {
            std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        }
        let before = (report.linked.len(), report.unlinked.len());
        // Ours: symlinks into the store. Anything else there is the
        // administrator's and stays.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(target) = std::fs::read_link(&path) else {
                    continue;
                };
                if !target.starts_with(&opts.store.dir) {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                let keep = wanted
                    .iter()
                    .any(|v| format!("{}.raw", v.name) == name && v.path == target);
                if !keep {
                    std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
                    report.unlinked.push(path);
                }
            }
        }
        for v in &wanted {
            let link = dir.join(format!("{}.raw", v.name));
            if std::fs::read_link(&link).is_ok_and(|t| t == v.path) {
                continue;
            }
            if let Ok(m) = std::fs::symlink_metadata(&link)
                && !m.file_type().is_symlink()
            {
                return Err(Error::Refused {
                    image: v.name.clone(),
                    reason: format!(
                        "{} exists and is not ours (not a link into {}); remove it to let the repository manage {}",
                        link.display(),
                        opts.store.dir.display(),
                        v.name
                    ),
                });
            }
            let tmp = dir.join(format!(".{}.raw.bbhv-new", v.name));
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&v.path, &tmp).map_err(|e| io(&tmp, e))?;
            std::fs::rename(&tmp, &link).map_err(|e| io(&link, e))?;
            report.linked.push(link);
        }
        report.active.extend(
            wanted
                .iter()
                .map(|v| (kind, v.name.clone(), v.sha256.clone())),
        );
        let changed = (report.linked.len(), report.unlinked.len()) != before;
        if opts.refresh && (changed || !wanted.is_empty()) {
            refresh(kind)?;
            report.refreshed.push(kind);
        }
    }
    Ok(report)
}

/// `systemd-sysext refresh` or `systemd-confext refresh`.
fn refresh(kind: Kind) -> Result<(), Error> {
    let output = Command::new(kind.tool())
        .arg("refresh")
        .output()
        .map_err(|e| Error::Tool {
            tool: kind.tool().into(),
            message: format!("cannot run it: {e}"),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Tool {
            tool: kind.tool().into(),
            message: format!(
                "refresh failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}

#[cfg(test)]
mod uki_tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_uki_pin_is_parsed_strictly() {
        let text = format!(
            r#"{{ "schemaVersion": 1, "uki": {{ "image": "host-uki", "version": "3", "sha256": "{SHA}" }} }}"#
        );
        let pins = Pins::parse("hosts/hv1.json", &text).unwrap();
        let uki = pins.uki.unwrap();
        assert_eq!(
            (uki.image.as_str(), uki.version.as_str()),
            ("host-uki", "3")
        );
        assert_eq!(uki.sha256, SHA);
        for (bad, wants) in [
            (r#""uki": 3"#.to_owned(), "/uki: allowed:"),
            (
                format!(r#""uki": {{ "image": "u", "version": "3", "sha256": "{SHA}", "x": 1 }}"#),
                "/uki/x: unknown key",
            ),
            (
                format!(r#""uki": {{ "version": "3", "sha256": "{SHA}" }}"#),
                "/uki/image: missing",
            ),
            (
                format!(r#""uki": {{ "image": "u", "version": "3/..", "sha256": "{SHA}" }}"#),
                "/uki/version:",
            ),
            (
                r#""uki": { "image": "u", "version": "3", "sha256": "ABC" }"#.to_owned(),
                "/uki/sha256:",
            ),
        ] {
            let text = format!(r#"{{ "schemaVersion": 1, {bad} }}"#);
            let e = Pins::parse("hosts/hv1.json", &text)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("hosts/hv1.json") && e.contains(wants),
                "{bad}: {e}"
            );
        }
    }
}
