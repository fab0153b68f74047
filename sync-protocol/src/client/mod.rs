//! The client side of the protocol as a state machine without I/O: what to send when the
//! socket opens, what a frame from the server means for each document, which batches the
//! server made durable, and what is due after a local edit.
//!
//! Why here: every client (the browser package through wasm, tests, tools) must make the same
//! decisions (resubscribe after a retryable refusal, forget nothing before its `Ack`, keep the
//! frames under the negotiated size), and the decisions are pure. The caller owns the socket,
//! the clock and the documents: it passes each document in when a frame or a poll concerns it,
//! so the documents can live wherever the caller keeps them (behind a JS handle, a mutex).
//!
//! Per document, the decisions are [`DocumentSync`]'s (the Rust `sync-client` keeps one
//! beside each of its documents); `ClientSession` adds the connection: hello, welcome,
//! tokens, batch numbers, fragments.
//!
//! ```
//! use crdt_core::{Document, MapId, ReplicaId};
//! use sync_protocol::client::{ClientSession, Received};
//! use sync_protocol::{Access, Frame, WIRE_VERSION};
//!
//! let mut doc = Document::new(ReplicaId::from_u128(1));
//! let mut client = ClientSession::new("example/1.0", None);
//! client.open("notes", doc.replica());
//! let hello = client.connected();
//! assert!(matches!(Frame::decode(&hello[0]).unwrap(), Frame::Hello { .. }));
//!
//! // The server welcomes the client; the next poll subscribes the document.
//! let welcome = Frame::Welcome {
//!     version: WIRE_VERSION, server: "s".into(), max_frame: 1 << 16, max_message: 1 << 20,
//!     max_documents: 8,
//! };
//! assert!(matches!(client.receive(&welcome.encode(), 0).unwrap(), Received::Welcome { .. }));
//! let subscribe = client.poll("notes", &doc, 0);
//! assert!(matches!(Frame::decode(&subscribe[0]).unwrap(), Frame::Subscribe { .. }));
//!
//! // Subscribed: from now on local edits are sent as numbered batches.
//! let subscribed = Frame::Subscribed {
//!     doc: "notes".into(), version: Default::default(), access: Access::ReadWrite,
//! };
//! let Received::Document { doc: id, frame } = client.receive(&subscribed.encode(), 0).unwrap()
//! else { unreachable!() };
//! client.apply(&id, frame, &mut doc, 0);
//! doc.set(MapId::ROOT, "k", 1).unwrap();
//! let changes = client.poll("notes", &doc, 0);
//! assert!(matches!(Frame::decode(&changes[0]).unwrap(), Frame::Changes { batch: 1, .. }));
//! assert!(!client.is_saved("notes", &doc));
//! ```

mod document;

pub use document::{DocUpdate, DocumentSync, PRESENCE_TTL_MS, RETRY_PAUSE_MS};

use crdt_core::{Document, ReplicaId, VersionVector};

use crate::fragment::{FragmentError, Reassembler, split_into_fragments};
use crate::frame::{Frame, FrameError, WIRE_VERSION};
use crate::status::{Access, AckStatus, ErrorCode};
use crate::vec_map::VecMap;
use crate::{DEFAULT_MAX_FRAME, PIECE_OVERHEAD};

/// Bounds on what the server may make the client buffer while reassembling fragments.
const MAX_MESSAGE: usize = 256 << 20;
const FRAGMENT_TIMEOUT_MS: u64 = 60_000;

/// What a frame from the server meant, for the caller.
#[derive(Debug)]
pub enum Received {
    /// A piece of a fragmented frame; nothing to do yet.
    Nothing,
    /// The server accepted the connection; documents subscribe on the next poll.
    Welcome {
        /// The server's name and version.
        server: String,
    },
    /// A refreshed token was accepted.
    Authorized {
        /// When it expires (seconds since the Unix epoch), if it does.
        expires_at: Option<u64>,
    },
    /// The server refused the connection or is closing it: close the socket, and reconnect
    /// later unless `code` says retrying cannot help ([`ErrorCode::Unauthorized`]...).
    ConnectionError {
        /// Why, for programs.
        code: ErrorCode,
        /// Why, for people.
        message: String,
    },
    /// A frame about an open document: pass it to [`ClientSession::apply`] with the document.
    Document {
        /// The document's id.
        doc: String,
        /// The frame.
        frame: Frame,
    },
}

