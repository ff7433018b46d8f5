//! The real tools, run as subprocesses: `ukify` (systemd-ukify) builds and
//! inspects UKIs, `sbsign`/`sbverify` (sbsigntool) sign and check
//! Authenticode signatures. Plus the pure pieces they are fed with.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::entry::Version;

/// The `IMAGE_ID=` of every UKI bbhv builds: systemd-boot's sort key, so
/// that the slots sort by version among themselves.
pub const IMAGE_ID: &str = "bbhv";

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{tool} not found (install {package})")]
    Missing { tool: String, package: String },
    #[error("{tool} failed ({status}): {output}")]
    Failed {
        tool: String,
        status: String,
        output: String,
    },
    #[error("{0}")]
    Bad(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A key and its certificate (PEM files).
#[derive(Debug, Clone)]
pub struct Signer {
    pub key: PathBuf,
    pub cert: PathBuf,
}

fn run(tool: &str, package: &str, args: &[OsString]) -> Result<String, ToolError> {
    let out = Command::new(tool).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ToolError::Missing {
                tool: tool.into(),
                package: package.into(),
            }
        } else {
            ToolError::Io {
                path: tool.into(),
                source: e,
            }
        }
    })?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        let mut output = text(&out.stderr);
        if output.is_empty() {
            output = text(&out.stdout);
        }
        Err(ToolError::Failed {
            tool: tool.into(),
            status: out.status.to_string(),
            output,
        })
    }
}

fn arg(prefix: &str, path: &Path) -> OsString {
    let mut a = OsString::from(prefix);
    a.push(path);
    a
}

/// A kernel command line baked into a UKI: one line of printable ASCII,
/// at most 4 KiB (under Secure Boot it cannot be edited at boot).
pub fn check_cmdline(cmdline: &str) -> Result<(), String> {
    if cmdline.trim().is_empty() || cmdline.len() > 4096 {
        return Err("the command line must be 1 to 4096 bytes".into());
    }
    if let Some(c) = cmdline.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!(
            "the command line has {c:?}; allowed: printable ASCII on one line"
        ));
    }
    Ok(())
}

/// The UKI's `.osrel`: `base` (an os-release) without its own `IMAGE_ID=`
/// and `IMAGE_VERSION=`, plus ours.
pub fn os_release(base: &str, version: &Version) -> String {
    let mut out: String = base
        .lines()
        .filter(|l| !l.starts_with("IMAGE_ID=") && !l.starts_with("IMAGE_VERSION="))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!("IMAGE_ID={IMAGE_ID}\nIMAGE_VERSION={version}\n"));
    out
}

/// One field of an os-release text, unquoted.
pub fn os_release_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let value = l.strip_prefix(key)?.strip_prefix('=')?;
        let v = value.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        Some(v.to_owned())
    })
}

/// What goes into a UKI.
#[derive(Debug)]
pub struct UkiInput<'a> {
    pub kernel: &'a Path,
    pub initrd: Option<&'a Path>,
    pub cmdline: &'a str,
    /// The whole `.osrel` text (see [`os_release`]).
    pub os_release: &'a str,
    pub output: &'a Path,
}

/// `ukify build`, signed with `signer` through sbsign (unsigned when
/// `None`: only for tests of the refusal).
pub fn build_uki(input: &UkiInput<'_>, signer: Option<&Signer>) -> Result<(), ToolError> {
    check_cmdline(input.cmdline).map_err(ToolError::Bad)?;
    let dir = scratch_dir(input.output)?;
    let cmdline = dir.join("cmdline");
    let osrel = dir.join("os-release");
    let write = |p: &Path, t: &str| {
        std::fs::write(p, t).map_err(|source| ToolError::Io {
            path: p.into(),
            source,
        })
    };
    write(&cmdline, input.cmdline)?;
    write(&osrel, input.os_release)?;
    let mut args: Vec<OsString> = vec![
        "build".into(),
        arg("--linux=", input.kernel),
        arg("--cmdline=@", &cmdline),
        arg("--os-release=@", &osrel),
        arg("--output=", input.output),
    ];
    if let Some(initrd) = input.initrd {
        args.push(arg("--initrd=", initrd));
    }
    if let Some(s) = signer {
        args.push("--signtool=sbsign".into());
        args.push(arg("--secureboot-private-key=", &s.key));
        args.push(arg("--secureboot-certificate=", &s.cert));
    }
    let result = run("ukify", "systemd-ukify", &args);
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|_| ())
}

/// A private directory next to `output` for ukify's input files.
fn scratch_dir(output: &Path) -> Result<PathBuf, ToolError> {
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = parent.join(format!(".bbhv-uki.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).map_err(|source| ToolError::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// `sbsign`: an EFI binary (systemd-boot) signed for Secure Boot.
pub fn sign(input: &Path, output: &Path, signer: &Signer) -> Result<(), ToolError> {
    run(
        "sbsign",
        "sbsigntool",
        &[
            "--key".into(),
            signer.key.clone().into(),
            "--cert".into(),
            signer.cert.clone().into(),
            "--output".into(),
            output.into(),
            input.into(),
        ],
    )
    .map(|_| ())
}

/// `sbverify --cert`: the file carries a valid signature by `cert`'s key.
pub fn verify(file: &Path, cert: &Path) -> Result<(), ToolError> {
    run(
        "sbverify",
        "sbsigntool",
        &["--cert".into(), cert.into(), file.into()],
    )
    .map(|_| ())
}

/// One PE section as `ukify inspect --json=short` shows it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Section {
    pub size: Option<u64>,
    pub sha256: Option<String>,
    /// The text of text sections (`.osrel`, `.cmdline`, `.uname`).
    pub text: Option<String>,
}

/// A UKI's sections, by name.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub sections: BTreeMap<String, Section>,
}

impl Inspection {
    pub fn text(&self, section: &str) -> Option<&str> {
        self.sections.get(section)?.text.as_deref()
    }

    /// `IMAGE_VERSION=` of its `.osrel`.
    pub fn version(&self) -> Option<String> {
        os_release_field(self.text(".osrel")?, "IMAGE_VERSION")
    }
}

/// `ukify inspect`: the sections of a UKI.
pub fn inspect(file: &Path) -> Result<Inspection, ToolError> {
    let json = run(
        "ukify",
        "systemd-ukify",
        &["inspect".into(), file.into(), "--json=short".into()],
    )?;
    let sections: BTreeMap<String, Section> = serde_json::from_str(&json)
        .map_err(|e| ToolError::Bad(format!("ukify inspect printed unexpected JSON: {e}")))?;
    Ok(Inspection { sections })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_gets_our_id_and_version() {
        let v = Version::parse("2026.11.1").unwrap();
        let text = os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nIMAGE_VERSION=9\n",
            &v,
        );
        assert_eq!(
            text,
            "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nIMAGE_ID=bbhv\n\
             IMAGE_VERSION=2026.11.1\n"
        );
        assert_eq!(
            os_release_field(&text, "IMAGE_VERSION").as_deref(),
            Some("2026.11.1")
        );
        assert_eq!(
            os_release_field(&text, "PRETTY_NAME").as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
        assert_eq!(os_release_field(&text, "IMAGE"), None);
    }

    #[test]
    fn cmdline_is_one_printable_line() {
        assert!(check_cmdline("root=/dev/vda rw quiet").is_ok());
        assert!(check_cmdline("").is_err());
        assert!(
            check_cmdline("a\nb")
                .unwrap_err()
                .contains("printable ASCII")
        );
        assert!(check_cmdline("a\u{1b}[2J").is_err());
        assert!(check_cmdline(&"x".repeat(4097)).is_err());
    }
}
