//! `bbhv image verify NAME`: the digest of the image file against
//! `images/NAME.json` of the applied checkout. A mismatch fails, naming the
//! image and both digests (bitbuilder-image@NAME.service shows it).

mod common;

use std::process::Command;

use common::*;

/// sha256 of "busybox image v1\n" (`sha256sum`).
const DIGEST: &str = "0e87bd1b9b1dbb2ea7b6fd8ef1d4c4dd6f4d81c7b0a1a8b5d88d35e3c7b1b4fd";

fn verify(host: &Host, images: &std::path::Path, name: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_bbhv"))
        .args(["image", "verify", name])
        .env("BITBUILDER_CURRENT", host.current())
        .env("BITBUILDER_IMAGES_DIR", images)
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn a_digest_mismatch_names_the_image_and_both_digests() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("images")).unwrap();
    std::fs::create_dir_all(repo.path().join("tenants")).unwrap();
    let images = tempfile::tempdir().unwrap();
    std::fs::write(images.path().join("bb.squashfs"), "busybox image v1\n").unwrap();
    let actual = String::from_utf8(
        Command::new("sha256sum")
            .arg(images.path().join("bb.squashfs"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()[..64]
        .to_owned();
    std::fs::write(
        repo.path().join("images/bb.json"),
        format!(r#"{{ "schemaVersion": 1, "file": "bb.squashfs", "sha256": "{actual}" }}"#),
    )
    .unwrap();
    std::fs::write(
        repo.path().join("images/bad.json"),
        format!(r#"{{ "schemaVersion": 1, "file": "bb.squashfs", "sha256": "{DIGEST}" }}"#),
    )
    .unwrap();
    let host = Host::with_repo(repo.path());

    let (ok, text) = verify(&host, images.path(), "bb");
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("sha256 {actual} verified")),
        "{text}"
    );

    let (ok, text) = verify(&host, images.path(), "bad");
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "image bad: {}",
            images.path().join("bb.squashfs").display()
        )) && text.contains(&format!("has sha256 {actual}, but images/bad.json"))
            && text.contains(&format!("declares {DIGEST}; refusing to use it")),
        "{text}"
    );

    // The file changed after the checkout was made: refused too.
    std::fs::write(images.path().join("bb.squashfs"), "tampered\n").unwrap();
    let (ok, text) = verify(&host, images.path(), "bb");
    assert!(!ok && text.contains("refusing to use it"), "{text}");

    // A symlink in place of the image is not followed; a missing image or
    // declaration is an error.
    std::fs::remove_file(images.path().join("bb.squashfs")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", images.path().join("bb.squashfs")).unwrap();
    let (ok, text) = verify(&host, images.path(), "bb");
    assert!(!ok, "{text}");
    let (ok, text) = verify(&host, images.path(), "nope");
    assert!(
        !ok && text.contains("images/nope.json: does not exist"),
        "{text}"
    );
}
