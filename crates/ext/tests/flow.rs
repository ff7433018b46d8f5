//! The whole path with the real tools (mksquashfs, mkfs.erofs, ssh-keygen):
//! build twice (same bytes), sign, pull over file://, verify, tamper,
//! apply into a scratch root (no refresh), roll back, collect.

use std::path::{Path, PathBuf};
use std::process::Command;

use bbhv_ext::build::{BuildOptions, Fs, build};
use bbhv_ext::sign::TrustedKeys;
use bbhv_ext::store::{self, Pulled, Store};
use bbhv_ext::{ApplyOptions, Kind, Release, apply, verify_checkout};

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen is needed by this test");
    assert!(status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, format!("{name}@test {public}"))
}

fn tree(dir: &Path, version: &str) -> PathBuf {
    let tree = dir.join(format!("tree-{version}"));
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    std::fs::write(
        tree.join("usr/bin/hello"),
        format!("#!/bin/sh\necho hello {version}\n"),
    )
    .unwrap();
    tree
}

fn opts(tree: PathBuf, output: PathBuf, fs: Fs, key: Option<PathBuf>) -> BuildOptions {
    BuildOptions {
        tree,
        name: "hello".into(),
        kind: Kind::Sysext,
        fs,
        release: Release::any(),
        output,
        source_date_epoch: 1_700_000_000,
        allow_setuid: false,
        sign_key: key,
        progress: false,
        digest: true,
    }
}

fn checkout(dir: &Path, name: &str, sha: &str, url: &str) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("images")).unwrap();
    std::fs::create_dir_all(root.join("hosts")).unwrap();
    std::fs::write(
        root.join("images/hello.json"),
        format!(r#"{{ "schemaVersion": 1, "source": "{url}", "sha256": "{sha}" }}"#),
    )
    .unwrap();
    std::fs::write(
        root.join("hosts/hv1.json"),
        r#"{ "schemaVersion": 1, "sysexts": ["hello"] }"#,
    )
    .unwrap();
    root
}

#[test]
fn reproducible_images() {
    let dir = tempfile::tempdir().unwrap();
    let t = tree(dir.path(), "1");
    for fs in [Fs::Squashfs, Fs::Erofs] {
        let a = build(&opts(t.clone(), dir.path().join("a.raw"), fs, None)).unwrap();
        // Another time stamp on the source files changes nothing.
        Command::new("touch")
            .arg(t.join("usr/bin/hello"))
            .status()
            .unwrap();
        let b = build(&opts(t.clone(), dir.path().join("b.raw"), fs, None)).unwrap();
        assert_eq!(a.sha256, b.sha256, "{fs:?}");
        assert_eq!(a.stats.files, 1);
    }
    // The source tree is untouched (the release file went into the stage).
    assert!(!t.join("usr/lib").exists());
    let bad = build(&opts(
        t.join("usr"),
        dir.path().join("c.raw"),
        Fs::Squashfs,
        None,
    ))
    .unwrap_err();
    assert!(
        bad.to_string()
            .contains("bin: not allowed at the top of a sysext"),
        "{bad}"
    );
}

