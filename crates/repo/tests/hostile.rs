//! A repository is hostile input: each trick is an error for that tenant
//! (never a crash, a hang or a read outside the checkout) and the other
//! tenants are still read.

use std::path::Path;

use bbhv_repo::{MAX_METADATA_BYTES, read_tenant, read_tenants};

const GOOD: &str = r#"{ "schemaVersion": 1, "id": "good" }"#;

fn tenant(root: &Path, id: &str, text: &[u8]) {
    std::fs::create_dir_all(root.join("tenants").join(id)).unwrap();
    std::fs::write(root.join("tenants").join(id).join("metadata.json"), text).unwrap();
}

fn errors(root: &Path) -> Vec<(String, String)> {
    read_tenants(root)
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.dir_name,
                s.text.map_or_else(|d| d.message, |_| "ok".to_owned()),
            )
        })
        .collect()
}

#[test]
fn every_trick_is_an_error_of_its_own_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("metadata.json"), r#"{ "secret": true }"#).unwrap();
    let root = dir.path().join("repo");
    tenant(&root, "good", GOOD.as_bytes());
    // A tenant directory that is a symlink out of the repository.
    std::os::unix::fs::symlink(&outside, root.join("tenants/dir-link")).unwrap();
    // A metadata.json that is a symlink out of the repository.
    std::fs::create_dir_all(root.join("tenants/file-link")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("metadata.json"),
        root.join("tenants/file-link/metadata.json"),
    )
    .unwrap();
    // A FIFO: a naive reader blocks forever.
    std::fs::create_dir_all(root.join("tenants/fifo")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("tenants/fifo/metadata.json"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    // Huge and non-UTF-8 files.
    tenant(&root, "huge", &vec![b' '; MAX_METADATA_BYTES as usize + 1]);
    tenant(&root, "latin1", b"{ \"id\": \"caf\xe9\" }");
    // metadata.json that is a directory.
    std::fs::create_dir_all(root.join("tenants/dir-json/metadata.json")).unwrap();

    assert_eq!(
        errors(&root),
        vec![
            ("dir-json".into(), "not a regular file (a directory)".into()),
            ("dir-link".into(), "tenants/dir-link is a symlink; a tenant must be a real directory inside the repository".into()),
            ("fifo".into(), "not a regular file (a FIFO)".into()),
            ("file-link".into(), "is a symlink; a file in the repository may not be one".into()),
            ("good".into(), "ok".into()),
            ("huge".into(), "larger than 1024 KiB; a metadata file is at most that".into()),
            ("latin1".into(), "not UTF-8 text (invalid byte at offset 12)".into()),
        ]
    );
}

#[test]
fn a_file_of_exactly_the_limit_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = GOOD.as_bytes().to_vec();
    text.resize(MAX_METADATA_BYTES as usize, b' ');
    tenant(dir.path(), "good", &text);
    assert_eq!(errors(dir.path()), vec![("good".into(), "ok".into())]);
}

#[test]
fn a_tenants_directory_that_is_a_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    tenant(&dir.path().join("elsewhere"), "good", GOOD.as_bytes());
    let root = dir.path().join("repo");
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(dir.path().join("elsewhere/tenants"), root.join("tenants")).unwrap();
    let error = read_tenants(&root).unwrap_err().to_string();
    assert!(
        error.ends_with("tenants: is a symlink; a directory in the repository may not be one"),
        "{error}"
    );
}

#[test]
fn no_tenants_directory_is_an_empty_repository() {
    let dir = tempfile::tempdir().unwrap();
    assert!(read_tenants(dir.path()).unwrap().is_empty());
}

#[test]
fn reading_one_tenant_refuses_path_tricks() {
    let dir = tempfile::tempdir().unwrap();
    tenant(dir.path(), "good", GOOD.as_bytes());
    assert!(read_tenant(dir.path(), "good").unwrap().text.is_ok());
    for id in ["../good", "good/../good", "", "Good"] {
        let source = read_tenant(dir.path(), id).unwrap();
        assert!(source.text.is_err(), "{id:?} was read");
    }
}

/// The type is checked before anything is opened for reading: a writer
/// blocked in open(2) on a FIFO wakes up when any reader opens it, even
/// with O_NONBLOCK, so a writer still blocked proves no reader came.
#[test]
fn a_fifo_is_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    tenant(dir.path(), "good", GOOD.as_bytes());
    std::fs::create_dir_all(dir.path().join("tenants/fifo")).unwrap();
    let fifo = dir.path().join("tenants/fifo/metadata.json");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let (opened, was_opened) = std::sync::mpsc::channel();
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let file = std::fs::OpenOptions::new().write(true).open(&writer_path);
        opened.send(()).unwrap();
        drop(file);
    });
    // Let the writer block in open() before the repository is read.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let found = errors(dir.path());
    let woke = was_opened.recv_timeout(std::time::Duration::from_millis(300));
    // Release the writer either way.
    use std::os::unix::fs::OpenOptionsExt as _;
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(&fifo)
        .unwrap();
    writer.join().unwrap();
    assert!(woke.is_err(), "the reader opened the FIFO");
    assert_eq!(
        found,
        vec![
            ("fifo".into(), "not a regular file (a FIFO)".into()),
            ("good".into(), "ok".into()),
        ]
    );
}

/// A device node (root only: /dev/null's numbers) is refused by its type.
#[test]
fn a_device_node_is_refused_by_its_type() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tenants/dev")).unwrap();
    let made = rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.path().join("tenants/dev/metadata.json"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o644),
        rustix::fs::makedev(1, 3),
    );
    if let Err(e) = made {
        eprintln!("skipped: mknod needs root ({e})");
        return;
    }
    assert_eq!(
        errors(dir.path()),
        vec![(
            "dev".into(),
            "not a regular file (a character device)".into()
        )]
    );
}
