//! End-to-end tests of the server on loopback ports: real WebSocket clients (the Rust client and
//! raw frame-level connections), real SQLite storage in temporary directories.

mod support;

use std::time::Duration;

use crdt_core::{Document, MapId, VersionVector};
use support::*;
use sync_client::{Client, ClientConfig, Status};
use sync_protocol::{Access, AckStatus, ErrorCode, Frame, WIRE_VERSION};
use sync_server::auth::issue_token;

const WAIT: Duration = Duration::from_secs(20);

fn client(addr: std::net::SocketAddr) -> Client {
    Client::start(ClientConfig::new(url(addr)))
}

fn get_int(doc: &Document, key: &str) -> Option<i64> {
    doc.get(MapId::ROOT, key)
        .ok()
        .flatten()
        .and_then(|v| v.as_int())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_converge_and_edits_are_saved() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let (a, b) = (client(server.local_addr()), client(server.local_addr()));
    let (doc_a, doc_b) = (a.open("notes").unwrap(), b.open("notes").unwrap());
    doc_a.edit(|d| d.set(MapId::ROOT, "from_a", 1)).unwrap();
    doc_b.edit(|d| d.set(MapId::ROOT, "from_b", 2)).unwrap();
    assert!(
        doc_a
            .wait_until(WAIT, |d| get_int(d, "from_b") == Some(2))
            .await
    );
    assert!(
        doc_b
            .wait_until(WAIT, |d| get_int(d, "from_a") == Some(1))
            .await
    );
    assert_eq!(doc_a.wait_saved(WAIT).await, Ok(()));
    assert_eq!(doc_b.wait_saved(WAIT).await, Ok(()));
    assert_eq!(doc_a.read(|d| d.to_json()), doc_b.read(|d| d.to_json()));
    assert!(
        server
            .metrics()
            .persisted_batches
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1 // both edits may share one batch (one round of the actor)
    );
    a.close().await;
    b.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_clients_converge_on_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let clients: Vec<Client> = (0..10).map(|_| client(server.local_addr())).collect();
    let docs: Vec<_> = clients.iter().map(|c| c.open("shared").unwrap()).collect();
    // The first client creates a text everyone then types into concurrently.
    let text = docs[0]
        .edit(|d| d.replace_with_new_text(MapId::ROOT, "text"))
        .unwrap();
    for doc in &docs {
        assert!(doc.wait_until(WAIT, |d| d.text(text).is_ok()).await);
    }
    for round in 0..5 {
        for (i, doc) in docs.iter().enumerate() {
            doc.edit(|d| {
                d.set(MapId::ROOT, &format!("c{i}"), round)?;
                d.text_insert(text, 0, &format!("{i}"))
            })
            .unwrap();
        }
    }
    for doc in &docs {
        assert!(
            doc.wait_until(WAIT, |d| d.text_len(text).unwrap_or(0) == 50)
                .await
        );
        assert_eq!(doc.wait_saved(WAIT).await, Ok(()));
    }
    let expected = docs[0].read(|d| d.to_json());
    for doc in &docs {
        assert!(doc.wait_until(WAIT, |d| d.to_json() == expected).await);
    }
    for (i, _) in docs.iter().enumerate() {
        assert_eq!(expected[format!("c{i}")], 4);
    }
    for client in clients {
        client.close().await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_survive_a_client_restart() {
    let server_dir = tempfile::tempdir().unwrap();
    let client_dir = tempfile::tempdir().unwrap();
    // Reserve an address, then edit while nothing listens there.
    let server = start_server(server_dir.path(), |_| {}).await;
    let addr = server.local_addr();
    server.shutdown().await;
    let offline = Client::start(ClientConfig {
        state_dir: Some(client_dir.path().to_path_buf()),
        ..ClientConfig::new(url(addr))
    });
    let doc = offline.open("todo").unwrap();
    doc.edit(|d| d.set(MapId::ROOT, "written_offline", 7))
        .unwrap();
    assert!(!doc.is_saved());
    offline.close().await;

    // The app restarts, then the server comes back.
    let restarted = Client::start(ClientConfig {
        state_dir: Some(client_dir.path().to_path_buf()),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..ClientConfig::new(url(addr))
    });
    let doc = restarted.open("todo").unwrap();
    assert_eq!(doc.read(|d| get_int(d, "written_offline")), Some(7));
    let server = restart_server(server_dir.path(), addr, |_| {}).await;
    assert_eq!(doc.wait_saved(WAIT).await, Ok(()));
    let other = client(addr);
    let seen = other.open("todo").unwrap();
    assert!(
        seen.wait_until(WAIT, |d| get_int(d, "written_offline") == Some(7))
            .await
    );
    restarted.close().await;
    other.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    // A small compaction threshold so that the restart loads a snapshot plus a log.
    let server = start_server(dir.path(), |c| c.limits.compact_after = 5).await;
    let addr = server.local_addr();
    let writer = client(addr);
    let doc = writer.open("ledger").unwrap();
    for i in 0..23 {
        doc.edit(|d| d.set(MapId::ROOT, &format!("k{i}"), i))
            .unwrap();
        // Separate batches, so that several log records and compactions happen.
        assert_eq!(doc.wait_saved(WAIT).await, Ok(()));
    }
    let expected = doc.read(|d| d.to_json());
    writer.close().await;
    server.shutdown().await;

    let server = restart_server(dir.path(), addr, |_| {}).await;
    let reader = client(addr);
    let doc = reader.open("ledger").unwrap();
    assert!(doc.wait_until(WAIT, |d| d.to_json() == expected).await);
    reader.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_documents_travel_in_fragments() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.limits.max_frame = 4096).await;
    let (a, b) = (client(server.local_addr()), client(server.local_addr()));
    let doc_a = a.open("big").unwrap();
    // About 200 KB of text that LZ4 cannot shrink much.
    let mut seed = 1u64;
    let big: String = (0..200_000)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(b'a' + (seed >> 59) as u8 % 26)
        })
        .collect();
    let text = doc_a
        .edit(|d| {
            let text = d.replace_with_new_text(MapId::ROOT, "body")?;
            d.text_insert(text, 0, &big)?;
            Ok::<_, crdt_core::DocError>(text)
        })
        .unwrap();
    assert_eq!(doc_a.wait_saved(WAIT).await, Ok(()));
    let doc_b = b.open("big").unwrap();
    assert!(
        doc_b
            .wait_until(WAIT, |d| d.text(text).is_ok_and(|t| t == big))
            .await
    );
    a.close().await;
    b.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_relayed_and_dropped_on_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let (a, b) = (client(server.local_addr()), client(server.local_addr()));
    let (doc_a, doc_b) = (a.open("room").unwrap(), b.open("room").unwrap());
    assert!(a.wait_connected(WAIT).await && b.wait_connected(WAIT).await);
    doc_a.set_presence(Some(b"cursor at 3".to_vec()));
    let deadline = tokio::time::Instant::now() + WAIT;
    while doc_b.presence().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = doc_b.presence();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, b"cursor at 3");
    a.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !doc_b.presence().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        doc_b.presence().is_empty(),
        "presence must end with the connection"
    );
    b.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    assert_eq!(http_get(addr, "/healthz").await, (200, "ok\n".into()));
    assert_eq!(http_get(addr, "/readyz").await.0, 200);
    let (status, metrics) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "sync_connections ",
        "sync_documents_loaded ",
        "sync_messages_in_total ",
        "sync_bytes_out_total ",
        "sync_persist_latency_seconds_bucket",
        "sync_rejected_total{reason=\"rate_limited\"}",
        "sync_document_queue_depth ",
        "sync_outgoing_queue_depth ",
    ] {
        assert!(metrics.contains(name), "missing {name} in\n{metrics}");
    }
    let (status, page) = http_get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("sync-server"));
    assert_eq!(http_get(addr, "/nope").await.0, 404);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_closes_connections_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let mut raw = raw_session(server.local_addr(), None).await;
    server.shutdown().await;
    let frame = next_frame(&mut raw).await;
    assert!(
        matches!(
            frame,
            Some(Frame::Error {
                code: ErrorCode::ShuttingDown,
                ..
            })
        ),
        "{frame:?}"
    );
    assert!(closed(&mut raw).await);
}

