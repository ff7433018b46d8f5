//! `bbhv tenant storage ID`: the tenant's state file system is an ext4
//! image of its storageQuota, created once, grown when the quota grows,
//! never shrunk.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn repo_with_quota(dir: &Path, quota: &str) {
    std::fs::create_dir_all(dir.join("tenants/t")).unwrap();
    std::fs::write(
        dir.join("tenants/t/metadata.json"),
        format!(
            r#"{{ "schemaVersion": 1, "id": "t", "resources": {{ "storageQuota": "{quota}" }} }}"#
        ),
    )
    .unwrap();
}

fn storage(host: &Host, dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_bbhv"))
        .args(["tenant", "storage", "t"])
        .env("BITBUILDER_CURRENT", host.current())
        .env("BITBUILDER_STORAGE_DIR", dir)
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

fn block_count(image: &Path) -> u64 {
    let out = Command::new("/usr/sbin/dumpe2fs")
        .arg("-h")
        .arg(image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let blocks: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Block count:"))
        .unwrap_or_else(|| panic!("not ext4: {text}"))
        .trim()
        .parse()
        .unwrap();
    let size: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Block size:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    blocks * size
}

#[test]
fn the_state_file_system_is_created_grown_and_never_shrunk() {
    let repo = tempfile::tempdir().unwrap();
    repo_with_quota(repo.path(), "64M");
    let host = Host::with_repo(repo.path());
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("t.img");

    let (ok, text) = storage(&host, dir.path());
    assert!(ok, "{text}");
    assert!(text.contains("created"), "{text}");
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 64 << 20);
    assert_eq!(block_count(&image), 64 << 20);

    // Again: nothing to do.
    let (ok, text) = storage(&host, dir.path());
    assert!(ok && text.contains("is 64M"), "{text}");

    // A raised quota grows the file system (the checkout changed).
    let generation = std::fs::read_link(host.current()).unwrap();
    repo_with_quota(&host.dir.path().join(&generation), "96M");
    let (ok, text) = storage(&host, dir.path());
    assert!(ok && text.contains("grew"), "{text}");
    assert_eq!(block_count(&image), 96 << 20);

    // A lowered one is not applied, and said.
    repo_with_quota(&host.dir.path().join(&generation), "32M");
    let (ok, text) = storage(&host, dir.path());
    assert!(ok && text.contains("shrinking is not done"), "{text}");
    assert_eq!(block_count(&image), 96 << 20);
}
