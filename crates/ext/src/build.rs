//! `bbhv ext build`: a tree → a checked, reproducible squashfs or EROFS
//! image with its `extension-release.<name>`, made by the real tools
//! (mksquashfs, mkfs.erofs), optionally signed (`ssh-keygen -Y sign` over
//! the output directory's SHA256SUMS).
//!
//! The source tree is never written to: the release file goes into a
//! staging tree of hard links (a copy when the output is on another file
//! system) next to the output. Every time stamp is `SOURCE_DATE_EPOCH`,
//! every owner root, no extended attributes: the same tree gives the same
//! bytes on any machine.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::release::{Kind, Release};
use crate::sign::{SUMS, SUMS_SIG, update_sums};
use crate::tree::{self, TreeStats};
use crate::{Error, sha256_file};

/// The file system of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fs {
    Squashfs,
    Erofs,
}

impl Fs {
    pub fn parse(text: &str) -> Result<Fs, String> {
        match text {
            "squashfs" => Ok(Fs::Squashfs),
            "erofs" => Ok(Fs::Erofs),
            other => Err(format!("{other:?}: allowed: squashfs, erofs")),
        }
    }
}

/// Everything a build needs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub tree: PathBuf,
    /// The extension's name: `extension-release.<name>`, and the name the
    /// image is activated under (`<name>.raw`).
    pub name: String,
    pub kind: Kind,
    pub fs: Fs,
    pub release: Release,
    pub output: PathBuf,
    /// Every time stamp in the image.
    pub source_date_epoch: u64,
    pub allow_setuid: bool,
    /// An OpenSSH private key: sign the output directory's SHA256SUMS.
    pub sign_key: Option<PathBuf>,
    /// Progress bars (a terminal).
    pub progress: bool,
    /// Hash the image (always when signing): one more pass over the output,
    /// about 0.6 s per 200 MB.
    pub digest: bool,
}

/// What was built.
#[derive(Debug, Clone)]
pub struct Built {
    pub output: PathBuf,
    /// With [`BuildOptions::digest`] or a signing key.
    pub sha256: Option<String>,
    pub size: u64,
    pub stats: TreeStats,
    /// SHA256SUMS and its signature, when signed.
    pub signed: Option<(PathBuf, PathBuf)>,
}

/// An extension name: `[a-z0-9][a-z0-9._-]{0,63}` (an image name, since the
/// image of extension `x` is `images/x.json`).
pub fn check_name(name: &str) -> Result<(), Error> {
    bbhv_spec::values::ImageName::parse(name)
        .map(|_| ())
        .map_err(|e| Error::Usage(format!("extension name: {e}")))
}

pub fn build(opts: &BuildOptions) -> Result<Built, Error> {
    check_name(&opts.name)?;
    let release_text = opts
        .release
        .render(opts.kind)
        .map_err(|e| Error::Usage(format!("extension-release.{}: {}", opts.name, e.message)))?;
    let bar = opts.progress.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} checking {msg} {binary_bytes}")
                .expect("a valid template"),
        );
        bar.set_message(opts.tree.display().to_string());
        bar
    });
    let stats = tree::check(&opts.tree, opts.kind, opts.allow_setuid, |n| {
        if let Some(bar) = &bar {
            bar.inc(n);
        }
    })
    .map_err(|problems| Error::Tree {
        tree: opts.tree.display().to_string(),
        problems: problems.iter().map(ToString::to_string).collect(),
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let out_dir = match opts.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = opts
        .output
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Usage(format!("{}: not a file name", opts.output.display())))?
        .to_owned();
    let stage = Stage::new(&out_dir, &opts.tree)?;
    let release_dir = stage.path.join(opts.kind.release_dir());
    std::fs::create_dir_all(&release_dir).map_err(|e| io(&release_dir, e))?;
    let release_file = release_dir.join(format!("extension-release.{}", opts.name));
    std::fs::write(&release_file, release_text).map_err(|e| io(&release_file, e))?;
    let tmp = out_dir.join(format!(".{file_name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut cmd = make_fs_command(
        opts.fs,
        &stage.path,
        &tmp,
        opts.source_date_epoch,
        &opts.name,
        opts.progress,
    );
    let status = cmd.status().map_err(|e| Error::Tool {
        tool: tool_name(opts.fs).into(),
        message: format!("cannot run it: {e}"),
    })?;
    drop(stage);
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Tool {
            tool: tool_name(opts.fs).into(),
            message: format!("failed ({status})"),
        });
    }
    std::fs::rename(&tmp, &opts.output).map_err(|e| io(&opts.output, e))?;
    let size = std::fs::metadata(&opts.output)
        .map_err(|e| io(&opts.output, e))?
        .len();
    let sha256 = if opts.digest || opts.sign_key.is_some() {
        Some(
            sha256_file(&opts.output, |_| {})
                .map_err(|e| io(&opts.output, e))?
                .0,
        )
    } else {
        None
    };
    let signed = match (&opts.sign_key, &sha256) {
        (Some(key), Some(sha256)) => Some(sign(&out_dir, &file_name, sha256, key)?),
        _ => None,
    };
    Ok(Built {
        output: opts.output.clone(),
        sha256,
        size,
        stats,
        signed,
    })
}

