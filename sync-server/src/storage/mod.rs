//! Durable storage of documents: the contract the document actors rely on, and its backends.
//!
//! A document is stored as an optional snapshot plus the updates appended after it. Updates are
//! opaque bytes (encoded `crdt-core` updates); the storage never decodes them.
//!
//! - [`SqliteStorage`]: one file, one process (the default). Appends are group-committed by a
//!   dedicated writer thread.
//! - [`PostgresStorage`]: shared by several server nodes (clusters). Every append sends
//!   `NOTIFY crdt_document_changed, '<doc>'` so other nodes learn about it
//!   ([`Storage::watch`]); they read what they lack with [`Storage::load_after`].
//! - [`AnyStorage`]: either of them, chosen at run time.
//!
//! # Durability
//!
//! The future returned by [`Storage::append`] resolves only once the update is committed
//! (SQLite: WAL with `synchronous=FULL`; PostgreSQL: the server's commit). A client's batch may
//! be acknowledged as soon as it resolves. Dropping the future before it resolves does not
//! cancel the append: it may or may not be committed.
//!
//! # Sequence numbers
//!
//! Each document numbers its appends 1, 2, 3, … without gaps, in commit order, in both backends
//! and across several nodes sharing one PostgreSQL database (the per-document counter is bumped
//! in the same statement or transaction as the insert). Hence whoever has seen every change
//! `1..=n` of a document may call [`Storage::compact`] with `up_to = n` without deleting a change
//! it has not seen. Sequence numbers are never reused, also after compaction.
//!
//! # Integrity
//!
//! Every change and snapshot is stored with the CRC-32 of its bytes, verified by
//! [`Storage::load`]. A record whose checksum does not match is skipped with a
//! `tracing::warn!` naming the document and sequence number, and counted in
//! [`StoredDocument::skipped`]; the rest of the document loads. A corrupt snapshot is skipped the
//! same way (then `snapshot` is `None` although `skipped > 0`: the changes it replaced are gone,
//! so the caller should treat the document as damaged).

use std::fmt;
use std::future::Future;
use std::path::PathBuf;

pub mod lock;
pub mod postgres;
pub mod sqlite;

pub use lock::{DataDirLock, LockError};
pub use postgres::{DEFAULT_POOL_SIZE, NOTIFY_CHANNEL, PostgresStorage, Subscription};
pub use sqlite::{DATABASE_FILE, SqliteStorage};

/// One document's persisted state: its latest snapshot (if compacted) and the updates appended
/// after it, in append order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredDocument {
    /// The latest snapshot stored by [`Storage::compact`], if any (and if not corrupt).
    pub snapshot: Option<Vec<u8>>,
    /// The seq the snapshot covers (every change up to it was folded into it); 0 without one.
    /// Also set when the snapshot was corrupt: the changes up to it are gone from the log.
    pub snapshot_up_to: u64,
    /// The changes still stored (not removed by a compaction), in ascending `seq` order.
    pub changes: Vec<StoredChange>,
    /// How many corrupt records (bad checksum or unreadable row) were ignored.
    pub skipped: usize,
}

impl StoredDocument {
    /// Whether nothing is stored for the document (no snapshot, no change, nothing skipped).
    ///
    /// ```
    /// use sync_server::storage::StoredDocument;
    /// assert!(StoredDocument::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.changes.is_empty() && self.skipped == 0
    }

    /// The greatest sequence number among the loaded changes, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.changes.last().map(|c| c.seq)
    }

    /// Every change with a seq up to this one is in what was loaded (folded into the snapshot
    /// or in `changes`): a load reads a consistent prefix of the log.
    ///
    /// ```
    /// use sync_server::storage::{StoredChange, StoredDocument};
    /// let stored = StoredDocument {
    ///     snapshot: Some(vec![1]),
    ///     snapshot_up_to: 7,
    ///     changes: vec![StoredChange { seq: 8, update: vec![2] }],
    ///     skipped: 0,
    /// };
    /// assert_eq!(stored.covers_up_to(), 8);
    /// ```
    pub fn covers_up_to(&self) -> u64 {
        self.last_seq().unwrap_or(0).max(self.snapshot_up_to)
    }
}

/// One stored update of a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredChange {
    /// Its sequence number in the document (1, 2, 3, … in commit order).
    pub seq: u64,
    /// The update's bytes, as given to [`Storage::append`].
    pub update: Vec<u8>,
}

