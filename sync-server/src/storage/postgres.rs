//! The PostgreSQL backend, for several server nodes sharing one database.
//!
//! # Tables
//!
//! `crdt_schema_version` (one row: the schema version, [`SCHEMA_VERSION`]), `crdt_documents`
//! (per-document sequence counter), `crdt_changes` (doc, seq, crc, bytea) and `crdt_snapshots`
//! (doc, up_to, crc, bytea). Tables are created in the first schema of the connection's
//! `search_path` (`public` by default; `?options=-c%20search_path%3Dname` in the URL selects
//! another). Nodes starting concurrently create the schema once (advisory lock).
//!
//! # Statements
//!
//! Every operation is ONE SQL statement, hence one transaction, so the pooled connections can
//! pipeline concurrent calls:
//! - `append` bumps the document's counter row (`INSERT … ON CONFLICT DO UPDATE`), inserts the
//!   change with that seq and calls `pg_notify('crdt_document_changed', doc)`. The row lock on the
//!   counter serializes concurrent appends to the same document from any number of nodes until
//!   commit, so seqs are unique, gap-free and in commit order; the notification is delivered at
//!   commit. (A global `bigserial` would avoid that per-document lock but would break the
//!   compaction rule: a seq below `up_to` could still be uncommitted when another node compacts.)
//! - `compact` upserts the snapshot (unless a newer one is stored), deletes the changes with
//!   `seq <= up_to` and raises the counter, atomically.
//! - `load` reads the snapshot and the changes in one `UNION ALL` query (one consistent view).
//!
//! # Connections and reconnection
//!
//! A fixed number of connections ([`DEFAULT_POOL_SIZE`] by default) is used round-robin, each
//! shared by concurrent calls. A connection found closed is replaced on the next call that picks
//! it. A call that was in flight when its connection dropped fails with
//! [`StorageError::Postgres`]: reads ([`Storage::load`], [`Storage::documents`],
//! [`Storage::check`]) are then retried once on a fresh connection; writes are not (an append
//! whose connection dropped may or may not have committed, so the caller must not acknowledge
//! it and may retry: duplicate updates are harmless to CRDTs). TLS is not supported yet
//! (`NoTls`): use a local socket, a private network, or a TLS-terminating proxy.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Statement};

use super::{Loader, Storage, StorageError, StoredDocument, checksum, seq_to_db};

/// The channel of the `NOTIFY` sent after each append; the payload is the document id.
pub const NOTIFY_CHANNEL: &str = "crdt_document_changed";

/// How many connections [`PostgresStorage::connect`] uses.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// The schema version this program writes and reads (table `crdt_schema_version`).
pub const SCHEMA_VERSION: i32 = 1;

/// Connection timeout used when the URL sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Storage::check`] waits for the database.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory lock key taken while creating or checking the schema ("crdtstor").
const MIGRATION_LOCK: i64 = 0x6372_6474_7374_6f72;

const SCHEMA: &str = "
CREATE TABLE crdt_documents (
    doc text PRIMARY KEY,
    last_seq bigint NOT NULL
);
CREATE TABLE crdt_changes (
    doc text NOT NULL,
    seq bigint NOT NULL,
    crc bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (doc, seq)
);
CREATE TABLE crdt_snapshots (
    doc text PRIMARY KEY,
    up_to bigint NOT NULL,
    crc bigint NOT NULL,
    data bytea NOT NULL
);
";

/// $1 doc, $2 crc, $3 data. The payload limit of NOTIFY is 8000 bytes: longer ids notify nothing.
const APPEND: &str = "
WITH counter AS (
    INSERT INTO crdt_documents AS d (doc, last_seq) VALUES ($1, 1)
    ON CONFLICT (doc) DO UPDATE SET last_seq = d.last_seq + 1
    RETURNING last_seq
), inserted AS (
    INSERT INTO crdt_changes (doc, seq, crc, data)
    SELECT $1, last_seq, $2, $3 FROM counter
    RETURNING seq
)
SELECT seq, CASE WHEN octet_length($1) < 8000
    THEN pg_notify('crdt_document_changed', $1)::text END
FROM inserted";