fn tool_name(fs: Fs) -> &'static str {
    match fs {
        Fs::Squashfs => "mksquashfs",
        Fs::Erofs => "mkfs.erofs",
    }
}

/// The exact command (also what the benchmark runs directly).
pub fn make_fs_command(
    fs: Fs,
    tree: &Path,
    out: &Path,
    epoch: u64,
    name: &str,
    progress: bool,
) -> Command {
    let mut cmd;
    match fs {
        Fs::Squashfs => {
            cmd = Command::new("mksquashfs");
            cmd.arg(tree).arg(out).args([
                "-noappend",
                "-reproducible",
                "-all-root",
                "-no-xattrs",
                "-comp",
                "zstd",
            ]);
            cmd.arg("-mkfs-time").arg(epoch.to_string());
            cmd.arg("-all-time").arg(epoch.to_string());
            if !progress {
                cmd.args(["-no-progress", "-quiet"]);
            }
        }
        Fs::Erofs => {
            cmd = Command::new("mkfs.erofs");
            // A UUID from the name and time: reproducible, and different
            // images do not share one.
            let digest = crate::sha256_bytes(format!("{name}\0{epoch}").as_bytes());
            let uuid = format!(
                "{}-{}-{}-{}-{}",
                &digest[0..8],
                &digest[8..12],
                &digest[12..16],
                &digest[16..20],
                &digest[20..32]
            );
            cmd.arg(format!("-T{epoch}"))
                .arg("--all-root")
                .arg(format!("-U{uuid}"))
                .arg("-zlz4hc")
                .arg("-x-1")
                .arg(out)
                .arg(tree);
            if !progress {
                cmd.arg("--quiet");
            }
        }
    }
    // The flags set every time stamp; mksquashfs refuses both at once.
    cmd.env_remove("SOURCE_DATE_EPOCH");
    cmd
}

/// SHA256SUMS of `dir` with this image's line, and its SSH signature.
fn sign(
    dir: &Path,
    file_name: &str,
    sha256: &str,
    key: &Path,
) -> Result<(PathBuf, PathBuf), Error> {
    let sums = dir.join(SUMS);
    let old = match std::fs::read_to_string(&sums) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(&sums, e)),
    };
    let new = update_sums(&old, file_name, sha256)
        .map_err(|e| Error::Usage(format!("{}: {e}", sums.display())))?;
    std::fs::write(&sums, new).map_err(|e| io(&sums, e))?;
    let sig = dir.join(SUMS_SIG);
    let _ = std::fs::remove_file(&sig);
    let output = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", crate::sign::NAMESPACE, "-f"])
        .arg(key)
        .arg(&sums)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Tool {
            tool: "ssh-keygen".into(),
            message: format!("cannot run it: {e}"),
        })?;
    if !output.status.success() {
        return Err(Error::Tool {
            tool: "ssh-keygen".into(),
            message: format!(
                "signing {} with {} failed: {}",
                sums.display(),
                key.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok((sums, sig))
}

/// The staging tree, removed when dropped.
struct Stage {
    path: PathBuf,
}

impl Stage {
    fn new(out_dir: &Path, tree: &Path) -> Result<Stage, Error> {
        let parent = out_dir.join(format!(".bbhv-stage-{}", std::process::id()));
        if std::fs::symlink_metadata(&parent).is_ok() {
            std::fs::remove_dir_all(&parent).map_err(|e| io(&parent, e))?;
        }
        std::fs::create_dir(&parent).map_err(|e| io(&parent, e))?;
        let stage = Stage { path: parent };
        // Hard links: no data copied; a copy (reflinked where the file
        // system can) when the tree is on another file system.
        let linked = Command::new("cp")
            .arg("-al")
            .arg(tree.join("."))
            .arg(&stage.path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !linked {
            std::fs::remove_dir_all(&stage.path).map_err(|e| io(&stage.path, e))?;
            std::fs::create_dir(&stage.path).map_err(|e| io(&stage.path, e))?;
            let copied = Command::new("cp")
                .args(["-a", "--reflink=auto"])
                .arg(tree.join("."))
                .arg(&stage.path)
                .status()
                .is_ok_and(|s| s.success());
            if !copied {
                return Err(Error::Tool {
                    tool: "cp".into(),
                    message: format!(
                        "cannot stage {} in {}",
                        tree.display(),
                        stage.path.display()
                    ),
                });
            }
        }
        Ok(stage)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Whether to draw progress bars: stderr is a terminal.
pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}
