//! `bbhv-ext`: sysext and confext images, from a tree to an active
//! extension.
//!
//! - [`release`]: `extension-release.<name>` (parse, write);
//! - [`tree`]: what a tree may hold before it becomes an image;
//! - [`build`]: the image, by mksquashfs or mkfs.erofs, reproducible, signed;
//! - [`sign`]: SHA256SUMS + SSH signature, checked against `trust.image_signers`;
//! - [`store`]: `bbhv image pull` into the content-addressed store, and its
//!   garbage collection by generation;
//! - [`mod@apply`]: what a checkout pins, verified ([`verify_checkout`]) and
//!   activated ([`apply()`]): the two calls `bbhv sync` makes.
//!
//! systemd does the merging (`systemd-sysext refresh`, `systemd-confext
//! refresh`); docs/extensions.md says which piece uses what.

pub mod apply;
pub mod build;
pub mod release;
pub mod sign;
pub mod store;
pub mod tree;

use std::io::Read as _;
use std::path::Path;

pub use apply::{
    ApplyOptions, ApplyReport, Pins, UkiPin, Verified, VerifiedUki, apply, fetch_and_verify,
    verify_checkout, verify_uki,
};
pub use release::{Kind, Release};

use sha2::Digest as _;

/// Every failure of this crate; each names what it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{tree}: the tree cannot become an image:\n  {}", problems.join("\n  "))]
    Tree { tree: String, problems: Vec<String> },
    #[error("{tool}: {message}")]
    Tool { tool: String, message: String },
    /// An image that must not be used, and why.
    #[error("image {image}: refused: {reason}")]
    Refused { image: String, reason: String },
    /// A checkout whose images cannot all be used: every refusal, each
    /// naming its image (one line: a log line per refusal is the caller's).
    #[error("{checkout}: {} refused: {}", plural(refusals.len()), refusals.join("; "))]
    Checkout {
        checkout: String,
        refusals: Vec<String>,
    },
    #[error("{file}: {message}")]
    Repo { file: String, message: String },
    #[error("fetching {url}: {message}")]
    Fetch { url: String, message: String },
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 image".into()
    } else {
        format!("{n} images")
    }
}

/// SHA-256 of a file as lowercase hex, and its size; `progress` gets each
/// chunk's length.
pub fn sha256_file(path: &Path, mut progress: impl FnMut(u64)) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        progress(n as u64);
    }
    Ok((hex(&hasher.finalize()), size))
}

/// SHA-256 of bytes as lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
