//! The ESP and the EFI variables: reading the slots, installing the boot
//! loader and the first UKI, staging a new UKI into the inactive slot.

use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::efivar;
use crate::entry::{Entry, LINUX_DIR, Slot, Version};
use crate::loader;
use crate::plan::{PinAction, StageError, StagePlan, plan_pin, plan_stage, plan_unstage};
use crate::status::{Firmware, Status};
use crate::tools::{self, ToolError};

/// Where efivarfs is.
pub const EFIVARS: &str = "/sys/firmware/efi/efivars";
/// systemd-boot's path on the ESP, and the removable-media path firmware
/// boots when it has no boot entry of its own.
pub const LOADER_PATHS: [&str; 2] = ["EFI/systemd/systemd-bootx64.efi", "EFI/BOOT/BOOTX64.EFI"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    Plan(#[from] StageError),
    #[error("{}: sha256 is {got}, the pin says {want}", path.display())]
    Digest {
        path: PathBuf,
        want: String,
        got: String,
    },
    #[error(
        "{}: its .osrel says IMAGE_VERSION={got:?}, not {want}: systemd-boot sorts by it, so \
         the file name and the UKI must agree (build it with `bbhv boot build-uki --version {want}`)",
        path.display()
    )]
    Version {
        path: PathBuf,
        want: String,
        got: String,
    },
    #[error(
        "{} already has slots ({}); `bbhv boot stage` adds a new UKI",
        esp.display(),
        files.join(", ")
    )]
    AlreadyInstalled { esp: PathBuf, files: Vec<String> },
    #[error(
        "{}: {} is not a directory (is the ESP mounted there? see boot.esp in host.toml)",
        esp.display(),
        LINUX_DIR
    )]
    NoEsp { esp: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// The slots on the ESP, and the `bbhv-*` files that are not slot names.
pub fn scan(esp: &Path) -> Result<(Vec<Entry>, Vec<String>), Error> {
    let dir = esp.join(LINUX_DIR);
    if !dir.is_dir() {
        return Err(Error::NoEsp { esp: esp.into() });
    }
    let mut entries = Vec::new();
    let mut unknown = Vec::new();
    for item in fs::read_dir(&dir).map_err(io(&dir))? {
        let item = item.map_err(io(&dir))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        match Entry::parse(name) {
            Ok(Some(e)) => entries.push(e),
            Ok(None) => {}
            Err(_) => unknown.push(name.to_owned()),
        }
    }
    unknown.sort();
    Ok((entries, unknown))
}

/// What the firmware and systemd-boot set for this boot (`efivars`:
/// [`EFIVARS`], or a copy in tests). Unreadable variables are `None`.
pub fn firmware(efivars: &Path) -> Firmware {
    let read = |name: &str, guid: &str| fs::read(efivars.join(format!("{name}-{guid}"))).ok();
    let loader = |name: &str| read(name, efivar::LOADER_GUID).and_then(|d| efivar::string(&d));
    let global = |name: &str| read(name, efivar::GLOBAL_GUID).and_then(|d| efivar::boolean(&d));
    Firmware {
        secure_boot: global("SecureBoot"),
        setup_mode: global("SetupMode"),
        entry_selected: loader("LoaderEntrySelected"),
        boot_count_path: loader("LoaderBootCountPath"),
    }
}

/// `bbhv boot status`.
pub fn status(esp: &Path, efivars: &Path) -> Result<Status, Error> {
    let (entries, unknown) = scan(esp)?;
    Ok(Status::new(
        esp.into(),
        firmware(efivars),
        &entries,
        unknown,
    ))
}

/// The sha256 of a file, in hex.
pub fn sha256(path: &Path) -> Result<String, Error> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks a UKI before it goes onto the ESP: signed by `cert`'s key, and
/// its `.osrel` version is `version`.
pub fn check_uki(uki: &Path, version: &Version, cert: &Path) -> Result<(), Error> {
    tools::verify(uki, cert)?;
    let got = tools::inspect(uki)?.version().unwrap_or_default();
    if got != version.as_str() {
        return Err(Error::Version {
            path: uki.into(),
            want: version.to_string(),
            got,
        });
    }
    Ok(())
}

/// Copies `from` to `dir/name` through a temporary name in `dir`, synced:
/// a crash leaves the old file or the whole new one, never half of it.
fn place(from: &Path, dir: &Path, name: &str) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(".{name}.bbhv-tmp"));
    let to = dir.join(name);
    fs::copy(from, &tmp).map_err(io(&tmp))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, &to).map_err(io(&to))?;
    sync_dir(dir)
}

fn write_file(dir: &Path, name: &str, text: &str) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(".{name}.bbhv-tmp"));
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(&tmp))?;
    let to = dir.join(name);
    fs::rename(&tmp, &to).map_err(io(&to))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    // vfat directories can be opened and synced on Linux; a failure is real.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// What `bbhv boot install` did.
