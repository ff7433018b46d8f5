//! Signatures: a `SHA256SUMS` file (sha256sum's format, the layout
//! systemd-importd and systemd-sysupdate read) names each image's digest,
//! and `SHA256SUMS.sig` is an SSH signature of it (`ssh-keygen -Y sign -n
//! bbhv-image`), checked against the keys of `trust.image_signers`
//! (git's allowed-signers format, the same as the commit signers). The
//! signature binds the digest, the digest binds the bytes.

use std::path::Path;

use ssh_key::{PublicKey, SshSig};

/// The namespace every image signature is made in (`ssh-keygen -n`): a
/// signature made for git commits or anything else does not verify here.
pub const NAMESPACE: &str = "bbhv-image";
/// The checksum file's name, and its signature's.
pub const SUMS: &str = "SHA256SUMS";
pub const SUMS_SIG: &str = "SHA256SUMS.sig";
/// The largest SHA256SUMS or signature read.
pub const MAX_SUMS: usize = 1 << 20;

/// Why an image's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("no signature ({0})")]
    Unsigned(String),
    #[error("the signature is not an SSH signature: {0}")]
    Malformed(String),
    #[error("the signature is made in namespace {0:?}; allowed: {NAMESPACE:?}")]
    Namespace(String),
    #[error("signed by a key that {0} does not trust ({1})")]
    Untrusted(String, String),
    #[error("the signature does not match SHA256SUMS (tampered or re-written)")]
    Invalid,
    #[error("SHA256SUMS does not list the digest {0}")]
    NotListed(String),
    #[error("no trusted image keys: {0}")]
    NoKeys(String),
}

/// One line of SHA256SUMS: digest and file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumLine {
    pub sha256: String,
    pub name: String,
}