// ---- bad input ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_frames_get_errors_while_others_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    let good = client(addr);
    let doc = good.open("doc").unwrap();
    doc.edit(|d| d.set(MapId::ROOT, "before", 1)).unwrap();
    assert_eq!(doc.wait_saved(WAIT).await, Ok(()));

    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    // Garbage as the first frame.
    let mut raw = raw_connect(addr).await;
    raw.send(Message::Binary(vec![0xde, 0xad, 0xbe, 0xef].into()))
        .await
        .unwrap();
    assert!(matches!(
        next_frame(&mut raw).await,
        Some(Frame::Error {
            code: ErrorCode::Invalid,
            ..
        })
    ));
    assert!(closed(&mut raw).await);
    // A truncated frame after a good handshake.
    let mut raw = raw_session(addr, None).await;
    let mut bytes = Frame::Subscribe {
        doc: "doc".into(),
        version: VersionVector::new(),
    }
    .encode();
    bytes.truncate(bytes.len() - 3);
    raw.send(Message::Binary(bytes.into())).await.unwrap();
    assert!(matches!(
        next_frame(&mut raw).await,
        Some(Frame::Error {
            code: ErrorCode::Invalid,
            ..
        })
    ));
    assert!(closed(&mut raw).await);
    // A text message.
    let mut raw = raw_session(addr, None).await;
    raw.send(Message::Text("hello?".into())).await.unwrap();
    assert!(closed(&mut raw).await);
    // A well-formed frame whose update is garbage: refused, nothing applied.
    let mut raw = raw_session(addr, None).await;
    send(
        &mut raw,
        &Frame::Subscribe {
            doc: "doc".into(),
            version: VersionVector::new(),
        },
    )
    .await;
    send(
        &mut raw,
        &Frame::Changes {
            doc: "doc".into(),
            batch: 9,
            update: b"\xC7DOC garbage".to_vec(),
            version: VersionVector::new(),
        },
    )
    .await;
    let ack = frame_where(&mut raw, |f| matches!(f, Frame::Ack { .. })).await;
    assert!(
        matches!(
            ack,
            Some(Frame::Ack {
                batch: 9,
                status: AckStatus::Invalid,
                ..
            })
        ),
        "{ack:?}"
    );
    // The good client still syncs, and what was stored is intact.
    doc.edit(|d| d.set(MapId::ROOT, "after", 2)).unwrap();
    assert_eq!(doc.wait_saved(WAIT).await, Ok(()));
    let check = client(addr);
    let seen = check.open("doc").unwrap();
    assert!(
        seen.wait_until(WAIT, |d| get_int(d, "before") == Some(1)
            && get_int(d, "after") == Some(2))
            .await
    );
    good.close().await;
    check.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_protocol_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let mut raw = raw_connect(server.local_addr()).await;
    send(
        &mut raw,
        &Frame::Hello {
            min_version: WIRE_VERSION + 1,
            max_version: WIRE_VERSION + 5,
            token: None,
            agent: "future client".into(),
        },
    )
    .await;
    assert!(matches!(
        next_frame(&mut raw).await,
        Some(Frame::Error {
            code: ErrorCode::UnsupportedVersion,
            ..
        })
    ));
    assert!(closed(&mut raw).await);
    // A frame header of another wire version.
    let mut raw = raw_connect(server.local_addr()).await;
    let mut bytes = Frame::Hello {
        min_version: 1,
        max_version: 1,
        token: None,
        agent: String::new(),
    }
    .encode();
    bytes[2] = 77;
    use futures_util::SinkExt;
    raw.send(tokio_tungstenite::tungstenite::Message::Binary(
        bytes.into(),
    ))
    .await
    .unwrap();
    assert!(matches!(
        next_frame(&mut raw).await,
        Some(Frame::Error {
            code: ErrorCode::UnsupportedVersion,
            ..
        })
    ));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_close_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.limits.max_frame = 8192).await;
    let mut raw = raw_session(server.local_addr(), None).await;
    send(
        &mut raw,
        &Frame::Changes {
            doc: "d".into(),
            batch: 1,
            update: vec![0; 100_000],
            version: VersionVector::new(),
        },
    )
    .await;
    assert!(closed(&mut raw).await);
    // Fragments adding up past the message limit are refused too.
    let server2_dir = tempfile::tempdir().unwrap();
    let server2 = start_server(server2_dir.path(), |c| {
        c.limits.max_frame = 4096;
        c.limits.max_message = 8192;
    })
    .await;
    let mut raw = raw_session(server2.local_addr(), None).await;
    for index in 0..4 {
        send(
            &mut raw,
            &Frame::Fragment {
                id: 1,
                index,
                count: 4,
                bytes: vec![0; 3000],
            },
        )
        .await;
    }
    assert!(matches!(
        frame_where(&mut raw, |f| matches!(f, Frame::Error { .. })).await,
        Some(Frame::Error {
            code: ErrorCode::TooLarge,
            ..
        })
    ));
    server.shutdown().await;
    server2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_expired_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.jwt_secret = Some(SECRET.into())).await;
    let addr = server.local_addr();
    for token in [
        None,
        Some("not.a.token".to_string()),
        Some(issue_token("another secret of enough length", "x", &["*"], &["*"], 60).unwrap()),
    ] {
        let mut raw = raw_connect(addr).await;
        send(
            &mut raw,
            &Frame::Hello {
                min_version: 1,
                max_version: 1,
                token,
                agent: String::new(),
            },
        )
        .await;
        assert!(matches!(
            next_frame(&mut raw).await,
            Some(Frame::Error {
                code: ErrorCode::Unauthorized,
                ..
            })
        ));
        assert!(closed(&mut raw).await);
    }
    // A token that expires while connected ends the connection.
    let short = issue_token(SECRET, "short", &["*"], &["*"], 1).unwrap();
    let mut raw = raw_session(addr, Some(short)).await;
    let frame = frame_where(&mut raw, |f| matches!(f, Frame::Error { .. })).await;
    assert!(matches!(
        frame,
        Some(Frame::Error {
            code: ErrorCode::Unauthorized,
            ..
        })
    ));
    // The client reports it.
    let refused = Client::start(ClientConfig {
        token: Some("garbage".into()),
        ..ClientConfig::new(url(addr))
    });
    let mut waited = 0;
    while !matches!(refused.status(), Status::Unauthorized(_)) && waited < 200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        waited += 1;
    }
    assert!(matches!(refused.status(), Status::Unauthorized(_)));
    refused.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_tokens_cannot_write_and_refresh_upgrades_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.jwt_secret = Some(SECRET.into())).await;
    let addr = server.local_addr();
    let reader_token = issue_token(SECRET, "reader", &["docs/*"], &[], 3600).unwrap();
    let mut raw = raw_session(addr, Some(reader_token)).await;
    send(
        &mut raw,
        &Frame::Subscribe {
            doc: "docs/1".into(),
            version: VersionVector::new(),
        },
    )
    .await;
    assert!(matches!(
        frame_where(&mut raw, |f| matches!(f, Frame::Subscribed { .. })).await,
        Some(Frame::Subscribed {
            access: Access::ReadOnly,
            ..
        })
    ));
    let mut forged = Document::new(crdt_core::ReplicaId::from_u128(99));
    forged.set(MapId::ROOT, "vandalism", true).unwrap();
    let update = forged.update_since(&VersionVector::new());
    send(
        &mut raw,
        &Frame::Changes {
            doc: "docs/1".into(),
            batch: 1,
            update: update.clone(),
            version: forged.version(),
        },
    )
    .await;
    assert!(matches!(
        frame_where(&mut raw, |f| matches!(f, Frame::Ack { .. })).await,
        Some(Frame::Ack {
            batch: 1,
            status: AckStatus::PermissionDenied,
            ..
        })
    ));
    // Not subscribed at all to documents outside the grant.
    send(
        &mut raw,
        &Frame::Subscribe {
            doc: "private".into(),
            version: VersionVector::new(),
        },
    )
    .await;
    assert!(matches!(
        frame_where(&mut raw, |f| matches!(f, Frame::Error { .. })).await,
        Some(Frame::Error {
            code: ErrorCode::PermissionDenied,
            ..
        })
    ));
    // A refreshed token with write access, on the same connection.
    let writer_token = issue_token(SECRET, "reader", &[], &["docs/*"], 3600).unwrap();
    send(
        &mut raw,
        &Frame::Auth {
            token: writer_token,
        },
    )
    .await;
    assert!(matches!(
        frame_where(&mut raw, |f| matches!(f, Frame::Authorized { .. })).await,
        Some(Frame::Authorized { .. })
    ));
    send(
        &mut raw,
        &Frame::Changes {
            doc: "docs/1".into(),
            batch: 2,
            update,
            version: forged.version(),
        },
    )
    .await;
    assert!(matches!(
        frame_where(&mut raw, |f| matches!(f, Frame::Ack { .. })).await,
        Some(Frame::Ack {
            batch: 2,
            status: AckStatus::Ok,
            ..
        })
    ));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| {
        c.limits.outgoing_queue = 8;
        c.limits.messages_per_second = 100_000;
        c.limits.bytes_per_second = 1 << 30;
    })
    .await;
    let addr = server.local_addr();
    // The sleeper subscribes and then never reads again.
    let mut sleeper = raw_session(addr, None).await;
    send(
        &mut sleeper,
        &Frame::Subscribe {
            doc: "firehose".into(),
            version: VersionVector::new(),
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let writer = client(addr);
    let doc = writer.open("firehose").unwrap();
    let payload = "x".repeat(64 * 1024);
    for i in 0..200 {
        doc.edit(|d| d.set(MapId::ROOT, &format!("k{i}"), payload.as_str()))
            .unwrap();
        if i % 20 == 0 {
            assert_eq!(doc.wait_saved(WAIT).await, Ok(()));
        }
    }
    assert_eq!(
        doc.wait_saved(WAIT).await,
        Ok(()),
        "the writer must not be held up by the sleeper"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while server
        .metrics()
        .rejected_count(sync_server::metrics::Reject::SlowConsumer)
        == 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        server
            .metrics()
            .rejected_count(sync_server::metrics::Reject::SlowConsumer)
            > 0
    );
    drop(sleeper);
    writer.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_shed_load_and_slow_handshakes_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| {
        c.limits.max_connections = 2;
        c.limits.handshake_timeout = Duration::from_millis(500);
    })
    .await;
    let addr = server.local_addr();
    let _one = raw_session(addr, None).await;
    let _two = raw_session(addr, None).await;
    let refused = tokio_tungstenite::connect_async(url(addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503)
        }
        other => panic!("expected HTTP 503, got {:?}", other.map(|_| ())),
    }
    drop(_one);
    drop(_two);
    // A client that opens TCP and says nothing is cut after the handshake timeout.
    use tokio::io::AsyncReadExt;
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    // An oversized request head gets 431.
    use tokio::io::AsyncWriteExt;
    let mut big = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
    let _ = big.write_all(head.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), big.read_to_end(&mut response)).await;
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 431"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limits_and_document_limits_hold() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| {
        c.limits.max_connections_per_ip = 1;
        c.limits.max_documents_per_connection = 2;
    })
    .await;
    let addr = server.local_addr();
    let mut raw = raw_session(addr, None).await;
    assert!(tokio_tungstenite::connect_async(url(addr)).await.is_err());
    for doc in ["a", "b", "c"] {
        send(
            &mut raw,
            &Frame::Subscribe {
                doc: doc.into(),
                version: VersionVector::new(),
            },
        )
        .await;
    }
    assert!(matches!(
        frame_where(&mut raw, |f| matches!(f, Frame::Error { .. })).await,
        Some(Frame::Error {
            code: ErrorCode::TooManyDocuments,
            ..
        })
    ));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_documents_are_unloaded_and_reload_from_storage() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| {
        c.limits.document_idle = Duration::from_millis(200);
    })
    .await;
    let addr = server.local_addr();
    let loaded = || {
        server
            .metrics()
            .documents_loaded
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let writer = client(addr);
    let doc = writer.open("sleepy").unwrap();
    doc.edit(|d| d.set(MapId::ROOT, "kept", 5)).unwrap();
    assert_eq!(doc.wait_saved(WAIT).await, Ok(()));
    assert_eq!(loaded(), 1);
    writer.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while loaded() != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(loaded(), 0, "an idle document must be unloaded");
    let reader = client(addr);
    let seen = reader.open("sleepy").unwrap();
    assert!(
        seen.wait_until(WAIT, |d| get_int(d, "kept") == Some(5))
            .await
    );
    assert_eq!(loaded(), 1);
    reader.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_cap_evicts_documents_nobody_watches() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| {
        c.limits.memory_cap = 1; // every document is over the cap
        c.limits.document_idle = Duration::from_secs(3600);
    })
    .await;
    let addr = server.local_addr();
    let loaded = || {
        server
            .metrics()
            .documents_loaded
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let watcher = client(addr);
    let watched = watcher.open("watched").unwrap();
    let writer = client(addr);
    let unwatched = writer.open("unwatched").unwrap();
    watched.edit(|d| d.set(MapId::ROOT, "a", 1)).unwrap();
    unwatched.edit(|d| d.set(MapId::ROOT, "b", 2)).unwrap();
    assert_eq!(watched.wait_saved(WAIT).await, Ok(()));
    assert_eq!(unwatched.wait_saved(WAIT).await, Ok(()));
    writer.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while loaded() != 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(loaded(), 1, "only the watched document stays loaded");
    // The watched one still works.
    watched.edit(|d| d.set(MapId::ROOT, "a", 3)).unwrap();
    assert_eq!(watched.wait_saved(WAIT).await, Ok(()));
    watcher.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_refuse_floods_and_then_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.limits.messages_per_second = 5).await;
    let mut raw = raw_session(server.local_addr(), None).await;
    send(
        &mut raw,
        &Frame::Subscribe {
            doc: "d".into(),
            version: VersionVector::new(),
        },
    )
    .await;
    // Well past the burst (twice the rate): refusals, then a close.
    for _ in 0..200 {
        send(
            &mut raw,
            &Frame::Have {
                doc: "d".into(),
                version: VersionVector::new(),
            },
        )
        .await;
    }
    assert!(matches!(
        frame_where(&mut raw, |f| matches!(f, Frame::Error { .. })).await,
        Some(Frame::Error {
            code: ErrorCode::RateLimited,
            ..
        })
    ));
    assert!(closed(&mut raw).await);
    assert!(
        server
            .metrics()
            .rejected_count(sync_server::metrics::Reject::RateLimited)
            > 64
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_over_the_size_limit_refuse_more_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.limits.max_document = 4096).await;
    let writer = client(server.local_addr());
    let doc = writer.open("capped").unwrap();
    doc.edit(|d| d.set(MapId::ROOT, "small", 1)).unwrap();
    assert_eq!(doc.wait_saved(WAIT).await, Ok(()));
    let big = "z".repeat(20_000);
    doc.edit(|d| d.set(MapId::ROOT, "big", big.as_str()))
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while doc.last_error().is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        matches!(
            doc.last_error(),
            Some(sync_client::DocSyncError::BatchRefused {
                status: AckStatus::TooLarge,
                ..
            })
        ),
        "{:?}",
        doc.last_error()
    );
    assert!(!doc.is_saved());
    writer.close().await;
    // What was stored before is intact and the refused change is not there.
    let reader = client(server.local_addr());
    let seen = reader.open("capped").unwrap();
    assert!(
        seen.wait_until(WAIT, |d| get_int(d, "small") == Some(1))
            .await
    );
    assert!(seen.read(|d| d.get(MapId::ROOT, "big").ok().flatten().is_none()));
    reader.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| {
        c.limits.idle_timeout = Duration::from_millis(600);
        c.limits.ping_interval = Duration::from_millis(200);
    })
    .await;
    let mut raw = raw_session(server.local_addr(), None).await;
    // Not reading means not answering pings either.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(closed(&mut raw).await);
    assert!(
        server
            .metrics()
            .rejected_count(sync_server::metrics::Reject::IdleTimeout)
            >= 1
    );
    server.shutdown().await;
}

