//! `sync-server` nodes as a cluster: real processes on 127.0.0.x loopback addresses, joined
//! through a seed with a shared secret. Each test kills its processes when it ends (also when
//! it fails: `Node` kills on drop).

// Test code: a failure here is a failed test, so unwrap is the right tool.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crdt_core::{MapId, Value, VersionVector};
use support::{http_get, url};
use sync_client::{Client, ClientConfig};
use sync_server::cluster::NodeId;
use sync_server::cluster::wire::{NodeBody, NodeMessage, Sealer};

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "a cluster secret for the tests";

/// A free port on `ip` (bound and released; the node binds it a moment later).
fn free_addr(ip: [u8; 4]) -> SocketAddr {
    let listener = std::net::TcpListener::bind((Ipv4Addr::from(ip), 0)).unwrap();
    listener.local_addr().unwrap()
}

/// A node process, killed when dropped.
struct Node {
    child: Child,
    addr: SocketAddr,
    cluster_addr: SocketAddr,
    id: NodeId,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn spawn_node(number: u8, dir: &Path, seeds: &[SocketAddr]) -> Node {
    spawn_node_with(number, dir, seeds, &[]).await
}

async fn spawn_node_with(number: u8, dir: &Path, seeds: &[SocketAddr], extra: &[&str]) -> Node {
    let ip = [127, 0, 0, number];
    let (addr, cluster_addr) = (free_addr(ip), free_addr(ip));
    let id = NodeId(u64::from(number) * 0x1111);
    let seeds: Vec<String> = seeds.iter().map(SocketAddr::to_string).collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sync-server"));
    command
        .args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(dir.join(format!("node-{number}")))
        .args(["--cluster-listen", &cluster_addr.to_string()])
        .args(["--node-id", &id.to_string()])
        .args(extra)
        .env("SYNC_CLUSTER_SECRET", SECRET)
        .env("SYNC_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if !seeds.is_empty() {
        command.args(["--cluster-seeds", &seeds.join(",")]);
    }
    let node = Node {
        child: command.spawn().unwrap(),
        addr,
        cluster_addr,
        id,
    };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && http_get(addr, "/healthz").await.0 == 200
        {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node {number} did not start on {addr}");
}

/// A counter or gauge from a node's `/metrics`.
async fn metric(node: &Node, name: &str) -> i64 {
    let (_, body) = http_get(node.addr, "/metrics").await;
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(-1)
}

/// Waits until every node sees the others alive.
async fn wait_for_membership(nodes: &[&Node]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut all = true;
        for node in nodes {
            all &= metric(node, "sync_cluster_members_alive").await == nodes.len() as i64 - 1;
        }
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes did not all see each other alive"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_serve_one_document_to_clients_on_each() {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn_node(1, dir.path(), &[]).await;
    let second = spawn_node(2, dir.path(), &[first.cluster_addr]).await;
    let third = spawn_node(3, dir.path(), &[first.cluster_addr]).await;
    wait_for_membership(&[&first, &second, &third]).await;
    let (_, page) = http_get(first.addr, "/").await;
    assert!(
        page.contains(&second.id.to_string()) && page.contains("alive"),
        "{page}"
    );

    let clients: Vec<Client> = [&first, &second, &third]
        .iter()
        .map(|node| Client::start(ClientConfig::new(url(node.addr))))
        .collect();
    let docs: Vec<_> = clients.iter().map(|c| c.open("shared").unwrap()).collect();
    for (i, doc) in docs.iter().enumerate() {
        doc.edit(|d| d.set(MapId::ROOT, &format!("from-{i}"), i as i64))
            .unwrap();
        assert_eq!(doc.wait_saved(WAIT).await, Ok(()));
    }
    for (i, doc) in docs.iter().enumerate() {
        let all = doc
            .wait_until(WAIT, |d| {
                (0..3).all(|k| d.get(MapId::ROOT, &format!("from-{k}")).unwrap().is_some())
            })
            .await;
        assert!(
            all,
            "client of node {} lacks edits: {}",
            i + 1,
            doc.read(|d| d.to_json())
        );
    }

    // Replication delay: from the writer's acknowledgement on node 1 to the clients of nodes
    // 2 and 3 seeing the edit.
    let mut delays = Vec::new();
    for round in 0..40_i64 {
        docs[0].edit(|d| d.set(MapId::ROOT, "n", round)).unwrap();
        assert_eq!(docs[0].wait_saved(WAIT).await, Ok(()));
        let acknowledged = Instant::now();
        for doc in &docs[1..] {
            let seen = doc
                .wait_until(WAIT, |d| {
                    d.get(MapId::ROOT, "n").unwrap() == Some(&Value::from(round))
                })
                .await;
            assert!(seen, "round {round} did not arrive");
            delays.push(acknowledged.elapsed());
        }
    }
    delays.sort();
    println!(
        "replication delay (acknowledged on node 1 -> seen by a client of node 2 or 3), {} samples: median {:?}, p99 {:?}",
        delays.len(),
        percentile(&delays, 0.5),
        percentile(&delays, 0.99)
    );
    // Pushed once per holder per change, never relayed on: 2 other holders here.
    assert!(metric(&first, "sync_cluster_pushes_total").await >= 40);
    assert!(metric(&second, "sync_replication_lag_seconds_count").await >= 40);

    // A client that arrives later on any node gets everything.
    let late = Client::start(ClientConfig::new(url(third.addr)));
    let doc = late.open("shared").unwrap();
    let expected = docs[0].read(|d| d.to_json());
    assert!(doc.wait_until(WAIT, |d| d.to_json() == expected).await);
    for client in clients.into_iter().chain([late]) {
        client.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loads_a_document_pulls_what_the_holders_have() {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn_node(4, dir.path(), &[]).await;
    let second = spawn_node(5, dir.path(), &[first.cluster_addr]).await;
    wait_for_membership(&[&first, &second]).await;
    // Written through node 4 while node 5 does not hold the document.
    let writer = Client::start(ClientConfig::new(url(first.addr)));
    let doc = writer.open("pulled").unwrap();
    for i in 0..50_i64 {
        doc.edit(|d| d.set(MapId::ROOT, &format!("k{i}"), i))
            .unwrap();
    }
    assert_eq!(doc.wait_saved(WAIT).await, Ok(()));
    let expected = doc.read(|d| d.to_json());
    // Node 5's own store has nothing; loading asks the holder.
    let reader = Client::start(ClientConfig::new(url(second.addr)));
    let seen = reader.open("pulled").unwrap();
    assert!(seen.wait_until(WAIT, |d| d.to_json() == expected).await);
    writer.close().await;
    reader.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_without_the_secret_or_with_a_borrowed_id_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn_node(6, dir.path(), &[]).await;
    let second = spawn_node(7, dir.path(), &[first.cluster_addr]).await;
    wait_for_membership(&[&first, &second]).await;
    let send = |frame: Vec<u8>| {
        let mut stream = std::net::TcpStream::connect(first.cluster_addr).unwrap();
        stream
            .write_all(&(frame.len() as u32).to_be_bytes())
            .unwrap();
        stream.write_all(&frame).unwrap();
        stream
    };
    let have = |from: NodeId, from_addr: SocketAddr| NodeMessage {
        from,
        from_addr,
        body: NodeBody::Have {
            doc: "secret-doc".into(),
            version: VersionVector::new(),
        },
    };
    let impostor_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)), 4000);
    let before = metric(&first, "sync_cluster_refused_total").await;

    // 1. Sealed with another secret.
    let _closed =
        send(Sealer::new(b"not the cluster secret").seal(&have(NodeId(99), impostor_addr)));
    // 2. The right secret, but node 7's id from another address.
    let _claimed = send(Sealer::new(SECRET.as_bytes()).seal(&have(second.id, impostor_addr)));
    // 3. Not a node frame at all.
    let _garbage = send(b"GET / HTTP/1.1\r\n\r\n".to_vec());

    let deadline = Instant::now() + WAIT;
    while metric(&first, "sync_cluster_refused_total").await < before + 3 {
        assert!(
            Instant::now() < deadline,
            "the three frames were not all refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing reached a document: none was loaded for them.
    assert_eq!(metric(&first, "sync_documents_loaded").await, 0);
    // The real member is still alive.
    assert_eq!(metric(&first, "sync_cluster_members_alive").await, 1);
}

/// Whether `doc` holds every key `prefix0 .. prefix{count-1}`.
fn has_keys(d: &crdt_core::Document, prefix: &str, count: usize) -> bool {
    (0..count).all(|i| {
        d.get(MapId::ROOT, &format!("{prefix}{i}"))
            .unwrap()
            .is_some()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_entropy_alone_makes_every_store_converge() {
    // No push, no pull on load: only the digest comparisons move changes between nodes.
    let quiet = [
        "--cluster-eager-push",
        "false",
        "--cluster-anti-entropy-ms",
        "200",
    ];
    let dir = tempfile::tempdir().unwrap();
    let first = spawn_node_with(8, dir.path(), &[], &quiet).await;
    let seeds = [first.cluster_addr];
    let second = spawn_node_with(9, dir.path(), &seeds, &quiet).await;
    let third = spawn_node_with(10, dir.path(), &seeds, &quiet).await;
    let nodes = [&first, &second, &third];
    wait_for_membership(&nodes).await;

    // Writes through the first two nodes: one document each, and one both write to.
    for (node, prefix) in [(&first, "a"), (&second, "b")] {
        let client = Client::start(ClientConfig::new(url(node.addr)));
        let (own, shared) = (
            client.open(&format!("only-{prefix}")).unwrap(),
            client.open("both").unwrap(),
        );
        for i in 0..30_i64 {
            own.edit(|d| d.set(MapId::ROOT, &format!("{prefix}{i}"), i))
                .unwrap();
            shared
                .edit(|d| d.set(MapId::ROOT, &format!("{prefix}{i}"), i))
                .unwrap();
        }
        assert_eq!(own.wait_saved(WAIT).await, Ok(()));
        assert_eq!(shared.wait_saved(WAIT).await, Ok(()));
        client.close().await;
    }

    // Every node's store ends with everything (read through a client of each node: without
    // a pull on load, a client sees what its node stores).
    let started = Instant::now();
    for node in nodes {
        let client = Client::start(ClientConfig::new(url(node.addr)));
        let checks: [(&str, &[(&str, usize)]); 3] = [
            ("only-a", &[("a", 30)]),
            ("only-b", &[("b", 30)]),
            ("both", &[("a", 30), ("b", 30)]),
        ];
        for (doc_id, keys) in checks {
            let doc = client.open(doc_id).unwrap();
            let complete = doc
                .wait_until(WAIT, |d| keys.iter().all(|(p, n)| has_keys(d, p, *n)))
                .await;
            assert!(
                complete,
                "{doc_id} on {}: {}",
                node.addr,
                doc.read(|d| d.to_json())
            );
        }
        client.close().await;
    }
    println!(
        "anti-entropy converged three stores in {:?}",
        started.elapsed()
    );
    let mut differing = 0;
    for node in nodes {
        differing += metric(node, "sync_anti_entropy_documents_out_of_sync_total").await;
        assert_eq!(metric(node, "sync_cluster_pushes_total").await, 0);
    }
    assert!(
        differing >= 4,
        "anti-entropy found {differing} documents out of sync"
    );

    // Equal collections cost one hash: no bucket lists are exchanged any more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut before = Vec::new();
    for node in nodes {
        before.push(metric(node, "sync_anti_entropy_buckets_total").await);
    }
    let rounds_before = metric(&first, "sync_anti_entropy_rounds_total").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(metric(&first, "sync_anti_entropy_rounds_total").await > rounds_before + 3);
    for (node, before) in nodes.iter().zip(before) {
        assert_eq!(
            metric(node, "sync_anti_entropy_buckets_total").await,
            before
        );
    }
}
