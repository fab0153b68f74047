//! The storage backends against the contract of `sync_server::storage::Storage`.
//!
//! SQLite tests use temporary directories. PostgreSQL tests read the server's URL from
//! `CRDT_TEST_POSTGRES_URL` (set by `cargo xtask test`, which starts a throwaway server) and are
//! skipped with a note when it is unset; each test works in a schema of its own.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sync_server::storage::{
    AnyStorage, PostgresStorage, SqliteStorage, Storage, StorageError, StoredChange, StoredDocument,
};

fn update(i: usize) -> Vec<u8> {
    format!("update number {i}").into_bytes()
}

/// Appends `count` updates to `doc` from `tasks` concurrent tasks; returns the seqs.
async fn append_concurrently<S: Storage + Clone>(
    storage: &S,
    doc: &'static str,
    tasks: usize,
    per_task: usize,
) -> Vec<u64> {
    let mut handles = Vec::new();
    for task in 0..tasks {
        let storage = storage.clone();
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..per_task {
                seqs.push(
                    storage
                        .append(doc, update(task * per_task + i))
                        .await
                        .unwrap(),
                );
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for handle in handles {
        seqs.extend(handle.await.unwrap());
    }
    seqs
}

/// The checks every backend must pass, on a fresh store.
mod contract {
    use super::*;

    pub async fn append_then_load_in_order(storage: &impl Storage) {
        assert_eq!(storage.load("a").await.unwrap(), StoredDocument::default());
        for i in 0..5 {
            assert_eq!(storage.append("a", update(i)).await.unwrap(), i as u64 + 1);
        }
        assert_eq!(storage.append("b", update(99)).await.unwrap(), 1);
        let loaded = storage.load("a").await.unwrap();
        assert_eq!(loaded.snapshot, None);
        assert_eq!(loaded.skipped, 0);
        let expected: Vec<StoredChange> = (0..5)
            .map(|i| StoredChange {
                seq: i as u64 + 1,
                update: update(i),
            })
            .collect();
        assert_eq!(loaded.changes, expected);
        assert_eq!(loaded.last_seq(), Some(5));
        // Empty updates round-trip too.
        assert_eq!(storage.append("c", Vec::new()).await.unwrap(), 1);
        assert_eq!(storage.load("c").await.unwrap().changes[0].update, b"");
    }

    pub async fn load_after_reads_what_a_reader_lacks(storage: &impl Storage) {
        for i in 0..5 {
            storage.append("doc", update(i)).await.unwrap();
        }
        let seqs =
            |stored: &StoredDocument| stored.changes.iter().map(|c| c.seq).collect::<Vec<_>>();
        let tail = storage.load_after("doc", 2).await.unwrap();
        assert_eq!(
            (tail.snapshot.as_deref(), seqs(&tail)),
            (None, vec![3, 4, 5])
        );
        assert_eq!(tail.changes[0].update, update(2));
        assert!(storage.load_after("doc", 5).await.unwrap().is_empty());
        assert!(storage.load_after("nothing", 0).await.unwrap().is_empty());
        // Another node compacted up to 3: a reader at 2 needs the snapshot; one at 3 does not.
        storage.compact("doc", b"snap 3".to_vec(), 3).await.unwrap();
        let tail = storage.load_after("doc", 2).await.unwrap();
        assert_eq!(tail.snapshot.as_deref(), Some(&b"snap 3"[..]));
        assert_eq!((tail.snapshot_up_to, seqs(&tail)), (3, vec![4, 5]));
        assert_eq!(tail.covers_up_to(), 5);
        let tail = storage.load_after("doc", 3).await.unwrap();
        assert_eq!((tail.snapshot.as_deref(), seqs(&tail)), (None, vec![4, 5]));
    }

    pub async fn compact_then_load(storage: &impl Storage) {
        for i in 0..5 {
            storage.append("doc", update(i)).await.unwrap();
        }
        storage.compact("doc", b"snap 3".to_vec(), 3).await.unwrap();
        let loaded = storage.load("doc").await.unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"snap 3"[..]));
        assert_eq!(loaded.snapshot_up_to, 3);
        let seqs: Vec<u64> = loaded.changes.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [4, 5]);
        assert_eq!(loaded.changes[0].update, update(3));

        // An older snapshot does not replace a newer one; seqs go on after compaction.
        storage.compact("doc", b"snap 5".to_vec(), 5).await.unwrap();
        storage.compact("doc", b"snap 2".to_vec(), 2).await.unwrap();
        let loaded = storage.load("doc").await.unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"snap 5"[..]));
        assert!(loaded.changes.is_empty());
        assert_eq!(storage.append("doc", update(6)).await.unwrap(), 6);

        // Compacting beyond the last seq raises the counter: later seqs stay above the snapshot.
        storage
            .compact("fresh", b"imported".to_vec(), 10)
            .await
            .unwrap();
        assert_eq!(storage.append("fresh", update(0)).await.unwrap(), 11);
        let loaded = storage.load("fresh").await.unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"imported"[..]));
        assert_eq!(loaded.last_seq(), Some(11));
        assert_eq!(
            storage.documents().await.unwrap(),
            ["doc".to_owned(), "fresh".to_owned()]
        );
    }

    pub async fn concurrent_appends<S: Storage + Clone>(storage: &S) {
        let tasks = 50;
        let per_task = 20;
        let seqs = append_concurrently(storage, "hot", tasks, per_task).await;
        let unique: BTreeSet<u64> = seqs.iter().copied().collect();
        assert_eq!(unique.len(), tasks * per_task, "seqs are unique");
        // Gap-free from 1.
        assert_eq!(unique.first(), Some(&1));
        assert_eq!(unique.last(), Some(&((tasks * per_task) as u64)));
        let loaded = storage.load("hot").await.unwrap();
        assert_eq!(loaded.changes.len(), tasks * per_task);
        assert!(loaded.changes.windows(2).all(|w| w[0].seq < w[1].seq));
        let updates: BTreeSet<Vec<u8>> = loaded.changes.into_iter().map(|c| c.update).collect();
        let expected: BTreeSet<Vec<u8>> = (0..tasks * per_task).map(update).collect();
        assert_eq!(updates, expected);
    }

    pub async fn documents_lists_ids(storage: &impl Storage) {
        assert!(storage.documents().await.unwrap().is_empty());
        for doc in ["zeta", "alpha", "mid/dle", "ünïcode", "alpha"] {
            storage.append(doc, update(0)).await.unwrap();
        }
        assert_eq!(
            storage.documents().await.unwrap(),
            ["alpha", "mid/dle", "zeta", "ünïcode"]
        );
        storage.check().await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite

fn sqlite(dir: &Path) -> SqliteStorage {
    SqliteStorage::open(dir).unwrap()
}

#[tokio::test]
async fn sqlite_append_then_load_in_order() {
    let dir = tempfile::tempdir().unwrap();
    contract::append_then_load_in_order(&sqlite(dir.path())).await;
}

#[tokio::test]
async fn sqlite_compact_then_load() {
    let dir = tempfile::tempdir().unwrap();
    contract::compact_then_load(&sqlite(dir.path())).await;
}

#[tokio::test]
async fn sqlite_load_after_reads_what_a_reader_lacks() {
    let dir = tempfile::tempdir().unwrap();
    contract::load_after_reads_what_a_reader_lacks(&sqlite(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_appends_are_all_stored_with_unique_seqs() {
    let dir = tempfile::tempdir().unwrap();
    contract::concurrent_appends(&sqlite(dir.path())).await;
}

#[tokio::test]
async fn sqlite_documents_lists_ids() {
    let dir = tempfile::tempdir().unwrap();
    contract::documents_lists_ids(&sqlite(dir.path())).await;
}

#[tokio::test]
async fn sqlite_open_creates_the_directory_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b");
    let storage = sqlite(&nested);
    assert_eq!(storage.path(), nested.join("documents.sqlite3"));
    assert!(storage.path().exists());
    storage.check().await.unwrap();
}

#[tokio::test]
async fn sqlite_reopen_after_drop_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let storage = sqlite(dir.path());
        for i in 0..10 {
            storage.append("kept", update(i)).await.unwrap();
        }
        storage.compact("kept", b"snap".to_vec(), 4).await.unwrap();
        storage.append("other", update(0)).await.unwrap();
    }
    let storage = sqlite(dir.path());
    let loaded = storage.load("kept").await.unwrap();
    assert_eq!(loaded.snapshot.as_deref(), Some(&b"snap"[..]));
    assert_eq!(
        loaded.changes.iter().map(|c| c.seq).collect::<Vec<_>>(),
        (5..=10).collect::<Vec<_>>()
    );
    assert_eq!(storage.documents().await.unwrap(), ["kept", "other"]);
    // The counter survived too.
    assert_eq!(storage.append("kept", update(10)).await.unwrap(), 11);
}

#[tokio::test]
async fn sqlite_appends_whose_future_resolved_survive_a_dropped_handle_without_shutdown() {
    // A clone still held elsewhere keeps the writer running; a second, independent handle on the
    // same file (another process after a crash, say) sees every resolved append.
    let dir = tempfile::tempdir().unwrap();
    let first = sqlite(dir.path());
    for i in 0..20 {
        first.append("d", update(i)).await.unwrap();
    }
    let second = sqlite(dir.path());
    assert_eq!(second.load("d").await.unwrap().changes.len(), 20);
    drop(first);
    assert_eq!(second.append("d", update(20)).await.unwrap(), 21);
}

/// Rewrites one column of a stored row, as a disk fault or a torn write would.
fn tamper(db: &Path, sql: &str, params: impl rusqlite::Params) {
    let connection = rusqlite::Connection::open(db).unwrap();
    assert_eq!(connection.execute(sql, params).unwrap(), 1);
}

#[tokio::test]
async fn sqlite_corrupt_rows_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = {
        let storage = sqlite(dir.path());
        for i in 0..6 {
            storage.append("doc", update(i)).await.unwrap();
        }
        storage.path().to_path_buf()
    };
    // A flipped byte in seq 2, a half-written record in seq 4, an unreadable row in seq 5.
    let mut flipped = update(1);
    flipped[3] ^= 0x20;
    tamper(
        &db,
        "UPDATE changes SET data = ?1 WHERE doc = 'doc' AND seq = 2",
        [flipped],
    );
    tamper(
        &db,
        "UPDATE changes SET data = substr(data, 1, 3) WHERE doc = 'doc' AND seq = 4",
        [],
    );
    tamper(
        &db,
        "UPDATE changes SET data = 'not a blob' WHERE doc = 'doc' AND seq = 5",
        [],
    );
    let storage = sqlite(dir.path());
    let loaded = storage.load("doc").await.unwrap();
    assert_eq!(loaded.skipped, 3);
    assert_eq!(
        loaded.changes.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [1, 3, 6]
    );
    assert_eq!(loaded.changes[1].update, update(2));
}

