//! The generator lock: `/run/bitbuilder/lock`, shared by generators,
//! exclusive for the sync while it flips `current` and prunes generations.
//!
//! It cannot deadlock a sync that reloads: the sync never holds the lock
//! while it waits for `daemon-reload`, and the generator waits a bounded time
//! and then goes on without it. Going on is safe because `current` is
//! swapped by an atomic rename and is resolved once; the lock only keeps the
//! generation being read from being pruned under the reader.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};

/// A held shared lock; released on drop.
#[derive(Debug)]
pub struct SharedLock(#[allow(dead_code)] File);

impl SharedLock {
    /// Takes the shared lock at `path`, waiting at most `patience`.
    /// `Ok(None)` means it was not free in time (the caller goes on without).
    pub fn acquire(path: &Path, patience: Duration) -> std::io::Result<Option<SharedLock>> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let deadline = Instant::now() + patience;
        loop {
            match flock(&file, FlockOperation::NonBlockingLockShared) {
                Ok(()) => return Ok(Some(SharedLock(file))),
                Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
