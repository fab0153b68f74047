//! The SQLite backend: one database file, WAL mode, `synchronous=FULL`, group commit.
//!
//! # Threads and connections
//!
//! - **Writes** ([`Storage::append`], [`Storage::compact`]) go through one dedicated OS thread
//!   that owns the only write connection. Callers send their operation over a channel; the thread
//!   takes everything queued (up to [`MAX_BATCH`] operations) and runs it in ONE `IMMEDIATE`
//!   transaction, then replies to each caller through a tokio oneshot after `COMMIT` returned
//!   (group commit: one WAL sync for the whole batch). If the batch fails, it is rolled back and
//!   its operations are retried one transaction each, so an error reaches only the operation that
//!   caused it. Operations are applied in the order they were sent.
//! - **Reads** ([`Storage::load`], [`Storage::documents`], [`Storage::check`]) run on tokio's
//!   blocking pool, each on a read connection taken from a small pool (opened on demand, at most
//!   [`MAX_IDLE_READERS`] kept). In WAL mode readers never block the writer nor wait for it, and
//!   a read sees every append whose future has resolved. `load` reads the snapshot and the
//!   changes in one read transaction, so a concurrent compaction is seen entirely or not at all.
//!
//! # Crash safety
//!
//! With WAL and `synchronous=FULL`, `COMMIT` returns only after the WAL is synced, so killing
//! the process (or the machine) at any point loses no append whose future resolved. Records are
//! checksummed on top of that (see the [module documentation](super)).
//!
//! # Schema
//!
//! `PRAGMA user_version` holds the schema version ([`SCHEMA_VERSION`]); a database with a newer
//! version is refused with [`StorageError::UnsupportedSchema`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::{Loader, Storage, StorageError, StoredDocument, Subscription, checksum, seq_to_db};

/// The database file's name inside the directory given to [`SqliteStorage::open`].
pub const DATABASE_FILE: &str = "documents.sqlite3";

/// The schema version this program writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// The most operations committed in one transaction by the writer thread.
pub const MAX_BATCH: usize = 1024;

/// The most idle read connections kept open.
pub const MAX_IDLE_READERS: usize = 8;

/// How long a connection waits for a lock held by another connection (another process, or a
/// checkpoint) before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE documents (
    doc TEXT PRIMARY KEY NOT NULL,
    last_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE changes (
    doc TEXT NOT NULL,
    seq INTEGER NOT NULL,
    crc INTEGER NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (doc, seq)
);
CREATE TABLE snapshots (
    doc TEXT PRIMARY KEY NOT NULL,
    up_to INTEGER NOT NULL,
    crc INTEGER NOT NULL,
    data BLOB NOT NULL
);
";

/// Bumps the document's counter (creating it at 1) and returns the new value: the append's seq.
const NEXT_SEQ: &str = "INSERT INTO documents (doc, last_seq) VALUES (?1, 1)
    ON CONFLICT (doc) DO UPDATE SET last_seq = last_seq + 1
    RETURNING last_seq";
const INSERT_CHANGE: &str = "INSERT INTO changes (doc, seq, crc, data) VALUES (?1, ?2, ?3, ?4)";
const UPSERT_SNAPSHOT: &str =
    "INSERT INTO snapshots (doc, up_to, crc, data) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (doc) DO UPDATE SET up_to = excluded.up_to, crc = excluded.crc, data = excluded.data
    WHERE excluded.up_to >= snapshots.up_to";
const DELETE_CHANGES: &str = "DELETE FROM changes WHERE doc = ?1 AND seq <= ?2";
const RAISE_COUNTER: &str = "INSERT INTO documents (doc, last_seq) VALUES (?1, ?2)
    ON CONFLICT (doc) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)";