/// Raises `doc`'s nesting limit to the ceiling and nests `depth` maps in one transaction (what
/// a hostile client can send).
fn nest_maps(doc: &mut Document, depth: usize) -> Result<(), crdt_core::DocError> {
    doc.set_max_depth(Document::MAX_DEPTH_CEILING)?;
    doc.transact(|tx| {
        let mut map = MapId::ROOT;
        for _ in 0..depth {
            map = tx.replace_with_new_map(map, "k")?;
        }
        Ok(())
    })
}

/// A client nesting 4,000 maps in one batch (43.8 KB) once overflowed a server worker's stack
/// (the process aborted, then again after every restart as the client resent its change). The
/// server must refuse it as invalid, stay up, and keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_nested_past_the_limit_is_refused_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let attacker = client(server.local_addr());
    let doc = attacker.open("deep").unwrap();
    doc.edit(|d| nest_maps(d, 4000)).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !matches!(
        doc.last_error(),
        Some(sync_client::DocSyncError::BatchRefused {
            status: AckStatus::Invalid,
            ..
        })
    ) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refusal: {:?}",
            doc.last_error()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!doc.is_saved());

    // Still up: another client edits the same document and is acknowledged.
    let honest = client(server.local_addr());
    let other = honest.open("deep").unwrap();
    other.edit(|d| d.set(MapId::ROOT, "fine", 1)).unwrap();
    assert_eq!(other.wait_saved(WAIT).await, Ok(()));
    assert_eq!(
        other.read(|d| d.history_len()),
        1,
        "nothing of the refused batch"
    );
    attacker.close().await;
    honest.close().await;
    server.shutdown().await;
}

/// Opening a stored document nested 3,000 maps deep once overflowed the client's stack; now
/// it is a typed error naming the file, and the file stays for an app that raises the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_document_past_the_limit_is_a_typed_error_on_open() {
    let state = tempfile::tempdir().unwrap();
    let config = || ClientConfig {
        state_dir: Some(state.path().to_path_buf()),
        // Nothing listens there: the edit stays local.
        ..ClientConfig::new("ws://127.0.0.1:9/sync")
    };
    let writer = Client::start(config());
    writer
        .open("deep")
        .unwrap()
        .edit(|d| nest_maps(d, 3000))
        .unwrap();
    writer.close().await;

    let reader = Client::start(config());
    match reader.open("deep") {
        Err(sync_client::ClientError::Corrupt { message, .. }) => {
            assert!(message.contains("limit of 512"), "{message}")
        }
        other => panic!("expected a typed refusal, got {:?}", other.map(|_| ())),
    }
    reader.close().await;
    let files = std::fs::read_dir(state.path()).unwrap().count();
    assert!(files >= 1, "the stored document is kept");
}
