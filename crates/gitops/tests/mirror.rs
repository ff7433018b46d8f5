mod common;

use bbhv_gitops::mirror::Mirror;
use bbhv_gitops::signers::{AllowedSigners, Refusal};
use common::{Sign, Upstream};

#[test]
fn fetch_verify_walk_and_checkout() {
    let root = tempfile::tempdir().unwrap();
    let upstream = Upstream::new(root.path());
    let first = upstream.head();
    upstream.tenant("acme", "");
    let second = upstream.commit("acme", Sign::Trusted);

    // The state directory need not exist yet.
    let mut mirror = Mirror::open(&root.path().join("state/mirror.git")).unwrap();
    let head = mirror.fetch(&upstream.url(), "main").unwrap();
    assert_eq!(head.to_string(), second);
    let signers = AllowedSigners::load(&upstream.allowed_signers).unwrap();
    let commit = mirror.commit(head).unwrap();
    assert_eq!(commit.summary, "acme");
    let signer = signers
        .verify(&commit.signature, &commit.payload, commit.time)
        .unwrap();
    assert_eq!(signer.principals, "ops@example.com");
    assert!(signer.fingerprint.starts_with("SHA256:"));

    // A tampered payload does not verify.
    let mut payload = commit.payload.clone();
    let last = payload.len() - 2;
    payload[last] ^= 1;
    assert!(matches!(
        signers.verify(&commit.signature, &payload, commit.time),
        Err(Refusal::BadSignature { .. })
    ));

    // Unsigned and untrusted commits are refused.
    upstream.tenant("beta", "");
    let unsigned = upstream.commit("unsigned", Sign::No);
    let id = mirror.fetch(&upstream.url(), "main").unwrap();
    assert_eq!(id.to_string(), unsigned);
    let c = mirror.commit(id).unwrap();
    assert!(matches!(
        signers.verify(&c.signature, &c.payload, c.time),
        Err(Refusal::Unsigned { .. })
    ));
    let untrusted = upstream.commit("untrusted", Sign::Untrusted);
    let id = mirror.fetch(&upstream.url(), "main").unwrap();
    assert_eq!(id.to_string(), untrusted);
    let c = mirror.commit(id).unwrap();
    assert!(matches!(
        signers.verify(&c.signature, &c.payload, c.time),
        Err(Refusal::UnknownKey { .. })
    ));

    // History: the new head descends from the first commit, not the reverse.
    let first_id = mirror.resolve(&first).unwrap();
    assert!(mirror.descends(id, first_id).unwrap());
    assert!(!mirror.descends(first_id, id).unwrap());

    // A force-push back is fetched (and the sync, not the mirror, refuses it).
    upstream.reset(&second);
    assert_eq!(
        mirror.fetch(&upstream.url(), "main").unwrap().to_string(),
        second
    );

    let dir = root.path().join("checkout");
    mirror.checkout(head, &dir).unwrap();
    assert!(dir.join("tenants/acme/metadata.json").is_file());
    assert!(!dir.join("tenants/beta").exists());
    assert!(!dir.join(".git").exists());

    // Stale lock files of a killed fetch do not block the next one.
    std::fs::write(
        root.path()
            .join("state/mirror.git/refs/remotes/origin/main.lock"),
        "",
    )
    .unwrap();
    let mut mirror = Mirror::open(&root.path().join("state/mirror.git")).unwrap();
    mirror.fetch(&upstream.url(), "main").unwrap();
}

/// A fetch of a commit that changes a thousand files (a pack of deltas
/// against objects the mirror already has).
#[test]
fn a_thousand_changed_files_fetch() {
    let root = tempfile::tempdir().unwrap();
    let upstream = Upstream::new(root.path());
    for i in 0..1000 {
        upstream.tenant(&format!("t{i}"), r#", "description": "round 0""#);
    }
    upstream.commit("a thousand", Sign::Trusted);
    let mut mirror = Mirror::open(&root.path().join("state/mirror.git")).unwrap();
    mirror.fetch(&upstream.url(), "main").unwrap();
    for i in 0..1000 {
        upstream.tenant(&format!("t{i}"), r#", "description": "round 1""#);
    }
    let changed = upstream.commit("all changed", Sign::Trusted);
    let head = mirror.fetch(&upstream.url(), "main").unwrap();
    assert_eq!(head.to_string(), changed);
    mirror
        .checkout(head, &root.path().join("checkout"))
        .unwrap();
}
