//! The host's git-ops state under `/var/lib/bitbuilder` (fixed paths):
//! generations, the `current` and `previous` links, the history, and which
//! generation last passed its health gate.
//!
//! Crash safety comes from the order of writes, each one atomic:
//! - a checkout is made in `generations/.new-<seq>-<sha>` and renamed into
//!   place when complete, so a generation directory is always whole;
//! - `previous`, then `current`, are replaced by renaming a new symlink
//!   over the old one;
//! - `applied` names the generation that passed its health gate; a
//!   `current` that differs from it is an apply a crash interrupted, and
//!   the next sync finishes it.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::signers::Signer;

/// A store operation that failed: what, where and why.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {action}: {source}")]
pub struct StoreError {
    pub path: String,
    pub action: &'static str,
    #[source]
    pub source: std::io::Error,
}

fn io_error(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.display().to_string();
    move |source| StoreError {
        path,
        action,
        source,
    }
}

/// A generation: `<seq>-<sha>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Generation {
    pub seq: u64,
    pub commit: String,
}

impl Generation {
    pub fn name(&self) -> String {
        format!("{}-{}", self.seq, self.commit)
    }

    /// `<seq>-<40 hex>`; anything else is not a generation.
    pub fn parse(name: &str) -> Option<Generation> {
        let (seq, commit) = name.split_once('-')?;
        let seq = seq.parse().ok()?;
        (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Generation {
            seq,
            commit: commit.to_owned(),
        })
    }
}

impl std::fmt::Display for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// How a sync (or rollback) ended, as `bbhv history` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Applied and healthy.
    Applied,
    /// Not applied: unsigned, untrusted, not a descendant, invalid.
    Refused,
    /// Applied, unhealthy, and the host went back to the previous generation.
    RolledBack,
    /// An operator's `bbhv rollback`.
    ManualRollback,
    /// The sync could not run to the end (fetch, disk, D-Bus).
    Failed,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Applied => "applied",
            Outcome::Refused => "refused",
            Outcome::RolledBack => "rolled back",
            Outcome::ManualRollback => "manual rollback",
            Outcome::Failed => "failed",
        })
    }
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Seconds since the epoch.
    pub time: u64,
    pub commit: String,
    /// The generation made for it, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<Signer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub outcome: Outcome,
    /// Why (refused, rolled back, failed), or what was done.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The state directory's layout.
