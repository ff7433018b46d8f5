//! The bare mirror (`/var/lib/bitbuilder/mirror.git`), with gitoxide:
//! fetch the branch, read a commit and its signature, walk history, check a
//! commit out into a directory. gitoxide runs `git-upload-pack` for file://
//! remotes and `ssh` for ssh:// ones (docs/gitops.md).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use gix::ObjectId;
use gix::remote::Direction;

/// A mirror operation that failed; names the mirror and what was done.
#[derive(Debug, thiserror::Error)]
#[error("{mirror}: {action}: {reason}")]
pub struct MirrorError {
    pub mirror: String,
    pub action: String,
    pub reason: String,
}

/// One commit, as read from the mirror.
#[derive(Debug, Clone)]
pub struct Commit {
    pub id: ObjectId,
    /// The armored `gpgsig` header, empty when unsigned.
    pub signature: Vec<u8>,
    /// What the signature covers: the commit object without that header.
    pub payload: Vec<u8>,
    /// Committer time, seconds since the epoch.
    pub time: i64,
    /// The first line of the message.
    pub summary: String,
}

#[derive(Debug)]
pub struct Mirror {
    path: PathBuf,
    repo: gix::Repository,
    /// Why the last fetch fell back to the git binary, if it did.
    pub fell_back: Option<String>,
}

/// The ref the fetched branch is kept in.
fn tracking_ref(branch: &str) -> String {
    format!("refs/remotes/origin/{branch}")
}

