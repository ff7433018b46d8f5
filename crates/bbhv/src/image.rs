//! `bbhv image verify NAME`: the image file matches the digest its
//! `images/<name>.json` declares in the applied checkout
//! (`bitbuilder-image@<name>.service` runs it before the image is mounted;
//! a mismatch fails that unit, so no container using the image starts).

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use bbhv_generator::{Checkout, HostPaths, escape};
use bbhv_spec::Image;
use bbhv_spec::image::{Content, ImageFormat};
use sha2::{Digest as _, Sha256};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check that image NAME's file has the sha256 that images/NAME.json of
    /// the applied checkout declares (exit 1, naming both digests, when not).
    Verify {
        name: String,
        /// The repository checkout to read images/NAME.json from (default:
        /// the applied one, /var/lib/bitbuilder/current).
        #[arg(long, value_name = "DIR")]
        repo: Option<std::path::PathBuf>,
    },
    /// Fetch the images that images/*.json of the checkout pull from
    /// ("source"), over http(s) or file://: verify digest and signature
    /// (trust.image_signers), store them as /var/lib/bitbuilder/images/
    /// sha256-HEX, then remove stored images no kept generation names.
    Pull {
        /// Only these images (default: every image with a source).
        names: Vec<String>,
        /// The checkout to read images/ from (default: the applied one).
        #[arg(long, value_name = "DIR")]
        checkout: Option<std::path::PathBuf>,
        /// Keep every stored image (no collection).
        #[arg(long)]
        no_collect: bool,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Verify { name, repo } => verify(&name, repo),
        Command::Pull {
            names,
            checkout,
            no_collect,
        } => pull(&names, checkout, no_collect),
    }
}

fn pull(
    names: &[String],
    checkout: Option<std::path::PathBuf>,
    no_collect: bool,
) -> anyhow::Result<ExitCode> {
    use bbhv_ext::store::{self, Pulled, Store};
    let paths = HostPaths::from_env();
    let checkout = checkout.unwrap_or(paths.current.clone());
    let config = crate::host::config(&paths.host_config)?;
    let keys = bbhv_ext::sign::TrustedKeys::load(&config.trust.image_signers)
        .map_err(|e| anyhow::anyhow!("trust.image_signers: {e}"))?;
    let images = if names.is_empty() {
        store::checkout_images(&checkout)?
            .into_iter()
            .filter(|i| i.origin.is_some())
            .collect()
    } else {
        names
            .iter()
            .map(|n| store::checkout_image(&checkout, n))
            .collect::<Result<Vec<_>, _>>()?
    };
    let store = Store::new(paths.images_dir.clone());
    let progress = bbhv_ext::build::on_terminal();
    let mut failed = 0;
    for image in &images {
        match store::pull(&store, image, &keys, progress) {
            Ok(Pulled::Present { image, sha256 }) => {
                println!("image {image}: sha256 {sha256} already stored and verified");
            }
            Ok(Pulled::Fetched {
                image,
                sha256,
                bytes,
                signer,
            }) => println!(
                "image {image}: fetched {bytes} bytes, sha256 {sha256}, signed by {}",
                escape(&signer)
            ),
            Err(e) => {
                eprintln!("bbhv: {}", escape(&e.to_string()));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} images refused or not fetched", images.len());
    }
    if !no_collect {
        let state = paths.generations.parent().map_or_else(
            || std::path::PathBuf::from("/"),
            std::path::Path::to_path_buf,
        );
        let mut keep = store::referenced(&state, config.sync.keep_generations as usize)?;
        for image in store::checkout_images(&checkout)? {
            if let Some(d) = store::pulled_digest(&image) {
                keep.insert(d.to_owned());
            }
        }
        for removed in store::collect(&store, &keep)? {
            println!("collected {}", removed.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(name: &str, repo: Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    let paths = HostPaths::from_env();
    let checkout =
        Checkout::open(repo.as_deref().unwrap_or(&paths.current)).context("no applied checkout")?;
    let file = Image::source_file(name);
    let text = bbhv_repo::read_image(&checkout.root, name)
        .map_err(|e| anyhow::anyhow!("image {name}: {file}: {e}"))?;
    let image = Image::parse(&file, name, &text).map_err(|diagnostics| {
        for d in &diagnostics {
            eprintln!("{}", escape(&d.to_string()));
        }
        anyhow::anyhow!(
            "image {name}: {file} is invalid ({} problems)",
            diagnostics.len()
        )
    })?;
    let (file_name, sha256) = match &image.content {
        Content::Tree { file, sha256 } => (file, sha256),
        Content::Vm(vm) => {
            // Every file of a VM image (`bbhv vm run` checks them again
            // when it starts the VM, on the descriptors it boots from).
            for (key, part) in vm.files() {
                let path = paths.images_dir.join(part.file.as_str());
                let (_, actual) =
                    hash_file(&path).with_context(|| format!("image {name}: the {key}"))?;
                if actual != part.sha256.as_str() {
                    bail!(
                        "image {name}: the {key} {} has sha256 {actual}, but {file} (commit {}) declares {}; refusing to use it",
                        path.display(),
                        checkout.commit.as_deref().unwrap_or("unknown"),
                        part.sha256
                    );
                }
                println!(
                    "image {name}: {key} {} sha256 {actual} verified",
                    path.display()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let path = paths.images_dir.join(file_name.as_str());
    let Some(expected) = sha256 else {
        // A directory: nothing to hash; it must be one.
        if image.format == ImageFormat::Directory && path.is_dir() {
            println!("image {name}: directory {} (no digest)", path.display());
            return Ok(ExitCode::SUCCESS);
        }
        bail!("image {name}: {} is not a directory", path.display());
    };
    let (_, actual) = hash_file(&path).with_context(|| format!("image {name}"))?;
    if actual != expected.as_str() {
        bail!(
            "image {name}: {} has sha256 {actual}, but {file} (commit {}) declares {expected}; refusing to use it",
            path.display(),
            checkout.commit.as_deref().unwrap_or("unknown"),
        );
    }
    // A pulled image is signed: check that too, offline, against the
    // host's image keys (the same check as an extension's at apply).
    let mut signer = String::new();
    if image.origin.is_some() {
        let config = crate::host::config(&paths.host_config)?;
        let keys = bbhv_ext::sign::TrustedKeys::load(&config.trust.image_signers)
            .map_err(|e| anyhow::anyhow!("image {name}: refused: {e}"))?;
        let by =
            bbhv_ext::store::Store::new(paths.images_dir.clone()).verify(name, &actual, &keys)?;
        signer = format!(", signed by {}", escape(&by));
    }
    println!(
        "image {name}: {} {} sha256 {actual} verified{signer}",
        image.format,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens `path` (not following a symlink), checks it is a regular file and
/// hashes it: the open file (for a caller that hands it on) and its sha256.
pub fn hash_file(path: &std::path::Path) -> anyhow::Result<(std::fs::File, String)> {
    let mut input = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if !input.metadata()?.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = input
            .read(&mut buffer)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let actual = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((input, actual))
}
