//! The host's A/B boot slots (`bbhv_boot`): the slot file names on the ESP,
//! systemd's version order, which entry systemd-boot boots, and where a new
//! UKI is staged. The file names on an ESP are whatever a FAT file system
//! holds, so the parser sees hostile names too.
//!
//! Asserts:
//! - `Entry::parse` never panics; a name it takes is ours (`bbhv-*.efi`),
//!   and the entry's own `file_name` parses back to the same entry;
//! - `version::compare` is a total order on the input's versions: reflexive,
//!   antisymmetric and transitive (else `sort_by` may panic and the default
//!   entry would not be systemd-boot's);
//! - `plan_stage` (1 to `MAX_TRIES` tries): a plan keeps a good entry (the
//!   running one when booted from the ESP), stages into the other slot,
//!   removes only that slot's files, and names a file that parses as the
//!   new version on trial; after the plan, systemd-boot's default is the
//!   new UKI, and once every try failed (`+0-N`) it is the kept slot again;
//!   a refusal means the running entry is on trial, nothing is good, or
//!   the version does not sort after one that stays;
//! - `plan_pin` (a sync's pinned UKI) holds exactly when a slot has that
//!   version, and otherwise plans what `plan_stage` plans;
//! - `plan_unstage` (a git rollback) withdraws only files of the ESP that
//!   were staged and never booted (`+N`, no tries done), of another version
//!   than the pinned one, never the running entry; nothing without a pin.

#![no_main]

use std::cmp::Ordering;

use arbitrary::Arbitrary;
use bbhv_boot::plan::default_entry;
use bbhv_boot::plan::{PinAction, plan_pin, plan_unstage};
use bbhv_boot::version::compare;
use bbhv_boot::{Counter, Entry, StageError, State, Version, plan_stage};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    /// ESP file names: raw, or built from parts.
    names: Vec<Name>,
    booted: Option<u8>,
    version: Name,
    tries: u8,
}

#[derive(Debug, Arbitrary)]
enum Name {
    Raw(String),
    Built {
        b: bool,
        version: Vec<u8>,
        counter: Option<(u8, Option<u8>)>,
    },
}

const VERSION_BYTES: &[u8] = b"0123456789.~^_abzAZ";

impl Name {
    fn version(&self) -> String {
        match self {
            Name::Raw(s) => s.clone(),
            Name::Built { version, .. } => version
                .iter()
                .take(12)
                .map(|b| char::from(VERSION_BYTES[usize::from(*b) % VERSION_BYTES.len()]))
                .collect(),
        }
    }

