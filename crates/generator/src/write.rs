//! Writing the rendered tree the way systemd's own generators do: systemd
//! empties a generator's output directories before each run, so every file
//! is created in place with `O_CREAT|O_EXCL|O_NOFOLLOW` (no temporary, no
//! rename), every directory is made once with `mkdirat` and opened with
//! `O_NOFOLLOW|O_DIRECTORY`, and everything is written relative to those
//! directory descriptors. Nothing is ever written through a link, and an
//! entry that is already there (another generator's, or planted) is never
//! overwritten: it fails the tenant that wanted it.
//!
//! `bbhv render --out` renders into a fresh sibling directory ([`Staging`])
//! and swaps it in, so the result is exactly the rendered tree.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use bbhv_render::Entry;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// Directory descriptors kept open at once (each tenant has a few
/// directories of its own; `tenants.target.wants` is shared).
const MAX_OPEN_DIRS: usize = 64;

/// An entry that could not be written: the full path and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub reason: String,
}

impl WriteError {
    pub(crate) fn new(path: PathBuf, op: &str, errno: Errno) -> WriteError {
        let reason = match errno {
            Errno::EXIST => "already exists; an entry already there is never overwritten \
                             (another generator writing into the same directory?)"
                .to_owned(),
            Errno::LOOP => "is a symlink; links are never followed".to_owned(),
            Errno::NOTDIR => "exists and is not a directory".to_owned(),
            e => format!("{op}: {}", std::io::Error::from(e)),
        };
        WriteError { path, reason }
    }
}

/// An output directory (a generator's `normal-dir`, or `bbhv render`'s staging directory).
#[derive(Debug)]
pub struct OutputDir {
    root: OwnedFd,
    path: PathBuf,
    /// Directories below `root` made (or found) by this writer.
    made: HashSet<PathBuf>,
    /// Open descriptors of some of them.
    fds: HashMap<PathBuf, OwnedFd>,
}

impl OutputDir {
    /// Opens `path` (created if missing); its last component is not followed.
    pub fn open(path: &Path) -> Result<OutputDir, WriteError> {
        std::fs::create_dir_all(path).map_err(|e| WriteError {
            path: path.to_owned(),
            reason: format!("creating the output directory: {e}"),
        })?;
        let fd = rustix::fs::open(path, dir_flags(), Mode::empty()).map_err(|e| {
            let e = symlink_or(rustix::fs::CWD, path.as_os_str(), e);
            WriteError::new(path.to_owned(), "opening the output directory", e)
        })?;
        Ok(OutputDir::from_fd(fd, path))
    }

