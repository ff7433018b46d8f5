//! The content-addressed image store (`/var/lib/bitbuilder/images`): a
//! pulled image is `sha256-<hex>`, beside it the SHA256SUMS and signature
//! it was verified with (`sha256-<hex>.SHA256SUMS`, `….SHA256SUMS.sig`), so
//! it is verified again, offline, at every apply. `bbhv image pull`
//! fetches into it; [`collect`] removes what no kept generation names.

use std::collections::BTreeSet;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};

use bbhv_spec::Image;
use bbhv_spec::image::Content;
use sha2::Digest as _;

use crate::Error;
use crate::sign::{MAX_SUMS, SUMS, SUMS_SIG, TrustedKeys, verify_sums};

/// The store's directory.
#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
}

/// A stored image's three files.
#[derive(Debug, Clone)]
pub struct Stored {
    pub image: PathBuf,
    pub sums: PathBuf,
    pub sig: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    pub fn paths(&self, sha256: &str) -> Stored {
        let image = self.dir.join(format!("sha256-{sha256}"));
        Stored {
            sums: self.dir.join(format!("sha256-{sha256}.{SUMS}")),
            sig: self.dir.join(format!("sha256-{sha256}.{SUMS_SIG}")),
            image,
        }
    }

    /// Verifies the stored image `sha256` (named `image` in errors): its
    /// bytes, then the signature. The principal that signed it.
    pub fn verify(&self, image: &str, sha256: &str, keys: &TrustedKeys) -> Result<String, Error> {
        let refused = |reason: String| Error::Refused {
            image: image.to_owned(),
            reason,
        };
        let stored = self.paths(sha256);
        let meta = std::fs::symlink_metadata(&stored.image).map_err(|e| {
            refused(format!(
                "{} is not in the store ({e}); run `bbhv image pull {image}`",
                stored.image.display()
            ))
        })?;
        if !meta.is_file() {
            return Err(refused(format!(
                "{} is not a regular file",
                stored.image.display()
            )));
        }
        let (actual, _) = crate::sha256_file(&stored.image, |_| {})
            .map_err(|e| refused(format!("{}: {e}", stored.image.display())))?;
        if actual != sha256 {
            return Err(refused(format!(
                "{} has sha256 {actual}, the repository pins {sha256} (the file was changed)",
                stored.image.display()
            )));
        }
        let sums = read_small(&stored.sums)
            .map_err(|e| refused(format!("unsigned: {}: {e}", stored.sums.display())))?;
        let sig = read_small(&stored.sig).ok();
        let sig = sig.as_deref().map(String::from_utf8_lossy);
        verify_sums(keys, &sums, sig.as_deref(), sha256)
            .map_err(|e| refused(format!("signature: {e}")))
    }
}

fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_SUMS as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > MAX_SUMS {
        return Err(std::io::Error::other("too large"));
    }
    Ok(bytes)
}

/// Every image of `images/*.json` in a checkout, parsed; a bad file is an
/// error naming it.
pub fn checkout_images(checkout: &Path) -> Result<Vec<Image>, Error> {
    let dir = checkout.join("images");
    let mut names = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                if let Some(name) = file.strip_suffix(".json")
                    && !name.starts_with('.')
                {
                    names.push(name.to_owned());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::Io {
                path: dir.display().to_string(),
                message: e.to_string(),
            });
        }
    }
    names.sort();
    names
        .iter()
        .map(|name| checkout_image(checkout, name))
        .collect()
}

