//! A hostile server against the client side of the protocol (`sync_protocol::client`, what
//! the browser package and `sync-client` run): untrusted bytes as WebSocket messages, or as
//! well-formed frames about the open document carrying arbitrary updates, versions, statuses
//! and presence. Never panics; the document never loses events (its version only grows), and
//! "saved" always means the durable version the server claimed includes the document's.
#![no_main]

use crdt_core::codec::Encode;
use crdt_core::{Document, MapId, ReplicaId, VersionVector};
use libfuzzer_sys::fuzz_target;
use sync_protocol::client::{ClientSession, Received};
use sync_protocol::{Access, AckStatus, ErrorCode, Frame, WIRE_VERSION};

const DOC: &str = "d";

/// A frame about the document, its fields taken from `bytes`.
fn crafted(kind: u8, bytes: &[u8]) -> Frame {
    let version = VersionVector::decode(bytes).unwrap_or_default();
    match kind % 6 {
        0 => Frame::Subscribed {
            doc: DOC.into(),
            version,
            access: if bytes.len() % 2 == 0 {
                Access::ReadWrite
            } else {
                Access::ReadOnly
            },
        },
        1 => Frame::Changes {
            doc: DOC.into(),
            batch: 0,
            update: bytes.to_vec(),
            version,
        },
        2 => {
            // A real update from another replica, so that applying succeeds sometimes.
            let mut other = Document::new(ReplicaId::from_u128(2));
            for (i, byte) in bytes.iter().take(8).enumerate() {
                let _ = other.set(MapId::ROOT, &format!("k{}", byte % 4), i as i64);
            }
            Frame::Changes {
                doc: DOC.into(),
                batch: 0,
                update: other.update_since(&VersionVector::new()),
                version: other.version(),
            }
        }
        3 => Frame::Ack {
            doc: DOC.into(),
            batch: u64::from(bytes.first().copied().unwrap_or(0)),
            status: match bytes.len() % 7 {
                0 => AckStatus::Ok,
                1 => AckStatus::PermissionDenied,
                2 => AckStatus::TooLarge,
                3 => AckStatus::RateLimited,
                4 => AckStatus::Invalid,
                5 => AckStatus::Overloaded,
                _ => AckStatus::MissingDependencies,
            },
            version,
        },
        4 => Frame::Presence {
            doc: DOC.into(),
            replica: ReplicaId::from_u128(u128::from(bytes.first().copied().unwrap_or(0))),
            clock: bytes.len() as u64,
            ttl_ms: u64::from(bytes.get(1).copied().unwrap_or(0)) * 100,
            state: bytes.to_vec(),
        },
        _ => Frame::Error {
            code: if bytes.len() % 2 == 0 {
                ErrorCode::PermissionDenied
            } else {
                ErrorCode::Internal
            },
            doc: Some(DOC.into()),
            message: String::from_utf8_lossy(bytes).into_owned(),
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let mut doc = Document::new(ReplicaId::from_u128(1));
    let _ = doc.set(MapId::ROOT, "mine", 1);
    let mut client = ClientSession::new("fuzz", None);
    client.open(DOC, doc.replica());
    let _ = client.connected();
    let welcome = Frame::Welcome {
        version: WIRE_VERSION,
        server: "fuzz".into(),
        max_frame: 512,
        max_message: 1 << 20,
        max_documents: 4,
    };
    assert!(matches!(
        client.receive(&welcome.encode(), 0),
        Ok(Received::Welcome { .. })
    ));
    for (step, chunk) in data.split(|&b| b == 0xFF).enumerate() {
        let now = step as u64 * 250;
        for message in client.poll(DOC, &doc, now) {
            assert!(message.len() <= 512, "a message over the server's limit");
        }
        let bytes = match chunk.split_first() {
            Some((&kind, rest)) if kind < 0x80 => crafted(kind, rest).encode(),
            _ => chunk.to_vec(),
        };
        let before = doc.version();
        if let Ok(Received::Document { doc: id, frame }) = client.receive(&bytes, now) {
            let _ = client.apply(&id, frame, &mut doc, now);
        }
        assert!(doc.version().includes(&before), "the document lost events");
        if client.is_saved(DOC, &doc) {
            let durable = client.durable_version(DOC).expect("open");
            assert!(durable.includes(&doc.version()));
        }
        let _ = client.peers(DOC, now);
    }
});
