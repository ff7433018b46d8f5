//! The generator lock: `/run/bitbuilder/lock`, shared by generators,
//! exclusive for the sync while it flips `current` and prunes generations.
//!
//! It cannot deadlock a sync that reloads: the sync never holds the lock
//! while it waits for `daemon-reload`, and the generator waits a bounded time
//! and then goes on without it. Going on is safe because `current` is
//! swapped by an atomic rename and is resolved once; the lock only keeps the
//! generation being read from being pruned under the reader.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FileType, FlockOperation, Mode, OFlags, flock};
use rustix::io::Errno;

/// A held shared lock; released on drop.
#[derive(Debug)]
pub struct SharedLock(#[allow(dead_code)] OwnedFd);

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: is a symlink; the lock is never taken through one", path = .0.display())]
    Symlink(PathBuf),
    #[error("{path}: is not a regular file (a {kind}); the lock must be one", path = .0.display(), kind = .1)]
    NotRegular(PathBuf, &'static str),
    #[error("{path}: has {links} hard links; the lock must have exactly one", path = .0.display(), links = .1)]
    HardLinked(PathBuf, u64),
    #[error("{path}: {error}", path = .0.display(), error = .1)]
    Io(PathBuf, std::io::Error),
}

/// A held exclusive lock (the sync's); released on drop.
#[derive(Debug)]
pub struct ExclusiveLock(#[allow(dead_code)] OwnedFd);

impl ExclusiveLock {
    /// Takes the lock at `path` exclusively, waiting at most `patience`
    /// (`Ok(None)`: not free in time). The same checks as [`SharedLock`].
    pub fn acquire(path: &Path, patience: Duration) -> Result<Option<ExclusiveLock>, LockError> {
        Ok(take(path, patience, FlockOperation::NonBlockingLockExclusive)?.map(ExclusiveLock))
    }
}

impl SharedLock {
    /// Takes the shared lock at `path`, waiting at most `patience`.
    /// `Ok(None)` means it was not free in time (the caller goes on without).
    /// The file is created if missing, never truncated, and never reached
    /// through a symlink or a second hard link.
    pub fn acquire(path: &Path, patience: Duration) -> Result<Option<SharedLock>, LockError> {
        Ok(take(path, patience, FlockOperation::NonBlockingLockShared)?.map(SharedLock))
    }
}

fn take(
    path: &Path,
    patience: Duration,
    operation: FlockOperation,
) -> Result<Option<OwnedFd>, LockError> {
    {
        let io = |e: std::io::Error| LockError::Io(path.to_owned(), e);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // O_NONBLOCK: a FIFO planted here cannot block the open.
        let fd = rustix::fs::open(
            path,
            OFlags::RDWR
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| match e {
            Errno::LOOP => LockError::Symlink(path.to_owned()),
            e => io(e.into()),
        })?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| io(e.into()))?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind != FileType::RegularFile {
            return Err(LockError::NotRegular(path.to_owned(), kind_name(kind)));
        }
        if stat.st_nlink != 1 {
            return Err(LockError::HardLinked(path.to_owned(), stat.st_nlink as u64));
        }
        let deadline = Instant::now() + patience;
        loop {
            match flock(&fd, operation) {
                Ok(()) => return Ok(Some(fd)),
                Err(Errno::WOULDBLOCK) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(io(e.into())),
            }
        }
    }
}

pub(crate) fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        _ => "file of unknown type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_links_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let lock = dir.path().join("lock");
        std::fs::hard_link(&victim, &lock).unwrap();
        let error = SharedLock::acquire(&lock, Duration::ZERO).unwrap_err();
        assert!(matches!(error, LockError::HardLinked(_, 2)), "{error}");
        std::fs::remove_file(&lock).unwrap();

        let missing = dir.path().join("would-be-created");
        std::os::unix::fs::symlink(&missing, &lock).unwrap();
        let error = SharedLock::acquire(&lock, Duration::ZERO).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("lock: is a symlink; the lock is never taken through one")
        );
        assert!(!missing.exists());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn a_fresh_lock_is_created_and_taken() {
        let dir = tempfile::tempdir().unwrap();
        let lock = SharedLock::acquire(&dir.path().join("run/lock"), Duration::ZERO).unwrap();
        assert!(lock.is_some());
    }
}
