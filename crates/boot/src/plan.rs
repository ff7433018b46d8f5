//! Which slot systemd-boot boots, and where a new UKI goes.

use std::cmp::Ordering;

use crate::entry::{Counter, Entry, Slot, State, Version};
use crate::version::compare;

/// systemd-boot's order of type #2 entries that share an `IMAGE_ID`
/// (`boot_entry_compare()`): entries with no tries left last, then the
/// newest version first, then by id, then more tries left first.
pub fn boot_order(a: &Entry, b: &Entry) -> Ordering {
    let bad = |e: &Entry| e.state() == State::Bad;
    let left = |e: &Entry| e.counter.map_or(-1, |c| i64::from(c.left));
    bad(a)
        .cmp(&bad(b))
        .then_with(|| compare(b.version.as_str(), a.version.as_str()))
        .then_with(|| compare(&b.id(), &a.id()))
        .then_with(|| left(b).cmp(&left(a)))
}

/// The entries in the order systemd-boot lists them.
pub fn sorted(entries: &[Entry]) -> Vec<&Entry> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| boot_order(a, b));
    sorted
}

/// What loader.conf's `default bbhv-*` picks: the first in boot order.
pub fn default_entry(entries: &[Entry]) -> Option<&Entry> {
    sorted(entries).into_iter().next()
}

/// Where a new UKI goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    /// The inactive slot, which gets the new UKI.
    pub slot: Slot,
    /// The slot that stays (what runs now, or the newest good one).
    pub keep: Entry,
    /// The inactive slot's current files, removed.
    pub remove: Vec<String>,
    /// The new file's name, with `+TRIES`.
    pub file_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    #[error(
        "the running UKI {0} has not been blessed yet (systemd-bless-boot marks it good once \
         boot-complete.target is reached); a new UKI would replace the only known-good slot"
    )]
    StillTrying(String),
    #[error("no known-good UKI on the ESP (run `bbhv boot install` first)")]
    NothingGood,
    #[error(
        "version {new} does not sort after {keep}, a version that stays on the ESP; systemd-boot \
         boots the newest version, so it would never boot {new}"
    )]
    NotNewer { new: String, keep: String },
}

/// Plans staging `version` with `tries` boot attempts. `booted` is the
/// id systemd-boot booted (`LoaderEntrySelected`), if the host booted from
/// this ESP.
pub fn plan_stage(
    entries: &[Entry],
    booted: Option<&str>,
    version: &Version,
    tries: u32,
) -> Result<StagePlan, StageError> {
    let running = booted.and_then(|id| entries.iter().find(|e| e.id() == id));
    let keep = match running {
        Some(e) if e.counter.is_some() => return Err(StageError::StillTrying(e.file_name())),
        Some(e) => e,
        None => sorted(entries)
            .into_iter()
            .find(|e| e.state() == State::Good)
            .ok_or(StageError::NothingGood)?,
    };
    let slot = keep.slot.other();
    // systemd-boot boots the newest entry that has tries left: the new UKI
    // must sort after every one that stays (the kept one, and any other
    // file left in its slot), or it would never be tried.
    let newest_staying = sorted(entries)
        .into_iter()
        .find(|e| e.slot != slot && e.state() != State::Bad)
        .unwrap_or(keep);
    if compare(version.as_str(), newest_staying.version.as_str()) != Ordering::Greater {
        return Err(StageError::NotNewer {
            new: version.to_string(),
            keep: newest_staying.version.to_string(),
        });
    }
    let new = Entry {
        slot,
        version: version.clone(),
        counter: Some(Counter {
            left: tries,
            done: None,
        }),
    };
    Ok(StagePlan {
        slot,
        keep: keep.clone(),
        remove: entries
            .iter()
            .filter(|e| e.slot == slot)
            .map(Entry::file_name)
            .collect(),
        file_name: new.file_name(),
    })
}