/// $1 doc, $2 up_to, $3 crc, $4 data.
const COMPACT: &str = "
WITH snapshot AS (
    INSERT INTO crdt_snapshots AS s (doc, up_to, crc, data) VALUES ($1, $2, $3, $4)
    ON CONFLICT (doc) DO UPDATE SET up_to = EXCLUDED.up_to, crc = EXCLUDED.crc, data = EXCLUDED.data
    WHERE s.up_to <= EXCLUDED.up_to
), removed AS (
    DELETE FROM crdt_changes WHERE doc = $1 AND seq <= $2
)
INSERT INTO crdt_documents AS d (doc, last_seq) VALUES ($1, $2)
ON CONFLICT (doc) DO UPDATE SET last_seq = GREATEST(d.last_seq, EXCLUDED.last_seq)";

/// $1 doc. Kind 0: the snapshot (seq = up_to); kind 1: the changes.
const LOAD: &str = "
SELECT 0 AS kind, up_to AS seq, crc, data FROM crdt_snapshots WHERE doc = $1
UNION ALL
SELECT 1, seq, crc, data FROM crdt_changes WHERE doc = $1
ORDER BY kind, seq";

/// $1 doc, $2 after: what a reader holding every change up to `after` lacks (see LOAD).
const LOAD_AFTER: &str = "
SELECT 0 AS kind, up_to AS seq, crc, data FROM crdt_snapshots WHERE doc = $1 AND up_to > $2
UNION ALL
SELECT 1, seq, crc, data FROM crdt_changes WHERE doc = $1 AND seq > $2
ORDER BY kind, seq";

const DOCUMENTS: &str = "SELECT doc FROM crdt_documents ORDER BY doc";

/// Documents stored in a PostgreSQL database (see the [module documentation](self)).
///
/// Cheap to clone (clones share the connections).
///
/// ```no_run
/// use sync_server::storage::{PostgresStorage, Storage};
///
/// # async fn demo() -> Result<(), sync_server::storage::StorageError> {
/// let storage = PostgresStorage::connect("postgresql://crdt@127.0.0.1/crdt").await?;
/// let seq = storage.append("doc-1", vec![1, 2, 3]).await?;
/// // Other nodes listening on `crdt_document_changed` were told about "doc-1".
/// assert_eq!(storage.load("doc-1").await?.last_seq(), Some(seq));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStorage {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    slots: Vec<Mutex<Option<Arc<Connection>>>>,
    next: AtomicUsize,
}

/// One open connection with its prepared statements.
struct Connection {
    client: Client,
    append: Statement,
    compact: Statement,
    load: Statement,
    load_after: Statement,
    documents: Statement,
}

impl fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("hosts", &self.inner.config.get_hosts())
            .field("dbname", &self.inner.config.get_dbname())
            .field("connections", &self.inner.slots.len())
            .finish_non_exhaustive()
    }
}

fn postgres(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |source| StorageError::Postgres { context, source }
}

