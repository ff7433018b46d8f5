//! `[boot]`: where the ESP is and which key signs the host's boot chain
//! (`bbhv boot`, docs/boot.md). Kept apart from lib.rs: its own raw shape,
//! defaults and checks.
//!
//! ```toml
//! [boot]
//! esp = "/efi"
//! signing_key = "/etc/bitbuilder/boot/db.key"
//! signing_cert = "/etc/bitbuilder/boot/db.crt"
//! tries = 3
//! ```

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

/// The default of `boot.esp`: where systemd mounts the ESP (`/efi`).
pub const ESP: &str = "/efi";
/// The default of `boot.signing_key` (only where UKIs are signed).
pub const SIGNING_KEY: &str = "/etc/bitbuilder/boot/db.key";
/// The default of `boot.signing_cert`: the certificate enrolled in the
/// firmware's `db`; every UKI is checked against it before it is staged.
pub const SIGNING_CERT: &str = "/etc/bitbuilder/boot/db.crt";
/// The default of `boot.tries`: boots a new UKI gets before it counts as bad.
pub const TRIES: u32 = 3;
/// The most `boot.tries` may be.
pub const MAX_TRIES: u32 = 9;

/// `[boot]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// Where the ESP is mounted.
    pub esp: PathBuf,
    /// The PEM private key UKIs and systemd-boot are signed with.
    pub signing_key: PathBuf,
    /// The PEM certificate of that key (enrolled in `db`).
    pub signing_cert: PathBuf,
    /// Boot counting: the `+N` a newly staged UKI gets.
    pub tries: u32,
}

impl Default for Boot {
    fn default() -> Boot {
        Boot {
            esp: ESP.into(),
            signing_key: SIGNING_KEY.into(),
            signing_cert: SIGNING_CERT.into(),
            tries: TRIES,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBoot {
    esp: Option<Spanned<String>>,
    signing_key: Option<Spanned<String>>,
    signing_cert: Option<Spanned<String>>,
    tries: Option<Spanned<i64>>,
}

pub(crate) fn check(check: &mut crate::Check<'_>, raw: RawBoot) -> Boot {
    let d = Boot::default();
    let path = |t: &String| crate::values::parse_absolute_path(t);
    Boot {
        esp: check.one("boot.esp", raw.esp, path).unwrap_or(d.esp),
        signing_key: check
            .one("boot.signing_key", raw.signing_key, path)
            .unwrap_or(d.signing_key),
        signing_cert: check
            .one("boot.signing_cert", raw.signing_cert, path)
            .unwrap_or(d.signing_cert),
        tries: check
            .one("boot.tries", raw.tries, |&n| parse_tries(n))
            .unwrap_or(d.tries),
    }
}

/// 1 to [`MAX_TRIES`]: systemd-boot's counter is one digit here so that a
/// file name's `+N-M` stays short and readable.
fn parse_tries(n: i64) -> Result<u32, String> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_TRIES).contains(n))
        .ok_or_else(|| format!("{n} is out of range; allowed: 1 to {MAX_TRIES}"))
}
