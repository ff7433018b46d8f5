//! Finding the checkout: `current` resolved once to its generation
//! directory, so a flip during the run cannot mix two generations.
//!
//! Only "nothing there" means "wait" (a separate /var not mounted yet, or
//! nothing applied): a symlink loop, a dangling symlink (a pruned
//! generation), a file, or no permission is an error, never a silent fleet
//! of zero tenants.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Where the checkout is: `current` resolved to its generation directory.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub root: PathBuf,
    pub commit: Option<String>,
}

/// `current` (or a repository path) cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct CheckoutError {
    pub path: PathBuf,
    pub reason: String,
    /// Nothing is there: for `current`, the generators wait for it.
    pub missing: bool,
}

/// What the generator finds at `current`.
#[derive(Debug, Clone)]
pub enum Current {
    Ready(Checkout),
    /// Nothing there (yet): the reason, for the log.
    Missing(String),
}

impl Checkout {
    /// Resolves `path` (a checkout, or the `current` symlink) to a directory.
    pub fn open(path: &Path) -> Result<Checkout, CheckoutError> {
        let error = |reason: String, missing: bool| CheckoutError {
            path: path.to_owned(),
            reason,
            missing,
        };
        let link = std::fs::symlink_metadata(path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => error("does not exist".into(), true),
            _ => error(describe(&e), false),
        })?;
        let root = std::fs::canonicalize(path).map_err(|e| {
            let target = std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            match e.kind() {
                ErrorKind::NotFound if link.is_symlink() => error(
                    format!(
                        "is a symlink to {target}, which does not exist (a pruned generation?); \
                         it must point at a generation directory"
                    ),
                    false,
                ),
                _ => error(describe(&e), false),
            }
        })?;
        let meta = std::fs::metadata(&root).map_err(|e| error(describe(&e), false))?;
        if !meta.is_dir() {
            let what = if link.is_symlink() {
                format!("points at {}, which", root.display())
            } else {
                "it".to_owned()
            };
            return Err(error(
                format!(
                    "is not a directory ({what} is a file); \
                     the checkout must be a directory or a symlink to one"
                ),
                false,
            ));
        }
        let commit = commit_of_generation(&root);
        Ok(Checkout { root, commit })
    }

    /// The generator's view of `current`: a checkout, nothing yet (wait),
    /// or an error.
    pub fn current(path: &Path) -> Result<Current, CheckoutError> {
        match Checkout::open(path) {
            Ok(checkout) => Ok(Current::Ready(checkout)),
            Err(e) if e.missing => {
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
                Ok(Current::Missing(match parent {
                    Some(parent) if !parent.exists() => format!(
                        "{} does not exist ({} is not there: /var not mounted yet?)",
                        path.display(),
                        parent.display()
                    ),
                    _ => format!("{} does not exist (nothing applied yet)", path.display()),
                }))
            }
            Err(e) => Err(e),
        }
    }
}

/// The OS error, with a word on the common ones.
fn describe(e: &std::io::Error) -> String {
    match rustix::io::Errno::from_io_error(e) {
        Some(rustix::io::Errno::LOOP) => "is a symlink loop (too many levels of symbolic links); \
             it must point at a generation directory"
            .into(),
        Some(rustix::io::Errno::NOTDIR) => "a component of the path is not a directory".into(),
        Some(rustix::io::Errno::ACCESS) => format!("{e}: the generator must be able to read it"),
        _ => e.to_string(),
    }
}

/// A generation directory is `<seq>-<sha>`; anything else has no known commit.
fn commit_of_generation(root: &Path) -> Option<String> {
    let name = root.file_name()?.to_str()?;
    let (seq, sha) = name.split_once('-')?;
    let hex = |s: &str| s.len() >= 7 && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (seq.bytes().all(|b| b.is_ascii_digit()) && !seq.is_empty() && hex(sha)).then(|| sha.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(path: &Path) -> String {
        match Checkout::current(path) {
            Ok(Current::Ready(_)) => "ready".into(),
            Ok(Current::Missing(why)) => format!("wait: {why}"),
            Err(e) => format!("error: {}", e.reason),
        }
    }

    #[test]
    fn only_nothing_there_means_wait() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        std::fs::create_dir(p("gen")).unwrap();
        std::os::unix::fs::symlink("gen", p("good")).unwrap();
        std::os::unix::fs::symlink("pruned", p("dangling")).unwrap();
        std::os::unix::fs::symlink("loop", p("loop")).unwrap();
        std::fs::write(p("file"), "").unwrap();
        std::os::unix::fs::symlink("file", p("to-file")).unwrap();

        assert_eq!(reason(&p("good")), "ready");
        assert!(reason(&p("absent")).starts_with("wait: "));
        assert!(reason(&p("no-var/current")).contains("/var not mounted yet?"));
        assert!(reason(&p("dangling")).contains("is a symlink to pruned, which does not exist"));
        assert!(reason(&p("loop")).contains("symlink loop"));
        assert!(reason(&p("file")).contains("is not a directory"));
        assert!(reason(&p("to-file")).contains("is not a directory"));
        assert!(reason(&p("file/current")).starts_with("error: "));
    }

    #[test]
    fn the_commit_comes_from_a_generation_name() {
        assert_eq!(
            commit_of_generation(Path::new("/g/12-0123abcd")),
            Some("0123abcd".into())
        );
        assert_eq!(commit_of_generation(Path::new("/g/repo")), None);
    }
}
