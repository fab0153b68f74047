//! Two server nodes sharing one PostgreSQL database: what a client saves through one node is
//! there for a client of the other. Needs `CRDT_TEST_POSTGRES_URL` (set by `cargo xtask test`,
//! which starts a throwaway PostgreSQL); skipped with a note otherwise.

// Test code: a failure here is a failed test, so unwrap is the right tool.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use crdt_core::MapId;
use support::url;
use sync_client::{Client, ClientConfig};
use sync_server::Config;
use sync_server::config::StorageKind;
use sync_server::server::Server;
use sync_server::storage::PostgresStorage;

const WAIT: Duration = Duration::from_secs(20);

/// A URL selecting a fresh schema of the test database, or `None` (skipped).
async fn fresh_schema() -> Option<String> {
    fresh_schema_named("server").await
}

/// Like [`fresh_schema`], with a name so that tests do not share a schema.
async fn fresh_schema_named(name: &str) -> Option<String> {
    let Ok(url) = std::env::var("CRDT_TEST_POSTGRES_URL") else {
        println!("skipped: CRDT_TEST_POSTGRES_URL not set (cargo xtask test starts a PostgreSQL)");
        return None;
    };
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let schema = format!("{name}_{}", std::process::id());
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!(
        "{url}{separator}options=-c%20search_path%3D{schema}"
    ))
}

async fn node(postgres_url: &str) -> Server<PostgresStorage> {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        storage: StorageKind::Postgres,
        postgres_url: Some(postgres_url.to_owned()),
        ..Config::default()
    };
    config.validate().unwrap();
    let storage = Arc::new(PostgresStorage::connect(postgres_url).await.unwrap());
    Server::bind(config, storage).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_durable_state_through_postgres() {
    let Some(postgres_url) = fresh_schema().await else {
        return;
    };
    let first = node(&postgres_url).await;
    let second = node(&postgres_url).await;
    let writer = Client::start(ClientConfig::new(url(first.local_addr())));
    let doc = writer.open("cluster/doc").unwrap();
    for i in 0..20 {
        doc.edit(|d| d.set(MapId::ROOT, &format!("k{i}"), i))
            .unwrap();
    }
    assert_eq!(doc.wait_saved(WAIT).await, Ok(()));
    let expected = doc.read(|d| d.to_json());
    writer.close().await;
    first.shutdown().await;

    let reader = Client::start(ClientConfig::new(url(second.local_addr())));
    let seen = reader.open("cluster/doc").unwrap();
    assert!(seen.wait_until(WAIT, |d| d.to_json() == expected).await);
    reader.close().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_on_one_node_keeps_changes_another_node_appended() {
    let Some(postgres_url) = fresh_schema_named("compaction").await else {
        return;
    };
    let node_with = |compact_after| {
        let postgres_url = postgres_url.clone();
        async move {
            let config = Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                storage: StorageKind::Postgres,
                postgres_url: Some(postgres_url.clone()),
                limits: sync_server::Limits {
                    compact_after,
                    ..sync_server::Limits::default()
                },
                ..Config::default()
            };
            let storage = Arc::new(PostgresStorage::connect(&postgres_url).await.unwrap());
            Server::bind(config, storage).await.unwrap()
        }
    };
    let (a, b) = (node_with(2).await, node_with(2).await);
    let via_a = Client::start(ClientConfig::new(url(a.local_addr())));
    let via_b = Client::start(ClientConfig::new(url(b.local_addr())));
    let (doc_a, doc_b) = (via_a.open("shared").unwrap(), via_b.open("shared").unwrap());
    // Interleaved appends from both nodes; each node compacts every 2 of its own appends, and
    // never sees the other's (no gossip yet).
    for i in 0..10 {
        doc_a
            .edit(|d| d.set(MapId::ROOT, &format!("a{i}"), i))
            .unwrap();
        assert_eq!(doc_a.wait_saved(WAIT).await, Ok(()));
        doc_b
            .edit(|d| d.set(MapId::ROOT, &format!("b{i}"), i))
            .unwrap();
        assert_eq!(doc_b.wait_saved(WAIT).await, Ok(()));
    }
    via_a.close().await;
    via_b.close().await;
    a.shutdown().await;
    b.shutdown().await;

    let c = node_with(1000).await;
    let reader = Client::start(ClientConfig::new(url(c.local_addr())));
    let seen = reader.open("shared").unwrap();
    let all_there = seen
        .wait_until(WAIT, |d| {
            (0..10).all(|i| {
                d.get(MapId::ROOT, &format!("a{i}"))
                    .ok()
                    .flatten()
                    .is_some()
                    && d.get(MapId::ROOT, &format!("b{i}"))
                        .ok()
                        .flatten()
                        .is_some()
            })
        })
        .await;
    assert!(all_there, "lost: {}", seen.read(|d| d.to_json()));
    reader.close().await;
    c.shutdown().await;
}