impl PostgresStorage {
    /// Connects to the database at `url` (for example
    /// `postgresql://user:password@host:5432/dbname`, or a `key=value` connection string),
    /// creating the tables if the database has none, with [`DEFAULT_POOL_SIZE`] connections.
    ///
    /// Fails if the server cannot be reached, or with [`StorageError::UnsupportedSchema`] if the
    /// tables were created by a newer schema version.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sync_server::storage::StorageError> {
    /// let storage =
    ///     sync_server::storage::PostgresStorage::connect("postgresql://crdt@127.0.0.1/crdt").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::connect_with_pool_size(url, DEFAULT_POOL_SIZE).await
    }

    /// Like [`PostgresStorage::connect`], with `connections` connections (at least one). More
    /// connections let more appends commit in parallel (each commit waits for the server's WAL
    /// flush); each is one server process.
    pub async fn connect_with_pool_size(
        url: &str,
        connections: usize,
    ) -> Result<Self, StorageError> {
        let mut config: Config = url.parse().map_err(StorageError::InvalidUrl)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("crdt-sync-server");
        }
        let (mut client, connection) = config
            .connect(NoTls)
            .await
            .map_err(postgres("connecting"))?;
        spawn_connection(connection);
        migrate(&mut client).await?;
        let first = Connection::prepare(client).await?;
        let mut slots = Vec::with_capacity(connections.max(1));
        slots.push(Mutex::new(Some(Arc::new(first))));
        slots.resize_with(connections.max(1), || Mutex::new(None));
        Ok(PostgresStorage {
            inner: Arc::new(Inner {
                config,
                slots,
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// Opens a dedicated connection that `LISTEN`s on [`NOTIFY_CHANNEL`]: its
    /// [`Subscription::next`] yields the id of each document appended to by any node (this one
    /// included), as a hint to reload it.
    ///
    /// If the connection drops, `next` returns `None`: subscribe again and reload the documents
    /// of interest, since notifications sent meanwhile are lost.
    ///
    /// ```no_run
    /// # async fn demo(storage: sync_server::storage::PostgresStorage) -> Result<(), sync_server::storage::StorageError> {
    /// let mut changes = storage.subscribe().await?;
    /// while let Some(doc) = changes.next().await {
    ///     println!("{doc} changed on some node");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn subscribe(&self) -> Result<Subscription, StorageError> {
        let (client, mut connection) = self
            .inner
            .config
            .connect(NoTls)
            .await
            .map_err(postgres("connecting to listen for notifications"))?;
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(notification))) => {
                        if notification.channel() == NOTIFY_CHANNEL
                            && sender.send(notification.payload().to_owned()).is_err()
                        {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::warn!(%error, "PostgreSQL notification connection failed");
                        break;
                    }
                    None => break,
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
            .await
            .map_err(postgres("listening for notifications"))?;
        Ok(Subscription {
            receiver,
            _client: client,
        })
    }

    /// The connection of the next slot (round-robin), reconnecting it if it is closed.
    async fn connection(&self) -> Result<Arc<Connection>, StorageError> {
        let index = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.slots.len();
        let mut slot = self.inner.slots[index].lock().await;
        if let Some(connection) = slot.as_ref() {
            if !connection.client.is_closed() {
                return Ok(Arc::clone(connection));
            }
            tracing::info!(slot = index, "PostgreSQL connection closed; reconnecting");
        }
        *slot = None;
        let (client, connection) = self
            .inner
            .config
            .connect(NoTls)
            .await
            .map_err(postgres("reconnecting"))?;
        spawn_connection(connection);
        let connection = Arc::new(Connection::prepare(client).await?);
        *slot = Some(Arc::clone(&connection));
        Ok(connection)
    }

    /// Runs an idempotent read, retrying once on a fresh connection if the connection dropped.
    async fn read<T, F, Fut>(&self, read: F) -> Result<T, StorageError>
    where
        F: Fn(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let connection = self.connection().await?;
            match read(connection).await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_closed() && attempts < 2 => {
                    tracing::info!(%error, "PostgreSQL connection dropped during a read; retrying");
                }
                Err(source) => {
                    return Err(StorageError::Postgres {
                        context: "reading",
                        source,
                    });
                }
            }
        }
    }
}

impl Connection {
    async fn prepare(client: Client) -> Result<Self, StorageError> {
        let prepare = postgres("preparing statements");
        Ok(Connection {
            append: client.prepare(APPEND).await.map_err(&prepare)?,
            compact: client.prepare(COMPACT).await.map_err(&prepare)?,
            load: client.prepare(LOAD).await.map_err(&prepare)?,
            load_after: client.prepare(LOAD_AFTER).await.map_err(&prepare)?,
            documents: client.prepare(DOCUMENTS).await.map_err(&prepare)?,
            client,
        })
    }
}

/// Drives a connection on the runtime until it closes.
fn spawn_connection<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "PostgreSQL connection closed with an error");
        }
    });
}

