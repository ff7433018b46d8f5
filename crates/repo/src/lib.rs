//! Reading a checkout of the tenant repository. The repository is hostile
//! input: every tenant directory and `metadata.json` is opened relative to
//! its parent with `O_NOFOLLOW`, so a symlink is an error for that tenant and
//! nothing outside the checkout is ever read; sizes are bounded; a FIFO or
//! a device is never opened (its type is checked on an `O_PATH` descriptor). Problems are per tenant: one bad tenant never
//! hides the others.

use std::ffi::OsStr;
use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use bbhv_spec::Diagnostic;
use bbhv_spec::names::is_name;
use rustix::fs::{Mode, OFlags, openat};

/// The largest `metadata.json` read: 1 MiB (a real one is a few KiB).
pub const MAX_METADATA_BYTES: u64 = 1 << 20;

/// A repository-wide problem: without it no tenant can be read.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{0}: cannot open the repository: {1}")]
    Open(PathBuf, std::io::Error),
    #[error("{0}/tenants: {1}")]
    Tenants(PathBuf, String),
}

/// One tenant directory as found: its name and the text of its metadata, or
/// why that could not be read.
#[derive(Debug, Clone)]
pub struct TenantSource {
    /// The directory name (what the id must equal).
    pub dir_name: String,
    /// `tenants/<dir>/metadata.json`, relative to the repository root.
    pub file: String,
    pub text: Result<String, Diagnostic>,
}

/// Reads every `tenants/*/metadata.json` below `root`, sorted by directory
/// name. `root` itself may be a symlink (it is `current`); nothing below it may.
pub fn read_tenants(root: &Path) -> Result<Vec<TenantSource>, RepoError> {
    let root_fd = open_dir(rustix::fs::CWD, root, OFlags::empty())
        .map_err(|e| RepoError::Open(root.into(), e))?;
    let tenants_fd = match open_dir(&root_fd, Path::new("tenants"), OFlags::NOFOLLOW) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RepoError::Tenants(
                root.into(),
                describe_open_error(&root_fd, Path::new("tenants"), &e, "directory"),
            ));
        }
    };
    let mut names = Vec::new();
    let dir = rustix::fs::Dir::read_from(&tenants_fd)
        .map_err(|e| RepoError::Tenants(root.into(), e.to_string()))?;
    for entry in dir {
        let entry = entry.map_err(|e| RepoError::Tenants(root.into(), e.to_string()))?;
        let name = entry.file_name().to_bytes();
        if name.starts_with(b".") {
            continue; // ".", "..", ".gitkeep"
        }
        let mut file_type = entry.file_type();
        if file_type == rustix::fs::FileType::Unknown {
            // Some file systems do not fill in d_type: ask, without following.
            file_type = rustix::fs::statat(
                &tenants_fd,
                entry.file_name(),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_or(file_type, |st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode)
            });
        }
        names.push((name.to_vec(), file_type));
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));

    let mut sources = Vec::new();
    for (name, file_type) in names {
        let shown = String::from_utf8_lossy(&name).into_owned();
        let file = format!("tenants/{shown}/metadata.json");
        let whole = |message: String| Diagnostic {
            file: file.clone(),
            line: 0,
            column: 0,
            path: String::new(),
            message,
        };
        use rustix::fs::FileType;
        let text = match file_type {
            // A README beside the tenants is not a tenant.
            FileType::RegularFile => continue,
            FileType::Symlink => Err(whole(format!(
                "tenants/{shown} is a symlink; a tenant must be a real directory inside the repository"
            ))),
            _ if std::str::from_utf8(&name).map_or(true, |n| !is_name(n)) => Err(whole(format!(
                "directory name {shown:?} is not a tenant id: a lowercase letter, then up to 30 lowercase letters, digits or dashes, not ending in a dash"
            ))),
            _ => read_metadata(&tenants_fd, OsStr::from_bytes(&name)).map_err(whole),
        };
        sources.push(TenantSource {
            dir_name: shown,
            file,
            text,
        });
    }
    Ok(sources)
}

/// Reads one tenant's `tenants/<id>/metadata.json` below `root`, with the
/// same refusals as [`read_tenants`].
pub fn read_tenant(root: &Path, id: &str) -> Result<TenantSource, RepoError> {
    let root_fd = open_dir(rustix::fs::CWD, root, OFlags::empty())
        .map_err(|e| RepoError::Open(root.into(), e))?;
    let tenants_fd = open_dir(&root_fd, Path::new("tenants"), OFlags::NOFOLLOW).map_err(|e| {
        RepoError::Tenants(
            root.into(),
            describe_open_error(&root_fd, Path::new("tenants"), &e, "directory"),
        )
    })?;
    let file = format!("tenants/{id}/metadata.json");
    let text = if is_name(id) {
        read_metadata(&tenants_fd, OsStr::new(id))
    } else {
        Err(format!("{id:?} is not a tenant id"))
    };
    let text = text.map_err(|message| Diagnostic {
        file: file.clone(),
        line: 0,
        column: 0,
        path: String::new(),
        message,
    });
    Ok(TenantSource {
        dir_name: id.to_owned(),
        file,
        text,
    })
}

