//! Two server nodes sharing one PostgreSQL database: what a client saves through one node is
//! there for a client of the other. Needs `CRDT_TEST_POSTGRES_URL` (set by `cargo xtask test`,
//! which starts a throwaway PostgreSQL); skipped with a note otherwise.

// Test code: a failure here is a failed test, so unwrap is the right tool.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use crdt_core::{MapId, VersionVector};
use support::{frame_where, raw_session, send, url};
use sync_client::{Client, ClientConfig};
use sync_protocol::Frame;
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

/// The live-delivery bound between nodes on one PostgreSQL (the NOTIFY hint, then a read).
const BETWEEN_NODES: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_subscriber_on_one_node_sees_another_nodes_edits_within_a_second() {
    let Some(postgres_url) = fresh_schema_named("live").await else {
        return;
    };
    let (a, b) = (node(&postgres_url).await, node(&postgres_url).await);
    let via_a = Client::start(ClientConfig::new(url(a.local_addr())));
    let via_b = Client::start(ClientConfig::new(url(b.local_addr())));
    let (writer, watcher) = (via_a.open("live").unwrap(), via_b.open("live").unwrap());
    // Both subscribed (each saved an edit through its node) before the timed edits.
    writer.edit(|d| d.set(MapId::ROOT, "writer", true)).unwrap();
    watcher
        .edit(|d| d.set(MapId::ROOT, "watcher", true))
        .unwrap();
    assert_eq!(writer.wait_saved(WAIT).await, Ok(()));
    assert_eq!(watcher.wait_saved(WAIT).await, Ok(()));
    let mut delays = Vec::new();
    for i in 0..10_i64 {
        writer.edit(|d| d.set(MapId::ROOT, "n", i)).unwrap();
        assert_eq!(writer.wait_saved(WAIT).await, Ok(()));
        let acknowledged = std::time::Instant::now();
        let arrived = watcher
            .wait_until(BETWEEN_NODES, |d| {
                d.get(MapId::ROOT, "n").ok().flatten() == Some(&crdt_core::Value::from(i))
            })
            .await;
        assert!(
            arrived,
            "edit {i} acknowledged by A did not reach B's subscriber within 1 s"
        );
        delays.push(acknowledged.elapsed());
    }
    delays.sort();
    println!(
        "A's acknowledgement to B's subscriber: median {:?}, max {:?}",
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    // And the other way, into the document A already holds live.
    watcher.edit(|d| d.set(MapId::ROOT, "back", 1)).unwrap();
    assert_eq!(watcher.wait_saved(WAIT).await, Ok(()));
    let back = writer
        .wait_until(BETWEEN_NODES, |d| {
            d.get(MapId::ROOT, "back").ok().flatten().is_some()
        })
        .await;
    assert!(back, "B's edit did not reach A's subscriber within 1 s");
    assert!(
        b.metrics()
            .changes_from_other_nodes
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 10
    );
    via_a.close().await;
    via_b.close().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_subscriber_on_another_node_gets_everything_acknowledged() {
    let Some(postgres_url) = fresh_schema_named("fresh_subscriber").await else {
        return;
    };
    let (a, b) = (node(&postgres_url).await, node(&postgres_url).await);
    // B holds the document live (an early subscriber keeps it loaded) before A's writes.
    let mut early = raw_session(b.local_addr(), None).await;
    let subscribe = Frame::Subscribe {
        doc: "notes".into(),
        version: VersionVector::new(),
    };
    send(&mut early, &subscribe).await;
    assert!(
        frame_where(&mut early, |f| matches!(f, Frame::Subscribed { .. }))
            .await
            .is_some()
    );

    let via_a = Client::start(ClientConfig::new(url(a.local_addr())));
    let writer = via_a.open("notes").unwrap();
    for round in 0..5_i64 {
        for i in 0..12_i64 {
            writer
                .edit(|d| d.set(MapId::ROOT, &format!("k{i}"), round))
                .unwrap();
        }
        assert_eq!(writer.wait_saved(WAIT).await, Ok(()));
        let acknowledged = writer.read(|d| d.version());
        // At once, a new subscriber on B: its first answer covers what A acknowledged.
        let mut late = raw_session(b.local_addr(), None).await;
        send(&mut late, &subscribe).await;
        match frame_where(&mut late, |f| matches!(f, Frame::Subscribed { .. })).await {
            Some(Frame::Subscribed { version, .. }) => assert!(
                version.includes(&acknowledged),
                "round {round}: B answered {version:?}, A had acknowledged {acknowledged:?}"
            ),
            other => panic!("expected Subscribed, got {other:?}"),
        }
    }
    via_a.close().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_made_while_a_node_lost_its_notification_feed_still_reach_its_subscribers() {
    let Some(postgres_url) = fresh_schema_named("feed").await else {
        return;
    };
    // Node B's connections carry a name of their own, so the test can cut exactly them.
    let b_url = format!("{postgres_url}&application_name=feed_test_node_b");
    let (a, b) = (node(&postgres_url).await, node(&b_url).await);
    let via_a = Client::start(ClientConfig::new(url(a.local_addr())));
    let via_b = Client::start(ClientConfig::new(url(b.local_addr())));
    let (writer, watcher) = (via_a.open("feed").unwrap(), via_b.open("feed").unwrap());
    watcher
        .edit(|d| d.set(MapId::ROOT, "watcher", true))
        .unwrap();
    assert_eq!(watcher.wait_saved(WAIT).await, Ok(()));

    let (admin, connection) = tokio_postgres::connect(&postgres_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for round in 0..3_i64 {
        let cut = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'feed_test_node_b'",
                &[],
            )
            .await
            .unwrap();
        assert!(!cut.is_empty());
        // Written while B may still be without its feed: that hint is lost, the catch-up
        // after B listens again must bring it.
        writer.edit(|d| d.set(MapId::ROOT, "round", round)).unwrap();
        assert_eq!(writer.wait_saved(WAIT).await, Ok(()));
        let arrived = watcher
            .wait_until(Duration::from_secs(5), |d| {
                d.get(MapId::ROOT, "round").ok().flatten() == Some(&crdt_core::Value::from(round))
            })
            .await;
        assert!(
            arrived,
            "round {round}: A's edit never reached B's subscriber"
        );
    }
    via_a.close().await;
    via_b.close().await;
    a.shutdown().await;
    b.shutdown().await;
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
