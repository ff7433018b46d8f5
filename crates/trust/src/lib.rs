//! Who may sign: git's SSH allowed-signers file (ssh-keygen(1), "ALLOWED
//! SIGNERS"), and the check of an SSH signature against it: commits
//! (namespace `git`, `bbhv sync`) and images (namespace `bbhv-image`,
//! `bbhv image pull`).
//!
//! git itself verifies with `ssh-keygen -Y verify`; we do the same check in
//! process with the `ssh-key` crate: the signature's key must be listed for
//! the namespace, valid at the signed thing's time, and the signature must
//! cover exactly the bytes given (for a commit: as stored, minus its
//! `gpgsig` header).

use std::path::Path;

use ssh_key::{PublicKey, SshSig};

/// The namespace git signs commits in.
pub const GIT_NAMESPACE: &str = "git";

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedSigner {
    /// The principals as written (`alice@example.com,ops@example.com`).
    pub principals: String,
    /// `namespaces="…"`: `None` means every namespace.
    pub namespaces: Option<Vec<String>>,
    /// `valid-after` / `valid-before`, in seconds since the epoch (UTC).
    pub valid_after: Option<i64>,
    pub valid_before: Option<i64>,
    pub key: PublicKey,
    /// 1-based line in the file, for messages.
    pub line: usize,
}

/// The whole file.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub file: String,
    pub signers: Vec<AllowedSigner>,
}

/// A line the file cannot have; the whole file is refused (a typo in the
/// trust policy must be loud, not a silently missing signer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SignersError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Who signed a commit, once verified.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signer {
    /// The principals of the allowed-signers line that matched.
    pub principals: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// Why a signature is not accepted. `what` is the signed thing ("commit",
/// "image"), for the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the {what} is not signed; allowed: {what}s signed with an SSH key listed in {file}")]
    Unsigned { what: &'static str, file: String },
    #[error(
        "the {what} has an OpenPGP or X.509 signature; allowed: SSH signatures (gpg.format=ssh) by a key in {file}"
    )]
    NotSsh { what: &'static str, file: String },
    #[error("the {what}'s SSH signature cannot be read: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("the signature is in namespace {found:?}; allowed: {wanted:?}")]
    Namespace { found: String, wanted: &'static str },
    #[error("the signing key {fingerprint} is not in {file}")]
    UnknownKey { fingerprint: String, file: String },
    #[error(
        "the signing key {fingerprint} is in {file} (line {line}) but not for namespace {namespace:?} or not at the {what}'s time"
    )]
    NotAllowed {
        what: &'static str,
        namespace: &'static str,
        fingerprint: String,
        file: String,
        line: usize,
    },
    #[error(
        "the signature by {fingerprint} does not match the {what} (tampered, or signed over other bytes)"
    )]
    BadSignature {
        what: &'static str,
        fingerprint: String,
    },
}

impl AllowedSigners {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<AllowedSigners, SignersError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SignersError {
            file: file.clone(),
            line: 0,
            message: format!("cannot read the allowed signers: {e}"),
        })?;
        AllowedSigners::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<AllowedSigners, SignersError> {
        let mut signers = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let error = |message: String| SignersError {
                file: file.to_owned(),
                line,
                message,
            };
            signers.push(parse_line(trimmed, line).map_err(error)?);
        }
        Ok(AllowedSigners {
            file: file.to_owned(),
            signers,
        })
    }

    /// Verifies a commit's `signature` (its `gpgsig` header, armored) over
    /// `payload` (the commit without that header), made at `time` (the
    /// committer time, seconds since the epoch).
    pub fn verify(&self, signature: &[u8], payload: &[u8], time: i64) -> Result<Signer, Refusal> {
        self.verify_in(GIT_NAMESPACE, "commit", signature, payload, time)
    }

    /// Whether some key may sign in `namespace` (at some time).
    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.signers.iter().any(|s| {
            s.namespaces
                .as_ref()
                .is_none_or(|list| list.iter().any(|n| n == namespace))
        })
    }

    /// Verifies an armored SSH `signature` over `payload` in `namespace`,
    /// made at `time`; `what` names the signed thing in refusals.
    pub fn verify_in(
        &self,
        namespace: &'static str,
        what: &'static str,
        signature: &[u8],
        payload: &[u8],
        time: i64,
    ) -> Result<Signer, Refusal> {
        let malformed = |reason: String| Refusal::Malformed { what, reason };
        let text = std::str::from_utf8(signature)
            .map_err(|_| malformed("not UTF-8".into()))?
            .trim();
        if text.is_empty() {
            return Err(Refusal::Unsigned {
                what,
                file: self.file.clone(),
            });
        }
        if !text.starts_with("-----BEGIN SSH SIGNATURE-----") {
            return Err(Refusal::NotSsh {
                what,
                file: self.file.clone(),
            });
        }
        let sig = SshSig::from_pem(text).map_err(|e| malformed(e.to_string()))?;
        if sig.namespace() != namespace {
            return Err(Refusal::Namespace {
                found: sig.namespace().to_owned(),
                wanted: namespace,
            });
        }
        let key = PublicKey::from(sig.public_key().clone());
        let fingerprint = key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
        let same_key: Vec<&AllowedSigner> = self
            .signers
            .iter()
            .filter(|s| s.key.key_data() == key.key_data())
            .collect();
        let Some(first) = same_key.first() else {
            return Err(Refusal::UnknownKey {
                fingerprint,
                file: self.file.clone(),
            });
        };
        let Some(allowed) = same_key.iter().find(|s| s.allows(namespace, time)) else {
            return Err(Refusal::NotAllowed {
                what,
                namespace,
                fingerprint,
                file: self.file.clone(),
                line: first.line,
            });
        };
        key.verify(namespace, payload, &sig)
            .map_err(|_| Refusal::BadSignature {
                what,
                fingerprint: fingerprint.clone(),
            })?;
        Ok(Signer {
            principals: allowed.principals.clone(),
            fingerprint,
        })
    }
}