    /// A directory already opened; `path` names it in messages.
    pub fn from_fd(fd: OwnedFd, path: &Path) -> OutputDir {
        OutputDir {
            root: fd,
            path: path.to_owned(),
            made: HashSet::new(),
            fds: HashMap::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one tenant's `entries` (paths relative to the directory). On
    /// a failure, what this call created is removed again, so a tenant is
    /// written whole or not at all.
    pub fn write<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<(), WriteError> {
        let mut created: Vec<&Path> = Vec::new();
        for entry in entries {
            match self.write_entry(entry) {
                Ok(()) => created.push(entry.path()),
                Err(e) => {
                    for path in created.into_iter().rev() {
                        self.remove(path);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn write_entry(&mut self, entry: &Entry) -> Result<(), WriteError> {
        let path = entry.path();
        let name = path.file_name().ok_or_else(|| WriteError {
            path: self.path.join(path),
            reason: "not a file name".into(),
        })?;
        let parent = parent_of(path);
        self.open_dir(parent)?;
        let dir = self.fd_of(parent);
        let fail = |op: &str, e: Errno| WriteError::new(self.path.join(path), op, e);
        match entry {
            Entry::File { content, .. } => {
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o644),
                )
                .map_err(|e| fail("creating", e))?;
                if let Err(e) = std::fs::File::from(fd).write_all(content.as_bytes()) {
                    // Ours (O_EXCL made it): never leave half a unit behind.
                    let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
                    return Err(fail(
                        "writing",
                        Errno::from_io_error(&e).unwrap_or(Errno::IO),
                    ));
                }
            }
            // A symlink is whole by itself.
            Entry::Symlink { target, .. } => {
                rustix::fs::symlinkat(target, dir, name).map_err(|e| fail("symlinking", e))?;
            }
        }
        Ok(())
    }

    /// Removes an entry this writer created (a rollback).
    fn remove(&mut self, path: &Path) {
        let parent = parent_of(path);
        if self.open_dir(parent).is_ok()
            && let Some(name) = path.file_name()
        {
            let _ = rustix::fs::unlinkat(self.fd_of(parent), name, AtFlags::empty());
        }
    }

    /// Makes (once) and opens `rel` and its parents, never following a link.
    fn open_dir(&mut self, rel: &Path) -> Result<(), WriteError> {
        if rel.as_os_str().is_empty() || self.fds.contains_key(rel) {
            return Ok(());
        }
        let parent = parent_of(rel);
        self.open_dir(parent)?;
        let name = rel.file_name().ok_or_else(|| WriteError {
            path: self.path.join(rel),
            reason: "not a directory name".into(),
        })?;
        let parent_fd = match self.fds.get(parent) {
            Some(fd) => fd.as_fd(),
            None => self.root.as_fd(),
        };
        if !self.made.contains(rel) {
            match rustix::fs::mkdirat(parent_fd, name, Mode::from_raw_mode(0o755)) {
                // Already there (another generator made it): used if it is a
                // real directory, which the open below checks.
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(WriteError::new(self.path.join(rel), "mkdir", e)),
            }
        }
        let fd = rustix::fs::openat(parent_fd, name, dir_flags(), Mode::empty()).map_err(|e| {
            let e = symlink_or(parent_fd, name, e);
            WriteError::new(self.path.join(rel), "opening the directory", e)
        })?;
        self.made.insert(rel.to_owned());
        if self.fds.len() >= MAX_OPEN_DIRS {
            self.fds.clear();
        }
        self.fds.insert(rel.to_owned(), fd);
        Ok(())
    }

    /// The descriptor of `rel`, which `open_dir` just opened.
    fn fd_of(&self, rel: &Path) -> BorrowedFd<'_> {
        match self.fds.get(rel) {
            Some(fd) => fd.as_fd(),
            None => self.root.as_fd(),
        }
    }
}

/// O_NOFOLLOW|O_DIRECTORY says ENOTDIR for a symlink: `ELOOP` when it is one.
fn symlink_or(at: impl AsFd, name: &OsStr, e: Errno) -> Errno {
    match rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => Errno::LOOP,
        _ => e,
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// The directory `path` is in (`.` for a bare name), created if missing
/// (as a user's `--out a/b` would want), and opened.
fn open_containing_dir(path: &Path) -> Result<(&Path, OwnedFd), WriteError> {
    let dir_path = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir_path).map_err(|e| WriteError {
        path: dir_path.to_owned(),
        reason: format!("creating the parent directory: {e}"),
    })?;
    let dir = rustix::fs::open(
        dir_path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| WriteError::new(dir_path.to_owned(), "opening the parent directory", e))?;
    Ok((dir_path, dir))
}

pub(crate) fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// `bbhv render --out DIR`: a fresh sibling directory to render into, then
/// swapped in for `DIR` in one step, so `DIR` holds exactly the rendered
/// tree and nothing planted in the old one is ever written through.
#[derive(Debug)]
pub struct Staging {
    parent: OwnedFd,
    /// `DIR`'s name in its parent.
    name: OsString,
    /// The staging directory's name in the parent.
    temporary: OsString,
    existed: bool,
    dir: OutputDir,
    done: bool,
}

impl Staging {
    /// Refuses a `path` that is a symlink or not a directory; creates its
    /// parent if missing, and the staging directory beside it.
    pub fn create(path: &Path) -> Result<Staging, WriteError> {
        let refuse = |reason: &str| WriteError {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let name = match path.file_name() {
            Some(name) => name.to_owned(),
            None => return Err(refuse("must name a directory (not /, . or ..)")),
        };
        let (parent_path, parent) = open_containing_dir(path)?;
        let existed = match rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => true,
                FileType::Symlink => {
                    return Err(refuse(
                        "is a symlink; --out never writes through one: \
                         name a real directory, or a path that does not exist",
                    ));
                }
                _ => {
                    return Err(refuse(
                        "exists and is not a directory; --out replaces a directory only",
                    ));
                }
            },
            Err(Errno::NOENT) => false,
            Err(e) => return Err(WriteError::new(path.to_owned(), "stat", e)),
        };
        let (temporary, fd) = make_unique_dir(&parent, &name, "new")
            .map_err(|e| WriteError::new(parent_path.join(&name), "making the staging dir", e))?;
        let dir = OutputDir::from_fd(fd, &parent_path.join(&temporary));
        Ok(Staging {
            parent,
            name,
            temporary,
            existed,
            dir,
            done: false,
        })
    }

    /// The directory to render into.
    pub fn dir(&mut self) -> &mut OutputDir {
        &mut self.dir
    }

    /// Puts the rendered tree in place of `DIR` in one step and removes the
    /// old tree (without following any link in it).
    pub fn commit(mut self) -> Result<(), WriteError> {
        self.done = true;
        let target = self.dir.path.with_file_name(&self.name);
        let fail = |op: &str, e: Errno| WriteError::new(target.clone(), op, e);
        let (p, t, n) = (&self.parent, &self.temporary, &self.name);
        if !self.existed {
            return match rustix::fs::renameat_with(p, t, p, n, RenameFlags::NOREPLACE) {
                Ok(()) => Ok(()),
                Err(Errno::INVAL | Errno::NOSYS) => {
                    rustix::fs::renameat(p, t, p, n).map_err(|e| fail("rename", e))
                }
                Err(e) => {
                    let _ = remove_tree(p, t);
                    Err(match e {
                        Errno::EXIST => WriteError {
                            path: target.clone(),
                            reason: "appeared while rendering; nothing was replaced".into(),
                        },
                        e => fail("rename", e),
                    })
                }
            };
        }
        match rustix::fs::renameat_with(p, t, p, n, RenameFlags::EXCHANGE) {
            // The old tree now has the staging name.
            Ok(()) => remove_tree(p, t).map_err(|e| fail("removing the old tree", e)),
            // No RENAME_EXCHANGE on this file system: two renames.
            Err(Errno::INVAL | Errno::NOSYS) => {
                let (old, fd) = make_unique_dir(p, n, "old").map_err(|e| fail("mkdir", e))?;
                drop(fd);
                let _ = rustix::fs::unlinkat(p, &old, AtFlags::REMOVEDIR);
                rustix::fs::renameat_with(p, n, p, &old, RenameFlags::NOREPLACE)
                    .map_err(|e| fail("rename", e))?;
                rustix::fs::renameat(p, t, p, n).map_err(|e| fail("rename", e))?;
                remove_tree(p, &old).map_err(|e| fail("removing the old tree", e))
            }
            Err(e) => {
                let _ = remove_tree(p, t);
                Err(fail("rename", e))
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = remove_tree(&self.parent, &self.temporary);
        }
    }
}

/// Makes `.<name>.<what>-<pid>-<n>` below `parent` (mkdir is exclusive: a
/// name someone else has is skipped) and opens it without following.
fn make_unique_dir(
    parent: &OwnedFd,
    name: &OsStr,
    what: &str,
) -> Result<(OsString, OwnedFd), Errno> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for n in 0..1000u32 {
        let mut temporary = OsString::from(".");
        temporary.push(name);
        temporary.push(format!(
            ".{what}-{}-{:x}",
            std::process::id(),
            nanos.wrapping_add(n)
        ));
        match rustix::fs::mkdirat(parent, &temporary, Mode::from_raw_mode(0o755)) {
            Ok(()) => {
                let fd = rustix::fs::openat(parent, &temporary, dir_flags(), Mode::empty())?;
                return Ok((temporary, fd));
            }
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EXIST)
}

/// Removes `name` below `at` and, if it is a directory, all of it: every
/// entry is unlinked relative to its directory's descriptor, so a symlink
/// is removed, never followed.
pub fn remove_tree(at: impl AsFd, name: &OsStr) -> Result<(), Errno> {
    let at = at.as_fd();
    match rustix::fs::unlinkat(at, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR | Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    let fd = rustix::fs::openat(at, name, dir_flags(), Mode::empty())?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let entry = entry?;
        let entry_name = entry.file_name().to_bytes();
        if entry_name != b"." && entry_name != b".." {
            names.push(OsStr::from_bytes(entry_name).to_owned());
        }
    }
    for entry_name in names {
        remove_tree(&fd, &entry_name)?;
    }
    rustix::fs::unlinkat(at, name, AtFlags::REMOVEDIR)
}

/// Writes `path` whole: into a new temporary beside it (`O_CREAT|O_EXCL|
/// O_NOFOLLOW`, a name of its own per process), then renamed over `path`.
/// A link planted at either name is replaced, never written through.
pub fn replace_file(path: &Path, content: &[u8]) -> Result<(), WriteError> {
    let fail = |op: &str, e: Errno| WriteError::new(path.to_owned(), op, e);
    let name = path.file_name().ok_or_else(|| WriteError {
        path: path.to_owned(),
        reason: "not a file name".into(),
    })?;
    let (_, dir) = open_containing_dir(path)?;
    let mut attempt = 0u32;
    let (temporary, fd) = loop {
        let mut temporary = OsString::from(".");
        temporary.push(name);
        temporary.push(format!(".{}-{attempt}.tmp", std::process::id()));
        match rustix::fs::openat(
            &dir,
            &temporary,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(fd) => break (temporary, fd),
            // A stale or planted entry under this name: never reused.
            Err(Errno::EXIST) if attempt < 100 => attempt += 1,
            Err(e) => return Err(fail("creating the temporary", e)),
        }
    };
    let written = std::fs::File::from(fd).write_all(content);
    let result = match written {
        Ok(()) => rustix::fs::renameat(&dir, &temporary, &dir, name).map_err(|e| fail("rename", e)),
        Err(e) => Err(fail(
            "writing",
            Errno::from_io_error(&e).unwrap_or(Errno::IO),
        )),
    };
    if result.is_err() {
        let _ = rustix::fs::unlinkat(&dir, &temporary, AtFlags::empty());
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> Entry {
        Entry::File {
            root: bbhv_render::Root::Units,
            path: path.into(),
            content: content.into(),
        }
    }

    #[test]
    fn an_entry_already_there_fails_and_the_tenant_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("b.d")).unwrap();
        std::fs::write(dir.path().join("b.d/conf"), "theirs").unwrap();
        let mut out = OutputDir::open(dir.path()).unwrap();
        let error = out
            .write(&[file("b.slice", "x"), file("b.d/conf", "ours")])
            .unwrap_err();
        assert!(
            error.to_string().contains("b.d/conf: already exists"),
            "{error}"
        );
        assert!(!dir.path().join("b.slice").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.d/conf")).unwrap(),
            "theirs"
        );
        out.write(&[file("c.slice", "c")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("c.slice")).unwrap(),
            "c"
        );
    }

    #[test]
    fn a_symlinked_directory_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let out_path = dir.path().join("out");
        std::fs::create_dir(&out_path).unwrap();
        std::os::unix::fs::symlink(&outside, out_path.join("a.d")).unwrap();
        let mut out = OutputDir::open(&out_path).unwrap();
        let error = out.write(&[file("a.d/conf", "x")]).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("a.d: is a symlink; links are never followed"),
            "{error}"
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn many_directories_stay_within_the_descriptor_cache() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = OutputDir::open(dir.path()).unwrap();
        for i in 0..500 {
            out.write(&[
                file(&format!("t{i}.d/conf"), "x"),
                Entry::Symlink {
                    root: bbhv_render::Root::Units,
                    path: format!("w.wants/t{i}").into(),
                    target: "/t".into(),
                },
            ])
            .unwrap();
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("w.wants"))
                .unwrap()
                .count(),
            500
        );
    }

    #[test]
    fn replace_file_replaces_planted_links_without_following_them() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let report = dir.path().join("report.json");
        std::os::unix::fs::symlink(&victim, &report).unwrap();
        let temporary = dir
            .path()
            .join(format!(".report.json.{}-0.tmp", std::process::id()));
        std::fs::hard_link(&victim, &temporary).unwrap();
        replace_file(&report, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&report).unwrap(), "new");
        assert!(!report.is_symlink());
    }
}
