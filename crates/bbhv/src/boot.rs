//! `bbhv boot`: the host's own boot (docs/boot.md). Signed UKIs in two
//! slots on the ESP, systemd-boot's boot counting, `systemd-bless-boot`.
//! The work is in bbhv-boot; this is flags, host.toml and printing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use bbhv_boot::esp::{self, EFIVARS};
use bbhv_boot::tools::{self, Signer, UkiInput};
use bbhv_boot::{StageRequest, Version};
use bbhv_generator::HostPaths;
use bbhv_host::boot::Boot;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Build a UKI (ukify) from a kernel, an initrd, a command line and an
    /// os-release, signed with boot.signing_key.
    BuildUki(BuildArgs),
    /// Check a UKI's signature against the trusted certificate
    /// (boot.signing_cert) and show its sections and version. Exit 1 when
    /// the signature does not verify.
    Verify {
        uki: PathBuf,
        /// The certificate to check against (default: boot.signing_cert).
        #[arg(long, value_name = "PEM")]
        cert: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Make an ESP bootable: systemd-boot signed with boot.signing_key,
    /// loader.conf, and UKI as slot a.
    Install {
        /// The first UKI (signed, IMAGE_VERSION = --version).
        #[arg(long, value_name = "FILE")]
        uki: PathBuf,
        #[arg(long, value_parser = parse_version)]
        version: Version,
        /// The ESP (default: boot.esp).
        #[arg(long, value_name = "DIR")]
        esp: Option<PathBuf>,
        /// systemd-boot to sign and install.
        #[arg(
            long,
            value_name = "FILE",
            default_value = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
        )]
        loader: PathBuf,
        /// --loader is already signed (no private key on this host).
        #[arg(long)]
        loader_signed: bool,
    },
    /// Stage a verified UKI into the inactive slot with boot counting: it
    /// boots next, and systemd-boot falls back to the running slot by
    /// itself if it never reaches boot-complete.target.
    Stage {
        #[arg(long, value_name = "FILE")]
        uki: PathBuf,
        #[arg(long, value_parser = parse_version)]
        version: Version,
        /// The pinned sha256 (64 hex digits) the file must have.
        #[arg(long, value_name = "HEX", value_parser = parse_sha256)]
        sha256: Option<String>,
        #[arg(long, value_name = "DIR")]
        esp: Option<PathBuf>,
    },
    /// The slots, their versions and tries left, which one booted and which
    /// one boots next.
    Status {
        #[arg(long, value_name = "DIR")]
        esp: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[arg(long, value_name = "FILE")]
    kernel: PathBuf,
    #[arg(long, value_name = "FILE")]
    initrd: Option<PathBuf>,
    /// The kernel command line baked into the UKI.
    #[arg(long)]
    cmdline: String,
    /// Becomes IMAGE_VERSION= in the UKI's .osrel (what systemd-boot sorts by).
    #[arg(long, value_parser = parse_version)]
    version: Version,
    /// The os-release to start from.
    #[arg(long, value_name = "FILE", default_value = "/usr/lib/os-release")]
    os_release: PathBuf,
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
    /// Sign with this key instead of boot.signing_key (with --cert).
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// Leave it unsigned (it will not boot under Secure Boot; for tests).
    #[arg(long, conflicts_with_all = ["key", "cert"])]
    unsigned: bool,
}

fn parse_version(text: &str) -> Result<Version, String> {
    Version::parse(text)
}

fn parse_sha256(text: &str) -> Result<String, String> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!("{text:?} is not a sha256; allowed: 64 hex digits"))
    }
}

/// `[boot]` of host.toml; errors are refused (no signing with a key the
/// operator did not name).
fn config() -> anyhow::Result<Boot> {
    let path = HostPaths::from_env().host_config;
    match bbhv_host::load(&path) {
        Ok(c) => Ok(c.boot),
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            bail!("{} has {} errors", path.display(), errors.len())
        }
    }
}

pub(crate) fn efivars() -> PathBuf {
    std::env::var_os("BBHV_EFIVARS").map_or_else(|| EFIVARS.into(), PathBuf::from)
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::BuildUki(args) => build(args),
        Command::Verify { uki, cert, json } => verify(&uki, cert, json),
        Command::Install {
            uki,
            version,
            esp,
            loader,
            loader_signed,
        } => install(&uki, &version, esp, &loader, loader_signed),
        Command::Stage {
            uki,
            version,
            sha256,
            esp,
        } => stage(&uki, &version, sha256.as_deref(), esp),
        Command::Status { esp, json } => status(esp, json),
    }
}

