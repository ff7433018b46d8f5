//! Directories the generator shares with others: `/run/systemd/network`
//! (systemd-network-generator and the admin write there too) and
//! `/run/systemd/nspawn`. systemd does not empty them before a run, so the
//! generator replaces its own set in place: a file already there with the
//! same content is left alone, a new name is created in place
//! (`O_CREAT|O_EXCL|O_NOFOLLOW`, as the units are), anything else there is
//! replaced by a new temporary (`O_CREAT|O_EXCL|O_NOFOLLOW`) renamed over
//! its name; then every entry it owns that this run did not write is removed. What it owns
//! is decided by [`Ownership`]; nothing else there is ever touched, and
//! nothing is written or removed through a link.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use bbhv_render::{Entry, Root};
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::write::{OutputDir, WriteError, dir_flags, remove_tree};

/// Which entries of a shared directory are the generator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Every entry whose name starts with the prefix, at the top and in
    /// every `*.d` drop-in directory (`bbhv-` in `/run/systemd/network`).
    Prefix(&'static str),
    /// Regular files named `*<suffix>` whose content starts with `header`
    /// (the provenance line): `.nspawn` files must be named after their
    /// machine, so no prefix can mark them.
    Header {
        suffix: &'static str,
        header: &'static str,
    },
}

impl Ownership {
    /// Whether the generator may write an entry named `name`.
    fn may_write(self, name: &[u8]) -> bool {
        match self {
            Ownership::Prefix(prefix) => name.starts_with(prefix.as_bytes()),
            Ownership::Header { suffix, .. } => {
                name.ends_with(suffix.as_bytes()) && name.len() > suffix.len()
            }
        }
    }
}

/// A shared directory the generator replaces its set in.
#[derive(Debug)]
pub struct ManagedDir {
    path: PathBuf,
    owns: Ownership,
    fd: Option<OwnedFd>,
    /// Drop-in directories opened, by name.
    subdirs: HashMap<OsString, OwnedFd>,
    /// What this run wrote, relative to `path`.
    written: HashSet<PathBuf>,
}