#[test]
fn sign_pull_verify_apply_rollback_collect() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, signer_line) = keygen(d, "ops");
    let (other_key, _) = keygen(d, "stranger");
    let signers = d.join("image_signers");
    std::fs::write(&signers, format!("{signer_line}\n")).unwrap();
    let keys = TrustedKeys::load(&signers).unwrap();
    let serve = d.join("serve");
    std::fs::create_dir_all(&serve).unwrap();
    let v1 = build(&opts(
        tree(d, "1"),
        serve.join("hello_1.raw"),
        Fs::Squashfs,
        Some(key.clone()),
    ))
    .unwrap();
    let v2 = build(&opts(
        tree(d, "2"),
        serve.join("hello_2.raw"),
        Fs::Squashfs,
        Some(key.clone()),
    ))
    .unwrap();
    let sums = std::fs::read_to_string(serve.join("SHA256SUMS")).unwrap();
    assert_eq!(
        sums,
        format!(
            "{} *hello_1.raw\n{} *hello_2.raw\n",
            v1.sha256.clone().unwrap(),
            v2.sha256.clone().unwrap()
        )
    );
    let url = |f: &str| format!("file://{}/{f}", serve.display());
    let c1 = checkout(d, "c1", &v1.sha256.clone().unwrap(), &url("hello_1.raw"));
    let c2 = checkout(d, "c2", &v2.sha256.clone().unwrap(), &url("hello_2.raw"));
    let store = Store::new(d.join("store"));
    let image1 = store::checkout_image(&c1, "hello").unwrap();
    let image2 = store::checkout_image(&c2, "hello").unwrap();
    assert!(matches!(
        store::pull(&store, &image1, &keys, false).unwrap(),
        Pulled::Fetched { .. }
    ));
    assert!(matches!(
        store::pull(&store, &image1, &keys, false).unwrap(),
        Pulled::Present { .. }
    ));

    let root = d.join("root");
    let options = ApplyOptions {
        root: root.clone(),
        store: store.clone(),
        signers: signers.clone(),
        hostname: "hv1".into(),
        refresh: false,
    };
    // c2's image is not pulled yet: refused, naming the image.
    let e = verify_checkout(&c2, &options).unwrap_err().to_string();
    assert!(
        e.contains("image hello: refused:") && e.contains("bbhv image pull hello"),
        "{e}"
    );
    let report = apply(&c1, &options).unwrap();
    let link = root.join("var/lib/extensions/hello.raw");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        store.paths(&v1.sha256.clone().unwrap()).image
    );
    assert!(report.changed());
    assert!(!apply(&c1, &options).unwrap().changed(), "idempotent");

    let _ = image2;
    // What bbhv sync runs before it accepts c2: pull, then verify.
    let verified = bbhv_ext::fetch_and_verify(&c2, &options, false).unwrap();
    assert_eq!(verified[0].sha256, v2.sha256.clone().unwrap());
    assert_eq!(verified[0].signer, "ops@test");
    apply(&c2, &options).unwrap();
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        store.paths(&v2.sha256.clone().unwrap()).image
    );

    // Rollback: c1 again, from the store, with the source gone.
    std::fs::remove_file(serve.join("hello_1.raw")).unwrap();
    apply(&c1, &options).unwrap();
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        store.paths(&v1.sha256.clone().unwrap()).image
    );

    // One flipped byte in the stored v2: refused, and v1 stays linked.
    let stored2 = store.paths(&v2.sha256.clone().unwrap()).image;
    let mut bytes = std::fs::read(&stored2).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&stored2, &bytes).unwrap();
    let e = apply(&c2, &options).unwrap_err().to_string();
    assert!(
        e.contains("image hello: refused:") && e.contains("the file was changed"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        store.paths(&v1.sha256.clone().unwrap()).image
    );

    // Unsigned: an empty signature.
    std::fs::write(store.paths(&v1.sha256.clone().unwrap()).sig, "").unwrap();
    let e = verify_checkout(&c1, &options).unwrap_err().to_string();
    assert!(
        e.contains("image hello: refused: signature: no signature"),
        "{e}"
    );

    // Signed by a key the host does not trust: refused at pull, nothing stored.
    let serve3 = d.join("serve3");
    std::fs::create_dir_all(&serve3).unwrap();
    let v3 = build(&opts(
        tree(d, "3"),
        serve3.join("hello_3.raw"),
        Fs::Squashfs,
        Some(other_key),
    ))
    .unwrap();
    let c3 = checkout(
        d,
        "c3",
        &v3.sha256.clone().unwrap(),
        &format!("file://{}/hello_3.raw", serve3.display()),
    );
    let e = store::pull(
        &store,
        &store::checkout_image(&c3, "hello").unwrap(),
        &keys,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("image hello: refused:") && e.contains("does not trust"),
        "{e}"
    );
    assert!(!store.paths(&v3.sha256.clone().unwrap()).image.exists());
    // A wrong digest in the manifest: refused, nothing stored.
    let c4 = checkout(d, "c4", &"0".repeat(64), &url("hello_2.raw"));
    let e = store::pull(
        &store,
        &store::checkout_image(&c4, "hello").unwrap(),
        &keys,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("does not list the digest") || e.contains("pins 000"),
        "{e}"
    );

    // Collection keeps what is named and nothing else.
    let keep = [v1.sha256.clone().unwrap().clone()].into_iter().collect();
    let removed = store::collect(&store, &keep).unwrap();
    assert_eq!(removed.len(), 3, "{removed:?}");
    assert!(store.paths(&v1.sha256.clone().unwrap()).image.exists());
    assert!(!stored2.exists());
}

