//! The sync protocol: replicas connected in a mesh of sessions, with messages reordered,
//! duplicated and lost to disconnects, and replicas restarting from snapshots, converge once
//! the network heals. Many documents share one connection.

use std::collections::VecDeque;

use crdt_core::{
    Document, LocalPresence, MapId, Message, PresenceSet, ReplicaId, SyncError, SyncSession,
};
use quickcheck::{Arbitrary, Gen};

use crate::harness::check;

fn replica(index: usize) -> ReplicaId {
    ReplicaId::from_u128(0x300 + index as u128)
}

#[derive(Clone, Debug)]
enum Step {
    Edit {
        at: u8,
        key: u8,
        value: i8,
    },
    /// Deliver from link (from, to) the first message, or with `any` the `pick`-th.
    Deliver {
        from: u8,
        to: u8,
        any: bool,
        pick: u8,
    },
    Duplicate {
        from: u8,
        to: u8,
    },
    Disconnect {
        a: u8,
        b: u8,
    },
    Restart {
        at: u8,
    },
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Self {
        let (a, b) = (u8::arbitrary(g) % 3, u8::arbitrary(g) % 3);
        match u8::arbitrary(g) % 12 {
            0..=3 => Step::Edit {
                at: a,
                key: b,
                value: i8::arbitrary(g),
            },
            4..=8 => Step::Deliver {
                from: a,
                to: b,
                any: u8::arbitrary(g) % 4 == 0,
                pick: u8::arbitrary(g),
            },
            9 => Step::Duplicate { from: a, to: b },
            10 => Step::Disconnect { a, b },
            _ => Step::Restart { at: a },
        }
    }
}

const N: usize = 3;

struct Mesh {
    /// Replicas in a line (0 - 1 - 2), each syncing only with its neighbours, or all with all.
    line: bool,
    docs: Vec<Document>,
    /// sessions[i][j]: replica i's session with replica j.
    sessions: Vec<Vec<SyncSession>>,
    /// links[i][j]: encoded messages from i to j, in flight.
    links: Vec<Vec<VecDeque<Vec<u8>>>>,
}

impl Mesh {
    fn linked(&self, i: usize, j: usize) -> bool {
        i != j && (!self.line || i.abs_diff(j) == 1)
    }

    fn new(line: bool) -> Mesh {
        let mut mesh = Mesh {
            line,
            docs: (0..N).map(|i| Document::new(replica(i))).collect(),
            sessions: (0..N)
                .map(|_| (0..N).map(|_| SyncSession::new("doc")).collect())
                .collect(),
            links: vec![vec![VecDeque::new(); N]; N],
        };
        for i in 0..N {
            for j in 0..N {
                if mesh.linked(i, j) {
                    mesh.connect(i, j);
                }
            }
        }
        mesh
    }

    fn send(&mut self, from: usize, to: usize, message: Message) {
        self.links[from][to].push_back(message.encode());
    }

    /// (Re)connects i -> j: i forgets what it knew of j and says hello.
    fn connect(&mut self, i: usize, j: usize) {
        self.sessions[i][j].reset();
        let hello = self.sessions[i][j].hello(&self.docs[i]);
        self.send(i, j, hello);
    }

    fn poll_all(&mut self, at: usize) {
        for j in 0..N {
            if self.linked(at, j)
                && let Some(message) = self.sessions[at][j].poll(&self.docs[at])
            {
                self.send(at, j, message);
            }
        }
    }

    fn deliver(&mut self, from: usize, to: usize, bytes: Vec<u8>) -> bool {
        let Ok(message) = Message::decode(&bytes) else {
            return false;
        };
        match self.sessions[to][from].receive(&mut self.docs[to], message) {
            Ok(replies) => {
                for reply in replies {
                    self.send(to, from, reply);
                }
                // Relay what arrived to the other peers.
                self.poll_all(to);
                true
            }
            Err(SyncError::BufferFull) => {
                let hello = self.sessions[to][from].hello(&self.docs[to]);
                self.send(to, from, hello);
                true
            }
            Err(_) => false,
        }
    }
}