#[tokio::test]
async fn sqlite_corrupt_snapshot_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = {
        let storage = sqlite(dir.path());
        for i in 0..3 {
            storage.append("doc", update(i)).await.unwrap();
        }
        storage
            .compact("doc", b"snapshot".to_vec(), 2)
            .await
            .unwrap();
        storage.path().to_path_buf()
    };
    tamper(
        &db,
        "UPDATE snapshots SET data = 'snapshoT' WHERE doc = 'doc'",
        [],
    );
    let loaded = sqlite(dir.path()).load("doc").await.unwrap();
    assert_eq!(loaded.snapshot, None);
    assert_eq!(loaded.skipped, 1);
    assert_eq!(loaded.last_seq(), Some(3));
}

#[tokio::test]
async fn sqlite_newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path()).path().to_path_buf();
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    match SqliteStorage::open(dir.path()) {
        Err(error @ StorageError::UnsupportedSchema { found: 99, .. }) => {
            assert!(error.to_string().contains("schema version 99"), "{error}");
        }
        other => panic!("expected UnsupportedSchema, got {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_is_usable_as_any_storage() {
    let dir = tempfile::tempdir().unwrap();
    let storage = AnyStorage::from(sqlite(dir.path()));
    contract::append_then_load_in_order(&storage).await;
    storage.check().await.unwrap();
}

/// Not a timed assertion: prints appends per second (run with `--release --nocapture` to
/// measure). 10,000 appends of 100 bytes from 100 concurrent tasks, one document each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_append_throughput() {
    const TASKS: usize = 100;
    const PER_TASK: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let storage = sqlite(dir.path());
    let started = Instant::now();
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let storage = storage.clone();
        handles.push(tokio::spawn(async move {
            let doc = format!("doc-{task}");
            for _ in 0..PER_TASK {
                storage.append(&doc, vec![7; 100]).await.unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let elapsed = started.elapsed();
    let total = TASKS * PER_TASK;
    println!(
        "sqlite: {total} appends from {TASKS} tasks in {:.3} s = {:.0} appends/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(storage.documents().await.unwrap().len(), TASKS);
    assert_eq!(storage.load("doc-0").await.unwrap().changes.len(), PER_TASK);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A test's own schema in the test server: `(storage URL, admin client)`, or `None` (skipped).
async fn postgres_schema(test: &str) -> Option<(String, tokio_postgres::Client)> {
    let Ok(url) = std::env::var("CRDT_TEST_POSTGRES_URL") else {
        println!("skipped: CRDT_TEST_POSTGRES_URL not set (cargo xtask test starts a PostgreSQL)");
        return None;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("t_{test}_{}_{nanos}", std::process::id());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("CRDT_TEST_POSTGRES_URL={url}: {e}"));
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path = {schema}"
        ))
        .await
        .unwrap();
    // The schema selected by the URL, and an application name to find this test's connections.
    let options = format!("options=-c%20search_path%3D{schema}&application_name={schema}");
    let url = if url.contains("://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}{options}")
    } else {
        format!("{url} options='-c search_path={schema}' application_name={schema}")
    };
    Some((url, client))
}

async fn postgres(url: &str) -> PostgresStorage {
    PostgresStorage::connect(url).await.unwrap()
}

#[tokio::test]
async fn postgres_append_then_load_in_order() {
    let Some((url, _admin)) = postgres_schema("order").await else {
        return;
    };
    contract::append_then_load_in_order(&postgres(&url).await).await;
}

#[tokio::test]
async fn postgres_compact_then_load() {
    let Some((url, _admin)) = postgres_schema("compact").await else {
        return;
    };
    contract::compact_then_load(&postgres(&url).await).await;
}

#[tokio::test]
async fn postgres_load_after_reads_what_a_reader_lacks() {
    let Some((url, _admin)) = postgres_schema("load_after").await else {
        return;
    };
    contract::load_after_reads_what_a_reader_lacks(&postgres(&url).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_appends_are_all_stored_with_unique_seqs() {
    let Some((url, _admin)) = postgres_schema("concurrent").await else {
        return;
    };
    contract::concurrent_appends(&postgres(&url).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_appends_from_two_nodes_to_one_document_get_gap_free_seqs() {
    let Some((url, _admin)) = postgres_schema("nodes").await else {
        return;
    };
    let (one, two) = (postgres(&url).await, postgres(&url).await);
    let (a, b) = tokio::join!(
        append_concurrently(&one, "shared", 10, 20),
        append_concurrently(&two, "shared", 10, 20)
    );
    let seqs: BTreeSet<u64> = a.into_iter().chain(b).collect();
    assert_eq!(seqs, (1..=400).collect());
    assert_eq!(two.load("shared").await.unwrap().changes.len(), 400);
}

#[tokio::test]
async fn postgres_documents_lists_ids() {
    let Some((url, _admin)) = postgres_schema("documents").await else {
        return;
    };
    contract::documents_lists_ids(&postgres(&url).await).await;
}

#[tokio::test]
async fn postgres_reopen_after_drop_keeps_everything() {
    let Some((url, _admin)) = postgres_schema("reopen").await else {
        return;
    };
    {
        let storage = postgres(&url).await;
        for i in 0..10 {
            storage.append("kept", update(i)).await.unwrap();
        }
        storage.compact("kept", b"snap".to_vec(), 4).await.unwrap();
    }
    let storage = postgres(&url).await;
    let loaded = storage.load("kept").await.unwrap();
    assert_eq!(loaded.snapshot.as_deref(), Some(&b"snap"[..]));
    assert_eq!(loaded.changes.len(), 6);
    assert_eq!(storage.append("kept", update(10)).await.unwrap(), 11);
}

#[tokio::test]
async fn postgres_corrupt_rows_are_skipped_and_counted() {
    let Some((url, admin)) = postgres_schema("corrupt").await else {
        return;
    };
    let storage = postgres(&url).await;
    for i in 0..4 {
        storage.append("doc", update(i)).await.unwrap();
    }
    admin
        .execute(
            "UPDATE crdt_changes SET data = substring(data from 1 for 3) WHERE seq = 2",
            &[],
        )
        .await
        .unwrap();
    let loaded = storage.load("doc").await.unwrap();
    assert_eq!(loaded.skipped, 1);
    assert_eq!(
        loaded.changes.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [1, 3, 4]
    );
}

#[tokio::test]
async fn postgres_newer_schema_version_is_refused() {
    let Some((url, admin)) = postgres_schema("version").await else {
        return;
    };
    drop(postgres(&url).await);
    admin
        .execute("UPDATE crdt_schema_version SET version = 99", &[])
        .await
        .unwrap();
    match PostgresStorage::connect(&url).await {
        Err(error @ StorageError::UnsupportedSchema { found: 99, .. }) => {
            assert!(error.to_string().contains("schema version 99"), "{error}");
        }
        other => panic!("expected UnsupportedSchema, got {other:?}"),
    }
}

#[tokio::test]
async fn postgres_append_notifies_listeners() {
    let Some((url, _admin)) = postgres_schema("notify").await else {
        return;
    };
    let storage = postgres(&url).await;
    let mut changes = storage.subscribe().await.unwrap();
    let doc = format!("notified-{}", std::process::id());
    storage.append(&doc, update(0)).await.unwrap();
    // Other tests append concurrently in the same database: wait for ours.
    let received = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(changed) = changes.next().await {
            if changed == doc {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(received, Ok(true));
}

#[tokio::test]
async fn postgres_reconnects_after_the_connection_drops() {
    let Some((url, admin)) = postgres_schema("reconnect").await else {
        return;
    };
    let storage = postgres(&url).await;
    storage.append("doc", update(0)).await.unwrap();
    let application: String = admin
        .query_one("SELECT current_schema()", &[])
        .await
        .unwrap()
        .get(0);
    let terminated = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .await
        .unwrap();
    assert!(!terminated.is_empty());
    // Reads retry on a fresh connection by themselves.
    storage.check().await.unwrap();
    assert_eq!(storage.load("doc").await.unwrap().changes.len(), 1);
    // A write may fail once (its connection was dropped), then the next one reconnects.
    let mut appended = None;
    for _ in 0..4 {
        if let Ok(seq) = storage.append("doc", update(1)).await {
            appended = Some(seq);
            break;
        }
    }
    assert_eq!(appended, Some(2));
}

#[tokio::test]
async fn postgres_is_usable_as_any_storage() {
    let Some((url, _admin)) = postgres_schema("any").await else {
        return;
    };
    let storage = AnyStorage::from(postgres(&url).await);
    contract::append_then_load_in_order(&storage).await;
}

#[tokio::test]
async fn postgres_unreachable_server_is_a_clear_error() {
    // Port 1 on loopback: nothing listens there.
    let error = PostgresStorage::connect("postgresql://nobody@127.0.0.1:1/none")
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("PostgreSQL error while connecting"),
        "{error}"
    );
    assert!(matches!(
        PostgresStorage::connect("postgresql://[bad").await,
        Err(StorageError::InvalidUrl(_))
    ));
}