/// Durable storage of documents (see the [module documentation](self)).
///
/// Every method may be called concurrently from many tasks.
///
/// ```no_run
/// use sync_server::storage::{SqliteStorage, Storage};
///
/// # async fn demo() -> Result<(), sync_server::storage::StorageError> {
/// let storage = SqliteStorage::open(std::path::Path::new("/var/lib/crdt"))?;
/// let seq = storage.append("notes", b"update bytes".to_vec()).await?;
/// // Durable now: the client's batch may be acknowledged.
/// let doc = storage.load("notes").await?;
/// assert_eq!(doc.changes.last().map(|c| c.seq), Some(seq));
/// storage.compact("notes", b"snapshot bytes".to_vec(), seq).await?;
/// # Ok(())
/// # }
/// ```
pub trait Storage: Send + Sync + 'static {
    /// Loads a document (empty [`StoredDocument`] if unknown). Corrupt records (bad checksum)
    /// are skipped with a `tracing::warn!` naming doc and seq, and counted in `skipped`.
    fn load(&self, doc: &str) -> impl Future<Output = Result<StoredDocument, StorageError>> + Send;

    /// What a reader that holds every change up to `after` lacks: the changes with a greater
    /// seq, and the snapshot if it covers more than `after` (another node compacted changes the
    /// reader has not seen). Read in one consistent view, checksums verified as in
    /// [`load`](Self::load). How a node sharing the storage with others catches up.
    fn load_after(
        &self,
        doc: &str,
        after: u64,
    ) -> impl Future<Output = Result<StoredDocument, StorageError>> + Send;

    /// Appends one update (opaque bytes: an encoded crdt-core update) and resolves only once it
    /// is durably committed. Returns its seq (monotonic per document, without gaps).
    fn append(
        &self,
        doc: &str,
        update: Vec<u8>,
    ) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// Atomically stores `snapshot` as the document's snapshot and deletes its changes with
    /// seq <= up_to. A snapshot with a smaller `up_to` than the stored one does not replace it
    /// (two nodes compacting concurrently keep the newer one). Later appends get seqs above
    /// `up_to`.
    fn compact(
        &self,
        doc: &str,
        snapshot: Vec<u8>,
        up_to: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Document ids stored (for anti-entropy between nodes later), sorted.
    fn documents(&self) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;

    /// Cheap reachability check for /readyz.
    fn check(&self) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Whether other processes may append to the same documents (several nodes on one
    /// PostgreSQL). A live document then checks for their changes before it answers a new
    /// subscriber, and follows [`watch`](Self::watch)'s hints.
    fn is_shared(&self) -> bool;

    /// Hints of documents another process appended to, for a shared storage; `Ok(None)` for
    /// one that only this process writes. The hints are not reliable (a dropped connection
    /// loses some): when the feed ends, watch again and check every live document.
    fn watch(&self) -> impl Future<Output = Result<Option<Subscription>, StorageError>> + Send;
}

/// Why a storage operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StorageError {
    /// A file system operation failed (creating the data directory).
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// SQLite reported an error.
    Sqlite {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// PostgreSQL (or the connection to it) reported an error.
    Postgres {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: tokio_postgres::Error,
    },
    /// The database was written by a newer version of this program (or another program).
    UnsupportedSchema {
        /// The schema version found in the database.
        found: i64,
        /// The newest schema version this program knows.
        supported: i64,
    },
    /// A sequence number does not fit the database's signed 64-bit integers.
    SeqOutOfRange(u64),
    /// The storage's worker (SQLite writer thread, blocking task) stopped or panicked.
    Closed(&'static str),
    /// The PostgreSQL URL could not be parsed.
    InvalidUrl(tokio_postgres::Error),
    /// A document's bookkeeping (not one of its records, which are skipped) is corrupt.
    Corrupt {
        /// The document.
        doc: String,
        /// What is wrong.
        what: &'static str,
    },
    /// The database did not answer in time.
    Timeout(&'static str),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { path, source } => {
                write!(f, "storage I/O error on {}: {source}", path.display())
            }
            StorageError::Sqlite { context, source } => {
                write!(f, "SQLite error while {context}: {source}")
            }
            StorageError::Postgres { context, source } => {
                write!(f, "PostgreSQL error while {context}: {source}")
            }
            StorageError::UnsupportedSchema { found, supported } => write!(
                f,
                "the database has schema version {found}, but this program only knows versions up \
                 to {supported} (was it written by a newer version?); refusing to use it"
            ),
            StorageError::SeqOutOfRange(seq) => {
                write!(f, "sequence number {seq} is too large for the database")
            }
            StorageError::Closed(what) => write!(f, "storage unavailable: {what}"),
            StorageError::InvalidUrl(source) => write!(f, "invalid PostgreSQL URL: {source}"),
            StorageError::Timeout(what) => write!(f, "timed out while {what}"),
            StorageError::Corrupt { doc, what } => {
                write!(f, "document {doc:?} is corrupt in storage: {what}")
            }
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            StorageError::Sqlite { source, .. } => Some(source),
            StorageError::Postgres { source, .. } => Some(source),
            StorageError::InvalidUrl(source) => Some(source),
            StorageError::UnsupportedSchema { .. }
            | StorageError::SeqOutOfRange(_)
            | StorageError::Closed(_)
            | StorageError::Corrupt { .. }
            | StorageError::Timeout(_) => None,
        }
    }
}

