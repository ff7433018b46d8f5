//! The file names of the slots: `EFI/Linux/bbhv-<slot>-<version>.efi`, with
//! systemd-boot's boot counter `+LEFT[-DONE]` before `.efi` while a UKI is
//! on trial (Boot Loader Specification, "Boot counting").

use std::fmt;

use serde::Serialize;

/// Every slot file starts with this; loader.conf's `default` matches it.
pub const PREFIX: &str = "bbhv-";
/// Where type #2 entries live on the ESP.
pub const LINUX_DIR: &str = "EFI/Linux";

/// One of the two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    fn letter(self) -> char {
        match self {
            Slot::A => 'a',
            Slot::B => 'b',
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// A UKI's version: 1 to 64 of `0-9 A-Z a-z . _ ~ ^`, starting with a
/// letter or digit. No `-` or `+`: they delimit the slot and the counter
/// in the file name. It is also the UKI's `IMAGE_VERSION=`, which
/// systemd-boot sorts by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Version(String);

impl Version {
    pub fn parse(text: &str) -> Result<Version, String> {
        let ok = (1..=64).contains(&text.len())
            && text.as_bytes()[0].is_ascii_alphanumeric()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~^".contains(&b));
        if ok {
            Ok(Version(text.to_owned()))
        } else {
            Err(format!(
                "{text:?} is not a UKI version; allowed: 1 to 64 letters, digits and '._~^', \
                 starting with a letter or digit (like \"2026.11.1\")"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// systemd-boot's boot counter: `+LEFT` (never tried yet) or `+LEFT-DONE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counter {
    pub left: u32,
    pub done: Option<u32>,
}

/// What the counter says about a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// No counter: blessed (or installed as known good).
    Good,
    /// Tries left: on trial, systemd-boot prefers it if it is the newest.
    Trying,
    /// `+0-N`: every try failed; systemd-boot sorts it last.
    Bad,
}

/// One slot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub slot: Slot,
    pub version: Version,
    pub counter: Option<Counter>,
}

impl Entry {
    /// The name on the ESP, counter included.
    pub fn file_name(&self) -> String {
        let mut name = format!("{PREFIX}{}-{}", self.slot, self.version);
        if let Some(c) = self.counter {
            name.push_str(&format!("+{}", c.left));
            if let Some(done) = c.done {
                name.push_str(&format!("-{done}"));
            }
        }
        name.push_str(".efi");
        name
    }

    /// The entry id systemd-boot reports (`LoaderEntrySelected`): the file
    /// name without the counter.
    pub fn id(&self) -> String {
        format!("{PREFIX}{}-{}.efi", self.slot, self.version)
    }

    pub fn state(&self) -> State {
        match self.counter {
            None => State::Good,
            Some(Counter { left: 0, .. }) => State::Bad,
            Some(_) => State::Trying,
        }
    }

    /// Parses a file name of `EFI/Linux`: `Ok(None)` for a file that is not
    /// ours (no `bbhv-` prefix or not `.efi`), an error for one of ours that
    /// is malformed.
    pub fn parse(file_name: &str) -> Result<Option<Entry>, String> {
        let Some(stem) = file_name
            .strip_prefix(PREFIX)
            .and_then(|s| s.strip_suffix(".efi"))
        else {
            return Ok(None);
        };
        let bad = |why: &str| Err(format!("{file_name:?}: {why}"));
        let slot = match stem.get(..2) {
            Some("a-") => Slot::A,
            Some("b-") => Slot::B,
            _ => return bad("no slot; expected bbhv-a-<version> or bbhv-b-<version>"),
        };
        let rest = &stem[2..];
        let (version, counter) = match rest.rsplit_once('+') {
            None => (rest, None),
            Some((version, counter)) => match parse_counter(counter) {
                Some(c) => (version, Some(c)),
                None => return bad("the boot counter is not +LEFT or +LEFT-DONE"),
            },
        };
        let version = Version::parse(version).map_err(|e| format!("{file_name:?}: {e}"))?;
        Ok(Some(Entry {
            slot,
            version,
            counter,
        }))
    }
}

fn parse_counter(text: &str) -> Option<Counter> {
    let number = |t: &str| -> Option<u32> {
        if t.is_empty() || t.len() > 4 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    match text.split_once('-') {
        None => Some(Counter {
            left: number(text)?,
            done: None,
        }),
        Some((left, done)) => Some(Counter {
            left: number(left)?,
            done: Some(number(done)?),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry {
        Entry::parse(name).unwrap().unwrap()
    }

    #[test]
    fn names_round_trip() {
        for name in [
            "bbhv-a-1.efi",
            "bbhv-b-2026.11.1+3.efi",
            "bbhv-b-2+2-1.efi",
            "bbhv-a-7~rc1+0-3.efi",
        ] {
            assert_eq!(entry(name).file_name(), name);
        }
    }

    #[test]
    fn tries_suffix() {
        let e = entry("bbhv-b-2+3.efi");
        assert_eq!(e.slot, Slot::B);
        assert_eq!(e.version.as_str(), "2");
        assert_eq!(
            e.counter,
            Some(Counter {
                left: 3,
                done: None
            })
        );
        assert_eq!(e.state(), State::Trying);
        assert_eq!(e.id(), "bbhv-b-2.efi");
        let e = entry("bbhv-b-2+0-3.efi");
        assert_eq!(
            e.counter,
            Some(Counter {
                left: 0,
                done: Some(3)
            })
        );
        assert_eq!(e.state(), State::Bad);
        assert_eq!(e.id(), "bbhv-b-2.efi");
        assert_eq!(entry("bbhv-a-1.efi").state(), State::Good);
    }

    #[test]
    fn not_ours_and_malformed() {
        assert_eq!(Entry::parse("debian-6.12.efi"), Ok(None));
        assert_eq!(Entry::parse("bbhv-a-1.conf"), Ok(None));
        for bad in [
            "bbhv-c-1.efi",
            "bbhv-a-.efi",
            "bbhv-a-1+x.efi",
            "bbhv-a-1+3-.efi",
            "bbhv-a-1+-1.efi",
            "bbhv-a-1-2.efi",
            "bbhv-a-.1.efi",
            "bbhv-a-1+99999.efi",
        ] {
            assert!(Entry::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions() {
        assert!(Version::parse("2026.11.1").is_ok());
        assert!(Version::parse("1.0~rc1").is_ok());
        for bad in ["", "-1", "1-2", "1+2", "a/b", "1 2", ".1", &"9".repeat(65)] {
            let e = Version::parse(bad).unwrap_err();
            assert!(e.contains("allowed"), "{e}");
        }
    }
}