#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    pub fn mirror(&self) -> PathBuf {
        self.dir.join("mirror.git")
    }
    pub fn generations(&self) -> PathBuf {
        self.dir.join("generations")
    }
    pub fn current(&self) -> PathBuf {
        self.dir.join("current")
    }
    pub fn previous(&self) -> PathBuf {
        self.dir.join("previous")
    }
    fn applied_file(&self) -> PathBuf {
        self.dir.join("applied")
    }
    pub fn history_file(&self) -> PathBuf {
        self.dir.join("history.jsonl")
    }
    pub fn generation_dir(&self, generation: &Generation) -> PathBuf {
        self.generations().join(generation.name())
    }

    /// The complete generations, oldest first. Half-made ones
    /// (`.new-*`, from a killed sync) are not listed.
    pub fn list(&self) -> Result<Vec<Generation>, StoreError> {
        let dir = self.generations();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&dir, "list the generations")(e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error(&dir, "list the generations"))?;
            if let Some(generation) = entry.file_name().to_str().and_then(Generation::parse)
                && entry.file_type().is_ok_and(|t| t.is_dir())
            {
                found.push(generation);
            }
        }
        found.sort();
        Ok(found)
    }

    /// The generation a link (`current`, `previous`) points at, if it
    /// points at one.
    pub fn link(&self, link: &Path) -> Option<Generation> {
        let target = std::fs::read_link(link).ok()?;
        Generation::parse(target.file_name()?.to_str()?)
    }

    pub fn current_generation(&self) -> Option<Generation> {
        self.link(&self.current())
    }
    pub fn previous_generation(&self) -> Option<Generation> {
        self.link(&self.previous())
    }

    /// The generation that last passed its health gate.
    pub fn applied(&self) -> Option<Generation> {
        let text = std::fs::read_to_string(self.applied_file()).ok()?;
        Generation::parse(text.trim())
    }

    pub fn set_applied(&self, generation: &Generation) -> Result<(), StoreError> {
        replace(&self.applied_file(), generation.name().as_bytes())
    }

    /// The next sequence number: above every generation and every record.
    pub fn next_seq(&self) -> Result<u64, StoreError> {
        let from_dirs = self.list()?.last().map_or(0, |g| g.seq);
        let from_history = self
            .history()
            .iter()
            .filter_map(|r| r.generation.as_deref().and_then(Generation::parse))
            .map(|g| g.seq)
            .max()
            .unwrap_or(0);
        Ok(from_dirs.max(from_history) + 1)
    }

    /// Removes what a killed sync left: half-made generations and link
    /// temporaries.
    pub fn clean(&self) -> Result<(), StoreError> {
        let dir = self.generations();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".new-") || name.starts_with(".plan-") {
                    remove_tree(&entry.path())?;
                }
            }
        }
        for link in [self.current(), self.previous()] {
            let temporary = temporary_link(&link);
            if std::fs::symlink_metadata(&temporary).is_ok() {
                std::fs::remove_file(&temporary).map_err(io_error(&temporary, "remove"))?;
            }
        }
        Ok(())
    }

    /// Where a new generation is checked out before it is complete.
    pub fn staging_dir(&self, generation: &Generation) -> PathBuf {
        self.generations()
            .join(format!(".new-{}", generation.name()))
    }

    /// Renames a complete staging directory into place.
    pub fn commit_staging(&self, generation: &Generation) -> Result<PathBuf, StoreError> {
        let staging = self.staging_dir(generation);
        let target = self.generation_dir(generation);
        std::fs::rename(&staging, &target)
            .map_err(io_error(&target, "move the checkout into place"))?;
        sync_dir(&self.generations())?;
        Ok(target)
    }

    /// Points `previous` at what `current` points at now, then `current` at
    /// `generation`: each an atomic rename, so a crash leaves both valid.
    pub fn flip(&self, generation: &Generation) -> Result<(), StoreError> {
        if let Some(old) = self.current_generation()
            && old != *generation
        {
            self.point(&self.previous(), &old)?;
        }
        crate::fault::point("between-links");
        self.point(&self.current(), generation)
    }

    /// Points `current` at `generation` and `previous` at the one left.
    pub fn switch_back(&self, generation: &Generation) -> Result<(), StoreError> {
        self.flip(generation)
    }

    /// Replaces `link` with a relative symlink to `generation`.
    pub fn point(&self, link: &Path, generation: &Generation) -> Result<(), StoreError> {
        let temporary = temporary_link(link);
        let _ = std::fs::remove_file(&temporary);
        let target = Path::new("generations").join(generation.name());
        std::os::unix::fs::symlink(&target, &temporary)
            .map_err(io_error(&temporary, "create the link"))?;
        std::fs::rename(&temporary, link).map_err(io_error(link, "replace the link"))?;
        sync_dir(&self.dir)
    }

    /// Appends a record (one line, `O_APPEND`, synced).
    pub fn record(&self, record: &Record) -> Result<(), StoreError> {
        let path = self.history_file();
        let mut line = serde_json::to_vec(record).map_err(|e| StoreError {
            path: path.display().to_string(),
            action: "serialize a record",
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .mode(0o644)
            .open(&path)
            .map_err(io_error(&path, "open the history"))?;
        // A line a crash cut short is ended first, so it spoils only itself.
        let len = file
            .metadata()
            .map_err(io_error(&path, "read the history"))?
            .len();
        let mut last = [b'\n'];
        if len > 0 {
            std::os::unix::fs::FileExt::read_at(&file, &mut last, len - 1)
                .map_err(io_error(&path, "read the history"))?;
        }
        if last[0] != b'\n' {
            line.insert(0, b'\n');
        }
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(io_error(&path, "append to the history"))
    }

    /// Every record, oldest first; a line a crash cut short is skipped. Read
    /// as bytes, line by line: a torn or corrupted line (even one that is
    /// not UTF-8, as a write cut inside a character leaves) spoils only
    /// itself, never the records around it.
    pub fn history(&self) -> Vec<Record> {
        std::fs::read(self.history_file())
            .unwrap_or_default()
            .split(|&b| b == b'\n')
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect()
    }

    /// Whether `commit` was refused or rolled back and nothing since was
    /// applied from a newer commit: such a commit is not tried again until
    /// the branch moves. Returns that record.
    pub fn remembered_bad(&self, commit: &str) -> Option<Record> {
        self.history()
            .into_iter()
            .rev()
            .find(|r| r.commit == commit)
            .filter(|r| {
                matches!(
                    r.outcome,
                    Outcome::Refused | Outcome::RolledBack | Outcome::ManualRollback
                )
            })
    }

    /// Removes the oldest generations beyond `keep`, never `current`,
    /// `previous` or `applied`. Returns what was removed.
    pub fn prune(&self, keep: usize) -> Result<Vec<Generation>, StoreError> {
        let protected = [
            self.current_generation(),
            self.previous_generation(),
            self.applied(),
        ];
        let all = self.list()?;
        let excess = all.len().saturating_sub(keep.max(1));
        let mut removed = Vec::new();
        for generation in all.into_iter().take(excess) {
            if protected.iter().flatten().any(|p| *p == generation) {
                continue;
            }
            remove_tree(&self.generation_dir(&generation))?;
            removed.push(generation);
        }
        Ok(removed)
    }
}

fn temporary_link(link: &Path) -> PathBuf {
    let mut name = link.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    link.with_file_name(name)
}

/// Writes `path` through a temporary file and a rename.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let temporary = temporary_link(path);
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temporary)
        .map_err(io_error(&temporary, "create"))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&temporary, "write"))?;
    std::fs::rename(&temporary, path).map_err(io_error(path, "replace"))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir, "sync the directory"))
}