    fn file_name(&self) -> String {
        match self {
            Name::Raw(s) => s.clone(),
            Name::Built { b, counter, .. } => {
                let mut name = format!("bbhv-{}-{}", if *b { 'b' } else { 'a' }, self.version());
                if let Some((left, done)) = counter {
                    name.push_str(&format!("+{}", left % 5));
                    if let Some(done) = done {
                        name.push_str(&format!("-{}", done % 5));
                    }
                }
                name + ".efi"
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let mut entries = Vec::new();
    for name in input.names.iter().take(6) {
        let file = name.file_name();
        match Entry::parse(&file) {
            Ok(Some(entry)) => {
                assert!(
                    file.starts_with("bbhv-") && file.ends_with(".efi"),
                    "{file:?}"
                );
                assert_eq!(
                    Entry::parse(&entry.file_name()),
                    Ok(Some(entry.clone())),
                    "{file:?}"
                );
                assert!(!entry.id().contains('+'), "{entry:?}");
                entries.push(entry);
            }
            Ok(None) => assert!(
                !(file.starts_with("bbhv-") && file.ends_with(".efi")),
                "{file:?}"
            ),
            Err(e) => assert!(e.contains(&format!("{file:?}")), "{e}"),
        }
    }

    // A total order over every version seen.
    let mut versions: Vec<String> = entries.iter().map(|e| e.version.to_string()).collect();
    versions.push(input.version.version());
    for a in &versions {
        assert_eq!(compare(a, a), Ordering::Equal, "{a:?}");
        for b in &versions {
            let ab = compare(a, b);
            assert_eq!(ab, compare(b, a).reverse(), "{a:?} {b:?}");
            for c in &versions {
                if ab != Ordering::Greater && compare(b, c) != Ordering::Greater {
                    assert_ne!(compare(a, c), Ordering::Greater, "{a:?} <= {b:?} <= {c:?}");
                }
            }
        }
    }

    let Ok(version) = Version::parse(&input.version.version()) else {
        return;
    };
    // Two entries with one id (the same slot and version, other counters)
    // cannot both be on one ESP.
    let mut ids: Vec<String> = entries.iter().map(Entry::id).collect();
    ids.sort();
    ids.dedup();
    if ids.len() != entries.len() {
        return;
    }
    let tries = 1 + u32::from(input.tries) % bbhv_host::boot::MAX_TRIES;
    let booted = input
        .booted
        .and_then(|i| entries.get(usize::from(i) % entries.len().max(1)))
        .map(Entry::id);
    let stage = plan_stage(&entries, booted.as_deref(), &version, tries);
    match plan_pin(&entries, booted.as_deref(), &version, tries) {
        Ok(PinAction::Held(held)) => {
            assert_eq!(held.version, version);
            assert!(entries.contains(&held));
        }
        Ok(PinAction::Stage(plan)) => {
            assert!(entries.iter().all(|e| e.version != version));
            assert_eq!(Ok(plan), stage);
        }
        Err(e) => assert_eq!(Err(e), stage),
    }
    for pinned in [None, Some(&version)] {
        let withdrawn = plan_unstage(&entries, booted.as_deref(), pinned);
        assert!(pinned.is_some() || withdrawn.is_empty());
        for name in &withdrawn {
            let e = entries
                .iter()
                .find(|e| &e.file_name() == name)
                .expect("on the ESP");
            assert!(
                matches!(e.counter, Some(Counter { done: None, .. })),
                "{e:?}"
            );
            assert_ne!(Some(&e.version), pinned, "{e:?}");
            assert_ne!(booted.as_deref(), Some(e.id().as_str()), "{e:?}");
        }
    }
    match stage {
        Ok(plan) => {
            assert!(entries.contains(&plan.keep), "{plan:?}");
            assert_eq!(plan.keep.state(), State::Good, "{plan:?}");
            if let Some(id) = &booted {
                assert_eq!(&plan.keep.id(), id, "{plan:?}");
            }
            assert_ne!(plan.slot, plan.keep.slot);
            let in_slot: Vec<String> = entries
                .iter()
                .filter(|e| e.slot == plan.slot)
                .map(Entry::file_name)
                .collect();
            assert_eq!(plan.remove, in_slot);
            let new = Entry::parse(&plan.file_name).unwrap().unwrap();
            assert_eq!(
                (new.slot, &new.version, new.counter),
                (
                    plan.slot,
                    &version,
                    Some(Counter {
                        left: tries,
                        done: None
                    })
                )
            );
            assert_eq!(
                compare(version.as_str(), plan.keep.version.as_str()),
                Ordering::Greater
            );
            // The ESP after staging: the next boot picks the new UKI ...
            let mut after: Vec<Entry> = entries
                .iter()
                .filter(|e| e.slot != plan.slot)
                .cloned()
                .collect();
            after.push(new.clone());
            assert_eq!(default_entry(&after), Some(&new), "{after:?}");
            // ... and when every try failed, the kept one again.
            let last = after.len() - 1;
            after[last].counter = Some(Counter {
                left: 0,
                done: Some(tries),
            });
            // (Another entry of the kept slot may sort first; the
            // staged slot never does.)
            let fallback = default_entry(&after).unwrap();
            assert_ne!(fallback.slot, plan.slot, "{after:?}");
        }
        Err(StageError::StillTrying(_)) => {
            let running = entries.iter().find(|e| Some(e.id()) == booted).unwrap();
            assert!(running.counter.is_some());
        }
        Err(StageError::NothingGood) => {
            assert!(booted.is_none() || entries.iter().all(|e| Some(e.id()) != booted));
            assert!(entries.iter().all(|e| e.state() != State::Good));
        }
        Err(StageError::NotNewer { new, keep }) => {
            assert_ne!(compare(&new, &keep), Ordering::Greater);
        }
    }
});