#[derive(Debug, Clone)]
pub struct Installed {
    pub loader: Vec<PathBuf>,
    pub loader_conf: PathBuf,
    pub uki: PathBuf,
}

/// Makes `esp` bootable: systemd-boot (`signed_loader`, already signed)
/// at [`LOADER_PATHS`], loader.conf, and `uki` as slot a, known good.
/// Refuses an ESP that already has slots.
pub fn install(
    esp: &Path,
    signed_loader: &Path,
    uki: &Path,
    version: &Version,
    cert: &Path,
) -> Result<Installed, Error> {
    if !esp.is_dir() {
        return Err(Error::NoEsp { esp: esp.into() });
    }
    let linux = esp.join(LINUX_DIR);
    fs::create_dir_all(&linux).map_err(io(&linux))?;
    let (entries, _) = scan(esp)?;
    if !entries.is_empty() {
        return Err(Error::AlreadyInstalled {
            esp: esp.into(),
            files: entries.iter().map(Entry::file_name).collect(),
        });
    }
    tools::verify(signed_loader, cert)?;
    check_uki(uki, version, cert)?;
    let mut loader = Vec::new();
    for p in LOADER_PATHS {
        let path = esp.join(p);
        let (dir, name) = (path.parent().expect("has a parent"), file_name(&path));
        place(signed_loader, dir, &name)?;
        loader.push(path);
    }
    let loader_dir = esp.join("loader");
    write_file(&loader_dir, "loader.conf", &loader::render())?;
    let entry = Entry {
        slot: Slot::A,
        version: version.clone(),
        counter: None,
    };
    place(uki, &linux, &entry.file_name())?;
    Ok(Installed {
        loader,
        loader_conf: loader_dir.join("loader.conf"),
        uki: linux.join(entry.file_name()),
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What a sync (or `bbhv boot stage`) asks for.
#[derive(Debug, Clone)]
pub struct StageRequest<'a> {
    pub esp: &'a Path,
    pub uki: &'a Path,
    pub version: &'a Version,
    /// The pinned sha256 (hex), when the repository pins one.
    pub sha256: Option<&'a str>,
    /// The certificate the UKI must be signed by (`boot.signing_cert`).
    pub cert: &'a Path,
    /// Boot counting tries (`boot.tries`).
    pub tries: u32,
    pub efivars: &'a Path,
}

/// What was staged.
#[derive(Debug, Clone)]
pub struct Staged {
    pub plan: StagePlan,
    pub path: PathBuf,
    pub sha256: String,
}

/// Stages a verified UKI into the inactive slot: the pin's digest, the
/// signature and the version are checked first, then the inactive slot's
/// old files go and `bbhv-<slot>-<version>+TRIES.efi` comes. systemd-boot
/// boots it next (it is the newest) and falls back by itself if it never
/// gets blessed. An already staged identical UKI is left as it is.
pub fn stage(req: &StageRequest<'_>) -> Result<Staged, Error> {
    let got = sha256(req.uki)?;
    if let Some(want) = req.sha256
        && !want.eq_ignore_ascii_case(&got)
    {
        return Err(Error::Digest {
            path: req.uki.into(),
            want: want.to_owned(),
            got,
        });
    }
    check_uki(req.uki, req.version, req.cert)?;
    let (entries, _) = scan(req.esp)?;
    let booted = firmware(req.efivars).entry_selected;
    let plan = plan_stage(&entries, booted.as_deref(), req.version, req.tries)?;
    let linux = req.esp.join(LINUX_DIR);
    // Write the new file first (under a temporary name), then drop the old
    // inactive files: the good slot is never touched.
    place(req.uki, &linux, &plan.file_name)?;
    for old in &plan.remove {
        if *old != plan.file_name {
            let path = linux.join(old);
            fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    sync_dir(&linux)?;
    let path = linux.join(&plan.file_name);
    let copied = sha256(&path)?;
    if copied != got {
        return Err(Error::Digest {
            path,
            want: got,
            got: copied,
        });
    }
    Ok(Staged {
        plan,
        path,
        sha256: got,
    })
}

/// What [`stage_pin`] did.
#[derive(Debug, Clone)]
pub enum PinOutcome {
    /// A slot holds the pinned UKI already (its file, the same digest).
    Held(String),
    Staged(Staged),
}

/// The git-ops seam: the pinned UKI (already verified, `req.sha256` set) is
/// staged unless a slot holds its version. A slot with that version but
/// other bytes is an error: one version, one UKI.
pub fn stage_pin(req: &StageRequest<'_>) -> Result<PinOutcome, Error> {
    let (entries, _) = scan(req.esp)?;
    let booted = firmware(req.efivars).entry_selected;
    match plan_pin(&entries, booted.as_deref(), req.version, req.tries)? {
        PinAction::Held(entry) => {
            let path = req.esp.join(LINUX_DIR).join(entry.file_name());
            let got = sha256(&path)?;
            match req.sha256 {
                Some(want) if !want.eq_ignore_ascii_case(&got) => Err(Error::Digest {
                    path,
                    want: want.to_owned(),
                    got,
                }),
                _ => Ok(PinOutcome::Held(entry.file_name())),
            }
        }
        PinAction::Stage(_) => stage(req).map(PinOutcome::Staged),
    }
}

/// After a git rollback to a generation pinning `pinned`: removes the
/// staged, never-booted UKIs of other versions ([`plan_unstage`]). The
/// files removed.
pub fn unstage(esp: &Path, efivars: &Path, pinned: Option<&Version>) -> Result<Vec<String>, Error> {
    let (entries, _) = scan(esp)?;
    let booted = firmware(efivars).entry_selected;
    let remove = plan_unstage(&entries, booted.as_deref(), pinned);
    let linux = esp.join(LINUX_DIR);
    for name in &remove {
        let path = linux.join(name);
        fs::remove_file(&path).map_err(io(&path))?;
    }
    if !remove.is_empty() {
        sync_dir(&linux)?;
    }
    Ok(remove)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16_var(s: &str) -> Vec<u8> {
        let mut data = vec![6, 0, 0, 0];
        data.extend(s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
        data
    }

    #[test]
    fn scan_and_status_from_files() {
        let esp = tempfile::tempdir().unwrap();
        let linux = esp.path().join(LINUX_DIR);
        fs::create_dir_all(&linux).unwrap();
        for f in [
            "bbhv-a-1.efi",
            "bbhv-b-2+1-2.efi",
            "bbhv-x.efi",
            "other.efi",
        ] {
            fs::write(linux.join(f), b"").unwrap();
        }
        let vars = tempfile::tempdir().unwrap();
        fs::write(
            vars.path()
                .join(format!("LoaderEntrySelected-{}", efivar::LOADER_GUID)),
            utf16_var("bbhv-a-1.efi"),
        )
        .unwrap();
        fs::write(
            vars.path()
                .join(format!("SecureBoot-{}", efivar::GLOBAL_GUID)),
            [6, 0, 0, 0, 1],
        )
        .unwrap();
        let s = status(esp.path(), vars.path()).unwrap();
        assert_eq!(s.firmware.secure_boot, Some(true));
        assert_eq!(s.firmware.entry_selected.as_deref(), Some("bbhv-a-1.efi"));
        assert_eq!(s.unknown_files, vec!["bbhv-x.efi".to_string()]);
        let files: Vec<&str> = s.slots.iter().map(|s| s.file.as_str()).collect();
        assert_eq!(files, ["bbhv-b-2+1-2.efi", "bbhv-a-1.efi"]);
        assert!(s.slots[1].booted && s.slots[0].default);
    }

    #[test]
    fn no_esp_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = scan(dir.path()).unwrap_err().to_string();
        assert!(e.contains("EFI/Linux is not a directory"), "{e}");
    }

    #[test]
    fn a_held_pin_is_checked_by_digest_and_a_rollback_unstages() {
        let esp = tempfile::tempdir().unwrap();
        let linux = esp.path().join(LINUX_DIR);
        fs::create_dir_all(&linux).unwrap();
        fs::write(linux.join("bbhv-a-1.efi"), b"uki 1").unwrap();
        fs::write(linux.join("bbhv-b-3+3.efi"), b"uki 3").unwrap();
        let vars = tempfile::tempdir().unwrap();
        fs::write(
            vars.path()
                .join(format!("LoaderEntrySelected-{}", efivar::LOADER_GUID)),
            utf16_var("bbhv-a-1.efi"),
        )
        .unwrap();
        let uki = esp.path().join("new.efi");
        fs::write(&uki, b"uki 3").unwrap();
        let digest = sha256(&uki).unwrap();
        let version = Version::parse("3").unwrap();
        let req = StageRequest {
            esp: esp.path(),
            uki: &uki,
            version: &version,
            sha256: Some(&digest),
            cert: Path::new("/nonexistent.crt"),
            tries: 3,
            efivars: vars.path(),
        };
        // Held: no tool runs (the certificate does not even exist), nothing changes.
        let held = stage_pin(&req).unwrap();
        assert!(
            matches!(&held, PinOutcome::Held(f) if f == "bbhv-b-3+3.efi"),
            "{held:?}"
        );
        // The same version with other bytes is refused, naming both digests.
        let other = "0".repeat(64);
        let e = stage_pin(&StageRequest {
            sha256: Some(&other),
            ..req.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("bbhv-b-3+3.efi: sha256 is"), "{e}");
        // A rollback to a generation pinning 1 withdraws the staged 3.
        let one = Version::parse("1").unwrap();
        assert_eq!(
            unstage(esp.path(), vars.path(), Some(&one)).unwrap(),
            vec!["bbhv-b-3+3.efi".to_string()]
        );
        assert!(!linux.join("bbhv-b-3+3.efi").exists() && linux.join("bbhv-a-1.efi").exists());
        assert!(
            unstage(esp.path(), vars.path(), Some(&one))
                .unwrap()
                .is_empty()
        );
    }
}