fn sessions_converge((steps, line): (Vec<Step>, bool)) -> bool {
    let mut mesh = Mesh::new(line);
    for step in steps {
        match step {
            Step::Edit { at, key, value } => {
                let at = usize::from(at);
                let key = ["x", "y", "z"][usize::from(key)];
                if mesh.docs[at]
                    .set(MapId::ROOT, key, i64::from(value))
                    .is_err()
                {
                    return false;
                }
                mesh.poll_all(at);
            }
            Step::Deliver {
                from,
                to,
                any,
                pick,
            } => {
                let (from, to) = (usize::from(from), usize::from(to));
                let link = &mut mesh.links[from][to];
                let message = if any && !link.is_empty() {
                    link.remove(usize::from(pick) % link.len())
                } else {
                    link.pop_front()
                };
                if let Some(bytes) = message
                    && !mesh.deliver(from, to, bytes)
                {
                    return false;
                }
            }
            Step::Duplicate { from, to } => {
                let (from, to) = (usize::from(from), usize::from(to));
                if let Some(bytes) = mesh.links[from][to].front().cloned() {
                    mesh.links[from][to].push_back(bytes);
                }
            }
            Step::Disconnect { a, b } if mesh.linked(usize::from(a), usize::from(b)) => {
                let (a, b) = (usize::from(a), usize::from(b));
                mesh.links[a][b].clear();
                mesh.links[b][a].clear();
                mesh.connect(a, b);
                mesh.connect(b, a);
            }
            Step::Disconnect { .. } => {}
            Step::Restart { at } => {
                // From a snapshot taken now: every session of it starts over.
                let at = usize::from(at);
                let Ok(doc) = Document::load(&mesh.docs[at].encode(), replica(at)) else {
                    return false;
                };
                mesh.docs[at] = doc;
                for j in 0..N {
                    if mesh.linked(at, j) {
                        mesh.links[at][j].clear();
                        mesh.links[j][at].clear();
                        mesh.connect(at, j);
                        mesh.connect(j, at);
                    }
                }
            }
        }
    }
    // The network heals: deliver everything, in order, until quiet.
    for _round in 0..50 {
        let mut moved = false;
        for from in 0..N {
            for to in 0..N {
                while let Some(bytes) = mesh.links[from][to].pop_front() {
                    moved = true;
                    if !mesh.deliver(from, to, bytes) {
                        return false;
                    }
                }
            }
        }
        if !moved {
            break;
        }
    }
    let json = mesh.docs[0].to_json();
    let version = mesh.docs[0].version();
    mesh.docs
        .iter()
        .all(|d| d.to_json() == json && d.version() == version)
}

#[test]
fn sessions_converge_across_reordering_duplicates_disconnects_and_restarts() {
    check(300, sessions_converge);
}