fn build(a: BuildArgs) -> anyhow::Result<ExitCode> {
    let signer = if a.unsigned {
        None
    } else if let (Some(key), Some(cert)) = (a.key, a.cert) {
        Some(Signer { key, cert })
    } else {
        let c = config()?;
        Some(Signer {
            key: c.signing_key,
            cert: c.signing_cert,
        })
    };
    let base = std::fs::read_to_string(&a.os_release)
        .with_context(|| format!("{}", a.os_release.display()))?;
    let osrel = tools::os_release(&base, &a.version);
    tools::build_uki(
        &UkiInput {
            kernel: &a.kernel,
            initrd: a.initrd.as_deref(),
            cmdline: &a.cmdline,
            os_release: &osrel,
            output: &a.output,
        },
        signer.as_ref(),
    )
    .context("ukify build")?;
    if let Some(s) = &signer {
        tools::verify(&a.output, &s.cert).context("the new UKI does not verify")?;
    }
    println!(
        "{} version {} sha256 {}{}",
        a.output.display(),
        a.version,
        esp::sha256(&a.output)?,
        if signer.is_some() { "" } else { " (unsigned)" }
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(uki: &Path, cert: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let cert = match cert {
        Some(c) => c,
        None => config()?.signing_cert,
    };
    let signature = tools::verify(uki, &cert);
    let inspection = tools::inspect(uki).context("ukify inspect")?;
    let ok = signature.is_ok();
    if json {
        let value = serde_json::json!({
            "file": uki,
            "certificate": cert,
            "signature_ok": ok,
            "signature_error": signature.as_ref().err().map(ToString::to_string),
            "version": inspection.version(),
            "uname": inspection.text(".uname"),
            "cmdline": inspection.text(".cmdline"),
            "sections": inspection.sections,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        match &signature {
            Ok(()) => println!("signature: OK ({})", cert.display()),
            Err(e) => println!("signature: BAD ({}): {e}", cert.display()),
        }
        println!(
            "version: {}",
            inspection.version().as_deref().unwrap_or("none")
        );
        println!("uname: {}", inspection.text(".uname").unwrap_or("none"));
        println!("cmdline: {}", inspection.text(".cmdline").unwrap_or("none"));
        for (name, s) in &inspection.sections {
            println!(
                "section {name}: {} bytes, sha256 {}",
                s.size.unwrap_or(0),
                s.sha256.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn install(
    uki: &Path,
    version: &Version,
    esp_dir: Option<PathBuf>,
    loader: &Path,
    loader_signed: bool,
) -> anyhow::Result<ExitCode> {
    let c = config()?;
    let esp_dir = esp_dir.unwrap_or(c.esp);
    let scratch;
    let signed = if loader_signed {
        loader.to_owned()
    } else {
        scratch = std::env::temp_dir().join(format!("bbhv-boot.{}.efi", std::process::id()));
        tools::sign(
            loader,
            &scratch,
            &Signer {
                key: c.signing_key,
                cert: c.signing_cert.clone(),
            },
        )
        .context("signing systemd-boot")?;
        scratch.clone()
    };
    let result = esp::install(&esp_dir, &signed, uki, version, &c.signing_cert);
    if !loader_signed {
        let _ = std::fs::remove_file(&signed);
    }
    let done = result?;
    for l in &done.loader {
        println!("installed {}", l.display());
    }
    println!("installed {}", done.loader_conf.display());
    println!("installed {} (slot a, good)", done.uki.display());
    Ok(ExitCode::SUCCESS)
}

fn stage(
    uki: &Path,
    version: &Version,
    sha256: Option<&str>,
    esp_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let c = config()?;
    let esp_dir = esp_dir.unwrap_or(c.esp);
    let vars = efivars();
    let staged = bbhv_boot::stage(&StageRequest {
        esp: &esp_dir,
        uki,
        version,
        sha256,
        cert: &c.signing_cert,
        tries: c.tries,
        efivars: &vars,
    })?;
    for old in &staged.plan.remove {
        println!("removed {old} (slot {})", staged.plan.slot);
    }
    println!(
        "staged {} (slot {}, {} tries, sha256 {}); slot {} ({}) stays as the fallback",
        staged.path.display(),
        staged.plan.slot,
        c.tries,
        staged.sha256,
        staged.plan.keep.slot,
        staged.plan.keep.file_name()
    );
    Ok(ExitCode::SUCCESS)
}

fn status(esp_dir: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let esp_dir = match esp_dir {
        Some(e) => e,
        None => config()?.esp,
    };
    let s = esp::status(&esp_dir, &efivars())?;
    if json {
        println!("{}", s.to_json());
    } else {
        // File names on the ESP are data: escaped line by line.
        for line in s.render().lines() {
            println!("{}", bbhv_generator::escape(line));
        }
    }
    Ok(ExitCode::SUCCESS)
}
