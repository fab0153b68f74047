//! One server per data directory: an exclusive lock on a file inside it.
//!
//! SQLite itself would let two processes share the database (its own locks serialise their
//! writes), but two sync servers on one directory break what each assumes: a document actor
//! believes it holds every change of its document and numbers compactions from what it has
//! loaded, relays only what passed through it, and caches documents. So the second server must
//! refuse to start, with a message naming the directory, instead of silently corrupting the
//! guarantees of the first.
//!
//! The lock is an OS advisory lock (`flock` on Unix, `LockFileEx` on Windows, through
//! `std::fs::File::try_lock`) on `<dir>/sync-server.lock`. The operating system releases it
//! when the process exits, however it exits (SIGKILL included), so a crash never leaves a stale
//! lock behind; the file itself stays, which is harmless. The file holds the holder's process
//! id, only to make the refusal message useful.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "sync-server.lock";

/// An exclusive hold on a data directory; released when dropped (or when the process exits).
///
/// ```
/// use sync_server::storage::DataDirLock;
///
/// let dir = tempfile::tempdir().unwrap();
/// let first = DataDirLock::acquire(dir.path()).unwrap();
/// assert!(DataDirLock::acquire(dir.path()).is_err()); // a second holder is refused
/// drop(first);
/// assert!(DataDirLock::acquire(dir.path()).is_ok());
/// ```
#[derive(Debug)]
pub struct DataDirLock {
    // Held only for its lock; closing the file releases it.
    _file: File,
    dir: PathBuf,
}

impl DataDirLock {
    /// Takes the lock on `dir` (created if missing), or fails at once if another process (or
    /// another holder in this one) has it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let io = |source| LockError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // Best effort: the holder wrote its pid after locking.
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim().parse::<u32>().ok();
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        // The pid is informative only; failing to write it does not matter.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(DataDirLock {
            _file: file,
            dir: dir.to_path_buf(),
        })
    }

    /// The directory held.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Why a data directory could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another server (process `holder`, when known) already uses the directory.
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The process id written by the holder, if readable.
        holder: Option<u32>,
    },
    /// The directory or the lock file could not be created, opened or locked.
    Io {
        /// The data directory.
        dir: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { dir, holder } => {
                write!(
                    f,
                    "the data directory {} is already in use by another sync-server",
                    dir.display()
                )?;
                if let Some(pid) = holder {
                    write!(f, " (process {pid})")?;
                }
                write!(
                    f,
                    "; stop it first or give this one another --data-dir (lock file {})",
                    dir.join(LOCK_FILE).display()
                )
            }
            LockError::Io { dir, source } => write!(
                f,
                "cannot lock the data directory {}: {source}",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Held { .. } => None,
            LockError::Io { source, .. } => Some(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_directory_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let error = DataDirLock::acquire(dir.path()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "{text}"
        );
        drop(first);
        let again = DataDirLock::acquire(dir.path()).unwrap();
        assert_eq!(again.dir(), dir.path());
    }
}
