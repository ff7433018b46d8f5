//! Writing the rendered tree: each file is written under a temporary name
//! and renamed into place, so systemd never reads half a unit
//! (podman#29004); a symlink is whole by itself. Everything is relative to
//! the output directory's file descriptor and each directory is made once:
//! at 10,000 tenants the generator's time is mostly these system calls.

use std::collections::HashSet;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use bbhv_render::Entry;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// An output directory (a generator's `normal-dir`, or `bbhv render --out`).
#[derive(Debug)]
pub struct OutputDir {
    fd: OwnedFd,
    /// Directories below `fd` known to exist.
    made: HashSet<PathBuf>,
}

impl OutputDir {
    /// Opens `path`, creating it if needed.
    pub fn open(path: &Path) -> std::io::Result<OutputDir> {
        std::fs::create_dir_all(path)?;
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(OutputDir {
            fd,
            made: HashSet::new(),
        })
    }

    /// Writes `entries` (paths relative to the directory).
    pub fn write(&mut self, entries: &[Entry]) -> std::io::Result<()> {
        for entry in entries {
            let path = entry.path();
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                self.make_dirs(parent)?;
            }
            match entry {
                // A file is written under a temporary name, then renamed.
                Entry::File { content, .. } => {
                    let temporary = temporary_name(path);
                    let fd = rustix::fs::openat(
                        &self.fd,
                        &temporary,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::TRUNC
                            | OFlags::CLOEXEC
                            | OFlags::NOFOLLOW,
                        Mode::from_raw_mode(0o644),
                    )?;
                    std::fs::File::from(fd).write_all(content.as_bytes())?;
                    rustix::fs::renameat(&self.fd, &temporary, &self.fd, path)?;
                }
                // A symlink is made whole by one system call: nothing to rename.
                Entry::Symlink { target, .. } => {
                    match rustix::fs::symlinkat(target, &self.fd, path) {
                        Err(Errno::EXIST) => {
                            let temporary = temporary_name(path);
                            let _ = rustix::fs::unlinkat(
                                &self.fd,
                                &temporary,
                                rustix::fs::AtFlags::empty(),
                            );
                            rustix::fs::symlinkat(target, &self.fd, &temporary)?;
                            rustix::fs::renameat(&self.fd, &temporary, &self.fd, path)?;
                        }
                        other => other?,
                    }
                }
            }
        }
        Ok(())
    }

    fn make_dirs(&mut self, dir: &Path) -> std::io::Result<()> {
        if self.made.contains(dir) {
            return Ok(());
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.make_dirs(parent)?;
        }
        match rustix::fs::mkdirat(&self.fd, dir, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        self.made.insert(dir.to_owned());
        Ok(())
    }
}

/// Writes `path` through a temporary file in the same directory and a rename.
pub fn write_file_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let temporary = temporary_name(path);
    std::fs::write(&temporary, content)?;
    std::fs::rename(&temporary, path)
}

/// `dir/.name.tmp`: hidden, so systemd would skip it even if it stayed.
fn temporary_name(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}