#[test]
fn a_pinned_uki_is_pulled_and_verified_like_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, signer_line) = keygen(d, "ops");
    let signers = d.join("image_signers");
    std::fs::write(&signers, format!("{signer_line}\n")).unwrap();
    let serve = d.join("serve");
    std::fs::create_dir_all(&serve).unwrap();
    std::fs::write(serve.join("uki-3.efi"), b"MZ not really a UKI").unwrap();
    let sha = bbhv_ext::sha256_file(&serve.join("uki-3.efi"), |_| {})
        .unwrap()
        .0;
    std::fs::write(serve.join("SHA256SUMS"), format!("{sha} *uki-3.efi\n")).unwrap();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "bbhv-image", "-f"])
        .arg(&key)
        .arg(serve.join("SHA256SUMS"))
        .status()
        .unwrap();
    assert!(status.success());
    let c = d.join("c");
    std::fs::create_dir_all(c.join("images")).unwrap();
    std::fs::create_dir_all(c.join("hosts")).unwrap();
    let image = |format: &str| {
        std::fs::write(
            c.join("images/host-uki.json"),
            format!(
                r#"{{ "schemaVersion": 1, "format": "{format}", "source": "file://{}/uki-3.efi", "sha256": "{sha}" }}"#,
                serve.display()
            ),
        )
        .unwrap();
    };
    let pin = |sha: &str| {
        std::fs::write(
            c.join("hosts/hv1.json"),
            format!(
                r#"{{ "schemaVersion": 1, "uki": {{ "image": "host-uki", "version": "3", "sha256": "{sha}" }} }}"#
            ),
        )
        .unwrap();
    };
    image("uki");
    pin(&sha);
    let store = Store::new(d.join("store"));
    let options = ApplyOptions {
        root: d.join("root"),
        store: store.clone(),
        signers,
        hostname: "hv1".into(),
        refresh: false,
    };
    // Not pulled yet: refused, naming the image.
    let e = bbhv_ext::verify_uki(&c, &options).unwrap_err().to_string();
    assert!(e.contains("image host-uki: refused:"), "{e}");
    // What bbhv sync runs first pulls every image with a source, the UKI too.
    bbhv_ext::fetch_and_verify(&c, &options, false).unwrap();
    let v = bbhv_ext::verify_uki(&c, &options).unwrap().unwrap();
    assert_eq!(
        (v.pin.version.as_str(), v.signer.as_str()),
        ("3", "ops@test")
    );
    assert_eq!(v.path, store.paths(&sha).image);
    // The host pin and the image must name the same bytes.
    pin(&"0".repeat(64));
    let e = bbhv_ext::verify_uki(&c, &options).unwrap_err().to_string();
    assert!(e.contains("they must agree"), "{e}");
    // A squashfs image is not a UKI.
    pin(&sha);
    image("squashfs");
    let e = bbhv_ext::verify_uki(&c, &options).unwrap_err().to_string();
    assert!(e.contains("must be \"format\": \"uki\""), "{e}");
    // One flipped byte in the store: refused.
    image("uki");
    let mut bytes = std::fs::read(&v.path).unwrap();
    bytes[3] ^= 1;
    std::fs::write(&v.path, &bytes).unwrap();
    let e = bbhv_ext::verify_uki(&c, &options).unwrap_err().to_string();
    assert!(e.contains("the file was changed"), "{e}");
}
