//! Hostile peers (issue 12): someone with a writer's rights on one document, or a malicious
//! server or anyone in the middle. Each test drives one attack on a loopback port and checks
//! that it is refused, counted, and that memory stays bounded.

mod support;

use std::time::Duration;

use crdt_core::{ReplicaId, VersionVector};
use futures_util::{SinkExt, StreamExt};
use support::*;
use sync_client::{Client, ClientConfig};
use sync_protocol::{AckStatus, ErrorCode, Frame, WIRE_VERSION};
use sync_server::metrics::Reject;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

/// Levels of nested fragments: 2,000 (22 KB) overflowed a debug build's stack; 20,000 (about
/// 240 KB, still within one 256 KiB frame) overflows an optimized one.
const DEPTH: usize = 20_000;

/// Every frame that arrives within `window` (the connection may close earlier).
async fn frames_within(socket: &mut Raw, window: Duration) -> Vec<Frame> {
    let deadline = tokio::time::Instant::now() + window;
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => frames.extend(Frame::decode(&bytes).ok()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => {
                return frames;
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn subscribe(socket: &mut Raw, doc: &str) {
    send(
        socket,
        &Frame::Subscribe {
            doc: doc.into(),
            version: VersionVector::new(),
        },
    )
    .await;
}

fn presence(doc: &str, replica: u128, clock: u64, state: &[u8]) -> Frame {
    Frame::Presence {
        doc: doc.into(),
        replica: ReplicaId::from_u128(replica),
        clock,
        ttl_ms: 60_000,
        state: state.to_vec(),
    }
}

/// The non-empty presence states among `frames`, by replica.
fn presence_states(frames: &[Frame]) -> Vec<(ReplicaId, Vec<u8>)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Presence { replica, state, .. } if !state.is_empty() => {
                Some((*replica, state.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Waits until `condition` holds (polling), for at most `WAIT`.
async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    true
}

// ---- item 3: nested fragments ----------------------------------------------------------------

/// A malicious server (or anyone in the middle) sends a `Fragment` whose reassembled frame is a
/// `Fragment`, `DEPTH` levels deep. The client must refuse it and reconnect, not overflow its
/// stack (which aborts the whole process) nor accept it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The handshake callback's error type is tungstenite's (an HTTP response), not ours.
#[allow(clippy::result_large_err)]
async fn a_client_refuses_nested_fragments_from_a_hostile_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Client::start(ClientConfig {
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..ClientConfig::new(url(addr))
    });
    let _doc = client.open("d").unwrap();
    let mut nested = Frame::Have {
        doc: "d".into(),
        version: VersionVector::new(),
    }
    .encode();
    for _ in 0..DEPTH {
        nested = Frame::Fragment {
            id: 1,
            index: 0,
            count: 1,
            bytes: nested,
        }
        .encode();
    }
    assert!(nested.len() < 256 * 1024);
    for attempt in 0..2 {
        let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the client connects (again)")
            .unwrap();
        let mut socket = tokio_tungstenite::accept_hdr_async(
            stream,
            |_request: &tokio_tungstenite::tungstenite::handshake::server::Request,
             mut response: tokio_tungstenite::tungstenite::handshake::server::Response| {
                response.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    sync_protocol::SUBPROTOCOL.parse().unwrap(),
                );
                Ok(response)
            },
        )
        .await
        .unwrap();
        // The Hello.
        loop {
            match tokio::time::timeout(WAIT, socket.next()).await.unwrap() {
                Some(Ok(Message::Binary(bytes))) => {
                    assert!(matches!(Frame::decode(&bytes), Ok(Frame::Hello { .. })));
                    break;
                }
                Some(Ok(_)) => continue,
                other => panic!("expected Hello, got {other:?}"),
            }
        }
        let welcome = Frame::Welcome {
            version: WIRE_VERSION,
            server: "hostile".into(),
            max_frame: 1 << 18,
            max_message: 1 << 26,
            max_documents: 16,
        };
        socket
            .send(Message::Binary(welcome.encode().into()))
            .await
            .unwrap();
        if attempt == 0 {
            socket
                .send(Message::Binary(nested.clone().into()))
                .await
                .unwrap();
            // The client refuses the frame and drops the connection.
            let ended = tokio::time::timeout(WAIT, async {
                loop {
                    match socket.next().await {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                        Some(Ok(_)) => {}
                    }
                }
            })
            .await;
            assert!(
                ended.is_ok(),
                "the client must drop a connection that sends nested fragments"
            );
        }
    }
    // Reaching here means the client's task survived and reconnected.
    client.close().await;
}

/// The server refuses a fragment inside a reassembled frame as invalid (and counts it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_nested_fragments() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let mut raw = raw_session(server.local_addr(), None).await;
    let inner = Frame::Fragment {
        id: 2,
        index: 0,
        count: 1,
        bytes: Frame::Unsubscribe { doc: "d".into() }.encode(),
    };
    send(
        &mut raw,
        &Frame::Fragment {
            id: 1,
            index: 0,
            count: 1,
            bytes: inner.encode(),
        },
    )
    .await;
    assert!(matches!(
        frame_where(&mut raw, |f| matches!(f, Frame::Error { .. })).await,
        Some(Frame::Error {
            code: ErrorCode::Invalid,
            ..
        })
    ));
    assert!(closed(&mut raw).await);
    assert!(server.metrics().rejected_count(Reject::Invalid) >= 1);
    server.shutdown().await;
}

// ---- item 4: fragment reassembly budgets -----------------------------------------------------

/// Sends `pieces` fragments of 4,000 bytes for frame `id`, announced as `count` pieces. Stops
/// quietly if the server closed the connection (refused it) meanwhile.
async fn start_fragmented(socket: &mut Raw, id: u32, count: u32, pieces: u32) {
    for index in 0..pieces {
        let fragment = Frame::Fragment {
            id,
            index,
            count,
            bytes: vec![7; 4000],
        };
        if socket
            .send(Message::Binary(fragment.encode().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}

fn small_fragment_limits(config: &mut sync_server::Config) {
    config.limits.max_frame = 4096;
    config.limits.max_message = 64 * 1024;
    config.limits.reassembly_per_connection = 64 * 1024;
    config.limits.reassembly_total = 128 * 1024;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_bytes_in_flight_are_bounded_per_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), small_fragment_limits).await;
    let mut raw = raw_session(server.local_addr(), None).await;
    // Three frames of 48 KB each are within max_message, and three is within the frames a
    // connection may have in flight, but together they exceed the connection's 64 KiB.
    for id in 1..=3 {
        start_fragmented(&mut raw, id, 16, 12).await;
    }
    assert!(matches!(
        frame_where(&mut raw, |f| matches!(f, Frame::Error { .. })).await,
        Some(Frame::Error {
            code: ErrorCode::TooLarge,
            ..
        })
    ));
    assert!(closed(&mut raw).await);
    assert!(server.metrics().rejected_count(Reject::FragmentBudget) >= 1);
    let metrics = server.metrics().render();
    assert!(
        metrics.contains("sync_reassembly_bytes 0"),
        "a closed connection gives its bytes back:\n{metrics}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_bytes_in_flight_are_bounded_for_the_whole_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), small_fragment_limits).await;
    let addr = server.local_addr();
    // Each connection stays within its own 64 KiB; three of them exceed the server's 128 KiB.
    let mut connections = Vec::new();
    for _ in 0..3 {
        let mut raw = raw_session(addr, None).await;
        start_fragmented(&mut raw, 1, 16, 12).await;
        connections.push(raw);
    }
    // Under load the refusal may take a while: wait for it before reading what each got.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while server.metrics().rejected_count(Reject::FragmentBudget) == 0 {
        assert!(std::time::Instant::now() < deadline, "no refusal");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut refused = 0;
    for raw in &mut connections {
        let errors: Vec<Frame> = frames_within(raw, Duration::from_millis(1500))
            .await
            .into_iter()
            .filter(|f| matches!(f, Frame::Error { .. }))
            .collect();
        if errors.iter().any(|f| {
            matches!(
                f,
                Frame::Error {
                    code: ErrorCode::Overloaded,
                    ..
                }
            )
        }) {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 1,
        "the connection that overflowed the server is refused"
    );
    assert!(server.metrics().rejected_count(Reject::FragmentBudget) >= 1);
    // The others' frames still complete once there is room again.
    drop(connections);
    assert!(
        eventually(|| server
            .metrics()
            .render()
            .contains("sync_reassembly_bytes 0"))
        .await
    );
    let mut raw = raw_session(addr, None).await;
    let frame = Frame::Changes {
        doc: "nobody".into(),
        batch: 1,
        update: vec![1; 40_000],
        version: VersionVector::new(),
    };
    for piece in sync_protocol::split_into_fragments(&frame, 4096, 9) {
        raw.send(Message::Binary(piece.into())).await.unwrap();
    }
    assert!(matches!(
        frame_where(&mut raw, |f| matches!(f, Frame::Error { .. })).await,
        Some(Frame::Error {
            code: ErrorCode::NotSubscribed,
            ..
        })
    ));
    server.shutdown().await;
}

// ---- item 5: presence ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_capped_per_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| {
        c.limits.presence_bytes_per_connection = 8 * 1024;
        c.limits.presence_entries_per_connection = 4;
    })
    .await;
    let addr = server.local_addr();
    let mut observer = raw_session(addr, None).await;
    subscribe(&mut observer, "room").await;
    let mut attacker = raw_session(addr, None).await;
    subscribe(&mut attacker, "room").await;
    // A fresh replica id each time, 3 KB each: only two fit in 8 KiB.
    for replica in 1..=10 {
        send(&mut attacker, &presence("room", replica, 1, &[1; 3000])).await;
    }
    // Small ones: the entry cap (4) holds even when bytes would fit.
    for replica in 11..=20 {
        send(&mut attacker, &presence("room", replica, 1, b"x")).await;
    }
    let seen = presence_states(&frames_within(&mut observer, Duration::from_millis(1500)).await);
    let big = seen.iter().filter(|(_, s)| s.len() == 3000).count();
    assert!(big <= 2, "{big} large presence entries relayed");
    assert!(seen.len() <= 4, "{} presence entries relayed", seen.len());
    assert!(server.metrics().rejected_count(Reject::PresenceLimit) >= 1);
    // Leaving frees the connection's budget.
    for (replica, _) in &seen {
        send(
            &mut attacker,
            &Frame::Presence {
                doc: "room".into(),
                replica: *replica,
                clock: 2,
                ttl_ms: 0,
                state: Vec::new(),
            },
        )
        .await;
    }
    send(&mut attacker, &presence("room", 99, 1, &[2; 3000])).await;
    let seen = presence_states(&frames_within(&mut observer, Duration::from_millis(1000)).await);
    assert_eq!(seen, vec![(ReplicaId::from_u128(99), vec![2; 3000])]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_capped_per_document() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| {
        c.limits.presence_entries_per_document = 3;
        c.limits.presence_bytes_per_document = 64 * 1024;
    })
    .await;
    let addr = server.local_addr();
    let mut senders = Vec::new();
    for conn in 0..2u128 {
        let mut raw = raw_session(addr, None).await;
        subscribe(&mut raw, "room").await;
        for replica in 0..3 {
            send(&mut raw, &presence("room", conn * 10 + replica, 1, b"here")).await;
        }
        senders.push(raw);
    }
    // Bytes: one more connection's 40 KB entries stop at 64 KiB.
    let mut heavy = raw_session(addr, None).await;
    subscribe(&mut heavy, "heavy").await;
    for replica in 0..3 {
        send(
            &mut heavy,
            &presence("heavy", 100 + replica, 1, &[0; 40_000]),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut late = raw_session(addr, None).await;
    subscribe(&mut late, "room").await;
    subscribe(&mut late, "heavy").await;
    let frames = frames_within(&mut late, Duration::from_millis(1500)).await;
    let in_room = frames
        .iter()
        .filter(|f| matches!(f, Frame::Presence { doc, .. } if doc == "room"))
        .count();
    let in_heavy = frames
        .iter()
        .filter(|f| matches!(f, Frame::Presence { doc, .. } if doc == "heavy"))
        .count();
    assert_eq!(in_room, 3, "the document holds at most 3 entries");
    assert_eq!(in_heavy, 1, "the document holds at most 64 KiB of presence");
    assert!(server.metrics().rejected_count(Reject::PresenceLimit) >= 3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cannot_speak_for_another_connections_replica() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    let mut owner = raw_session(addr, None).await;
    subscribe(&mut owner, "room").await;
    let mut observer = raw_session(addr, None).await;
    subscribe(&mut observer, "room").await;
    let mut thief = raw_session(addr, None).await;
    subscribe(&mut thief, "room").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    send(&mut owner, &presence("room", 42, 1, b"mine")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Same replica id, higher clocks: an overwrite, then a removal.
    send(&mut thief, &presence("room", 42, 10, b"stolen")).await;
    send(
        &mut thief,
        &Frame::Presence {
            doc: "room".into(),
            replica: ReplicaId::from_u128(42),
            clock: 11,
            ttl_ms: 0,
            state: Vec::new(),
        },
    )
    .await;
    let frames = frames_within(&mut observer, Duration::from_millis(1000)).await;
    let about_42: Vec<&Frame> = frames
        .iter()
        .filter(|f| matches!(f, Frame::Presence { replica, .. } if *replica == ReplicaId::from_u128(42)))
        .collect();
    assert_eq!(
        presence_states(&frames),
        vec![(ReplicaId::from_u128(42), b"mine".to_vec())]
    );
    assert_eq!(
        about_42.len(),
        1,
        "the thief's frames are not relayed: {about_42:?}"
    );
    // A newcomer still sees the owner's presence.
    let mut late = raw_session(addr, None).await;
    subscribe(&mut late, "room").await;
    let seen = presence_states(&frames_within(&mut late, Duration::from_millis(1000)).await);
    assert_eq!(seen, vec![(ReplicaId::from_u128(42), b"mine".to_vec())]);
    assert!(server.metrics().rejected_count(Reject::PresenceLimit) >= 2);
    server.shutdown().await;
}

// ---- item 6: loaded-document churn -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_documents_count_against_the_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| {
        c.limits.memory_cap = 1; // any real cost is over it
        c.limits.document_idle = Duration::from_secs(3600);
    })
    .await;
    let mut raw = raw_session(server.local_addr(), None).await;
    for i in 0..5 {
        let doc = format!("empty-{i}");
        subscribe(&mut raw, &doc).await;
        assert!(
            frame_where(&mut raw, |f| matches!(f, Frame::Subscribed { .. }))
                .await
                .is_some()
        );
        send(&mut raw, &Frame::Unsubscribe { doc }).await;
    }
    let loaded = || {
        server
            .metrics()
            .documents_loaded
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert!(
        eventually(|| loaded() == 0).await,
        "{} empty documents nobody watches stay loaded over the memory cap",
        loaded()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_loads_are_rate_limited_per_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.limits.document_loads_per_second = 5).await;
    let addr = server.local_addr();
    let mut other = raw_session(addr, None).await;
    subscribe(&mut other, "popular").await;
    assert!(
        frame_where(&mut other, |f| matches!(f, Frame::Subscribed { .. }))
            .await
            .is_some()
    );
    let mut churner = raw_session(addr, None).await;
    for i in 0..40 {
        let doc = format!("fresh-{i}");
        subscribe(&mut churner, &doc).await;
        send(&mut churner, &Frame::Unsubscribe { doc }).await;
    }
    // A document someone else already loaded costs no load: still allowed.
    subscribe(&mut churner, "popular").await;
    let frames = frames_within(&mut churner, Duration::from_millis(1500)).await;
    let subscribed = frames
        .iter()
        .filter(|f| matches!(f, Frame::Subscribed { .. }))
        .count();
    let refused = frames
        .iter()
        .filter(|f| {
            matches!(
                f,
                Frame::Error {
                    code: ErrorCode::RateLimited,
                    doc: Some(_),
                    ..
                }
            )
        })
        .count();
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Frame::Subscribed { doc, .. } if doc == "popular")),
        "subscribing to a loaded document is not a load"
    );
    // A burst of 10, plus a few refilled while the frames went out.
    assert!(
        (10..=20).contains(&subscribed),
        "{subscribed} subscriptions allowed"
    );
    assert_eq!(subscribed + refused, 41);
    assert!(server.metrics().rejected_count(Reject::DocumentLoadRate) >= 20);
    server.shutdown().await;
}

/// An honest client that opens more documents than the load burst is slowed, not broken: the
/// refused subscriptions are retried and all documents end up subscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_opening_many_documents_gets_them_all_within_the_load_rate() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.limits.document_loads_per_second = 10).await;
    let client = Client::start(ClientConfig::new(url(server.local_addr())));
    let docs: Vec<_> = (0..40)
        .map(|i| client.open(&format!("many-{i}")).unwrap())
        .collect();
    assert!(eventually(|| docs.iter().all(|d| d.access().is_some())).await);
    assert!(server.metrics().rejected_count(Reject::DocumentLoadRate) >= 1);
    client.close().await;
    server.shutdown().await;
}

