//! `bbhv ext build|verify|apply`: sysext and confext images (bbhv-ext does
//! the work; this is flags and output).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use bbhv_ext::build::{BuildOptions, Fs, on_terminal};
use bbhv_ext::{ApplyOptions, Kind, Release};
use bbhv_generator::{HostPaths, escape};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Build a sysext or confext image from a tree (extensions/NAME/ of the
    /// repository, or any directory): checks the tree, writes
    /// extension-release.NAME, runs mksquashfs or mkfs.erofs reproducibly
    /// and, with --sign-key, signs the output directory's SHA256SUMS.
    Build(Box<BuildArgs>),
    /// Verify every image the checkout pins for this host (in the store,
    /// the pinned digest, signed by a key of trust.image_signers).
    Verify(ApplyArgs),
    /// Verify, then link exactly what the checkout pins into
    /// /var/lib/extensions and /var/lib/confexts and refresh
    /// systemd-sysext / systemd-confext. Idempotent.
    Apply(ApplyArgs),
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The tree: usr/ and opt/ (sysext) or etc/ (confext).
    tree: PathBuf,
    /// The extension's name (default: the tree's directory name).
    #[arg(long)]
    name: Option<String>,
    /// sysext or confext.
    #[arg(long, default_value = "sysext")]
    kind: String,
    /// squashfs or erofs.
    #[arg(long, default_value = "squashfs")]
    format: String,
    /// The image to write (default: NAME.raw in the current directory).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// ID= of the hosts it fits (os-release ID; _any for all).
    #[arg(long, default_value = "_any")]
    id: String,
    /// VERSION_ID= of the hosts it fits.
    #[arg(long)]
    version_id: Option<String>,
    /// SYSEXT_LEVEL= / CONFEXT_LEVEL=.
    #[arg(long)]
    level: Option<String>,
    /// ARCHITECTURE= (x86-64, arm64, ...).
    #[arg(long)]
    architecture: Option<String>,
    /// The image's own version (SYSEXT_VERSION_ID= / CONFEXT_VERSION_ID=).
    #[arg(long)]
    image_version: Option<String>,
    /// EXTENSION_RELOAD_MANAGER=1: PID 1 reloads after a merge (units in the image).
    #[arg(long)]
    reload_manager: bool,
    /// Allow setuid and setgid files.
    #[arg(long)]
    allow_setuid: bool,
    /// Time stamps of every file (default: $SOURCE_DATE_EPOCH, else 0).
    #[arg(long, env = "SOURCE_DATE_EPOCH")]
    source_date_epoch: Option<u64>,
    /// An OpenSSH private key: sign SHA256SUMS beside the output.
    #[arg(long, value_name = "KEY")]
    sign_key: Option<PathBuf>,
    /// Print the image's sha256 (implied by --sign-key and --manifest-source).
    #[arg(long)]
    digest: bool,
    /// Print the images/NAME.json for this image, pulled from URL (the
    /// directory the image, SHA256SUMS and SHA256SUMS.sig are served from).
    #[arg(long, value_name = "URL")]
    manifest_source: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The checkout (default: the applied one, /var/lib/bitbuilder/current).
    #[arg(long, value_name = "DIR")]
    checkout: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Build(args) => build(*args),
        Command::Verify(args) => verify(args),
        Command::Apply(args) => apply(args),
    }
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let kind = match args.kind.as_str() {
        "sysext" => Kind::Sysext,
        "confext" => Kind::Confext,
        other => bail!("--kind {other:?}: allowed: sysext, confext"),
    };
    let fs = Fs::parse(&args.format).map_err(|e| anyhow::anyhow!("--format {e}"))?;
    let name = match args.name {
        Some(name) => name,
        None => std::fs::canonicalize(&args.tree)
            .with_context(|| args.tree.display().to_string())?
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .context("the tree has no directory name: pass --name")?,
    };
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{name}.raw")));
    let opts = BuildOptions {
        tree: args.tree,
        name: name.clone(),
        kind,
        fs,
        release: Release {
            id: args.id,
            version_id: args.version_id,
            level: args.level,
            architecture: args.architecture,
            reload_manager: args.reload_manager,
            image_version: args.image_version,
        },
        output,
        source_date_epoch: args.source_date_epoch.unwrap_or(0),
        allow_setuid: args.allow_setuid,
        sign_key: args.sign_key,
        progress: on_terminal(),
        digest: args.digest || args.manifest_source.is_some(),
    };
    let built = bbhv_ext::build::build(&opts)?;
    eprintln!(
        "{kind} {name}: {} ({} files, {} bytes in, {} bytes out){}{}",
        built.output.display(),
        built.stats.files,
        built.stats.bytes,
        built.size,
        built
            .sha256
            .as_ref()
            .map_or_else(String::new, |s| format!(" sha256 {s}")),
        match &built.signed {
            Some((_, sig)) => format!(", signed ({})", sig.display()),
            None => String::new(),
        }
    );
    if let Some(source) = args.manifest_source {
        let file = built
            .output
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let manifest = serde_json::json!({
            "schemaVersion": 1,
            "format": args.format,
            "source": format!("{}/{file}", source.trim_end_matches('/')),
            "sha256": built.sha256,
        });
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// The host's settings, refused when host.toml has errors.
pub fn options(paths: &HostPaths) -> anyhow::Result<ApplyOptions> {
    let config = crate::host::config(&paths.host_config)?;
    let mut opts = ApplyOptions::host(&config, paths.images_dir.clone());
    // Tests and the lab move the activation root and skip the refresh.
    if let Some(root) = std::env::var_os("BITBUILDER_EXT_ROOT").filter(|r| !r.is_empty()) {
        opts.root = root.into();
        opts.refresh = false;
    }
    Ok(opts)
}

fn verify(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let paths = HostPaths::from_env();
    let checkout = args.checkout.unwrap_or(paths.current.clone());
    let opts = options(&paths)?;
    let verified = bbhv_ext::verify_checkout(&checkout, &opts)?;
    for v in &verified {
        println!(
            "{} {}: sha256 {} signed by {}",
            v.kind,
            v.name,
            v.sha256,
            escape(&v.signer)
        );
    }
    if verified.is_empty() {
        println!("nothing pinned for host {}", escape(&opts.hostname));
    }
    Ok(ExitCode::SUCCESS)
}

fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let paths = HostPaths::from_env();
    let checkout = args.checkout.unwrap_or(paths.current.clone());
    let opts = options(&paths)?;
    let report = bbhv_ext::apply(&checkout, &opts)?;
    if args.json {
        let active: Vec<_> = report
            .active
            .iter()
            .map(|(kind, name, sha)| serde_json::json!({"kind": kind.to_string(), "name": name, "sha256": sha}))
            .collect();
        let json = serde_json::json!({
            "active": active,
            "linked": report.linked,
            "unlinked": report.unlinked,
            "refreshed": report.refreshed.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for (kind, name, sha) in &report.active {
            println!("{kind} {name}: sha256 {sha} active");
        }
        for path in &report.unlinked {
            println!("removed {}", path.display());
        }
        if report.active.is_empty() {
            println!("nothing pinned for host {}", escape(&opts.hostname));
        }
    }
    Ok(ExitCode::SUCCESS)
}