/// Removes a directory tree without following symlinks (a checkout may
/// hold symlinks to anywhere).
pub fn remove_tree(path: &Path) -> Result<(), StoreError> {
    let error = |e: std::io::Error| StoreError {
        path: path.display().to_string(),
        action: "remove",
        source: e,
    };
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(error(std::io::Error::other("not a removable path")));
    };
    let parent = std::fs::File::open(parent).map_err(error)?;
    bbhv_generator::remove_tree(&parent, name).map_err(|e| error(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(seq: u64) -> Generation {
        Generation {
            seq,
            commit: format!("{seq:040x}"),
        }
    }

    #[test]
    fn names_round_trip_and_junk_is_not_a_generation() {
        let g = generation(12);
        assert_eq!(Generation::parse(&g.name()), Some(g));
        for junk in [
            "",
            "12",
            "x-0000000000000000000000000000000000000000",
            "1-abc",
            ".new-1-0000000000000000000000000000000000000000",
        ] {
            assert_eq!(Generation::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn flip_keeps_previous_and_prune_keeps_the_protected() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        for seq in 1..=5 {
            let g = generation(seq);
            std::fs::create_dir_all(store.staging_dir(&g)).unwrap();
            store.commit_staging(&g).unwrap();
            store.flip(&g).unwrap();
        }
        assert_eq!(store.current_generation(), Some(generation(5)));
        assert_eq!(store.previous_generation(), Some(generation(4)));
        store.set_applied(&generation(1)).unwrap();
        assert_eq!(store.next_seq().unwrap(), 6);
        let removed = store.prune(2).unwrap();
        assert_eq!(removed, vec![generation(2), generation(3)]);
        assert_eq!(
            store.list().unwrap(),
            vec![generation(1), generation(4), generation(5)]
        );
        // The link resolves for the generator.
        assert!(store.current().join(".").is_dir());
    }

    #[test]
    fn clean_removes_half_made_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let g = generation(1);
        std::fs::create_dir_all(store.staging_dir(&g).join("tenants")).unwrap();
        std::os::unix::fs::symlink("x", dir.path().join("current.new")).unwrap();
        store.clean().unwrap();
        assert!(!store.staging_dir(&g).exists());
        assert!(std::fs::symlink_metadata(dir.path().join("current.new")).is_err());
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn history_survives_a_torn_line_and_remembers_bad_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let record = |commit: &str, outcome| Record {
            time: 1,
            commit: commit.into(),
            generation: None,
            signer: None,
            summary: None,
            outcome,
            reason: String::new(),
        };
        store.record(&record("a", Outcome::Applied)).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(store.history_file())
            .unwrap()
            .write_all(b"{\"time\":2,\"comm")
            .unwrap();
        // A write cut inside a character leaves bytes that are not UTF-8:
        // found by fuzz target gitops_store, which lost the whole history.
        store.record(&record("x", Outcome::Failed)).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(store.history_file())
            .unwrap()
            .write_all(b"{\"reason\":\"\xe2\x82")
            .unwrap();
        store.record(&record("b", Outcome::RolledBack)).unwrap();
        let history = store.history();
        assert_eq!(history.len(), 3, "{history:?}");
        assert_eq!(history[2].commit, "b");
        assert!(store.remembered_bad("a").is_none());
        store.record(&record("c", Outcome::Refused)).unwrap();
        assert_eq!(store.remembered_bad("c").unwrap().outcome, Outcome::Refused);
    }
}