/// What a git-ops sync does with the UKI a commit pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinAction {
    /// A slot already holds the pinned version (good, on trial or failed):
    /// nothing is staged. A failed one is not tried again until the pin
    /// changes, or every sync would loop through its tries.
    Held(Entry),
    /// Stage it.
    Stage(StagePlan),
}

/// Plans the pinned `version`: held by a slot, or staged into the inactive one.
pub fn plan_pin(
    entries: &[Entry],
    booted: Option<&str>,
    version: &Version,
    tries: u32,
) -> Result<PinAction, StageError> {
    if let Some(held) = entries.iter().find(|e| e.version == *version) {
        return Ok(PinAction::Held(held.clone()));
    }
    plan_stage(entries, booted, version, tries).map(PinAction::Stage)
}

/// After a git rollback to a generation that pins `pinned`: the slot files
/// to withdraw. Those are staged UKIs never booted (`+TRIES`, no tries
/// done, not the running one) of another version: the commit that staged
/// them was left, so the next boot must not switch to them. A slot that
/// was booted (on trial, blessed or failed) is the boot's own business and
/// stays; so does everything when the generation pins no UKI.
pub fn plan_unstage(
    entries: &[Entry],
    booted: Option<&str>,
    pinned: Option<&Version>,
) -> Vec<String> {
    let Some(pinned) = pinned else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| {
            e.version != *pinned
                && matches!(e.counter, Some(Counter { done: None, .. }))
                && booted != Some(e.id().as_str())
        })
        .map(Entry::file_name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[&str]) -> Vec<Entry> {
        names
            .iter()
            .map(|n| Entry::parse(n).unwrap().unwrap())
            .collect()
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn newest_with_tries_left_boots_first() {
        let e = entries(&["bbhv-a-1.efi", "bbhv-b-2+3.efi"]);
        assert_eq!(default_entry(&e).unwrap().file_name(), "bbhv-b-2+3.efi");
        let e = entries(&["bbhv-a-1.efi", "bbhv-b-2+1-2.efi"]);
        assert_eq!(default_entry(&e).unwrap().file_name(), "bbhv-b-2+1-2.efi");
        // Out of tries: back to the good one.
        let e = entries(&["bbhv-b-2+0-3.efi", "bbhv-a-1.efi"]);
        assert_eq!(default_entry(&e).unwrap().file_name(), "bbhv-a-1.efi");
        // Blessed newer one.
        let e = entries(&["bbhv-a-1.efi", "bbhv-b-10.efi"]);
        assert_eq!(default_entry(&e).unwrap().file_name(), "bbhv-b-10.efi");
        assert!(default_entry(&[]).is_none());
    }

    #[test]
    fn stages_into_the_slot_not_running() {
        let e = entries(&["bbhv-a-1.efi", "bbhv-b-2+0-3.efi"]);
        let plan = plan_stage(&e, Some("bbhv-a-1.efi"), &v("3"), 3).unwrap();
        assert_eq!(plan.slot, Slot::B);
        assert_eq!(plan.keep.file_name(), "bbhv-a-1.efi");
        assert_eq!(plan.remove, vec!["bbhv-b-2+0-3.efi".to_string()]);
        assert_eq!(plan.file_name, "bbhv-b-3+3.efi");
        // Running b (blessed): a is replaced.
        let e = entries(&["bbhv-a-1.efi", "bbhv-b-3.efi"]);
        let plan = plan_stage(&e, Some("bbhv-b-3.efi"), &v("4"), 2).unwrap();
        assert_eq!(plan.slot, Slot::A);
        assert_eq!(plan.remove, vec!["bbhv-a-1.efi".to_string()]);
        assert_eq!(plan.file_name, "bbhv-a-4+2.efi");
        // Not booted from this ESP: the newest good slot stays.
        let plan = plan_stage(&e, None, &v("4"), 3).unwrap();
        assert_eq!(plan.keep.file_name(), "bbhv-b-3.efi");
        // Only a: b is empty.
        let e = entries(&["bbhv-a-1.efi"]);
        let plan = plan_stage(&e, Some("bbhv-a-1.efi"), &v("2"), 3).unwrap();
        assert_eq!((plan.slot, plan.remove.len()), (Slot::B, 0));
    }

    #[test]
    fn refuses_what_would_lose_the_good_slot_or_never_boot() {
        let e = entries(&["bbhv-a-1.efi", "bbhv-b-2+2-1.efi"]);
        assert_eq!(
            plan_stage(&e, Some("bbhv-b-2.efi"), &v("3"), 3),
            Err(StageError::StillTrying("bbhv-b-2+2-1.efi".into()))
        );
        let e = entries(&["bbhv-a-5.efi"]);
        let err = plan_stage(&e, Some("bbhv-a-5.efi"), &v("4"), 3).unwrap_err();
        assert!(err.to_string().contains("does not sort after 5"), "{err}");
        assert!(plan_stage(&e, None, &v("5"), 3).is_err());
        assert_eq!(
            plan_stage(&entries(&["bbhv-b-2+0-3.efi"]), None, &v("3"), 3),
            Err(StageError::NothingGood)
        );
        assert_eq!(
            plan_stage(&[], None, &v("3"), 3),
            Err(StageError::NothingGood)
        );
        // Another file left in the kept slot, on trial and newer than the
        // new version, would boot first: found by fuzz target boot_slots.
        let e = entries(&["bbhv-b-a08.efi", "bbhv-b-0+2-2.efi"]);
        assert_eq!(
            plan_stage(&e, Some("bbhv-b-a08.efi"), &v("aa"), 3),
            Err(StageError::NotNewer {
                new: "aa".into(),
                keep: "0".into()
            })
        );
    }

    #[test]
    fn a_pin_the_slots_hold_stages_nothing() {
        // Staged and not booted yet, blessed, or failed: held, not staged again.
        for names in [
            ["bbhv-a-1.efi", "bbhv-b-3+3.efi"],
            ["bbhv-a-1.efi", "bbhv-b-3.efi"],
            ["bbhv-a-1.efi", "bbhv-b-3+0-3.efi"],
        ] {
            let e = entries(&names);
            let got = plan_pin(&e, Some("bbhv-a-1.efi"), &v("3"), 3).unwrap();
            assert_eq!(got, PinAction::Held(e[1].clone()), "{names:?}");
        }
        let e = entries(&["bbhv-a-1.efi", "bbhv-b-2+0-3.efi"]);
        let PinAction::Stage(plan) = plan_pin(&e, Some("bbhv-a-1.efi"), &v("3"), 3).unwrap() else {
            panic!("not staged")
        };
        assert_eq!(plan.file_name, "bbhv-b-3+3.efi");
        // An older pin than what runs is refused, as a stage is.
        let e = entries(&["bbhv-a-5.efi"]);
        assert!(plan_pin(&e, Some("bbhv-a-5.efi"), &v("4"), 3).is_err());
    }

    #[test]
    fn a_rollback_withdraws_only_what_was_staged_and_never_booted() {
        let e = entries(&["bbhv-a-1.efi", "bbhv-b-3+3.efi"]);
        let booted = Some("bbhv-a-1.efi");
        assert_eq!(
            plan_unstage(&e, booted, Some(&v("1"))),
            vec!["bbhv-b-3+3.efi".to_string()]
        );
        // The generation gone back to pins that very UKI, or pins none: kept.
        assert!(plan_unstage(&e, booted, Some(&v("3"))).is_empty());
        assert!(plan_unstage(&e, booted, None).is_empty());
        // Booted already (on trial now, failed, blessed): kept.
        for names in [
            ["bbhv-a-1.efi", "bbhv-b-3+2-1.efi"],
            ["bbhv-a-1.efi", "bbhv-b-3+0-3.efi"],
            ["bbhv-a-1.efi", "bbhv-b-3.efi"],
        ] {
            assert!(
                plan_unstage(&entries(&names), booted, Some(&v("1"))).is_empty(),
                "{names:?}"
            );
        }
    }
}