/// Documents stored in one SQLite database file (see the [module documentation](self)).
///
/// Cheap to clone (clones share the writer thread and the read connections). When the last
/// clone is dropped, the writer thread finishes the queued operations and stops.
///
/// ```no_run
/// use sync_server::storage::{SqliteStorage, Storage};
///
/// # async fn demo() -> Result<(), sync_server::storage::StorageError> {
/// let storage = SqliteStorage::open(std::path::Path::new("data"))?; // data/documents.sqlite3
/// let seq = storage.append("doc-1", vec![1, 2, 3]).await?;
/// assert_eq!(storage.load("doc-1").await?.changes[0].seq, seq);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `None` only while dropping.
    sender: Option<mpsc::Sender<Op>>,
    /// `None` only while dropping.
    writer: Option<JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel makes the writer finish what is queued and return.
        self.sender = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "the SQLite writer thread panicked");
        }
    }
}

impl fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) the database `<dir>/documents.sqlite3`, creating `dir` if
    /// needed, and starts the writer thread.
    ///
    /// Fails with [`StorageError::UnsupportedSchema`] if the database was written by a newer
    /// schema version.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), sync_server::storage::StorageError> {
    /// let storage = sync_server::storage::SqliteStorage::open(std::path::Path::new("data"))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DATABASE_FILE);
        let mut writer = open_writer(&path)?;
        migrate(&mut writer)?;
        // Fail now rather than at the first load if reading does not work.
        let reader = open_reader(&path)?;
        let (sender, receiver) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || write_loop(writer, receiver))
            .map_err(|source| StorageError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(SqliteStorage {
            inner: Arc::new(Inner {
                path,
                sender: Some(sender),
                writer: Some(writer),
                readers: Mutex::new(vec![reader]),
            }),
        })
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Sends an operation to the writer thread and waits for its reply.
    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StorageError>>) -> Op,
    ) -> Result<T, StorageError> {
        let (reply, response) = oneshot::channel();
        let sender = self
            .inner
            .sender
            .as_ref()
            .ok_or(StorageError::Closed("the SQLite writer is shutting down"))?;
        sender
            .send(make(reply))
            .map_err(|_| StorageError::Closed("the SQLite writer thread has stopped"))?;
        response.await.map_err(|_| {
            StorageError::Closed("the SQLite writer thread stopped before committing")
        })?
    }

    /// Runs `read` on tokio's blocking pool with a pooled read connection.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut connection = match pooled {
                Some(connection) => connection,
                None => open_reader(&inner.path)?,
            };
            let result = read(&mut connection);
            if result.is_ok() {
                let mut idle = inner.readers.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < MAX_IDLE_READERS {
                    idle.push(connection);
                }
            }
            result
        })
        .await
        .map_err(|_| StorageError::Closed("a SQLite read task panicked or was cancelled"))?
    }
}

impl Storage for SqliteStorage {
    async fn load(&self, doc: &str) -> Result<StoredDocument, StorageError> {
        let doc = doc.to_owned();
        self.read(move |connection| load(connection, &doc, None))
            .await
    }

    async fn load_after(&self, doc: &str, after: u64) -> Result<StoredDocument, StorageError> {
        let doc = doc.to_owned();
        let after = seq_to_db(after)?;
        self.read(move |connection| load(connection, &doc, Some(after)))
            .await
    }

    async fn append(&self, doc: &str, update: Vec<u8>) -> Result<u64, StorageError> {
        let doc = doc.to_owned();
        self.write(|reply| Op::Append { doc, update, reply }).await
    }

    async fn compact(&self, doc: &str, snapshot: Vec<u8>, up_to: u64) -> Result<(), StorageError> {
        let doc = doc.to_owned();
        let up_to = seq_to_db(up_to)?;
        self.write(|reply| Op::Compact {
            doc,
            snapshot,
            up_to,
            reply,
        })
        .await
    }

