//! The checks a tree passes before it becomes an image: only the top-level
//! directories its kind may hold, no device nodes, FIFOs or sockets, no
//! setuid or setgid file unless allowed, no release file of its own (the
//! build writes it).

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use crate::release::Kind;

/// What the walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeStats {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// One problem, at its path (relative to the tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeProblem {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for TreeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Walks `root` (never following a symlink) and reports every problem;
/// `progress` is called with each file's size.
pub fn check(
    root: &Path,
    kind: Kind,
    allow_setuid: bool,
    mut progress: impl FnMut(u64),
) -> Result<TreeStats, Vec<TreeProblem>> {
    let mut problems = Vec::new();
    let mut stats = TreeStats::default();
    let meta = match std::fs::symlink_metadata(root) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            return Err(vec![TreeProblem {
                path: root.into(),
                message: "is not a directory".into(),
            }]);
        }
        Err(e) => {
            return Err(vec![TreeProblem {
                path: root.into(),
                message: format!("cannot be read: {e}"),
            }]);
        }
    };
    let _ = meta;
    let mut top_any = false;
    let entries = match read_sorted(root) {
        Ok(entries) => entries,
        Err(e) => {
            return Err(vec![TreeProblem {
                path: root.into(),
                message: format!("cannot be read: {e}"),
            }]);
        }
    };
    for (name, path) in entries {
        let allowed = kind.allowed_top();
        if !allowed.iter().any(|a| name == *a) {
            problems.push(TreeProblem {
                path: PathBuf::from(&name),
                message: format!(
                    "not allowed at the top of a {kind}; allowed: {} (directories)",
                    allowed.join(", ")
                ),
            });
            continue;
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            _ => {
                problems.push(TreeProblem {
                    path: PathBuf::from(&name),
                    message: format!("must be a directory in a {kind} (not a symlink or file)"),
                });
                continue;
            }
        }
        top_any = true;
        walk(
            &path,
            Path::new(&name),
            allow_setuid,
            &mut stats,
            &mut problems,
            &mut progress,
        );
    }
    if !top_any && problems.is_empty() {
        problems.push(TreeProblem {
            path: root.into(),
            message: format!(
                "is empty; a {kind} holds {}",
                kind.allowed_top().join(" or ")
            ),
        });
    }
    let release = Path::new(kind.release_dir());
    if std::fs::symlink_metadata(root.join(release)).is_ok() {
        problems.push(TreeProblem {
            path: release.into(),
            message: "exists in the tree; bbhv ext build writes the release file itself (remove it and pass --id, --version-id, ... instead)".into(),
        });
    }
    if problems.is_empty() {
        Ok(stats)
    } else {
        Err(problems)
    }
}

fn read_sorted(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        entries.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    entries.sort();
    Ok(entries)
}

fn walk(
    path: &Path,
    rel: &Path,
    allow_setuid: bool,
    stats: &mut TreeStats,
    problems: &mut Vec<TreeProblem>,
    progress: &mut impl FnMut(u64),
) {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => {
            problems.push(TreeProblem {
                path: rel.into(),
                message: format!("cannot be read: {e}"),
            });
            return;
        }
    };
    let ft = meta.file_type();
    if ft.is_char_device() || ft.is_block_device() {
        problems.push(TreeProblem {
            path: rel.into(),
            message: "is a device node; allowed: files, directories and symlinks".into(),
        });
        return;
    }
    if ft.is_fifo() || ft.is_socket() {
        problems.push(TreeProblem {
            path: rel.into(),
            message: "is a FIFO or socket; allowed: files, directories and symlinks".into(),
        });
        return;
    }
    if !allow_setuid && meta.mode() & 0o6000 != 0 && !ft.is_symlink() {
        problems.push(TreeProblem {
            path: rel.into(),
            message: format!(
                "mode {:04o} is setuid or setgid; allowed only with --allow-setuid",
                meta.mode() & 0o7777
            ),
        });
    }
    if ft.is_dir() {
        stats.dirs += 1;
        match read_sorted(path) {
            Ok(entries) => {
                for (name, child) in entries {
                    walk(
                        &child,
                        &rel.join(name),
                        allow_setuid,
                        stats,
                        problems,
                        progress,
                    );
                }
            }
            Err(e) => problems.push(TreeProblem {
                path: rel.into(),
                message: format!("cannot be read: {e}"),
            }),
        }
    } else {
        stats.files += 1;
        stats.bytes += meta.len();
        progress(meta.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn problems(root: &Path, kind: Kind, setuid: bool) -> Vec<String> {
        match check(root, kind, setuid, |_| {}) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn what_a_sysext_and_a_confext_may_hold() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/bin/hello"), "#!/bin/sh\n").unwrap();
        let stats = check(root, Kind::Sysext, false, |_| {}).unwrap();
        assert_eq!((stats.files, stats.bytes), (1, 10));
        let p = problems(root, Kind::Confext, false);
        assert_eq!(
            p,
            ["usr: not allowed at the top of a confext; allowed: etc (directories)"]
        );
        std::fs::create_dir(root.join("etc")).unwrap();
        assert_eq!(
            problems(root, Kind::Sysext, false),
            ["etc: not allowed at the top of a sysext; allowed: usr, opt (directories)"]
        );
        std::fs::remove_dir(root.join("etc")).unwrap();
        let hello = root.join("usr/bin/hello");
        std::fs::set_permissions(&hello, std::fs::Permissions::from_mode(0o4755)).unwrap();
        assert_eq!(
            problems(root, Kind::Sysext, false),
            ["usr/bin/hello: mode 4755 is setuid or setgid; allowed only with --allow-setuid"]
        );
        assert!(problems(root, Kind::Sysext, true).is_empty());
        std::os::unix::fs::symlink("/", root.join("opt")).unwrap();
        assert!(problems(root, Kind::Sysext, true)[0].contains("opt: must be a directory"));
        std::fs::remove_file(root.join("opt")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib/extension-release.d")).unwrap();
        assert!(
            problems(root, Kind::Sysext, true)[0]
                .contains("bbhv ext build writes the release file")
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(problems(empty.path(), Kind::Sysext, false)[0].contains("is empty"));
    }

    #[test]
    fn fifos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        let fifo = dir.path().join("etc/pipe");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        if status.is_ok_and(|s| s.success()) {
            assert_eq!(
                problems(dir.path(), Kind::Confext, false),
                ["etc/pipe: is a FIFO or socket; allowed: files, directories and symlinks"]
            );
        } else {
            panic!("mkfifo is needed by this test");
        }
    }
}
