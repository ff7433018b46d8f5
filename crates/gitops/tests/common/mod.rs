//! A real git repository with SSH-signed commits, for the tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub struct Upstream {
    pub dir: PathBuf,
    pub key: PathBuf,
    pub other_key: PathBuf,
    pub allowed_signers: PathBuf,
}

pub fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn keygen(path: &Path) {
    run(
        path.parent().unwrap(),
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "test",
            "-f",
            path.to_str().unwrap(),
        ],
    );
}

impl Upstream {
    /// A repository at `root/upstream` with one signed commit (an empty tenant list).
    pub fn new(root: &Path) -> Upstream {
        let dir = root.join("upstream");
        std::fs::create_dir_all(dir.join("tenants")).unwrap();
        let key = root.join("key");
        let other_key = root.join("other-key");
        keygen(&key);
        keygen(&other_key);
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let allowed_signers = root.join("allowed_signers");
        std::fs::write(&allowed_signers, format!("ops@example.com {public}")).unwrap();
        run(&dir, "git", &["init", "-q", "-b", "main"]);
        for (k, v) in [
            ("user.name", "Ops"),
            ("user.email", "ops@example.com"),
            ("gpg.format", "ssh"),
            ("user.signingkey", key.to_str().unwrap()),
        ] {
            run(&dir, "git", &["config", k, v]);
        }
        let upstream = Upstream {
            dir,
            key,
            other_key,
            allowed_signers,
        };
        upstream.write("README", "tenants\n");
        upstream.commit("first", Sign::Trusted);
        upstream
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    pub fn write(&self, path: &str, text: &str) {
        let file = self.dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }

    pub fn remove(&self, path: &str) {
        run(&self.dir, "git", &["rm", "-q", "-r", path]);
    }

    pub fn tenant(&self, id: &str, extra: &str) {
        self.write(
            &format!("tenants/{id}/metadata.json"),
            &format!(r#"{{ "schemaVersion": 1, "id": "{id}"{extra} }}"#),
        );
    }

    /// Commits everything; returns the commit id.
    pub fn commit(&self, message: &str, sign: Sign) -> String {
        run(&self.dir, "git", &["add", "-A"]);
        let mut args = vec!["commit", "-q", "--allow-empty", "-m", message];
        let other;
        match sign {
            Sign::Trusted => args.push("-S"),
            Sign::Untrusted => {
                other = format!("-S{}", self.other_key.display());
                args.push(&other);
            }
            Sign::No => args.push("--no-gpg-sign"),
        }
        run(&self.dir, "git", &args);
        self.head()
    }

    pub fn head(&self) -> String {
        run(&self.dir, "git", &["rev-parse", "HEAD"])
    }

    /// Points main at `commit` (a force-push).
    pub fn reset(&self, commit: &str) {
        run(&self.dir, "git", &["reset", "-q", "--hard", commit]);
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Sign {
    Trusted,
    Untrusted,
    No,
}
