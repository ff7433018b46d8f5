//! The git-ops store (`bbhv_gitops::store`) as a state machine: a sequence
//! of operations from the fuzz input, as syncs, rollbacks and crashes make
//! them, on a state directory in /dev/shm, checked against a model after
//! every step.
//!
//! Operations: make a generation (staged, then committed or left half-made
//! as a killed sync leaves it), flip `current` to one, mark one applied,
//! append a record, append raw bytes to `history.jsonl` (a torn or
//! corrupted line), clean, prune. Asserts:
//! - `list` is every committed generation, sorted, and never a staged one;
//!   `clean` removes every staging directory;
//! - after a flip `current` is the generation and `previous` is the former
//!   `current` (when it differs); `applied` is the last one marked;
//! - `next_seq` is above every generation and every recorded one;
//! - `history` is every record appended, in order, whatever bytes were
//!   written between them (a record after a torn line is whole);
//!   `remembered_bad` is the last record of that commit when it was refused
//!   or rolled back;
//! - `prune(keep)` never removes `current`, `previous` or `applied`, removes
//!   only generations older than every unprotected one it keeps, and leaves
//!   at most `keep` plus the protected ones.

#![no_main]

use arbitrary::Arbitrary;
use bbhv_gitops::store::{Generation, Outcome, Record, Store};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Op {
    /// A new generation for commit `c`; committed unless `killed`.
    Make {
        c: u8,
        killed: bool,
    },
    Flip(u8),
    Applied(u8),
    Record {
        c: u8,
        outcome: u8,
        reason: String,
        generation: Option<u8>,
    },
    Garbage(Vec<u8>),
    Clean,
    Prune(u8),
}

fn commit(c: u8) -> String {
    format!("{:02x}", c % 8).repeat(20)
}

const OUTCOMES: [Outcome; 5] = [
    Outcome::Applied,
    Outcome::Refused,
    Outcome::RolledBack,
    Outcome::ManualRollback,
    Outcome::Failed,
];

fuzz_target!(|ops: Vec<Op>| {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let store = Store::new(dir.path());
    std::fs::create_dir_all(store.generations()).unwrap();
    // The model.
    let mut committed: Vec<Generation> = Vec::new();
    // Staging directories a killed sync left (the next one may reuse a name).
    let mut staged = std::collections::BTreeSet::new();
    let mut current: Option<Generation> = None;
    let mut previous: Option<Generation> = None;
    let mut applied: Option<Generation> = None;
    let mut records: Vec<Record> = Vec::new();
    let mut recorded_seq = 0u64;

    for op in ops.iter().take(24) {
        match op {
            Op::Make { c, killed } => {
                let seq = store.next_seq().unwrap();
                let top = committed.iter().map(|g| g.seq).max().unwrap_or(0);
                assert!(seq > top && seq > recorded_seq, "next_seq {seq}");
                let generation = Generation {
                    seq,
                    commit: commit(*c),
                };
                let staging = store.staging_dir(&generation);
                std::fs::create_dir_all(staging.join("tenants")).unwrap();
                std::fs::write(staging.join("tenants/x"), b"x").unwrap();
                if *killed {
                    staged.insert(generation.name());
                } else {
                    staged.remove(&generation.name());
                    store.commit_staging(&generation).unwrap();
                    committed.push(generation);
                }
            }
            Op::Flip(k) if !committed.is_empty() => {
                let g = committed[usize::from(*k) % committed.len()].clone();
                store.flip(&g).unwrap();
                if current.as_ref().is_some_and(|c| *c != g) {
                    previous = current.take();
                }
                current = Some(g);
            }
            Op::Applied(k) if !committed.is_empty() => {
                let g = committed[usize::from(*k) % committed.len()].clone();
                store.set_applied(&g).unwrap();
                applied = Some(g);
            }
            Op::Record {
                c,
                outcome,
                reason,
                generation,
            } => {
                let generation = generation.and_then(|k| {
                    (!committed.is_empty())
                        .then(|| committed[usize::from(k) % committed.len()].clone())
                });
                if let Some(g) = &generation {
                    recorded_seq = recorded_seq.max(g.seq);
                }
                let record = Record {
                    time: 1_800_000_000 + records.len() as u64,
                    commit: commit(*c),
                    generation: generation.map(|g| g.name()),
                    signer: None,
                    summary: None,
                    outcome: OUTCOMES[usize::from(*outcome) % OUTCOMES.len()],
                    reason: reason.clone(),
                };
                store.record(&record).unwrap();
                records.push(record);
            }
            Op::Garbage(bytes) => {
                use std::io::Write as _;
                // What a torn write or a bad disk leaves; never a whole
                // line that reads as a record (an object, or serde's array form).
                let bytes: Vec<u8> = bytes
                    .iter()
                    .take(64)
                    .copied()
                    .filter(|b| !matches!(b, b'{' | b'['))
                    .collect();
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(store.history_file())
                    .unwrap()
                    .write_all(&bytes)
                    .unwrap();
            }
            Op::Clean => {
                store.clean().unwrap();
                staged.clear();
            }
            Op::Prune(keep) => {
                let keep = usize::from(*keep % 5);
                let before = store.list().unwrap();
                let removed = store.prune(keep).unwrap();
                let protected: Vec<&Generation> = [&current, &previous, &applied]
                    .into_iter()
                    .flatten()
                    .collect();
                for g in &removed {
                    assert!(!protected.contains(&g), "pruned protected {g}");
                }
                let after = store.list().unwrap();
                assert_eq!(after.len() + removed.len(), before.len());
                let oldest_kept = after
                    .iter()
                    .filter(|g| !protected.contains(g))
                    .map(|g| g.seq)
                    .min();
                if let (Some(kept), Some(newest_removed)) =
                    (oldest_kept, removed.iter().map(|g| g.seq).max())
                {
                    assert!(
                        newest_removed < kept,
                        "pruned {newest_removed}, kept {kept}"
                    );
                }
                assert!(
                    after.len() <= keep.max(1) + protected.len(),
                    "{} left, keep {keep}",
                    after.len()
                );
                committed.retain(|g| !removed.contains(g));
            }
            _ => {}
        }
        // Every step: the store agrees with the model.
        let mut expected = committed.clone();
        expected.sort();
        assert_eq!(store.list().unwrap(), expected);
        assert_eq!(store.current_generation(), current);
        assert_eq!(store.previous_generation(), previous);
        assert_eq!(store.applied(), applied);
        let history = store.history();
        assert_eq!(history, records, "the history lost or gained a record");
        let staging = std::fs::read_dir(store.generations())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".new-")
            })
            .count();
        assert_eq!(staging, staged.len());
    }
    for c in 0..8u8 {
        let last = records.iter().rev().find(|r| r.commit == commit(c));
        let bad = last.filter(|r| {
            matches!(
                r.outcome,
                Outcome::Refused | Outcome::RolledBack | Outcome::ManualRollback
            )
        });
        assert_eq!(store.remembered_bad(&commit(c)).as_ref(), bad);
    }
});