impl AllowedSigner {
    fn allows(&self, namespace: &str, time: i64) -> bool {
        let namespace_ok = self
            .namespaces
            .as_ref()
            .is_none_or(|list| list.iter().any(|n| n == namespace));
        namespace_ok
            && self.valid_after.is_none_or(|after| time >= after)
            && self.valid_before.is_none_or(|before| time < before)
    }
}

/// The key types a line's key may have (what `ssh-keygen -Y` accepts).
fn is_key_type(word: &str) -> bool {
    word.starts_with("ssh-")
        || word.starts_with("ecdsa-sha2-")
        || word.starts_with("sk-ssh-")
        || word.starts_with("sk-ecdsa-")
}

/// Splits off the first field; a field may be quoted (`"a b"`), and options
/// may hold quoted values (`namespaces="git,file"`).
fn next_field(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Some((&text[..i], &text[i..])),
            _ => {}
        }
    }
    Some((text, ""))
}

fn parse_line(text: &str, line: usize) -> Result<AllowedSigner, String> {
    let (principals, rest) = next_field(text).ok_or("empty line")?;
    let principals = principals.trim_matches('"').to_owned();
    if principals.split(',').any(|p| p.trim().is_empty()) {
        return Err(format!(
            "principals {principals:?} name an empty principal; allowed: a comma-separated list of names or patterns"
        ));
    }
    let (second, mut rest) = next_field(rest).ok_or_else(|| {
        "has principals but no key; allowed: PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY [COMMENT]"
            .to_owned()
    })?;
    let mut namespaces = None;
    let mut valid_after = None;
    let mut valid_before = None;
    let key_type = if is_key_type(second) {
        second
    } else {
        for option in split_options(second) {
            let (name, value) = match option.split_once('=') {
                Some((name, value)) => (name, Some(value.trim_matches('"'))),
                None => (option, None),
            };
            match (name.to_ascii_lowercase().as_str(), value) {
                ("namespaces", Some(list)) => {
                    if list.split(',').any(|n| n.trim().is_empty()) {
                        return Err(format!(
                            "namespaces={list:?} names an empty namespace; allowed: a comma-separated list such as \"git,bbhv-image\""
                        ));
                    }
                    namespaces = Some(list.split(',').map(str::to_owned).collect())
                }
                ("valid-after", Some(time)) => valid_after = Some(parse_time(time)?),
                ("valid-before", Some(time)) => valid_before = Some(parse_time(time)?),
                ("cert-authority", _) => {
                    return Err(
                        "cert-authority is not supported; allowed: list each signing key itself"
                            .into(),
                    );
                }
                _ => {
                    return Err(format!(
                        "unknown option {option:?}; allowed: namespaces=\"…\", valid-after=\"…\", valid-before=\"…\""
                    ));
                }
            }
        }
        let (key_type, after) = next_field(rest).ok_or("has options but no key")?;
        rest = after;
        key_type
    };
    let (base64, _comment) = next_field(rest).ok_or_else(|| format!("{key_type} has no key"))?;
    let key = PublicKey::from_openssh(&format!("{key_type} {base64}"))
        .map_err(|e| format!("the {key_type} key cannot be read: {e}"))?;
    Ok(AllowedSigner {
        principals,
        namespaces,
        valid_after,
        valid_before,
        key,
        line,
    })
}