/// Reads `<tenant>/metadata.json` below `tenants_fd`, refusing symlinks,
/// non-regular files, huge files and non-UTF-8 text.
///
/// The file is first opened with `O_PATH` (which never runs a device's or a
/// FIFO's open) and its type checked on that descriptor; only a regular
/// file is then opened for reading, through `/proc/self/fd` (the same inode,
/// so nothing can be swapped in between).
fn read_metadata(tenants_fd: &OwnedFd, name: &OsStr) -> Result<String, String> {
    let path_fd = open_metadata(tenants_fd, name, OFlags::PATH | OFlags::CLOEXEC)?;
    let stat = rustix::fs::fstat(&path_fd).map_err(|e| e.to_string())?;
    check_regular(&stat)?;
    if stat.st_size as u64 > MAX_METADATA_BYTES {
        return Err(too_large());
    }
    let fd = reopen(&path_fd, &stat, |flags| {
        open_metadata(tenants_fd, name, flags)
    })?;
    let bytes = read_sized(fd, stat.st_size as u64, MAX_METADATA_BYTES)?.ok_or_else(too_large)?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn check_regular(stat: &rustix::fs::Stat) -> Result<(), String> {
    use rustix::fs::FileType;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => Ok(()),
        // O_PATH|O_NOFOLLOW opens a symlink itself.
        FileType::Symlink => Err("is a symlink; a file in the repository may not be one".into()),
        FileType::Directory => Err("not a regular file (a directory)".into()),
        FileType::Fifo => Err("not a regular file (a FIFO)".into()),
        FileType::Socket => Err("not a regular file (a socket)".into()),
        FileType::CharacterDevice => Err("not a regular file (a character device)".into()),
        FileType::BlockDevice => Err("not a regular file (a block device)".into()),
        _ => Err("not a regular file".into()),
    }
}

/// Opens the regular file behind an `O_PATH` descriptor for reading. Without
/// /proc (never the case for a generator: systemd mounts it first) the file
/// is opened again by name (`open_by_name`, never following a link) and
/// must still be the same inode.
fn reopen(
    path_fd: &OwnedFd,
    stat: &rustix::fs::Stat,
    open_by_name: impl FnOnce(OFlags) -> Result<OwnedFd, String>,
) -> Result<OwnedFd, String> {
    use std::os::fd::AsRawFd as _;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let proc_path = format!("/proc/self/fd/{}", path_fd.as_raw_fd());
    match rustix::fs::open(&proc_path, flags, Mode::empty()) {
        // The magic link is the O_PATH descriptor's own inode: nothing can
        // have replaced it, so its type and size are still those checked.
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::NOENT) => {
            // No /proc: by name again, and the file must be the one checked.
            let fd = open_by_name(flags | OFlags::NOFOLLOW)?;
            let now = rustix::fs::fstat(&fd).map_err(|e| e.to_string())?;
            check_regular(&now)?;
            if (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino) {
                return Err("replaced while being read; try again".into());
            }
            Ok(fd)
        }
        Err(e) => Err(format!("reopening for reading: {e}")),
    }
}

