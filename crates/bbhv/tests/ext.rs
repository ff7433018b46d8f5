//! `bbhv ext build`, `bbhv image pull`, `bbhv ext apply` as a user runs
//! them (the real mksquashfs and ssh-keygen), with the host's paths moved
//! by the environment: build and sign, pull over file://, apply into a
//! scratch root (`BITBUILDER_EXT_ROOT`, which also skips the refresh),
//! refuse a tampered store, refuse a bad tree naming the path.

use std::path::Path;
use std::process::Command;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn bbhv(&self, args: &[&str]) -> (bool, String) {
        let d = self.path();
        let output = Command::new(env!("CARGO_BIN_EXE_bbhv"))
            .args(args)
            .env("BITBUILDER_HOST_CONFIG", d.join("host.toml"))
            .env("BITBUILDER_IMAGES_DIR", d.join("store"))
            .env("BITBUILDER_CURRENT", d.join("checkout"))
            .env("BITBUILDER_EXT_ROOT", d.join("root"))
            .env("SOURCE_DATE_EPOCH", "1700000000")
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
}

#[test]
fn build_pull_apply_and_refuse() {
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
    };
    let d = env.path();
    let key = d.join("key");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let public = std::fs::read_to_string(d.join("key.pub")).unwrap();
    std::fs::write(d.join("signers"), format!("ops@example.org {public}")).unwrap();
    std::fs::write(
        d.join("host.toml"),
        format!(
            "hostname = \"hv1\"\n[trust]\nimage_signers = \"{}\"\n",
            d.join("signers").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("tree/usr/bin")).unwrap();
    std::fs::write(d.join("tree/usr/bin/hello"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::create_dir_all(d.join("serve")).unwrap();
    let url = format!("file://{}", d.join("serve").display());
    let out = d.join("serve/hello_1.raw");
    let (ok, text) = env.bbhv(&[
        "ext",
        "build",
        d.join("tree").to_str().unwrap(),
        "--name",
        "hello",
        "--output",
        out.to_str().unwrap(),
        "--sign-key",
        key.to_str().unwrap(),
        "--manifest-source",
        &url,
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("sysext hello:") && text.contains("signed"),
        "{text}"
    );
    // The printed manifest is what the checkout commits.
    let manifest = &text[text.find('{').unwrap()..=text.rfind('}').unwrap()];
    let checkout = d.join("checkout");
    std::fs::create_dir_all(checkout.join("images")).unwrap();
    std::fs::create_dir_all(checkout.join("hosts")).unwrap();
    std::fs::write(checkout.join("images/hello.json"), manifest).unwrap();
    std::fs::write(
        checkout.join("hosts/hv1.json"),
        r#"{ "schemaVersion": 1, "sysexts": ["hello"] }"#,
    )
    .unwrap();

    let (ok, text) = env.bbhv(&["ext", "apply"]);
    assert!(
        !ok && text.contains("image hello: refused:") && text.contains("bbhv image pull hello"),
        "{text}"
    );
    let (ok, text) = env.bbhv(&["image", "pull"]);
    assert!(
        ok && text.contains("image hello: fetched") && text.contains("signed by ops@example.org"),
        "{text}"
    );
    let (ok, text) = env.bbhv(&["ext", "apply", "--json"]);
    assert!(ok, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["active"][0]["name"], "hello");
    let link = d.join("root/var/lib/extensions/hello.raw");
    let target = std::fs::read_link(&link).unwrap();
    assert!(target.starts_with(d.join("store")), "{target:?}");
    let (ok, text) = env.bbhv(&["image", "verify", "hello"]);
    assert!(ok && text.contains("signed by ops@example.org"), "{text}");

    // A flipped byte in the store: verify and apply refuse, the link stays.
    let mut bytes = std::fs::read(&target).unwrap();
    bytes[200] ^= 0xff;
    std::fs::write(&target, bytes).unwrap();
    let (ok, text) = env.bbhv(&["ext", "verify"]);
    assert!(
        !ok && text.contains("image hello: refused:") && text.contains("the file was changed"),
        "{text}"
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), target);

    // A confext tree with usr/ is refused, naming the path.
    let (ok, text) = env.bbhv(&[
        "ext",
        "build",
        d.join("tree").to_str().unwrap(),
        "--kind",
        "confext",
        "--output",
        d.join("x.raw").to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("usr: not allowed at the top of a confext"),
        "{text}"
    );
    assert!(!d.join("x.raw").exists());
}
