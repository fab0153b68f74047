//! A sync session: one document, one peer, as a pure state machine.

use std::collections::VecDeque;

use super::message::{Message, PROTOCOL_VERSION, SyncError};
use crate::{Document, LoadError, VersionVector};

/// Syncs one [`Document`] with one peer over any transport: feed it the peer's messages, send
/// what it returns and what [`poll`](Self::poll) produces.
///
/// Each side starts with [`hello`](Self::hello) (its version); each answers a hello with
/// exactly the changes the other lacks, then sends new local changes as they are made. After a
/// disconnect, [`reset`](Self::reset) and say hello again: the exchange starts from what each
/// side has, so nothing is lost and little is resent, whatever happened meanwhile. Duplicated
/// updates are harmless; an update that arrives before the changes it builds on waits in a
/// bounded buffer.
///
/// ```
/// use crdt_core::{Document, MapId, ReplicaId, SyncSession};
///
/// let mut alice = Document::new(ReplicaId::from_u128(1));
/// let mut bob = Document::new(ReplicaId::from_u128(2));
/// alice.set(MapId::ROOT, "greeting", "hello").unwrap();
///
/// let mut at_alice = SyncSession::new("doc-1");
/// let mut at_bob = SyncSession::new("doc-1");
/// let mut to_bob = vec![at_alice.hello(&alice)];
/// let mut to_alice = vec![at_bob.hello(&bob)];
/// while !to_bob.is_empty() || !to_alice.is_empty() {
///     for message in std::mem::take(&mut to_bob) {
///         to_alice.extend(at_bob.receive(&mut bob, message).unwrap());
///     }
///     for message in std::mem::take(&mut to_alice) {
///         to_bob.extend(at_alice.receive(&mut alice, message).unwrap());
///     }
/// }
/// assert_eq!(bob.to_json(), alice.to_json());
/// ```
#[derive(Debug)]
pub struct SyncSession {
    doc: String,
    /// What the peer has, as far as we know: its hello, its acknowledgements, and what we sent.
    peer_has: Option<VersionVector>,
    /// Updates that arrived before changes they depend on.
    waiting: VecDeque<Vec<u8>>,
    waiting_bytes: usize,
    limits: SessionLimits,
}

/// Bounds of a session's buffer of early updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Most updates waiting for missing changes.
    pub max_waiting: usize,
    /// Most bytes of updates waiting for missing changes.
    pub max_waiting_bytes: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_waiting: 64,
            max_waiting_bytes: 16 << 20,
        }
    }
}

impl SyncSession {
    /// A session for the document named `doc`, with default limits.
    pub fn new(doc: impl Into<String>) -> SyncSession {
        SyncSession::with_limits(doc, SessionLimits::default())
    }

    /// A session with explicit limits.
    pub fn with_limits(doc: impl Into<String>, limits: SessionLimits) -> SyncSession {
        SyncSession {
            doc: doc.into(),
            peer_has: None,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            limits,
        }
    }

    /// The document this session syncs.
    pub fn doc(&self) -> &str {
        &self.doc
    }

    /// What the peer is known to have, once it said hello.
    pub fn peer_version(&self) -> Option<&VersionVector> {
        self.peer_has.as_ref()
    }

    /// How many received updates wait for changes that have not arrived.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The message that starts (or restarts) the exchange: our version.
    pub fn hello(&mut self, document: &Document) -> Message {
        Message::Hello {
            doc: self.doc.clone(),
            protocol: PROTOCOL_VERSION,
            version: document.version(),
        }
    }

    /// Records that the peer is being sent everything up to `version` through another path than
    /// [`poll`](Self::poll): a server that sends one encoded update to many subscribers at the
    /// same version computes it once and marks each of their sessions with this. Does nothing
    /// before the peer's hello.
    ///
    /// ```
    /// use crdt_core::sync::SyncSession;
    /// use crdt_core::{Document, ReplicaId};
    ///
    /// let mut server = Document::new(ReplicaId::from_u128(1));
    /// let mut client = Document::new(ReplicaId::from_u128(2));
    /// let mut session = SyncSession::new("doc");
    /// let hello = SyncSession::new("doc").hello(&client);
    /// session.receive(&mut server, hello).unwrap();
    /// server.set(crdt_core::MapId::ROOT, "n", 1).unwrap();
    ///
    /// let shared_update = server.update_since(session.peer_version().unwrap());
    /// session.mark_sent(&server.version());
    /// assert_eq!(session.poll(&server), None);
    /// client.apply_update(&shared_update).unwrap();
    /// ```
    pub fn mark_sent(&mut self, version: &VersionVector) {
        if let Some(peer_has) = &mut self.peer_has {
            peer_has.merge(version);
        }
    }

