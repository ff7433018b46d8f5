//! Shared by the integration tests: fixture paths, a generation laid out as
//! on a host, running the real binaries, and tree snapshots.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixed commit every test generation pretends to be.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The cases below `dir` (relative to the workspace), sorted: (name, path).
/// Fewer than `at_least` means the fixtures went missing.
pub fn cases(dir: &str, at_least: usize) -> Vec<(String, PathBuf)> {
    let dir = workspace().join(dir);
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.path())
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= at_least,
        "cases missing in {}",
        dir.display()
    );
    cases
}

pub fn bless() -> bool {
    std::env::var_os("BLESS").is_some_and(|v| v == "1")
}

/// `/var/lib/bitbuilder` in miniature: `generations/1-<sha>/` holding a copy
/// of `repo` (symlinks copied as symlinks) and `current` pointing at it.
pub struct Host {
    pub dir: tempfile::TempDir,
}

impl Host {
    pub fn with_repo(repo: &Path) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let generation = dir.path().join(format!("generations/1-{SHA}"));
        copy_tree(&repo.canonicalize().unwrap(), &generation);
        std::os::unix::fs::symlink(format!("generations/1-{SHA}"), dir.path().join("current"))
            .unwrap();
        std::fs::copy(example_host_config(), dir.path().join("host.toml")).unwrap();
        Host { dir }
    }

    pub fn current(&self) -> PathBuf {
        self.dir.path().join("current")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// `/etc/bitbuilder/host.toml` of this host: a copy of
    /// `examples/host.toml` (the example repository has a VLAN).
    pub fn host_config(&self) -> PathBuf {
        self.dir.path().join("host.toml")
    }

    /// `/run/systemd/network` of this host.
    pub fn network_dir(&self) -> PathBuf {
        self.dir.path().join("network")
    }

    /// `/run/systemd/nspawn` of this host.
    pub fn nspawn_dir(&self) -> PathBuf {
        self.dir.path().join("nspawn")
    }

    /// tenant-generator with this host's paths (never the real ones) and no
    /// output directory yet.
    pub fn generator(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenant-generator"));
        command
            .env("BITBUILDER_CURRENT", self.current())
            .env("BITBUILDER_RUN_DIR", self.run_dir())
            .env("BITBUILDER_HOST_CONFIG", self.host_config())
            .env("BITBUILDER_NETWORK_DIR", self.network_dir())
            .env("BITBUILDER_NSPAWN_DIR", self.nspawn_dir());
        command
    }

    /// Runs tenant-generator as systemd does: three output directories.
    pub fn generate(&self, normal: &Path) -> Output {
        let early = self.dir.path().join("early");
        let late = self.dir.path().join("late");
        for d in [normal, &early, &late] {
            std::fs::create_dir_all(d).unwrap();
        }
        self.generator()
            .args([normal, &early, &late])
            .output()
            .unwrap()
    }

    /// Runs mount-generator as systemd does.
    pub fn generate_mounts(&self, normal: &Path) -> Output {
        std::fs::create_dir_all(normal).unwrap();
        Command::new(env!("CARGO_BIN_EXE_mount-generator"))
            .arg(normal)
            .env("BITBUILDER_CURRENT", self.current())
            .env("BITBUILDER_RUN_DIR", self.run_dir())
            .env("BITBUILDER_HOST_CONFIG", self.host_config())
            .output()
            .unwrap()
    }

    /// Replaces this host's temporary path with the real one, for snapshots.
    pub fn normalize(&self, text: &str) -> String {
        text.replace(
            &self.dir.path().display().to_string(),
            "/var/lib/bitbuilder",
        )
    }
}

/// `examples/host.toml`: the host the example repository is meant for.
pub fn example_host_config() -> PathBuf {
    workspace().join("examples/host.toml")
}

/// bbhv, reading `examples/host.toml` unless `--host-config` says otherwise
/// (never the real /etc/bitbuilder/host.toml).
pub fn bbhv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bbhv"))
        .args(args)
        .env("BITBUILDER_HOST_CONFIG", example_host_config())
        .output()
        .unwrap()
}

/// Copies a directory tree, keeping symlinks as symlinks (never following).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A directory tree as sorted (relative path, what it is): `-> target` for a
/// symlink, the content for a file. Directories are implied by their entries.
pub fn snapshot(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            out.push((
                rel,
                format!("-> {}", std::fs::read_link(&path).unwrap().display()),
            ));
        } else if kind.is_dir() {
            walk(root, &path, out);
        } else {
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// Writes a snapshot as a tree (files and symlinks), replacing `dir`.
pub fn write_snapshot(dir: &Path, tree: &[(String, String)]) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for (rel, what) in tree {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        match what.strip_prefix("-> ") {
            Some(target) => std::os::unix::fs::symlink(target, &path).unwrap(),
            None => std::fs::write(&path, what).unwrap(),
        }
    }
}

/// Compares two texts, panicking with a readable diff.
pub fn assert_same_text(what: &str, expected: &str, actual: &str) {
    if expected != actual {
        let diff = similar::TextDiff::from_lines(expected, actual);
        panic!(
            "{what} differs (- expected, + actual); re-bless with `make bless` if intended:\n{}",
            diff.unified_diff()
        );
    }
}

/// The slice tenant-generator writes for tenant `id`.
#[allow(dead_code)]
pub fn slice(id: &str) -> String {
    bbhv_spec::TenantId::new(id).unwrap().slice()
}