/// Creates the tables in an empty database, checks the schema version otherwise.
async fn migrate(client: &mut Client) -> Result<(), StorageError> {
    let context = postgres("checking the schema");
    let transaction = client.transaction().await.map_err(&context)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(&context)?;
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS crdt_schema_version (version integer NOT NULL)")
        .await
        .map_err(&context)?;
    let row = transaction
        .query_one("SELECT max(version) FROM crdt_schema_version", &[])
        .await
        .map_err(&context)?;
    let version: Option<i32> = row.try_get(0).map_err(&context)?;
    match version {
        None => {
            transaction
                .batch_execute(SCHEMA)
                .await
                .map_err(postgres("creating the schema"))?;
            transaction
                .execute(
                    "INSERT INTO crdt_schema_version (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )
                .await
                .map_err(postgres("creating the schema"))?;
        }
        Some(SCHEMA_VERSION) => {}
        Some(found) => {
            return Err(StorageError::UnsupportedSchema {
                found: i64::from(found),
                supported: i64::from(SCHEMA_VERSION),
            });
        }
    }
    transaction.commit().await.map_err(&context)
}

/// Collects the rows of LOAD or LOAD_AFTER.
fn collect(doc: &str, rows: Vec<tokio_postgres::Row>) -> StoredDocument {
    let mut loader = Loader::default();
    for row in rows {
        let kind: i32 = row.try_get(0).unwrap_or(1);
        let seq: i64 = row.try_get(1).unwrap_or(-1);
        let crc: Option<i64> = row.try_get(2).ok();
        let data: Option<Vec<u8>> = row.try_get(3).ok();
        if kind == 0 {
            loader.snapshot(doc, seq, data, crc);
        } else {
            loader.change(doc, seq, data, crc);
        }
    }
    loader.finish()
}

impl Storage for PostgresStorage {
    async fn load(&self, doc: &str) -> Result<StoredDocument, StorageError> {
        let rows =
            self.read(|connection| async move {
                connection.client.query(&connection.load, &[&doc]).await
            })
            .await?;
        Ok(collect(doc, rows))
    }

    async fn load_after(&self, doc: &str, after: u64) -> Result<StoredDocument, StorageError> {
        let after = seq_to_db(after)?;
        let rows = self
            .read(|connection| async move {
                connection
                    .client
                    .query(&connection.load_after, &[&doc, &after])
                    .await
            })
            .await?;
        Ok(collect(doc, rows))
    }

    async fn append(&self, doc: &str, update: Vec<u8>) -> Result<u64, StorageError> {
        let connection = self.connection().await?;
        let crc = i64::from(checksum(&update));
        let row = connection
            .client
            .query_one(&connection.append, &[&doc, &crc, &update])
            .await
            .map_err(postgres("appending a change"))?;
        let seq: i64 = row.try_get(0).map_err(postgres("appending a change"))?;
        u64::try_from(seq).map_err(|_| StorageError::Corrupt {
            doc: doc.to_owned(),
            what: "its sequence counter is negative",
        })
    }

    async fn compact(&self, doc: &str, snapshot: Vec<u8>, up_to: u64) -> Result<(), StorageError> {
        let up_to = seq_to_db(up_to)?;
        let crc = i64::from(checksum(&snapshot));
        let connection = self.connection().await?;
        connection
            .client
            .execute(&connection.compact, &[&doc, &up_to, &crc, &snapshot])
            .await
            .map_err(postgres("compacting a document"))?;
        Ok(())
    }

    async fn documents(&self) -> Result<Vec<String>, StorageError> {
        let rows =
            self.read(|connection| async move {
                connection.client.query(&connection.documents, &[]).await
            })
            .await?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(postgres("listing documents")))
            .collect()
    }

    async fn check(&self) -> Result<(), StorageError> {
        let check = self.read(|connection| async move {
            connection.client.simple_query("SELECT 1").await.map(|_| ())
        });
        tokio::time::timeout(CHECK_TIMEOUT, check)
            .await
            .map_err(|_| StorageError::Timeout("checking the PostgreSQL connection"))?
    }

    /// Yes: every node of a cluster may append to the same documents.
    fn is_shared(&self) -> bool {
        true
    }

    async fn watch(&self) -> Result<Option<Subscription>, StorageError> {
        self.subscribe().await.map(Some)
    }
}

/// Notifications of changed documents (see [`PostgresStorage::subscribe`]).
#[derive(Debug)]
pub struct Subscription {
    receiver: mpsc::UnboundedReceiver<String>,
    /// Keeps the listening connection open.
    _client: Client,
}

impl Subscription {
    /// The next changed document's id, or `None` once the connection has dropped.
    pub async fn next(&mut self) -> Option<String> {
        self.receiver.recv().await
    }
}
