//! Signatures: a `SHA256SUMS` file (sha256sum's format, the layout
//! systemd-importd and systemd-sysupdate read) names each image's digest,
//! and `SHA256SUMS.sig` is an SSH signature of it (`ssh-keygen -Y sign -n
//! bbhv-image`), checked against the keys of `trust.image_signers`
//! (git's allowed-signers format, the same as the commit signers). The
//! signature binds the digest, the digest binds the bytes.

use std::path::Path;

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

/// The keys images may be signed with: `trust.image_signers`, read and
/// checked by `bbhv-trust` (the same parser and checks as the commit
/// signers), for namespace [`NAMESPACE`].
#[derive(Debug, Clone)]
pub struct TrustedKeys {
    signers: bbhv_trust::AllowedSigners,
}

impl TrustedKeys {
    /// Reads an allowed-signers file; it must name a key that may sign in
    /// [`NAMESPACE`].
    pub fn load(path: &Path) -> Result<TrustedKeys, SigError> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() > MAX_SUMS as u64 => {
                return Err(SigError::NoKeys(format!("{} is too large", path.display())));
            }
            _ => {}
        }
        let signers =
            bbhv_trust::AllowedSigners::load(path).map_err(|e| SigError::NoKeys(e.to_string()))?;
        TrustedKeys::from_signers(signers)
    }

    pub fn parse(file: &str, text: &str) -> Result<TrustedKeys, SigError> {
        let signers = bbhv_trust::AllowedSigners::parse(text, file)
            .map_err(|e| SigError::NoKeys(e.to_string()))?;
        TrustedKeys::from_signers(signers)
    }

    fn from_signers(signers: bbhv_trust::AllowedSigners) -> Result<TrustedKeys, SigError> {
        if !signers.has_namespace(NAMESPACE) {
            return Err(SigError::NoKeys(format!(
                "{} names no key for namespace {NAMESPACE:?}",
                signers.file
            )));
        }
        Ok(TrustedKeys { signers })
    }

    /// Checks `sig` (armored SSH signature) over `message`, now; the
    /// principals of the key that made it.
    pub fn verify(&self, message: &[u8], sig: &str) -> Result<String, SigError> {
        use bbhv_trust::Refusal;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.signers
            .verify_in(NAMESPACE, "image", sig.as_bytes(), message, now)
            .map(|signer| signer.principals)
            .map_err(|refusal| match refusal {
                Refusal::Unsigned { .. } => {
                    SigError::Unsigned("the signature file is empty".into())
                }
                Refusal::NotSsh { .. } | Refusal::Malformed { .. } => {
                    SigError::Malformed(refusal.to_string())
                }
                Refusal::Namespace { found, .. } => SigError::Namespace(found),
                Refusal::UnknownKey { fingerprint, file } => SigError::Untrusted(file, fingerprint),
                Refusal::NotAllowed {
                    fingerprint, file, ..
                } => SigError::Untrusted(file, fingerprint),
                Refusal::BadSignature { .. } => SigError::Invalid,
            })
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
        assert_eq!(keys.signers.signers[0].principals, "ops@example.org");
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
        assert_eq!(ns.signers.signers.len(), 1);
        assert!(
            TrustedKeys::parse("s", "a ssh-ed25519 AAAA\n")
                .unwrap_err()
                .to_string()
                .contains("s:1: the ssh-ed25519 key cannot be read")
        );
        assert!(matches!(keys.verify(b"x", ""), Err(SigError::Unsigned(_))));
        assert!(matches!(
            keys.verify(b"x", "junk"),
            Err(SigError::Malformed(_))
        ));
    }
}