    /// Forgets the peer (after a disconnect). Say [`hello`](Self::hello) again to resume.
    pub fn reset(&mut self) {
        self.peer_has = None;
        self.waiting.clear();
        self.waiting_bytes = 0;
    }

    /// The changes made since the peer was last brought up to date, if any. Call after local
    /// edits (and after applying changes from other peers, to relay them).
    pub fn poll(&mut self, document: &Document) -> Option<Message> {
        let peer_has = self.peer_has.as_mut()?;
        let version = document.version();
        if peer_has.includes(&version) {
            return None;
        }
        let update = document.update_since(peer_has);
        peer_has.merge(&version);
        Some(Message::Changes {
            doc: self.doc.clone(),
            update,
            version,
        })
    }

    /// Handles a message from the peer; returns the messages to send back.
    ///
    /// Presence messages are not the session's business (see
    /// [`PresenceSet`](super::PresenceSet)) and are ignored here.
    pub fn receive(
        &mut self,
        document: &mut Document,
        message: Message,
    ) -> Result<Vec<Message>, SyncError> {
        if message.doc() != self.doc {
            return Err(SyncError::WrongDocument);
        }
        match message {
            Message::Hello {
                protocol, version, ..
            } => {
                if protocol != PROTOCOL_VERSION {
                    return Err(SyncError::UnsupportedProtocol {
                        found: protocol,
                        supported: PROTOCOL_VERSION,
                    });
                }
                self.peer_has = Some(version);
                Ok(self.poll(document).into_iter().collect())
            }
            Message::Have { version, .. } => {
                match &mut self.peer_has {
                    Some(peer_has) => peer_has.merge(&version),
                    None => self.peer_has = Some(version),
                }
                Ok(Vec::new())
            }
            Message::Changes {
                update, version, ..
            } => {
                // The peer has everything it has: never send that back.
                match &mut self.peer_has {
                    Some(peer_has) => peer_has.merge(&version),
                    None => self.peer_has = Some(version),
                }
                self.receive_update(document, update)
            }
            Message::Presence { .. } => Ok(Vec::new()),
        }
    }

    fn receive_update(
        &mut self,
        document: &mut Document,
        update: Vec<u8>,
    ) -> Result<Vec<Message>, SyncError> {
        match document.apply_update(&update) {
            Ok(_) => {}
            Err(LoadError::MissingEvent(_)) => {
                if self.waiting.len() >= self.limits.max_waiting
                    || self.waiting_bytes + update.len() > self.limits.max_waiting_bytes
                {
                    // Keep memory bounded: drop what waits and ask for everything again.
                    self.waiting.clear();
                    self.waiting_bytes = 0;
                    return Err(SyncError::BufferFull);
                }
                self.waiting_bytes += update.len();
                self.waiting.push_back(update);
                return Ok(Vec::new());
            }
            Err(error) => return Err(SyncError::Update(error)),
        }
        // Updates that waited for this one may apply now; retry until nothing moves.
        let mut progress = true;
        while progress && !self.waiting.is_empty() {
            progress = false;
            for _ in 0..self.waiting.len() {
                let Some(early) = self.waiting.pop_front() else {
                    break;
                };
                match document.apply_update(&early) {
                    Ok(_) => {
                        self.waiting_bytes -= early.len();
                        progress = true;
                    }
                    Err(LoadError::MissingEvent(_)) => self.waiting.push_back(early),
                    Err(error) => {
                        self.waiting_bytes -= early.len();
                        return Err(SyncError::Update(error));
                    }
                }
            }
        }
        Ok(vec![Message::Have {
            doc: self.doc.clone(),
            version: document.version(),
        }])
    }
}
