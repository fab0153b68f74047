//! One document's side of the protocol: its subscription, what the server made durable, the
//! refusals and when to subscribe again, the local changes to send, presence. Shared by
//! [`ClientSession`](super::ClientSession) (the browser package) and the Rust `sync-client`,
//! which keeps one beside each of its documents.

use crdt_core::sync::{LocalPresence, Message, PresenceSet, SyncError, SyncSession};
use crdt_core::{Document, ReplicaId, VersionVector};

use crate::frame::Frame;
use crate::status::{Access, AckStatus, ErrorCode};

/// How long a document waits before subscribing again after a retryable refusal.
pub const RETRY_PAUSE_MS: u64 = 1_000;

/// How long this client's presence lasts on other clients without a refresh; refresh it
/// ([`DocumentSync::refresh_presence`]) at a third of this.
pub const PRESENCE_TTL_MS: u64 = 30_000;

/// What applying a document frame did, for the caller's events.
#[derive(Clone, Debug, PartialEq)]
pub enum DocUpdate {
    /// The server confirmed the subscription with this access.
    Subscribed(Access),
    /// Changes from the server were applied (the document's own listeners heard of them).
    Changed,
    /// The server made a batch durable; `version` is its durable version after it.
    Acknowledged {
        /// The batch number.
        batch: u64,
        /// The server's durable version.
        version: VersionVector,
    },
    /// The server refused a batch; the changes stay local. Retryable refusals subscribe
    /// again after [`RETRY_PAUSE_MS`], which sends them again.
    Refused {
        /// The batch number.
        batch: u64,
        /// Why.
        status: AckStatus,
    },
    /// The server reported an error about this document (`PermissionDenied` stops syncing
    /// it; others subscribe again after a pause).
    Error {
        /// Why, for programs.
        code: ErrorCode,
        /// Why, for people.
        message: String,
    },
    /// The server sent changes the document could not apply (a bug or a hostile server); the
    /// document is unchanged and subscribes again after a pause.
    BadUpdate(SyncError),
    /// Another client's presence changed.
    Presence,
}

/// One document's sync state on one client, across connections.
///
/// ```
/// use crdt_core::{Document, MapId, ReplicaId};
/// use sync_protocol::client::{DocUpdate, DocumentSync};
/// use sync_protocol::{Access, Frame};
///
/// let mut doc = Document::new(ReplicaId::from_u128(1));
/// let mut sync = DocumentSync::new("notes", doc.replica());
/// let mut next_batch = 1;
/// // Connected: the first poll subscribes.
/// let frames = sync.poll(&doc, 0, &mut next_batch);
/// assert!(matches!(frames[0], Frame::Subscribe { .. }));
/// let subscribed = Frame::Subscribed {
///     doc: "notes".into(), version: Default::default(), access: Access::ReadWrite,
/// };
/// assert_eq!(sync.apply(subscribed, &mut doc, 0), [DocUpdate::Subscribed(Access::ReadWrite)]);
/// doc.set(MapId::ROOT, "k", 1).unwrap();
/// assert!(matches!(sync.poll(&doc, 0, &mut next_batch)[0], Frame::Changes { batch: 1, .. }));
/// assert!(!sync.is_saved(&doc));
/// ```
#[derive(Debug)]
pub struct DocumentSync {
    id: String,
    session: SyncSession,
    /// What the server said is committed to its storage.
    durable: VersionVector,
    access: Option<Access>,
    /// Whether a `Subscribe` was sent on this connection.
    subscribed: bool,
    /// Messages the session produced while applying a frame, sent by the next poll.
    outbox: Vec<Message>,
    /// Subscribe again at this time (ms) after a retryable refusal.
    resubscribe_at: Option<u64>,
    /// A refusal that retrying will not fix (cleared by the next subscription).
    refusal: Option<AckStatus>,
    /// The local replica (its own presence echoes are not a peer).
    replica: ReplicaId,
    local_presence: LocalPresence,
    my_presence: Option<Vec<u8>>,
    presence_dirty: bool,
    peers: PresenceSet,
}