    async fn documents(&self) -> Result<Vec<String>, StorageError> {
        self.read(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT doc FROM documents ORDER BY doc")
                .map_err(sqlite("listing documents"))?;
            let rows = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(sqlite("listing documents"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(sqlite("listing documents"))
        })
        .await
    }

    async fn check(&self) -> Result<(), StorageError> {
        if self.inner.writer.as_ref().is_none_or(|w| w.is_finished()) {
            return Err(StorageError::Closed("the SQLite writer thread has stopped"));
        }
        self.read(|connection| {
            connection
                .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
                .map_err(sqlite("checking the database"))
        })
        .await
    }

    /// No: the data directory's lock keeps every other process out.
    fn is_shared(&self) -> bool {
        false
    }

    async fn watch(&self) -> Result<Option<Subscription>, StorageError> {
        Ok(None)
    }
}

/// Maps a rusqlite error, saying what was being done.
fn sqlite(context: &'static str) -> impl Fn(rusqlite::Error) -> StorageError {
    move |source| StorageError::Sqlite { context, source }
}

fn open_writer(path: &Path) -> Result<Connection, StorageError> {
    let connection = Connection::open(path).map_err(sqlite("opening the database"))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite("setting the busy timeout"))?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(sqlite("enabling WAL mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "SQLite refused WAL mode");
    }
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite("setting synchronous=FULL"))?;
    Ok(connection)
}

fn open_reader(path: &Path) -> Result<Connection, StorageError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection =
        Connection::open_with_flags(path, flags).map_err(sqlite("opening a read connection"))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite("setting the busy timeout"))?;
    connection
        .pragma_update(None, "query_only", true)
        .map_err(sqlite("making a read connection read-only"))?;
    Ok(connection)
}

/// Creates the schema in a new database, checks the version of an existing one.
fn migrate(connection: &mut Connection) -> Result<(), StorageError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite("starting the schema check"))?;
    let version: i64 = transaction
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sqlite("reading the schema version"))?;
    match version {
        0 => {
            transaction
                .execute_batch(SCHEMA)
                .map_err(sqlite("creating the schema"))?;
            transaction
                .pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(sqlite("writing the schema version"))?;
        }
        SCHEMA_VERSION => {}
        found => {
            return Err(StorageError::UnsupportedSchema {
                found,
                supported: SCHEMA_VERSION,
            });
        }
    }
    transaction
        .commit()
        .map_err(sqlite("committing the schema"))
}

fn integer(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Integer(i) => Some(i),
        _ => None,
    }
}

fn blob(value: ValueRef<'_>) -> Option<Vec<u8>> {
    match value {
        ValueRef::Blob(bytes) => Some(bytes.to_vec()),
        _ => None,
    }
}