/// Reads a regular file of `size` bytes (from fstat) and at most `limit`:
/// one read(2) when the size holds (a short read of a regular file is its
/// end), more only when it grew; `None` when it exceeds `limit`.
fn read_sized(fd: OwnedFd, size: u64, limit: u64) -> Result<Option<Vec<u8>>, String> {
    let mut bytes = vec![0; size.min(limit) as usize + 1];
    let mut file = std::fs::File::from(fd);
    let n = loop {
        match file.read(&mut bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other.map_err(|e| e.to_string())?,
        }
    };
    bytes.truncate(n);
    if n as u64 > size {
        // It grew since fstat: read on, up to the limit.
        file.take(limit + 1 - n as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
    }
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

fn too_large() -> String {
    format!(
        "larger than {} KiB; a metadata file is at most that",
        MAX_METADATA_BYTES >> 10
    )
}

/// Opens `<name>/metadata.json` below `tenants_fd` without following any
/// symlink: in one `openat2(RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH)` where the
/// kernel has it (Linux 5.6), else in two `openat(O_NOFOLLOW)` steps.
fn open_metadata(tenants_fd: &OwnedFd, name: &OsStr, flags: OFlags) -> Result<OwnedFd, String> {
    let flags = flags | OFlags::NOFOLLOW;
    let path = Path::new(name).join("metadata.json");
    let resolve = rustix::fs::ResolveFlags::NO_SYMLINKS | rustix::fs::ResolveFlags::BENEATH;
    if let Ok(fd) = rustix::fs::openat2(tenants_fd, &path, flags, Mode::empty(), resolve) {
        return Ok(fd);
    }
    // No openat2 (old kernel, seccomp), or a failure the two steps explain.
    let tenant_fd = open_dir(tenants_fd, Path::new(name), OFlags::NOFOLLOW).map_err(|e| {
        format!(
            "tenant directory: {}",
            describe_open_error(tenants_fd, Path::new(name), &e, "directory")
        )
    })?;
    openat(&tenant_fd, "metadata.json", flags, Mode::empty())
        .map_err(|e| describe_open_error(&tenant_fd, Path::new("metadata.json"), &e.into(), "file"))
}

fn open_dir(at: impl std::os::fd::AsFd, path: &Path, extra: OFlags) -> std::io::Result<OwnedFd> {
    Ok(openat(
        at,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | extra,
        Mode::empty(),
    )?)
}

/// Says what went wrong opening `name` below `at`: above all, a symlink
/// (which `O_NOFOLLOW` reports as `ELOOP`, or `ENOTDIR` with `O_DIRECTORY`).
fn describe_open_error(at: &OwnedFd, name: &Path, e: &std::io::Error, what: &str) -> String {
    let is_symlink =
        rustix::fs::statat(at, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
        });
    if is_symlink {
        return format!("is a symlink; a {what} in the repository may not be one");
    }
    match e.raw_os_error() {
        Some(code) if code == rustix::io::Errno::NOTDIR.raw_os_error() => {
            "is not a directory".into()
        }
        Some(code) if code == rustix::io::Errno::NOENT.raw_os_error() => "does not exist".into(),
        _ => e.to_string(),
    }
}

/// The largest `images/<name>.json` read: 64 KiB (a real one is a few
/// hundred bytes).
pub const MAX_IMAGE_BYTES: u64 = 64 << 10;

/// Reads `images/<name>.json` below `root` with the refusals of
/// [`read_tenants`] (no symlink anywhere on the way, regular files only,
/// bounded size, UTF-8). The error says what is wrong, for a diagnostic.
pub fn read_image(root: &Path, name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '_', '-'])
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if !valid {
        return Err(format!("{name:?} is not an image name"));
    }
    let root_fd = open_dir(rustix::fs::CWD, root, OFlags::empty())
        .map_err(|e| format!("cannot open the repository {}: {e}", root.display()))?;
    let images = Path::new("images");
    let images_fd = open_dir(&root_fd, images, OFlags::NOFOLLOW).map_err(|e| {
        format!(
            "images/: {}",
            describe_open_error(&root_fd, images, &e, "directory")
        )
    })?;
    let file = format!("{name}.json");
    let path_fd = openat(
        &images_fd,
        file.as_str(),
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| describe_open_error(&images_fd, Path::new(&file), &e.into(), "file"))?;
    let stat = rustix::fs::fstat(&path_fd).map_err(|e| e.to_string())?;
    check_regular(&stat)?;
    if stat.st_size as u64 > MAX_IMAGE_BYTES {
        return Err(format!("larger than {} KiB", MAX_IMAGE_BYTES >> 10));
    }
    let fd = reopen(&path_fd, &stat, |flags| {
        openat(&images_fd, OsStr::new(&file), flags, Mode::empty()).map_err(|e| e.to_string())
    })?;
    let bytes = read_sized(fd, stat.st_size as u64, MAX_IMAGE_BYTES)?
        .ok_or_else(|| format!("larger than {} KiB", MAX_IMAGE_BYTES >> 10))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Whether `extensions/<name>/` is a real directory below `root` (no
/// symlink on the way); the error says why not.
pub fn check_extension(root: &Path, name: &str) -> Result<(), String> {
    let root_fd = open_dir(rustix::fs::CWD, root, OFlags::empty())
        .map_err(|e| format!("cannot open the repository {}: {e}", root.display()))?;
    let extensions = Path::new("extensions");
    let dir_fd = open_dir(&root_fd, extensions, OFlags::NOFOLLOW).map_err(|e| {
        format!(
            "extensions/: {}",
            describe_open_error(&root_fd, extensions, &e, "directory")
        )
    })?;
    open_dir(&dir_fd, Path::new(name), OFlags::NOFOLLOW)
        .map(drop)
        .map_err(|e| {
            format!(
                "extensions/{name}/: {}",
                describe_open_error(&dir_fd, Path::new(name), &e, "directory")
            )
        })
}
