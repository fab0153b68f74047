//! The local copy of each document: one file per document, replaced atomically (write to a
//! temporary file, fsync, rename), so a crash leaves either the old or the new copy.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file holding `doc` in `dir`. Document ids may contain any character, so the name is the
/// id in hex: unambiguous and valid on every file system.
pub fn path_for(dir: &Path, doc: &str) -> PathBuf {
    let mut name = String::with_capacity(doc.len() * 2 + 5);
    for byte in doc.bytes() {
        name.push_str(&format!("{byte:02x}"));
    }
    name.push_str(".crdt");
    dir.join(name)
}

/// Reads a saved document, `None` if there is none.
pub fn read(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Replaces the saved document atomically and durably.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension("crdt.tmp");
    {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        // The rename is durable once the directory is synced (where the platform allows it).
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}