/// Loads a document, or with `after`, what a reader holding every change up to that seq lacks.
fn load(
    connection: &mut Connection,
    doc: &str,
    after: Option<i64>,
) -> Result<StoredDocument, StorageError> {
    const CONTEXT: &str = "loading a document";
    let after = after.unwrap_or(-1);
    // One read transaction: the snapshot and the changes come from the same database state.
    let transaction = connection.transaction().map_err(sqlite(CONTEXT))?;
    let mut loader = Loader::default();
    {
        let mut statement = transaction
            .prepare_cached("SELECT up_to, data, crc FROM snapshots WHERE doc = ?1 AND up_to > ?2")
            .map_err(sqlite(CONTEXT))?;
        let mut rows = statement
            .query(params![doc, after])
            .map_err(sqlite(CONTEXT))?;
        while let Some(row) = rows.next().map_err(sqlite(CONTEXT))? {
            let up_to = row.get_ref(0).ok().and_then(integer).unwrap_or(-1);
            let data = row.get_ref(1).ok().and_then(blob);
            let crc = row.get_ref(2).ok().and_then(integer);
            loader.snapshot(doc, up_to, data, crc);
        }
        let mut statement = transaction
            .prepare_cached(
                "SELECT seq, data, crc FROM changes WHERE doc = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(sqlite(CONTEXT))?;
        let mut rows = statement
            .query(params![doc, after])
            .map_err(sqlite(CONTEXT))?;
        while let Some(row) = rows.next().map_err(sqlite(CONTEXT))? {
            let seq = row.get_ref(0).ok().and_then(integer).unwrap_or(-1);
            let data = row.get_ref(1).ok().and_then(blob);
            let crc = row.get_ref(2).ok().and_then(integer);
            loader.change(doc, seq, data, crc);
        }
    }
    transaction.commit().map_err(sqlite(CONTEXT))?;
    Ok(loader.finish())
}

/// An operation for the writer thread, with where to send its result.
enum Op {
    Append {
        doc: String,
        update: Vec<u8>,
        reply: oneshot::Sender<Result<u64, StorageError>>,
    },
    Compact {
        doc: String,
        snapshot: Vec<u8>,
        up_to: i64,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
}

/// What an operation produced, before it is sent back.
enum Outcome {
    Appended(u64),
    Compacted,
}

impl Op {
    /// Sends the result to the caller (who may have gone: then nothing happens).
    fn reply(self, result: Result<Outcome, StorageError>) {
        match self {
            Op::Append { reply, .. } => {
                let _ = reply.send(result.and_then(|outcome| match outcome {
                    Outcome::Appended(seq) => Ok(seq),
                    Outcome::Compacted => {
                        Err(StorageError::Closed("internal error: wrong outcome"))
                    }
                }));
            }
            Op::Compact { reply, .. } => {
                let _ = reply.send(result.map(|_| ()));
            }
        }
    }

    /// Runs the operation inside `transaction`.
    fn apply(&self, transaction: &Transaction<'_>) -> Result<Outcome, StorageError> {
        match self {
            Op::Append { doc, update, .. } => {
                const CONTEXT: &str = "appending a change";
                let seq: i64 = transaction
                    .prepare_cached(NEXT_SEQ)
                    .and_then(|mut s| s.query_row([doc], |row| row.get(0)))
                    .map_err(sqlite(CONTEXT))?;
                transaction
                    .prepare_cached(INSERT_CHANGE)
                    .and_then(|mut s| {
                        s.execute(params![doc, seq, i64::from(checksum(update)), update])
                    })
                    .map_err(sqlite(CONTEXT))?;
                // The counter starts at 1 and only grows, unless the file was tampered with.
                let seq = u64::try_from(seq).map_err(|_| StorageError::Corrupt {
                    doc: doc.clone(),
                    what: "its sequence counter is negative",
                })?;
                Ok(Outcome::Appended(seq))
            }
            Op::Compact {
                doc,
                snapshot,
                up_to,
                ..
            } => {
                const CONTEXT: &str = "compacting a document";
                let crc = i64::from(checksum(snapshot));
                for (sql, params) in [
                    (UPSERT_SNAPSHOT, params![doc, up_to, crc, snapshot]),
                    (DELETE_CHANGES, params![doc, up_to]),
                    (RAISE_COUNTER, params![doc, up_to]),
                ] {
                    transaction
                        .prepare_cached(sql)
                        .and_then(|mut s| s.execute(params))
                        .map_err(sqlite(CONTEXT))?;
                }
                Ok(Outcome::Compacted)
            }
        }
    }
}

/// The writer thread: group-commits whatever is queued until the channel closes.
fn write_loop(mut connection: Connection, receiver: mpsc::Receiver<Op>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        commit_batch(&mut connection, batch);
    }
}

/// Commits `batch` in one transaction and replies to each caller; if that fails, commits each
/// operation in its own transaction so only the failing ones report an error.
fn commit_batch(connection: &mut Connection, batch: Vec<Op>) {
    match run_batch(connection, &batch) {
        Ok(outcomes) => {
            for (op, outcome) in batch.into_iter().zip(outcomes) {
                op.reply(Ok(outcome));
            }
        }
        Err(error) if batch.len() == 1 => {
            if let Some(op) = batch.into_iter().next() {
                op.reply(Err(error));
            }
        }
        Err(error) => {
            tracing::warn!(%error, operations = batch.len(), "group commit failed; retrying each operation alone");
            for op in batch {
                let result =
                    run_batch(connection, std::slice::from_ref(&op)).and_then(|mut outcomes| {
                        outcomes.pop().ok_or(StorageError::Closed("no outcome"))
                    });
                op.reply(result);
            }
        }
    }
}

fn run_batch(connection: &mut Connection, batch: &[Op]) -> Result<Vec<Outcome>, StorageError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite("starting a write transaction"))?;
    let outcomes = batch
        .iter()
        .map(|op| op.apply(&transaction))
        .collect::<Result<Vec<_>, _>>()?;
    transaction
        .commit()
        .map_err(sqlite("committing a write transaction"))?;
    Ok(outcomes)
}