/// `images/<name>.json` of a checkout.
pub fn checkout_image(checkout: &Path, name: &str) -> Result<Image, Error> {
    let file = Image::source_file(name);
    let text = bbhv_repo::read_image(checkout, name).map_err(|message| Error::Repo {
        file: file.clone(),
        message,
    })?;
    Image::parse(&file, name, &text).map_err(|d| Error::Repo {
        file: file.clone(),
        message: d
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// The digest of a pulled (content-addressed) image.
pub fn pulled_digest(image: &Image) -> Option<&str> {
    match (&image.origin, &image.content) {
        (
            Some(_),
            Content::Tree {
                sha256: Some(d), ..
            },
        ) => Some(d.as_str()),
        _ => None,
    }
}

/// What one pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pulled {
    /// Already in the store and verified.
    Present { image: String, sha256: String },
    /// Fetched and verified now.
    Fetched {
        image: String,
        sha256: String,
        bytes: u64,
        signer: String,
    },
}

/// Fetches `image` (if not already stored), verifies digest and signature
/// before anything is renamed into the store: a refused image leaves
/// nothing behind.
pub fn pull(
    store: &Store,
    image: &Image,
    keys: &TrustedKeys,
    progress: bool,
) -> Result<Pulled, Error> {
    let name = image.name.to_string();
    let (Some(origin), Some(sha256)) = (&image.origin, pulled_digest(image)) else {
        return Err(Error::Usage(format!(
            "image {name}: {} has no \"source\" to pull from",
            image.source
        )));
    };
    if store.verify(&name, sha256, keys).is_ok() {
        return Ok(Pulled::Present {
            image: name,
            sha256: sha256.to_owned(),
        });
    }
    std::fs::create_dir_all(&store.dir).map_err(|e| Error::Io {
        path: store.dir.display().to_string(),
        message: e.to_string(),
    })?;
    let refused = |reason: String| Error::Refused {
        image: name.clone(),
        reason,
    };
    let base = origin.url.rsplit_once('/').map_or("", |(b, _)| b);
    let sums = fetch_small(&format!("{base}/{SUMS}"))?;
    let sig = match fetch_small(&format!("{base}/{SUMS_SIG}")) {
        Ok(sig) => Some(String::from_utf8_lossy(&sig).into_owned()),
        Err(Error::Fetch { message, .. })
            if message.contains("404") || message.contains("No such file") =>
        {
            None
        }
        Err(e) => return Err(e),
    };
    let signer = verify_sums(keys, &sums, sig.as_deref(), sha256)
        .map_err(|e| refused(format!("{base}/{SUMS_SIG}: {e}")))?;
    let stored = store.paths(sha256);
    let tmp = store
        .dir
        .join(format!(".pull-{sha256}.{}", std::process::id()));
    let result = (|| {
        let (actual, bytes) = fetch_to(&origin.url, &tmp, progress)?;
        if actual != sha256 {
            return Err(refused(format!(
                "{} has sha256 {actual}; images/{name}.json pins {sha256}",
                origin.url
            )));
        }
        let write = |path: &Path, bytes: &[u8]| {
            std::fs::write(path, bytes).map_err(|e| Error::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })
        };
        write(&stored.sums, &sums)?;
        write(&stored.sig, sig.as_deref().unwrap_or("").as_bytes())?;
        std::fs::rename(&tmp, &stored.image).map_err(|e| Error::Io {
            path: stored.image.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(bytes)
    })();
    let _ = std::fs::remove_file(&tmp);
    let bytes = result?;
    Ok(Pulled::Fetched {
        image: name,
        sha256: sha256.to_owned(),
        bytes,
        signer,
    })
}

fn agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(std::time::Duration::from_secs(3600)))
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .build()
        .into()
}

/// A reader over a URL's body and its length when known.
fn open(url: &str) -> Result<(Box<dyn Read>, Option<u64>), Error> {
    let fail = |message: String| Error::Fetch {
        url: url.to_owned(),
        message,
    };
    if let Some(path) = url.strip_prefix("file://") {
        let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let len = file.metadata().ok().map(|m| m.len());
        return Ok((Box::new(file), len));
    }
    let response = agent().get(url).call().map_err(|e| fail(e.to_string()))?;
    let len = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Ok((Box::new(response.into_body().into_reader()), len))
}

fn fetch_small(url: &str) -> Result<Vec<u8>, Error> {
    let (reader, _) = open(url)?;
    let mut bytes = Vec::new();
    reader
        .take(MAX_SUMS as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Fetch {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
    if bytes.len() > MAX_SUMS {
        return Err(Error::Fetch {
            url: url.to_owned(),
            message: format!("larger than {MAX_SUMS} bytes"),
        });
    }
    Ok(bytes)
}

/// Streams `url` into `path`, hashing as it goes; the digest and size.
fn fetch_to(url: &str, path: &Path, progress: bool) -> Result<(String, u64), Error> {
    let (mut reader, len) = open(url)?;
    let io = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut file = std::fs::File::create(path).map_err(io)?;
    let bar = progress.then(|| {
        let bar = len.map_or_else(
            indicatif::ProgressBar::new_spinner,
            indicatif::ProgressBar::new,
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_owned());
        bar
    });
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::Fetch {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(io)?;
        total += n as u64;
        if let Some(bar) = &bar {
            bar.inc(n as u64);
        }
    }
    file.sync_all().map_err(io)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok((crate::hex(&hasher.finalize()), total))
}

/// The digests the generations to keep name: the newest `keep` of
/// `generations/` (by sequence number), plus whatever `current` and
/// `previous` point at.
pub fn referenced(state_dir: &Path, keep: usize) -> Result<BTreeSet<String>, Error> {
    let generations = state_dir.join("generations");
    let mut dirs: Vec<(u64, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&generations) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(seq) = name.split('-').next().and_then(|s| s.parse().ok()) {
                dirs.push((seq, entry.path()));
            }
        }
    }
    dirs.sort();
    let mut keep_dirs: Vec<PathBuf> = dirs.into_iter().rev().take(keep).map(|(_, p)| p).collect();
    for link in ["current", "previous"] {
        if let Ok(target) = std::fs::canonicalize(state_dir.join(link)) {
            keep_dirs.push(target);
        }
    }
    let mut digests = BTreeSet::new();
    for dir in keep_dirs {
        // A generation whose images cannot be read keeps everything:
        // never collect what might still be needed.
        let images = checkout_images(&dir)?;
        for image in &images {
            if let Some(d) = pulled_digest(image) {
                digests.insert(d.to_owned());
            }
        }
    }
    Ok(digests)
}

/// Removes the store's `sha256-*` entries no kept generation names; other
/// files are never touched. The removed paths.
pub fn collect(store: &Store, keep: &BTreeSet<String>) -> Result<Vec<PathBuf>, Error> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(&store.dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => {
            return Err(Error::Io {
                path: store.dir.display().to_string(),
                message: e.to_string(),
            });
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("sha256-") else {
            continue;
        };
        let digest = rest.split('.').next().unwrap_or("");
        if digest.len() != 64 || keep.contains(digest) {
            continue;
        }
        let path = entry.path();
        std::fs::remove_file(&path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        removed.push(path);
    }
    removed.sort();
    Ok(removed)
}