/// Why a frame from the server could not be read. The connection should be closed and
/// opened again.
#[derive(Debug, PartialEq)]
pub enum ReceiveError {
    /// Not a frame.
    Frame(FrameError),
    /// Bad fragments (too large, out of order, nested).
    Fragment(FragmentError),
}

impl std::fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiveError::Frame(e) => write!(f, "bad frame from the server: {e}"),
            ReceiveError::Fragment(e) => write!(f, "bad fragments from the server: {e}"),
        }
    }
}

impl std::error::Error for ReceiveError {}

#[derive(Debug, PartialEq)]
enum Phase {
    Disconnected,
    AwaitingWelcome,
    Ready { max_frame: usize },
}

/// The client side of one connection's protocol, for any number of documents. See the module
/// documentation for an example.
#[derive(Debug)]
pub struct ClientSession {
    agent: String,
    token: Option<String>,
    sent_token: Option<String>,
    phase: Phase,
    docs: VecMap<String, DocumentSync>,
    next_batch: u64,
    next_fragment: u32,
    reassembler: Reassembler,
}

impl ClientSession {
    /// A client that introduces itself as `agent` and authenticates with `token`.
    pub fn new(agent: impl Into<String>, token: Option<String>) -> ClientSession {
        ClientSession {
            agent: agent.into(),
            token,
            sent_token: None,
            phase: Phase::Disconnected,
            docs: VecMap::default(),
            next_batch: 1,
            next_fragment: 0,
            reassembler: new_reassembler(),
        }
    }

    /// Starts syncing document `doc` (edited locally as `replica`, whose id presence uses).
    /// Opening a document already open does nothing.
    pub fn open(&mut self, doc: &str, replica: ReplicaId) {
        if !self.docs.contains_key(doc) {
            self.docs
                .insert(doc.to_owned(), DocumentSync::new(doc, replica));
        }
    }

    /// Stops syncing `doc`; returns the frames to send (an `Unsubscribe` when connected).
    pub fn close(&mut self, doc: &str) -> Vec<Vec<u8>> {
        match self.docs.remove(doc) {
            Some(state) if state.is_subscribed() && self.is_ready() => {
                self.encode(&Frame::Unsubscribe {
                    doc: doc.to_owned(),
                })
            }
            _ => Vec::new(),
        }
    }

    /// The documents open, in the order they were opened (closing one may move the last).
    pub fn documents(&self) -> impl Iterator<Item = &str> {
        self.docs.iter().map(|(id, _)| id.as_str())
    }

    /// The socket opened: returns the `Hello` to send first. Every document subscribes again
    /// once the server welcomes the client.
    pub fn connected(&mut self) -> Vec<Vec<u8>> {
        self.disconnected();
        self.phase = Phase::AwaitingWelcome;
        self.sent_token = self.token.clone();
        let hello = Frame::Hello {
            min_version: WIRE_VERSION,
            max_version: WIRE_VERSION,
            token: self.token.clone(),
            agent: self.agent.clone(),
        };
        vec![hello.encode()]
    }

    /// The socket closed: forgets what the server was told on it (the documents, their
    /// durable versions and unacknowledged changes stay).
    pub fn disconnected(&mut self) {
        self.phase = Phase::Disconnected;
        self.reassembler = new_reassembler();
        for state in self.docs.values_mut() {
            state.disconnected();
        }
    }