impl ManagedDir {
    /// Nothing is opened or created until something is written or pruned.
    pub fn new(path: &Path, owns: Ownership) -> ManagedDir {
        ManagedDir {
            path: path.to_owned(),
            owns,
            fd: None,
            subdirs: HashMap::new(),
            written: HashSet::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one tenant's `entries` (a file name, or `<dir>.d/<name>`),
    /// each into a temporary renamed over its name. On a failure what this
    /// call wrote is removed again: a tenant is written whole or not at all.
    pub fn write<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<(), WriteError> {
        let mut done: Vec<&Entry> = Vec::new();
        for entry in entries {
            match self.write_entry(entry) {
                Ok(()) => done.push(entry),
                Err(e) => {
                    self.forget(done);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Removes entries this run wrote (their tenant failed elsewhere).
    pub fn forget<'a>(&mut self, entries: impl IntoIterator<Item = &'a Entry>) {
        for entry in entries {
            let path = entry.path();
            if self.written.remove(path)
                && let Ok((Some(dir), name)) = self.parent(path, false)
            {
                let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
            }
        }
    }

    fn write_entry(&mut self, entry: &Entry) -> Result<(), WriteError> {
        let path = entry.path().to_owned();
        let root = self.path.clone();
        let refuse = |reason: String| WriteError {
            path: root.join(entry.path()),
            reason,
        };
        if self.written.contains(&path) {
            return Err(refuse(
                "was already written in this run (two tenants want one name)".into(),
            ));
        }
        let owns = self.owns;
        let (dir, name) = self.parent(&path, true)?;
        let dir = dir.expect("created");
        if !owns.may_write(name.as_bytes()) {
            return Err(refuse(format!(
                "is not a name the generator owns here ({owns:?})"
            )));
        }
        if let (Ownership::Header { header, .. }, Entry::File { content, .. }) = (owns, entry)
            && !content.starts_with(header)
        {
            return Err(refuse(format!(
                "does not start with {header:?}, which marks the generator's files"
            )));
        }
        let fail = |op: &str, e: Errno| WriteError::new(root.join(entry.path()), op, e);
        if let Entry::File { content, .. } = entry {
            match existing(dir, name, content.as_bytes()) {
                // A reload rewrites nothing that did not change.
                Existing::Same => {
                    self.written.insert(path);
                    return Ok(());
                }
                // A new name is created in place, exclusively, as the units
                // are: nobody has read it yet.
                Existing::Absent => match rustix::fs::openat(
                    dir,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o644),
                ) {
                    Ok(fd) => {
                        if let Err(e) = std::fs::File::from(fd).write_all(content.as_bytes()) {
                            // Ours (O_EXCL made it): never leave half a file.
                            let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
                            return Err(fail(
                                "writing",
                                Errno::from_io_error(&e).unwrap_or(Errno::IO),
                            ));
                        }
                        self.written.insert(path);
                        return Ok(());
                    }
                    // It appeared meanwhile: replaced below like any other.
                    Err(Errno::EXIST) => {}
                    Err(e) => return Err(fail("creating", e)),
                },
                Existing::Other => {}
            }
        }
        // Something else is there (an older version, a link, a FIFO): a
        // whole new file replaces it in one rename.
        let (temporary, fd) = temporary(dir, name, owns).map_err(|e| fail("creating", e))?;
        let written = match entry {
            Entry::File { content, .. } => std::fs::File::from(fd)
                .write_all(content.as_bytes())
                .map_err(|e| fail("writing", Errno::from_io_error(&e).unwrap_or(Errno::IO))),
            Entry::Symlink { target, .. } => {
                drop(fd);
                // The temporary file becomes the link: unlink, then symlink
                // at the same (exclusive) name.
                rustix::fs::unlinkat(dir, &temporary, AtFlags::empty())
                    .and_then(|()| rustix::fs::symlinkat(target, dir, &temporary))
                    .map_err(|e| fail("symlinking", e))
            }
        };
        let result = written.and_then(|()| {
            rustix::fs::renameat(dir, &temporary, dir, name).map_err(|e| fail("rename", e))
        });
        if result.is_err() {
            let _ = rustix::fs::unlinkat(dir, &temporary, AtFlags::empty());
        }
        result?;
        self.written.insert(path);
        Ok(())
    }

    /// The directory `path` is in (the root or one drop-in directory below
    /// it) and its file name. With `create`, made if missing (0755).
    fn parent<'p>(
        &mut self,
        path: &'p Path,
        create: bool,
    ) -> Result<(Option<BorrowedFd<'_>>, &'p OsStr), WriteError> {
        let parts: Vec<&OsStr> = path
            .components()
            .map(|c| match c {
                Component::Normal(n) => Ok(n),
                _ => Err(()),
            })
            .collect::<Result<_, _>>()
            .map_err(|()| WriteError {
                path: self.path.join(path),
                reason: "not a plain relative path".into(),
            })?;
        match parts.as_slice() {
            [name] => Ok((self.root(create)?, name)),
            [sub, name] => Ok((self.subdir(sub, create)?, name)),
            _ => Err(WriteError {
                path: self.path.join(path),
                reason: "too deep: a file or one drop-in directory and its file".into(),
            }),
        }
    }

    fn root(&mut self, create: bool) -> Result<Option<BorrowedFd<'_>>, WriteError> {
        if self.fd.is_none() {
            if create {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(&self.path)
                    .map_err(|e| WriteError {
                        path: self.path.clone(),
                        reason: format!("creating the directory: {e}"),
                    })?;
            }
            match rustix::fs::open(&self.path, dir_flags(), Mode::empty()) {
                Ok(fd) => {
                    exclusive(&fd);
                    self.fd = Some(fd);
                }
                Err(Errno::NOENT) if !create => return Ok(None),
                Err(e) => {
                    return Err(WriteError::new(
                        self.path.clone(),
                        "opening the directory",
                        symlink_or(rustix::fs::CWD, self.path.as_os_str(), e),
                    ));
                }
            }
        }
        Ok(self.fd.as_ref().map(|fd| fd.as_fd()))
    }

    fn subdir(&mut self, name: &OsStr, create: bool) -> Result<Option<BorrowedFd<'_>>, WriteError> {
        if !self.subdirs.contains_key(name) {
            let full = self.path.join(name);
            let Some(root) = self.root(create)? else {
                return Ok(None);
            };
            if create {
                match rustix::fs::mkdirat(root, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(WriteError::new(full, "mkdir", e)),
                }
            }
            let fd = match rustix::fs::openat(root, name, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if !create => return Ok(None),
                Err(e) => {
                    let e = symlink_or(root, name, e);
                    return Err(WriteError::new(full, "opening the directory", e));
                }
            };
            self.subdirs.insert(name.to_owned(), fd);
        }
        Ok(self.subdirs.get(name).map(|fd| fd.as_fd()))
    }

    /// Removes every entry the generator owns that this run did not write.
    /// Returns what could not be removed (the rest goes on).
    pub fn prune(&mut self) -> Vec<WriteError> {
        let mut problems = Vec::new();
        let root = match self.root(false) {
            Ok(Some(fd)) => fd.try_clone_to_owned(),
            Ok(None) => return problems,
            Err(e) => return vec![e],
        };
        let root = match root {
            Ok(fd) => fd,
            Err(e) => {
                let e = Errno::from_io_error(&e).unwrap_or(Errno::IO);
                return vec![WriteError::new(self.path.clone(), "dup", e)];
            }
        };
        let names = match list(&root) {
            Ok(names) => names,
            Err(e) => return vec![WriteError::new(self.path.clone(), "reading", e)],
        };
        for name in names {
            let rel = PathBuf::from(&name);
            let fail = |op: &str, e: Errno| WriteError::new(self.path.join(&rel), op, e);
            match self.owns {
                Ownership::Prefix(prefix) => {
                    if name.as_bytes().starts_with(prefix.as_bytes()) {
                        if !self.written.contains(&rel) {
                            remove_tree(&root, &name)
                                .unwrap_or_else(|e| problems.push(fail("removing", e)));
                        }
                    } else if name.as_bytes().ends_with(b".d") && is_dir(&root, &name) {
                        // Drop-in directories: only our entries in them.
                        let sub = match rustix::fs::openat(&root, &name, dir_flags(), Mode::empty())
                        {
                            Ok(fd) => fd,
                            Err(e) => {
                                problems.push(fail("opening", e));
                                continue;
                            }
                        };
                        let children = list(&sub).unwrap_or_else(|e| {
                            problems.push(fail("reading", e));
                            Vec::new()
                        });
                        for child in children {
                            if child.as_bytes().starts_with(prefix.as_bytes())
                                && !self.written.contains(&rel.join(&child))
                            {
                                remove_tree(&sub, &child).unwrap_or_else(|e| {
                                    problems.push(WriteError::new(
                                        self.path.join(&rel).join(&child),
                                        "removing",
                                        e,
                                    ))
                                });
                            }
                        }
                    }
                }
                Ownership::Header { suffix, header } => {
                    if name.as_bytes().ends_with(suffix.as_bytes())
                        && !self.written.contains(&rel)
                        && starts_with(&root, &name, header)
                    {
                        rustix::fs::unlinkat(&root, &name, AtFlags::empty())
                            .unwrap_or_else(|e| problems.push(fail("removing", e)));
                    }
                }
            }
        }
        problems
    }
}

/// A new temporary beside `name`, exclusive. With a prefix ownership its
/// name starts with the prefix, so one left by a crash is removed by the
/// next run; it ends in `.tmp`, which neither networkd nor nspawn reads.
fn temporary(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    owns: Ownership,
) -> Result<(OsString, OwnedFd), Errno> {
    let lead = match owns {
        Ownership::Prefix(prefix) => format!("{prefix}tmp-"),
        Ownership::Header { .. } => ".".to_owned(),
    };
    for attempt in 0..100u32 {
        let mut temporary = OsString::from(&lead);
        temporary.push(name);
        temporary.push(format!(".{}-{attempt}.tmp", std::process::id()));
        match rustix::fs::openat(
            dir,
            &temporary,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(fd) => return Ok((temporary, fd)),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EXIST)
}

/// How long a run waits for another run's set to be complete.
const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// Takes the directory's exclusive lock (flock on its descriptor, held
/// until the run is done with it), so that two generator runs (systemd
/// never starts two; a person might) replace the set one after the other,
/// never interleaved. After [`LOCK_PATIENCE`] it goes on without.
fn exclusive(dir: &OwnedFd) {
    let deadline = Instant::now() + LOCK_PATIENCE;
    loop {
        match rustix::fs::flock(dir, FlockOperation::NonBlockingLockExclusive) {
            Err(Errno::WOULDBLOCK) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => return,
        }
    }
}

/// What is at a name the generator is about to write.
enum Existing {
    Absent,
    /// A regular file with exactly this content.
    Same,
    /// Anything else: a different file, a link, a FIFO, unreadable.
    Other,
}

/// Looks at `name` without following it or blocking on it.
fn existing(dir: BorrowedFd<'_>, name: &OsStr, content: &[u8]) -> Existing {
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Existing::Absent,
        Err(_) => return Existing::Other,
    };
    // One read of one byte more than the content: a regular file with
    // exactly that content returns all of it and stops there (EOF). A FIFO
    // (O_NONBLOCK), a directory or anything shorter or longer does not.
    let mut buffer = vec![0; content.len() + 1];
    match rustix::io::read(&fd, &mut buffer) {
        Ok(n) if n == content.len() && &buffer[..n] == content => Existing::Same,
        _ => Existing::Other,
    }
}

fn list(dir: &OwnedFd) -> Result<Vec<OsString>, Errno> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(names)
}

