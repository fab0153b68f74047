//! `sync_protocol::client::ClientSession` (the sans-I/O client the browser package runs in
//! wasm) against a real server: convergence, acknowledgements, refusals, fragments, restarts.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crdt_core::{Document, MapId, ReplicaId};
use futures_util::{SinkExt, StreamExt};
use sync_protocol::AckStatus;
use sync_protocol::client::{ClientSession, DocUpdate, Received};
use sync_server::auth::issue_token;
use tokio_tungstenite::tungstenite::Message;

use support::{Raw, SECRET, raw_connect, restart_server, start_server};

const DOC: &str = "notes";

/// One client with one document, driven over a raw socket the way the browser client drives
/// it (send what `poll` returns, `receive` + `apply` what arrives).
struct Peer {
    socket: Raw,
    client: ClientSession,
    doc: Document,
    started: Instant,
    updates: Vec<DocUpdate>,
    /// Sizes of the WebSocket messages sent.
    sent: Vec<usize>,
}

impl Peer {
    async fn connect(addr: SocketAddr, replica: u128, token: Option<String>) -> Peer {
        Peer::reconnect(
            addr,
            Document::new(ReplicaId::from_u128(replica)),
            ClientSession::new("test", token),
        )
        .await
    }

    async fn reconnect(addr: SocketAddr, doc: Document, mut client: ClientSession) -> Peer {
        client.open(DOC, doc.replica());
        let mut socket = raw_connect(addr).await;
        for bytes in client.connected() {
            socket.send(Message::Binary(bytes.into())).await.unwrap();
        }
        let mut peer = Peer {
            socket,
            client,
            doc,
            started: Instant::now(),
            updates: Vec::new(),
            sent: Vec::new(),
        };
        assert!(peer.pump_until(|p| p.client.is_ready()).await, "welcomed");
        peer
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Sends what is due and handles what arrives until `done` holds (false after 5 s).
    async fn pump_until(&mut self, done: impl Fn(&Peer) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = self.now();
            for bytes in self.client.poll(DOC, &self.doc, now) {
                self.sent.push(bytes.len());
                self.socket
                    .send(Message::Binary(bytes.into()))
                    .await
                    .unwrap();
            }
            if done(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            let incoming =
                tokio::time::timeout(Duration::from_millis(50), self.socket.next()).await;
            let Ok(Some(Ok(Message::Binary(bytes)))) = incoming else {
                continue;
            };
            let now = self.now();
            match self.client.receive(&bytes, now).unwrap() {
                Received::Document { doc, frame } => {
                    let updates = self.client.apply(&doc, frame, &mut self.doc, now);
                    self.updates.extend(updates);
                }
                Received::ConnectionError { code, message } => panic!("{code}: {message}"),
                _ => {}
            }
        }
    }

    fn saved(&self) -> bool {
        self.client.is_saved(DOC, &self.doc)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_converge_and_every_edit_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    let mut a = Peer::connect(addr, 1, None).await;
    let mut b = Peer::connect(addr, 2, None).await;
    for i in 0..20 {
        a.doc.set(MapId::ROOT, &format!("a{i}"), i).unwrap();
        b.doc.set(MapId::ROOT, &format!("b{i}"), i).unwrap();
        assert!(a.pump_until(Peer::saved).await);
        assert!(b.pump_until(Peer::saved).await);
    }
    let both = |p: &Peer| p.doc.keys(MapId::ROOT).unwrap().len() == 40;
    assert!(a.pump_until(both).await && b.pump_until(both).await);
    assert_eq!(a.doc.to_json(), b.doc.to_json());
    assert!(
        a.updates
            .iter()
            .any(|u| matches!(u, DocUpdate::Acknowledged { .. }))
    );
    assert!(a.updates.contains(&DocUpdate::Changed));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_made_while_disconnected_reach_the_server_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    let mut a = Peer::connect(addr, 1, None).await;
    a.doc.set(MapId::ROOT, "before", 1).unwrap();
    assert!(a.pump_until(Peer::saved).await);
    server.shutdown().await;

    // Offline: the edit waits, unacknowledged.
    let Peer {
        doc, mut client, ..
    } = a;
    client.disconnected();
    let mut doc = doc;
    doc.set(MapId::ROOT, "offline", 2).unwrap();
    assert!(!client.is_saved(DOC, &doc));

    let server = restart_server(dir.path(), addr, |_| {}).await;
    let mut a = Peer::reconnect(addr, doc, client).await;
    assert!(
        a.pump_until(Peer::saved).await,
        "the offline edit was acknowledged"
    );
    let mut fresh = Peer::connect(addr, 3, None).await;
    let both = |p: &Peer| p.doc.keys(MapId::ROOT).unwrap().len() == 2;
    assert!(fresh.pump_until(both).await);
    assert_eq!(fresh.doc.to_json(), a.doc.to_json());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_client_sees_its_batch_refused_and_keeps_its_edit() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.jwt_secret = Some(SECRET.into())).await;
    let addr = server.local_addr();
    let writer = issue_token(SECRET, "w", &["*"], &["*"], 600).unwrap();
    let reader = issue_token(SECRET, "r", &["*"], &[], 600).unwrap();
    let mut w = Peer::connect(addr, 1, Some(writer)).await;
    w.doc.set(MapId::ROOT, "k", 1).unwrap();
    assert!(w.pump_until(Peer::saved).await);

    let mut r = Peer::connect(addr, 2, Some(reader)).await;
    assert!(
        r.pump_until(|p| p.doc.get(MapId::ROOT, "k").unwrap().is_some())
            .await
    );
    assert_eq!(r.client.access(DOC), Some(sync_protocol::Access::ReadOnly));
    // A read-only client does not send its edits, and says they are not saved.
    r.doc.set(MapId::ROOT, "mine", 2).unwrap();
    assert!(!r.pump_until(Peer::saved).await);
    assert!(r.doc.get(MapId::ROOT, "mine").unwrap().is_some());

    // A writer's batch the server refuses (too large) surfaces as a refusal, not as saved.
    let small = tempfile::tempdir().unwrap();
    let strict = start_server(small.path(), |c| c.limits.max_document = 2_000).await;
    let mut big = Peer::connect(strict.local_addr(), 4, None).await;
    big.doc
        .set(MapId::ROOT, "blob", "x".repeat(10_000).as_str())
        .unwrap();
    let refused = |p: &Peer| {
        p.updates.iter().any(|u| {
            matches!(
                u,
                DocUpdate::Refused {
                    status: AckStatus::TooLarge,
                    ..
                }
            )
        })
    };
    assert!(big.pump_until(refused).await);
    assert!(!big.saved());
    assert_eq!(big.client.refusal(DOC), Some(AckStatus::TooLarge));
    strict.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_updates_travel_as_fragments_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| c.limits.max_frame = 4096).await;
    let addr = server.local_addr();
    let mut a = Peer::connect(addr, 1, None).await;
    let text = a.doc.text_at(MapId::ROOT, "t").unwrap();
    // Pseudo-random letters, so that the update's compression cannot make it small.
    let mut seed = 0x2545_f491_u64;
    let long: String = (0..40_000)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            char::from(b'a' + (seed >> 59) as u8 % 26)
        })
        .collect();
    a.doc.text_insert(text, 0, &long).unwrap();
    let update = a.doc.update_since(&crdt_core::VersionVector::new());
    assert!(update.len() > 4 * 4096, "{} bytes", update.len());
    a.sent.clear();
    assert!(a.pump_until(Peer::saved).await);
    // The batch went as fragments within the limit the server announced.
    assert!(a.sent.len() > 4, "{:?}", a.sent);
    assert!(a.sent.iter().all(|&len| len <= 4096), "{:?}", a.sent);
    a.doc.set(MapId::ROOT, "after", 1).unwrap();
    assert!(a.pump_until(Peer::saved).await);
    let want = a.doc.to_json();
    let mut b = Peer::connect(addr, 2, None).await;
    assert!(b.pump_until(|p| p.doc.to_json() == want).await);
    server.shutdown().await;
}