    /// True once the server welcomed the client on the current socket.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready { .. })
    }

    /// Replaces the token: sent as `Auth` on the live connection (by the next [`poll_auth`]),
    /// and in the `Hello` of later ones.
    ///
    /// [`poll_auth`]: Self::poll_auth
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    /// The `Auth` frame if the token changed since the server last saw one.
    pub fn poll_auth(&mut self) -> Vec<Vec<u8>> {
        if !self.is_ready() || self.token == self.sent_token {
            return Vec::new();
        }
        self.sent_token = self.token.clone();
        match self.token.clone() {
            Some(token) => self.encode(&Frame::Auth { token }),
            None => Vec::new(),
        }
    }

    /// Reads one WebSocket message from the server at time `now_ms`.
    pub fn receive(&mut self, bytes: &[u8], now_ms: u64) -> Result<Received, ReceiveError> {
        let frame = Frame::decode(bytes).map_err(ReceiveError::Frame)?;
        let frame = match self.reassembler.receive(frame, Vec::new(), now_ms) {
            Ok(Some(whole)) => whole.frame,
            Ok(None) => return Ok(Received::Nothing),
            Err(error) => return Err(ReceiveError::Fragment(error)),
        };
        Ok(match frame {
            Frame::Welcome {
                server, max_frame, ..
            } => {
                let max_frame =
                    (max_frame as usize).clamp(PIECE_OVERHEAD * 4, DEFAULT_MAX_FRAME * 64);
                self.phase = Phase::Ready { max_frame };
                Received::Welcome { server }
            }
            Frame::Authorized { expires_at } => Received::Authorized { expires_at },
            Frame::Error {
                code,
                doc: None,
                message,
            } => Received::ConnectionError { code, message },
            frame => match frame.doc() {
                Some(doc) if self.docs.contains_key(doc) => Received::Document {
                    doc: doc.to_owned(),
                    frame,
                },
                // A closed document's late frames, or frames meant for the server.
                _ => Received::Nothing,
            },
        })
    }

    /// Applies a frame [`receive`](Self::receive) returned for `doc`, with the document, at
    /// time `now_ms`. Returns what happened; the frames it calls for are sent by the next
    /// [`poll`](Self::poll) (call it after this).
    pub fn apply(
        &mut self,
        doc: &str,
        frame: Frame,
        document: &mut Document,
        now_ms: u64,
    ) -> Vec<DocUpdate> {
        match self.docs.get_mut(doc) {
            Some(state) => state.apply(frame, document, now_ms),
            None => Vec::new(),
        }
    }

    /// The messages due for `doc` at time `now_ms`: its subscription, the local changes the
    /// server lacks (one numbered batch), its presence. Call after local edits, after
    /// [`apply`](Self::apply), and on a timer while a resubscription is pending.
    pub fn poll(&mut self, doc: &str, document: &Document, now_ms: u64) -> Vec<Vec<u8>> {
        if !self.is_ready() {
            return Vec::new();
        }
        let Some(state) = self.docs.get_mut(doc) else {
            return Vec::new();
        };
        let frames = state.poll(document, now_ms, &mut self.next_batch);
        frames.iter().flat_map(|frame| self.encode(frame)).collect()
    }

    /// When `doc` next needs a poll without any event (a pending resubscription), if ever.
    pub fn next_wakeup(&self, doc: &str) -> Option<u64> {
        self.docs.get(doc)?.next_wakeup()
    }

    /// True when the server has durably stored everything `document` holds (and nothing was
    /// refused for good).
    pub fn is_saved(&self, doc: &str, document: &Document) -> bool {
        self.docs
            .get(doc)
            .is_some_and(|state| state.is_saved(document))
    }

    /// What the server has confirmed durable for `doc`.
    pub fn durable_version(&self, doc: &str) -> Option<&VersionVector> {
        self.docs.get(doc).map(DocumentSync::durable_version)
    }

    /// The refusal that stops `doc`'s changes from being sent, if any (`PermissionDenied`,
    /// `TooLarge`, `Invalid`): cleared when the document subscribes again.
    pub fn refusal(&self, doc: &str) -> Option<AckStatus> {
        self.docs.get(doc)?.refusal()
    }

    /// What the server lets this client do with `doc`, once subscribed.
    pub fn access(&self, doc: &str) -> Option<Access> {
        self.docs.get(doc)?.access()
    }

    /// Sets (or, with `None`, withdraws) this client's presence on `doc`; sent by the next
    /// poll.
    pub fn set_presence(&mut self, doc: &str, state: Option<Vec<u8>>) {
        if let Some(entry) = self.docs.get_mut(doc) {
            entry.set_presence(state);
        }
    }

    /// Marks live presence to be sent again before it expires elsewhere (call every
    /// `PRESENCE_TTL_MS / 3`).
    pub fn refresh_presence(&mut self) {
        for state in self.docs.values_mut() {
            state.refresh_presence();
        }
    }

    /// The other clients present on `doc` at `now_ms` (expired ones are dropped): replica and
    /// state.
    pub fn peers(&mut self, doc: &str, now_ms: u64) -> Vec<(ReplicaId, Vec<u8>)> {
        match self.docs.get_mut(doc) {
            Some(state) => state.peers(now_ms),
            None => Vec::new(),
        }
    }

    fn encode(&mut self, frame: &Frame) -> Vec<Vec<u8>> {
        let max_frame = match self.phase {
            Phase::Ready { max_frame } => max_frame,
            _ => DEFAULT_MAX_FRAME,
        };
        self.next_fragment = self.next_fragment.wrapping_add(1);
        split_into_fragments(frame, max_frame, self.next_fragment)
    }
}

fn new_reassembler() -> Reassembler {
    Reassembler::new(MAX_MESSAGE, 4, FRAGMENT_TIMEOUT_MS)
}