/// Reads sha256sum's output (`<hex>  name` or `<hex> *name`); a line that
/// is not one is an error naming it.
pub fn parse_sums(text: &str) -> Result<Vec<SumLine>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = || {
            format!(
                "SHA256SUMS line {}: {line:?} is not \"<sha256> *<file>\"",
                i + 1
            )
        };
        let (hex, rest) = line.split_at_checked(64).ok_or_else(bad)?;
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let name = rest
            .strip_prefix(" *")
            .or_else(|| rest.strip_prefix("  "))
            .filter(|n| !n.is_empty() && !n.contains('/') && !n.chars().any(char::is_control))
            .ok_or_else(bad)?;
        out.push(SumLine {
            sha256: hex.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(out)
}

/// SHA256SUMS with `name`'s line set to `sha256` (others kept, sorted by
/// name: the same set gives the same bytes).
pub fn update_sums(old: &str, name: &str, sha256: &str) -> Result<String, String> {
    let mut lines: Vec<SumLine> = parse_sums(old)?
        .into_iter()
        .filter(|l| l.name != name)
        .collect();
    lines.push(SumLine {
        sha256: sha256.to_owned(),
        name: name.to_owned(),
    });
    lines.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(lines
        .iter()
        .map(|l| format!("{} *{}\n", l.sha256, l.name))
        .collect())
}

/// The keys images may be signed with.
#[derive(Debug, Clone)]
pub struct TrustedKeys {
    /// The file they came from, as named in errors.
    pub file: String,
    pub keys: Vec<(String, PublicKey)>,
}

impl TrustedKeys {
    /// Reads an allowed-signers file: `principals [options] keytype base64
    /// [comment]` per line; `#` comments. A key restricted by
    /// `namespaces="…"` counts only when the list names `bbhv-image`.
    pub fn load(path: &Path) -> Result<TrustedKeys, SigError> {
        let file = path.display().to_string();
        let text = match std::fs::read(path) {
            Ok(bytes) if bytes.len() <= MAX_SUMS => String::from_utf8(bytes)
                .map_err(|_| SigError::NoKeys(format!("{file} is not UTF-8")))?,
            Ok(_) => return Err(SigError::NoKeys(format!("{file} is too large"))),
            Err(e) => return Err(SigError::NoKeys(format!("{file} cannot be read: {e}"))),
        };
        TrustedKeys::parse(&file, &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<TrustedKeys, SigError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| SigError::NoKeys(format!("{file}:{}: {why}", i + 1));
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(at) = words.iter().position(|w| {
                w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-")
            }) else {
                return Err(bad("no key type (ssh-ed25519, ...) on the line"));
            };
            if at == 0 {
                return Err(bad("no principal before the key"));
            }
            let options = &words[1..at];
            let namespaces = options
                .iter()
                .find_map(|o| o.strip_prefix("namespaces="))
                .map(|n| n.trim_matches('"'));
            if namespaces.is_some_and(|n| !n.split(',').any(|n| n == NAMESPACE)) {
                continue;
            }
            let key = PublicKey::from_openssh(&words[at..].join(" "))
                .map_err(|e| bad(&format!("the key cannot be read: {e}")))?;
            keys.push((words[0].to_owned(), key));
        }
        if keys.is_empty() {
            return Err(SigError::NoKeys(format!(
                "{file} names no key for namespace {NAMESPACE:?}"
            )));
        }
        Ok(TrustedKeys {
            file: file.to_owned(),
            keys,
        })
    }

    /// Checks `sig` (armored SSH signature) over `message`; the principal of
    /// the key that made it.
    pub fn verify(&self, message: &[u8], sig: &str) -> Result<String, SigError> {
        if sig.trim().is_empty() {
            return Err(SigError::Unsigned("the signature file is empty".into()));
        }
        let sig = SshSig::from_pem(sig.trim()).map_err(|e| SigError::Malformed(e.to_string()))?;
        if sig.namespace() != NAMESPACE {
            return Err(SigError::Namespace(sig.namespace().to_owned()));
        }
        let signer = sig.public_key();
        let Some((principal, key)) = self.keys.iter().find(|(_, k)| k.key_data() == signer) else {
            let shown = PublicKey::from(signer.clone())
                .fingerprint(ssh_key::HashAlg::Sha256)
                .to_string();
            return Err(SigError::Untrusted(self.file.clone(), shown));
        };
        key.verify(NAMESPACE, message, &sig)
            .map_err(|_| SigError::Invalid)?;
        Ok(principal.clone())
    }
}

/// The whole check of one image: its SHA256SUMS lists `sha256`, and the
/// signature over SHA256SUMS is made by a trusted key. The principal.
pub fn verify_sums(
    keys: &TrustedKeys,
    sums: &[u8],
    sig: Option<&str>,
    sha256: &str,
) -> Result<String, SigError> {
    let sig = sig.ok_or_else(|| SigError::Unsigned(format!("no {SUMS_SIG}")))?;
    let principal = keys.verify(sums, sig)?;
    let text = std::str::from_utf8(sums).map_err(|_| SigError::NotListed(sha256.into()))?;
    let lines = parse_sums(text).map_err(|_| SigError::NotListed(sha256.into()))?;
    if lines.iter().any(|l| l.sha256 == sha256) {
        Ok(principal)
    } else {
        Err(SigError::NotListed(sha256.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_lines() {
        let d = "a".repeat(64);
        assert_eq!(
            parse_sums(&format!("{d} *x.raw\n{d}  y.raw\n")).unwrap(),
            [
                SumLine {
                    sha256: d.clone(),
                    name: "x.raw".into()
                },
                SumLine {
                    sha256: d.clone(),
                    name: "y.raw".into()
                }
            ]
        );
        assert!(parse_sums(&format!("{d} ../x")).is_err());
        assert!(parse_sums("zz *x").is_err());
        let updated = update_sums(&format!("{d} *b.raw\n"), "a.raw", &"b".repeat(64)).unwrap();
        assert_eq!(updated, format!("{} *a.raw\n{d} *b.raw\n", "b".repeat(64)));
    }

    #[test]
    fn allowed_signers() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO2jaQIiBPw5c3WHT9DmCtRaDyT8VyVjLLx5iZnJ/fgK";
        let keys =
            TrustedKeys::parse("signers", &format!("# c\nops@example.org {key} laptop\n")).unwrap();
        assert_eq!(keys.keys[0].0, "ops@example.org");
        let other =
            TrustedKeys::parse("signers", &format!("a namespaces=\"git\" {key}\n")).unwrap_err();
        assert!(
            other
                .to_string()
                .contains("names no key for namespace \"bbhv-image\""),
            "{other}"
        );
        let ns =
            TrustedKeys::parse("s", &format!("a namespaces=\"git,bbhv-image\" {key}\n")).unwrap();
        assert_eq!(ns.keys.len(), 1);
        assert!(
            TrustedKeys::parse("s", "a ssh-ed25519 AAAA\n")
                .unwrap_err()
                .to_string()
                .contains("s:1: the key cannot be read")
        );
        assert!(matches!(keys.verify(b"x", ""), Err(SigError::Unsigned(_))));
        assert!(matches!(
            keys.verify(b"x", "junk"),
            Err(SigError::Malformed(_))
        ));
    }
}