// ---- smaller items ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_batches_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.limits.max_document = 64).await;
    let mut raw = raw_session(server.local_addr(), None).await;
    subscribe(&mut raw, "doc").await;
    for (batch, update) in [(1, b"\xC7DOC garbage".to_vec()), (2, vec![0; 100])] {
        send(
            &mut raw,
            &Frame::Changes {
                doc: "doc".into(),
                batch,
                update,
                version: VersionVector::new(),
            },
        )
        .await;
    }
    let mut statuses = Vec::new();
    for _ in 0..2 {
        if let Some(Frame::Ack { status, .. }) =
            frame_where(&mut raw, |f| matches!(f, Frame::Ack { .. })).await
        {
            statuses.push(status);
        }
    }
    assert_eq!(statuses, [AckStatus::Invalid, AckStatus::TooLarge]);
    assert_eq!(server.metrics().rejected_count(Reject::Invalid), 1);
    assert_eq!(server.metrics().rejected_count(Reject::TooLarge), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_wire_version_after_hello_is_unsupported_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let mut raw = raw_session(server.local_addr(), None).await;
    let mut bytes = Frame::Unsubscribe { doc: "d".into() }.encode();
    bytes[2] = 77;
    raw.send(Message::Binary(bytes.into())).await.unwrap();
    assert!(matches!(
        next_frame(&mut raw).await,
        Some(Frame::Error {
            code: ErrorCode::UnsupportedVersion,
            ..
        })
    ));
    assert_eq!(
        server.metrics().rejected_count(Reject::UnsupportedVersion),
        1
    );
    assert_eq!(server.metrics().rejected_count(Reject::Invalid), 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_errors_tell_the_client_no_library_details() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.jwt_secret = Some(SECRET.into())).await;
    let addr = server.local_addr();
    let foreign =
        sync_server::auth::issue_token("another secret of enough length", "x", &["*"], &["*"], 60)
            .unwrap();
    for token in ["not.a.token".to_string(), "garbage".into(), foreign] {
        let mut raw = raw_connect(addr).await;
        send(
            &mut raw,
            &Frame::Hello {
                min_version: WIRE_VERSION,
                max_version: WIRE_VERSION,
                token: Some(token),
                agent: String::new(),
            },
        )
        .await;
        match next_frame(&mut raw).await {
            Some(Frame::Error {
                code: ErrorCode::Unauthorized,
                message,
                ..
            }) => assert_eq!(message, "invalid token"),
            other => panic!("expected Unauthorized, got {other:?}"),
        }
    }
    // The same on a token refresh.
    let good = sync_server::auth::issue_token(SECRET, "ana", &["*"], &["*"], 600).unwrap();
    let mut raw = raw_session(addr, Some(good)).await;
    send(
        &mut raw,
        &Frame::Auth {
            token: "x.y.z".into(),
        },
    )
    .await;
    match frame_where(&mut raw, |f| matches!(f, Frame::Error { .. })).await {
        Some(Frame::Error {
            code: ErrorCode::Unauthorized,
            message,
            ..
        }) => assert_eq!(message, "invalid token"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    server.shutdown().await;
}