impl Mirror {
    /// Opens the mirror, creating it (bare) when missing. Lock files that a
    /// killed fetch left are removed: the caller holds the sync lock, so no
    /// other writer can own them.
    pub fn open(path: &Path) -> Result<Mirror, MirrorError> {
        let error = |action: &str, reason: String| MirrorError {
            mirror: path.display().to_string(),
            action: action.to_owned(),
            reason,
        };
        if !path.join("HEAD").exists() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| error("create its directory", e.to_string()))?;
            }
            // A half-made mirror (killed during init) is made again.
            if path.exists() {
                std::fs::remove_dir_all(path)
                    .map_err(|e| error("remove a half-made mirror", e.to_string()))?;
            }
            let staging = path.with_extension("git.new");
            if staging.exists() {
                std::fs::remove_dir_all(&staging)
                    .map_err(|e| error("remove a half-made mirror", e.to_string()))?;
            }
            gix::init_bare(&staging).map_err(|e| error("create", e.to_string()))?;
            std::fs::rename(&staging, path).map_err(|e| error("create", e.to_string()))?;
        }
        remove_stale_locks(path).map_err(|e| error("remove stale lock files", e.to_string()))?;
        let repo = gix::open(path).map_err(|e| error("open", e.to_string()))?;
        Ok(Mirror {
            path: path.to_owned(),
            repo,
            fell_back: None,
        })
    }

    fn error(&self, action: impl Into<String>, reason: impl std::fmt::Display) -> MirrorError {
        MirrorError {
            mirror: self.path.display().to_string(),
            action: action.into(),
            // gitoxide's errors print their whole chain in the alternate form.
            reason: format!("{reason:#}"),
        }
    }

    /// Fetches `branch` of `url` (forced: a force-push must be seen, the
    /// sync refuses downgrades itself) and returns its commit.
    pub fn fetch(&mut self, url: &str, branch: &str) -> Result<ObjectId, MirrorError> {
        let action = format!("fetch {branch} from {url}");
        let spec = format!("+refs/heads/{branch}:{}", tracking_ref(branch));
        let remote = self
            .repo
            .remote_at(url)
            .map_err(|e| self.error(&action, e))?
            .with_refspecs([spec.as_str()], Direction::Fetch)
            .map_err(|e| self.error(&action, e))?;
        self.fell_back = None;
        if url.starts_with("https://") {
            self.fetch_with_git(url, &spec)
                .map_err(|e| self.error(&action, e))?;
        } else if let Err(gix_error) = self.fetch_with_gix(remote, &action) {
            // Once in a few fetches of a large change in the lab, gitoxide
            // 0.90 failed to consume a pack that git serves and consumes
            // (bench/README.md, "Git-ops"): the git binary fetches again,
            // and both failures are reported if it fails too.
            self.fetch_with_git(url, &spec).map_err(|e| {
                self.error(&action, format!("{}; then with git: {e}", gix_error.reason))
            })?;
            self.fell_back = Some(gix_error.reason);
        }
        // gix keeps its own handle's view of refs: reopen to read the new one.
        self.repo = gix::open(&self.path).map_err(|e| self.error("open", e))?;
        self.branch_commit(branch)?
            .ok_or_else(|| self.error(&action, format!("the remote has no branch {branch:?}")))
    }

    fn fetch_with_gix(&self, remote: gix::Remote<'_>, action: &str) -> Result<(), MirrorError> {
        let interrupt = AtomicBool::new(false);
        remote
            .connect(Direction::Fetch)
            .map_err(|e| self.error(action, e))?
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| self.error(action, e))?
            .receive(gix::progress::Discard, &interrupt)
            .map_err(|e| self.error(action, e))?;
        Ok(())
    }

    /// The git binary's fetch: https (git-remote-https; gitoxide's http
    /// transports would bring an HTTP client stack into the build,
    /// docs/gitops.md), and the fallback when gitoxide fails. The URL and
    /// refspec are arguments after `--`, never options.
    fn fetch_with_git(&self, url: &str, spec: &str) -> Result<(), String> {
        let out = std::process::Command::new("git")
            .arg(format!("--git-dir={}", self.path.display()))
            .args([
                "-c",
                "protocol.allow=never",
                "-c",
                "protocol.https.allow=always",
                "-c",
                "protocol.file.allow=always",
                "-c",
                "protocol.git.allow=always",
                "-c",
                "protocol.ssh.allow=always",
            ])
            .args([
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--",
            ])
            .args([url, spec])
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// The last fetched commit of `branch`, if any.
    pub fn branch_commit(&self, branch: &str) -> Result<Option<ObjectId>, MirrorError> {
        let name = tracking_ref(branch);
        match self.repo.try_find_reference(name.as_str()) {
            Ok(Some(mut reference)) => {
                let id = reference
                    .peel_to_id()
                    .map_err(|e| self.error(format!("read {name}"), e))?;
                Ok(Some(id.detach()))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.error(format!("read {name}"), e)),
        }
    }

    /// Resolves a revision: a full commit id, a branch of the remote, or a
    /// ref of the mirror.
    pub fn resolve(&self, rev: &str) -> Result<ObjectId, MirrorError> {
        let action = format!("resolve {rev:?}");
        if let Ok(id) = ObjectId::from_hex(rev.as_bytes()) {
            self.repo
                .find_commit(id)
                .map_err(|e| self.error(&action, e))?;
            return Ok(id);
        }
        for name in [tracking_ref(rev), rev.to_owned()] {
            if let Ok(Some(mut reference)) = self.repo.try_find_reference(name.as_str()) {
                let id = reference.peel_to_id().map_err(|e| self.error(&action, e))?;
                return Ok(id.detach());
            }
        }
        Err(self.error(
            &action,
            "not found; allowed: a full commit id, a branch of the remote, or a ref of the mirror",
        ))
    }

    pub fn commit(&self, id: ObjectId) -> Result<Commit, MirrorError> {
        let action = format!("read commit {id}");
        let commit = self
            .repo
            .find_commit(id)
            .map_err(|e| self.error(&action, e))?;
        let (signature, payload) = match commit.signature().map_err(|e| self.error(&action, e))? {
            Some((signature, signed)) => (signature.to_vec(), signed.to_bstring().to_vec()),
            None => (Vec::new(), commit.data.clone()),
        };
        let time = commit.time().map_err(|e| self.error(&action, e))?.seconds;
        let summary = commit
            .message_raw_sloppy()
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Commit {
            id,
            signature,
            payload,
            time,
            summary,
        })
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn descends(&self, descendant: ObjectId, ancestor: ObjectId) -> Result<bool, MirrorError> {
        if descendant == ancestor {
            return Ok(true);
        }
        let action = format!("walk the history of {descendant}");
        let walk = self
            .repo
            .rev_walk([descendant])
            .all()
            .map_err(|e| self.error(&action, e))?;
        for info in walk {
            let info = info.map_err(|e| self.error(&action, e))?;
            if info.id == ancestor {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Checks commit `id`'s tree out into `dir`, which must not exist yet.
    pub fn checkout(&self, id: ObjectId, dir: &Path) -> Result<(), MirrorError> {
        let action = format!("check {id} out into {}", dir.display());
        let tree = self
            .repo
            .find_commit(id)
            .map_err(|e| self.error(&action, e))?
            .tree_id()
            .map_err(|e| self.error(&action, e))?;
        let mut index = self
            .repo
            .index_from_tree(&tree)
            .map_err(|e| self.error(&action, e))?;
        let mut options = self
            .repo
            .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
            .map_err(|e| self.error(&action, e))?;
        options.destination_is_initially_empty = true;
        // Stop at the first error (a full disk): the caller removes the directory.
        options.keep_going = false;
        std::fs::create_dir(dir).map_err(|e| self.error(&action, e))?;
        let objects = self
            .repo
            .objects
            .clone()
            .into_arc()
            .map_err(|e| self.error(&action, e))?;
        let interrupt = AtomicBool::new(false);
        let outcome = gix::worktree::state::checkout(
            &mut index,
            dir,
            objects,
            &gix::progress::Discard,
            &gix::progress::Discard,
            &interrupt,
            options,
        )
        .map_err(|e| self.error(&action, e))?;
        if let Some(first) = outcome.errors.first() {
            return Err(self.error(&action, format!("{}: {}", first.path, first.error)));
        }
        Ok(())
    }
}

/// Removes `*.lock` files below the mirror's `refs/` and at its top.
fn remove_stale_locks(path: &Path) -> std::io::Result<()> {
    fn walk(dir: &Path) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&entry.path())?;
            } else if entry.file_name().to_string_lossy().ends_with(".lock") {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
    walk(&path.join("refs"))?;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name().to_string_lossy().ends_with(".lock") {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