fn is_dir(at: &OwnedFd, name: &OsStr) -> bool {
    rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// Whether `name` is a regular file (not followed) that starts with `header`.
fn starts_with(at: &OwnedFd, name: &OsStr, header: &str) -> bool {
    let Ok(fd) = rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let regular = rustix::fs::fstat(&fd)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile);
    if !regular {
        return false;
    }
    let mut buffer = vec![0; header.len()];
    std::fs::File::from(fd).read_exact(&mut buffer).is_ok() && buffer == header.as_bytes()
}

/// O_NOFOLLOW|O_DIRECTORY says ENOTDIR for a symlink: `ELOOP` when it is one.
fn symlink_or(at: impl AsFd, name: &OsStr, e: Errno) -> Errno {
    match rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => Errno::LOOP,
        _ => e,
    }
}

/// Where one generator run writes: the units into its output directory,
/// networkd files into `/run/systemd/network`, `.nspawn` files into
/// `/run/systemd/nspawn`, each tenant whole or not at all.
#[derive(Debug)]
pub struct HostDirs {
    pub units: OutputDir,
    pub network: ManagedDir,
    pub nspawn: ManagedDir,
}

impl HostDirs {
    /// Writes one tenant's entries, each into its root's directory: the
    /// shared directories first, each whole or not at all (then nothing of
    /// the tenant is written), then the units. When the units fail (another
    /// generator wrote them, or a path is in the way), the tenant's shared
    /// files stay: they are what the checkout declares, and the next run's
    /// set replaces them.
    pub fn write(&mut self, entries: &[Entry]) -> Result<(), WriteError> {
        let of = |root: Root| entries.iter().filter(move |e| e.root() == root);
        self.network.write(of(Root::Network))?;
        if let Err(e) = self.nspawn.write(of(Root::Nspawn)) {
            self.network.forget(of(Root::Network));
            return Err(e);
        }
        self.units.write(of(Root::Units))
    }

    /// Removes what the generator owns in the shared directories and did
    /// not write in this run.
    pub fn prune(&mut self) -> Vec<WriteError> {
        let mut problems = self.network.prune();
        problems.extend(self.nspawn.prune());
        problems
    }
}

#[cfg(test)]
mod tests;
