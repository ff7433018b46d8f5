//! `bbhv boot`: status from an ESP and EFI variables (`--json`), and the
//! errors an operator sees first (host.toml's `[boot]`, a pinned digest).
//! The signing and the booting are proven in the lab (boot-* scenarios).

use std::path::Path;
use std::process::Command;

const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

fn bbhv(args: &[&str], host_config: &Path, efivars: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bbhv"))
        .arg("boot")
        .args(args)
        .env("BITBUILDER_HOST_CONFIG", host_config)
        .env("BBHV_EFIVARS", efivars)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn esp_with(files: &[&str]) -> tempfile::TempDir {
    let esp = tempfile::tempdir().unwrap();
    let linux = esp.path().join("EFI/Linux");
    std::fs::create_dir_all(&linux).unwrap();
    for f in files {
        std::fs::write(linux.join(f), b"uki").unwrap();
    }
    esp
}

fn efivars(selected: &str, secure_boot: u8) -> tempfile::TempDir {
    let vars = tempfile::tempdir().unwrap();
    let mut data = vec![6, 0, 0, 0];
    data.extend(
        selected
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes),
    );
    std::fs::write(
        vars.path()
            .join(format!("LoaderEntrySelected-{LOADER_GUID}")),
        data,
    )
    .unwrap();
    std::fs::write(
        vars.path().join(format!("SecureBoot-{GLOBAL_GUID}")),
        [6, 0, 0, 0, secure_boot],
    )
    .unwrap();
    vars
}

#[test]
fn status_json_after_a_fallback() {
    let esp = esp_with(&["bbhv-a-1.efi", "bbhv-b-2+0-3.efi", "notes.txt"]);
    let vars = efivars("bbhv-a-1.efi", 1);
    let config = esp.path().join("host.toml");
    std::fs::write(
        &config,
        format!("[boot]\nesp = \"{}\"\n", esp.path().display()),
    )
    .unwrap();
    let (ok, stdout, stderr) = bbhv(&["status", "--json"], &config, vars.path());
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["firmware"]["secure_boot"], true);
    assert_eq!(json["firmware"]["entry_selected"], "bbhv-a-1.efi");
    let slots = json["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    assert_eq!(slots[0]["file"], "bbhv-a-1.efi");
    assert_eq!(slots[0]["booted"], true);
    assert_eq!(slots[0]["default"], true);
    assert_eq!(slots[1]["file"], "bbhv-b-2+0-3.efi");
    assert_eq!(slots[1]["state"], "bad");
    assert_eq!(slots[1]["tries_left"], 0);
    assert_eq!(slots[1]["tries_done"], 3);

    let (ok, stdout, _) = bbhv(&["status"], &config, vars.path());
    assert!(ok);
    assert!(
        stdout.contains("slot a: version 1 (good) bbhv-a-1.efi [booted, default]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Secure Boot: yes"), "{stdout}");
}

#[test]
fn a_bad_boot_section_is_refused_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("host.toml");
    std::fs::write(&config, "[boot]\ntries = 12\n").unwrap();
    let (ok, _, stderr) = bbhv(&["status"], &config, dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("host.toml:2:9: boot.tries: 12 is out of range; allowed: 1 to 9"),
        "{stderr}"
    );
}

#[test]
fn stage_checks_the_pinned_digest_first() {
    let esp = esp_with(&["bbhv-a-1.efi"]);
    let uki = esp.path().join("new.efi");
    std::fs::write(&uki, b"not the pinned file").unwrap();
    let config = esp.path().join("host.toml");
    let (ok, _, stderr) = bbhv(
        &[
            "stage",
            "--uki",
            uki.to_str().unwrap(),
            "--version",
            "2",
            "--sha256",
            &"0".repeat(64),
            "--esp",
            esp.path().to_str().unwrap(),
        ],
        &config,
        esp.path(),
    );
    assert!(!ok);
    assert!(
        stderr.contains("the pin says 0000") && stderr.contains("new.efi: sha256 is "),
        "{stderr}"
    );
    // Nothing was written.
    let names: Vec<_> = std::fs::read_dir(esp.path().join("EFI/Linux"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["bbhv-a-1.efi"]);
}

#[test]
fn a_bad_version_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = bbhv(
        &["stage", "--uki", "/nonexistent", "--version", "1-2"],
        &dir.path().join("host.toml"),
        dir.path(),
    );
    assert!(!ok);
    assert!(stderr.contains("\"1-2\" is not a UKI version"), "{stderr}");
}

#[test]
fn a_malformed_pin_is_refused_naming_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = bbhv(
        &[
            "stage",
            "--uki",
            "/nonexistent",
            "--version",
            "2",
            "--sha256",
            "abc",
        ],
        &dir.path().join("host.toml"),
        dir.path(),
    );
    assert!(!ok);
    assert!(
        stderr.contains("\"abc\" is not a sha256; allowed: 64 hex digits"),
        "{stderr}"
    );
}