impl DocumentSync {
    /// The state of document `id`, edited locally as `replica` (whose id presence uses).
    pub fn new(id: &str, replica: ReplicaId) -> DocumentSync {
        DocumentSync {
            id: id.to_owned(),
            session: SyncSession::new(id),
            durable: VersionVector::new(),
            access: None,
            subscribed: false,
            outbox: Vec::new(),
            resubscribe_at: None,
            refusal: None,
            replica,
            local_presence: LocalPresence::new(replica, PRESENCE_TTL_MS),
            my_presence: None,
            presence_dirty: false,
            peers: PresenceSet::default(),
        }
    }

    /// The document's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The connection closed: what the server was told on it is forgotten (the durable
    /// version, the refusal and the last known access stay; the next connection subscribes
    /// again). Other clients' presence is dropped: nobody is known to be here while offline.
    pub fn disconnected(&mut self) {
        self.session.reset();
        self.subscribed = false;
        self.outbox.clear();
        self.peers = PresenceSet::default();
    }

    /// Whether a `Subscribe` went out on the current connection.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed
    }

    /// Applies a frame about this document at time `now_ms`; returns what happened. The
    /// frames it calls for are sent by the next [`poll`](Self::poll).
    pub fn apply(&mut self, frame: Frame, document: &mut Document, now_ms: u64) -> Vec<DocUpdate> {
        let mut updates = Vec::new();
        match frame {
            Frame::Subscribed {
                doc,
                version,
                access,
            } => {
                self.access = Some(access);
                self.refusal = None;
                self.durable.merge(&version);
                self.presence_dirty = self.my_presence.is_some();
                let hello = Message::Hello {
                    doc,
                    protocol: crdt_core::sync::PROTOCOL_VERSION,
                    version,
                };
                // The server's version becomes what the session knows it has; the changes it
                // lacks go out with the next poll (a hello for this document's session, at
                // this protocol version, cannot fail).
                let replies = self.session.receive(document, hello).unwrap_or_default();
                if access.can_write() {
                    self.outbox.extend(replies);
                }
                updates.push(DocUpdate::Subscribed(access));
            }
            Frame::Changes {
                doc,
                update,
                version,
                ..
            } => {
                // The server sends only what it has committed.
                self.durable.merge(&version);
                let message = Message::Changes {
                    doc,
                    update,
                    version,
                };
                match self.session.receive(document, message) {
                    Ok(_have) => {
                        // The session answers applied changes with a `Have`; the server
                        // already counts what it sent as held, so it is not sent: one message
                        // fewer per update per subscriber, for the server to route and apply.
                        updates.push(DocUpdate::Changed);
                    }
                    Err(error) => {
                        self.retry_later(now_ms);
                        updates.push(DocUpdate::BadUpdate(error));
                    }
                }
            }
            Frame::Ack {
                batch,
                status,
                version,
                ..
            } => {
                if status == AckStatus::Ok {
                    self.durable.merge(&version);
                    updates.push(DocUpdate::Acknowledged { batch, version });
                } else {
                    if status.is_retryable() {
                        // Subscribing again makes both sides recompute what the other lacks.
                        self.retry_later(now_ms);
                    } else {
                        self.refusal = Some(status);
                        if status == AckStatus::PermissionDenied {
                            self.access = Some(Access::ReadOnly);
                        }
                    }
                    updates.push(DocUpdate::Refused { batch, status });
                }
            }
            frame @ Frame::Presence { .. } => {
                if let Some(message) = frame.into_sync_message()
                    && self.peers.receive(&message, now_ms)
                {
                    updates.push(DocUpdate::Presence);
                }
            }
            Frame::Error { code, message, .. } => {
                if code == ErrorCode::PermissionDenied {
                    self.access = None;
                    self.refusal = Some(AckStatus::PermissionDenied);
                } else {
                    self.retry_later(now_ms);
                }
                updates.push(DocUpdate::Error { code, message });
            }
            _ => {}
        }
        updates
    }

    fn retry_later(&mut self, now_ms: u64) {
        self.subscribed = false;
        self.resubscribe_at = Some(now_ms + RETRY_PAUSE_MS);
    }

    /// The frames due at time `now_ms` on a connection the server welcomed: the
    /// subscription, the local changes the server lacks (one batch, numbered from
    /// `next_batch`, which it advances), presence. Call after local edits, after
    /// [`apply`](Self::apply), and at [`next_wakeup`](Self::next_wakeup).
    pub fn poll(&mut self, document: &Document, now_ms: u64, next_batch: &mut u64) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut numbered = |message: Message| {
            let batch = if matches!(message, Message::Changes { .. }) {
                *next_batch += 1;
                *next_batch - 1
            } else {
                0
            };
            Frame::from_sync_message(message, batch)
        };
        for message in std::mem::take(&mut self.outbox) {
            frames.push(numbered(message));
        }
        if !self.subscribed {
            if self.resubscribe_at.is_none_or(|at| at <= now_ms) {
                self.resubscribe_at = None;
                self.session.reset();
                self.subscribed = true;
                frames.push(Frame::Subscribe {
                    doc: self.id.clone(),
                    version: document.version(),
                });
            }
        } else if self.access.is_some_and(Access::can_write)
            && self.refusal.is_none()
            && let Some(message) = self.session.poll(document)
        {
            frames.push(numbered(message));
        }
        if self.access.is_some() && self.presence_dirty {
            self.presence_dirty = false;
            let message = match self.my_presence.clone() {
                Some(presence) => self.local_presence.update(&self.id, presence),
                None => self.local_presence.leave(&self.id),
            };
            frames.push(Frame::from_sync_message(message, 0));
        }
        frames
    }

    /// When a poll is due without any event (a pending resubscription), if ever.
    pub fn next_wakeup(&self) -> Option<u64> {
        self.resubscribe_at
    }

    /// True when the server has durably stored everything `document` holds (and nothing was
    /// refused for good).
    pub fn is_saved(&self, document: &Document) -> bool {
        self.refusal.is_none() && self.durable.includes(&document.version())
    }

    /// What the server has confirmed durable.
    pub fn durable_version(&self) -> &VersionVector {
        &self.durable
    }

    /// The refusal that stops the changes from being sent, if any (`PermissionDenied`,
    /// `TooLarge`, `Invalid`): cleared when the document subscribes again.
    pub fn refusal(&self) -> Option<AckStatus> {
        self.refusal
    }

    /// What the server lets this client do with the document, once subscribed.
    pub fn access(&self) -> Option<Access> {
        self.access
    }

    /// Sets (or, with `None`, withdraws) this client's presence; sent by the next poll.
    pub fn set_presence(&mut self, state: Option<Vec<u8>>) {
        self.my_presence = state;
        self.presence_dirty = true;
    }

    /// Marks live presence to be sent again before it expires elsewhere.
    pub fn refresh_presence(&mut self) {
        if self.my_presence.is_some() {
            self.presence_dirty = true;
        }
    }

    /// The other clients present at `now_ms` (expired ones are dropped), by replica.
    pub fn peers(&mut self, now_ms: u64) -> Vec<(ReplicaId, Vec<u8>)> {
        self.peers.expire(now_ms);
        let own = self.replica;
        let mut peers: Vec<(ReplicaId, Vec<u8>)> = self
            .peers
            .iter()
            .filter(|(replica, entry)| *replica != own && !entry.state.is_empty())
            .map(|(replica, entry)| (replica, entry.state.clone()))
            .collect();
        peers.sort_unstable_by_key(|(replica, _)| *replica);
        peers
    }
}