/// `a,b="x,y",c` -> `a`, `b="x,y"`, `c`.
fn split_options(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// `YYYYMMDD[HHMM[SS]][Z]`, read as UTC (ssh-keygen reads it as local time
/// without the `Z`; a host's trust policy should not depend on its time zone).
fn parse_time(text: &str) -> Result<i64, String> {
    let digits = text.strip_suffix(['Z', 'z']).unwrap_or(text);
    let bad = || format!("time {text:?} is not YYYYMMDD[HHMM[SS]][Z]");
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> i64 {
        digits.get(range).map_or(0, |s| s.parse().unwrap_or(0))
    };
    let (year, month, day) = (num(0..4), num(4..6), num(6..8));
    let (hour, minute, second) = (num(8..10), num(10..12), num(12..14));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxBfbPyL7YYb3gF1x6iEp2vNmcQuXC3J5qQkgcWmlYQ";

    #[test]
    fn lines_with_and_without_options() {
        let text = format!(
            "# trusted\n\nalice@example.com {KEY} laptop\n\"ops,bob\" namespaces=\"git,file\",valid-after=\"20250101\",valid-before=\"20300101Z\" {KEY}\n"
        );
        let signers = AllowedSigners::parse(&text, "f").unwrap();
        assert_eq!(signers.signers.len(), 2);
        assert_eq!(signers.signers[0].principals, "alice@example.com");
        assert_eq!(signers.signers[0].namespaces, None);
        assert_eq!(signers.signers[0].line, 3);
        let second = &signers.signers[1];
        assert_eq!(second.principals, "ops,bob");
        assert_eq!(
            second.namespaces.as_deref(),
            Some(&["git".to_owned(), "file".to_owned()][..])
        );
        assert_eq!(second.valid_after, Some(1_735_689_600));
        assert_eq!(second.valid_before, Some(1_893_456_000));
        assert!(second.allows("git", 1_800_000_000));
        assert!(!second.allows("git", 1_700_000_000));
        assert!(!second.allows("git", 1_900_000_000));
        assert!(!second.allows("ssh", 1_800_000_000));
    }

    #[test]
    fn bad_lines_name_file_line_and_problem() {
        for (text, wanted) in [
            ("alice", "no key"),
            (
                "alice cert-authority ssh-ed25519 AAAA",
                "cert-authority is not supported",
            ),
            (
                "alice foo=bar ssh-ed25519 AAAA",
                "unknown option \"foo=bar\"",
            ),
            (
                "alice valid-after=\"2025\" ssh-ed25519 AAAA",
                "is not YYYYMMDD",
            ),
            ("alice ssh-ed25519 AAAAnotbase64", "key cannot be read"),
            ("alice ssh-ed25519", "has no key"),
            ("\"\" ssh-ed25519 AAAA", "empty principal"),
            ("alice,,bob ssh-ed25519 AAAA", "empty principal"),
            (
                "alice namespaces=\"git,\" ssh-ed25519 AAAA",
                "empty namespace",
            ),
        ] {
            let e =
                AllowedSigners::parse(&format!("\n{text}\n"), "/etc/bitbuilder/allowed_signers")
                    .unwrap_err();
            assert_eq!(e.line, 2, "{text}");
            assert!(
                e.to_string()
                    .starts_with("/etc/bitbuilder/allowed_signers:2: "),
                "{e}"
            );
            assert!(e.message.contains(wanted), "{text}: {e}");
        }
    }

    #[test]
    fn unsigned_and_gpg_signatures_are_refused() {
        let signers = AllowedSigners::parse(&format!("a {KEY}\n"), "f").unwrap();
        assert!(matches!(
            signers.verify(b"", b"x", 0),
            Err(Refusal::Unsigned { .. })
        ));
        assert!(matches!(
            signers.verify(b"-----BEGIN PGP SIGNATURE-----\nxx\n", b"x", 0),
            Err(Refusal::NotSsh { .. })
        ));
        assert!(matches!(
            signers.verify(
                b"-----BEGIN SSH SIGNATURE-----\nxx\n-----END SSH SIGNATURE-----",
                b"x",
                0
            ),
            Err(Refusal::Malformed { .. })
        ));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(parse_time("19700101000001Z"), Ok(1));
    }
}