#[test]
fn one_connection_carries_many_documents() {
    let names = ["notes", "todo", "board"];
    let mut left: Vec<Document> = (0..3).map(|_| Document::new(replica(1))).collect();
    let mut right: Vec<Document> = (0..3).map(|_| Document::new(replica(2))).collect();
    for (i, doc) in left.iter_mut().enumerate() {
        doc.set(MapId::ROOT, "from", format!("left {i}").as_str())
            .expect("a map");
    }
    right[1].set(MapId::ROOT, "extra", 1).expect("a map");
    let mut left_sessions: Vec<SyncSession> = names.iter().map(|n| SyncSession::new(*n)).collect();
    let mut right_sessions: Vec<SyncSession> = names.iter().map(|n| SyncSession::new(*n)).collect();
    // One "connection" each way: a single queue of messages for all documents.
    let mut to_right: VecDeque<Message> = VecDeque::new();
    let mut to_left: VecDeque<Message> = VecDeque::new();
    for i in 0..3 {
        to_right.push_back(left_sessions[i].hello(&left[i]));
        to_left.push_back(right_sessions[i].hello(&right[i]));
    }
    let index = |doc: &str| {
        names
            .iter()
            .position(|n| *n == doc)
            .expect("known document")
    };
    while !to_right.is_empty() || !to_left.is_empty() {
        while let Some(message) = to_right.pop_front() {
            let i = index(message.doc());
            let replies = right_sessions[i]
                .receive(&mut right[i], message)
                .expect("valid");
            to_left.extend(replies);
        }
        while let Some(message) = to_left.pop_front() {
            let i = index(message.doc());
            let replies = left_sessions[i]
                .receive(&mut left[i], message)
                .expect("valid");
            to_right.extend(replies);
        }
    }
    for i in 0..3 {
        assert_eq!(left[i].to_json(), right[i].to_json(), "{}", names[i]);
    }
    assert_eq!(
        right[1].get(MapId::ROOT, "extra").ok().flatten(),
        left[1].get(MapId::ROOT, "extra").ok().flatten()
    );
    // A message for another document is refused by a session.
    let stray = left_sessions[0].hello(&left[0]);
    assert_eq!(
        right_sessions[1].receive(&mut right[1], stray),
        Err(SyncError::WrongDocument)
    );
}

#[test]
fn unknown_protocol_versions_and_garbage_are_typed_errors() {
    let mut bytes = Message::Have {
        doc: "d".into(),
        version: crdt_core::VersionVector::new(),
    }
    .encode();
    bytes[2] = 99;
    assert_eq!(
        Message::decode(&bytes),
        Err(SyncError::UnsupportedProtocol {
            found: 99,
            supported: crdt_core::sync::PROTOCOL_VERSION
        })
    );
    assert!(matches!(
        Message::decode(b"garbage"),
        Err(SyncError::Malformed(_))
    ));
    let mut session = SyncSession::new("d");
    let mut doc = Document::new(replica(1));
    let old_hello = Message::Hello {
        doc: "d".into(),
        protocol: 0,
        version: crdt_core::VersionVector::new(),
    };
    assert!(matches!(
        session.receive(&mut doc, old_hello),
        Err(SyncError::UnsupportedProtocol { .. })
    ));
}

fn random_messages_never_panic(bytes: Vec<u8>) -> bool {
    let mut with_header = vec![0xC7, b'S'];
    with_header.extend_from_slice(&crdt_core::sync::PROTOCOL_VERSION.to_le_bytes());
    with_header.extend_from_slice(&bytes);
    let mut doc = Document::new(replica(1));
    let mut session = SyncSession::new("d");
    for candidate in [&bytes, &with_header] {
        if let Ok(message) = Message::decode(candidate) {
            let _ = session.receive(&mut doc, message);
        }
    }
    true
}

#[test]
fn random_messages_never_panic_the_session() {
    check(3000, random_messages_never_panic);
}

#[test]
fn presence_expires_and_newer_clocks_win() {
    let alice = replica(1);
    let mut local = LocalPresence::new(alice, 10_000);
    let mut seen = PresenceSet::default();
    let first = local.update("doc", b"line 1".to_vec());
    let second = local.update("doc", b"line 2".to_vec());
    assert!(seen.receive(&second, 0));
    assert!(
        !seen.receive(&first, 1),
        "an older presence arriving late changes nothing"
    );
    assert_eq!(
        seen.get(alice).map(|p| p.state.clone()),
        Some(b"line 2".to_vec())
    );
    assert!(seen.expire(9_999).is_empty());
    assert_eq!(seen.expire(10_000), vec![alice]);
    assert!(seen.receive(&local.update("doc", b"back".to_vec()), 20_000));
    assert!(seen.receive(&local.leave("doc"), 20_001));
    assert!(seen.is_empty());
    // Presence is not the document's business: a session ignores it.
    let mut doc = Document::new(replica(2));
    let before = doc.version();
    let mut session = SyncSession::new("doc");
    assert_eq!(session.receive(&mut doc, first), Ok(Vec::new()));
    assert_eq!(doc.version(), before);
}
