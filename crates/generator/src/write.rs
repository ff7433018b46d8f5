//! Writing the rendered tree: each file and symlink is created under a
//! temporary name and renamed into place, so systemd never reads half a unit.

use std::io::Write as _;
use std::path::Path;

use bbhv_render::Entry;

/// Writes `entries` below `dir`, creating directories as needed.
pub fn write_entries(dir: &Path, entries: &[Entry]) -> std::io::Result<()> {
    for entry in entries {
        let path = dir.join(entry.path());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match entry {
            Entry::File { content, .. } => write_file_atomically(&path, content.as_bytes())?,
            Entry::Symlink { target, .. } => {
                let temporary = temporary_name(&path);
                let _ = std::fs::remove_file(&temporary);
                std::os::unix::fs::symlink(target, &temporary)?;
                std::fs::rename(&temporary, &path)?;
            }
        }
    }
    Ok(())
}

/// Writes `path` through a temporary file in the same directory and a rename.
pub fn write_file_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let temporary = temporary_name(path);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(content)?;
    drop(file);
    std::fs::rename(&temporary, path)
}

fn temporary_name(path: &Path) -> std::path::PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}