/// Either backend, chosen at run time (for example from the command line).
///
/// ```no_run
/// use sync_server::storage::{AnyStorage, PostgresStorage, SqliteStorage, Storage};
///
/// # async fn demo(url: Option<&str>) -> Result<(), sync_server::storage::StorageError> {
/// let storage = match url {
///     Some(url) => AnyStorage::Postgres(PostgresStorage::connect(url).await?),
///     None => AnyStorage::Sqlite(SqliteStorage::open(std::path::Path::new("data"))?),
/// };
/// storage.check().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub enum AnyStorage {
    /// The SQLite backend.
    Sqlite(SqliteStorage),
    /// The PostgreSQL backend.
    Postgres(PostgresStorage),
}

impl From<SqliteStorage> for AnyStorage {
    fn from(storage: SqliteStorage) -> Self {
        AnyStorage::Sqlite(storage)
    }
}

impl From<PostgresStorage> for AnyStorage {
    fn from(storage: PostgresStorage) -> Self {
        AnyStorage::Postgres(storage)
    }
}

impl Storage for AnyStorage {
    async fn load(&self, doc: &str) -> Result<StoredDocument, StorageError> {
        match self {
            AnyStorage::Sqlite(s) => s.load(doc).await,
            AnyStorage::Postgres(s) => s.load(doc).await,
        }
    }

    async fn append(&self, doc: &str, update: Vec<u8>) -> Result<u64, StorageError> {
        match self {
            AnyStorage::Sqlite(s) => s.append(doc, update).await,
            AnyStorage::Postgres(s) => s.append(doc, update).await,
        }
    }

    async fn load_after(&self, doc: &str, after: u64) -> Result<StoredDocument, StorageError> {
        match self {
            AnyStorage::Sqlite(s) => s.load_after(doc, after).await,
            AnyStorage::Postgres(s) => s.load_after(doc, after).await,
        }
    }

    async fn compact(&self, doc: &str, snapshot: Vec<u8>, up_to: u64) -> Result<(), StorageError> {
        match self {
            AnyStorage::Sqlite(s) => s.compact(doc, snapshot, up_to).await,
            AnyStorage::Postgres(s) => s.compact(doc, snapshot, up_to).await,
        }
    }

    async fn documents(&self) -> Result<Vec<String>, StorageError> {
        match self {
            AnyStorage::Sqlite(s) => s.documents().await,
            AnyStorage::Postgres(s) => s.documents().await,
        }
    }

    async fn check(&self) -> Result<(), StorageError> {
        match self {
            AnyStorage::Sqlite(s) => s.check().await,
            AnyStorage::Postgres(s) => s.check().await,
        }
    }

    fn is_shared(&self) -> bool {
        match self {
            AnyStorage::Sqlite(s) => s.is_shared(),
            AnyStorage::Postgres(s) => s.is_shared(),
        }
    }

    async fn watch(&self) -> Result<Option<Subscription>, StorageError> {
        match self {
            AnyStorage::Sqlite(s) => s.watch().await,
            AnyStorage::Postgres(s) => s.watch().await,
        }
    }
}

/// The checksum stored beside every change and snapshot: CRC-32 (IEEE) of its bytes.
fn checksum(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Converts a sequence number for the database (both backends store signed 64-bit integers).
fn seq_to_db(seq: u64) -> Result<i64, StorageError> {
    i64::try_from(seq).map_err(|_| StorageError::SeqOutOfRange(seq))
}

/// Collects loaded records into a [`StoredDocument`], verifying checksums. Shared by both
/// backends so they skip and log identically.
#[derive(Default)]
struct Loader {
    document: StoredDocument,
}

impl Loader {
    /// A snapshot row: its `up_to`, bytes and stored checksum (`None` if unreadable).
    fn snapshot(&mut self, doc: &str, up_to: i64, data: Option<Vec<u8>>, crc: Option<i64>) {
        self.document.snapshot_up_to = u64::try_from(up_to).unwrap_or(0);
        match data {
            Some(data) if Some(i64::from(checksum(&data))) == crc => {
                self.document.snapshot = Some(data)
            }
            _ => {
                tracing::warn!(
                    doc,
                    up_to,
                    "corrupt snapshot skipped (checksum mismatch or unreadable row); changes up to \
                     this seq were compacted into it and are lost"
                );
                self.document.skipped += 1;
            }
        }
    }

    /// A change row: its seq, bytes and stored checksum (`None` if unreadable).
    fn change(&mut self, doc: &str, seq: i64, data: Option<Vec<u8>>, crc: Option<i64>) {
        match (u64::try_from(seq), data) {
            (Ok(seq), Some(update)) if Some(i64::from(checksum(&update))) == crc => {
                self.document.changes.push(StoredChange { seq, update });
            }
            _ => {
                tracing::warn!(
                    doc,
                    seq,
                    "corrupt change skipped (checksum mismatch or unreadable row)"
                );
                self.document.skipped += 1;
            }
        }
    }

    fn finish(mut self) -> StoredDocument {
        self.document.changes.sort_by_key(|c| c.seq);
        self.document
    }
}
