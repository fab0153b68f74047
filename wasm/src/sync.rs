//! `SyncSession`: one document synced with one peer over any transport, as encoded messages.

use std::cell::RefCell;

use crdt_core::sync::{Message, SyncError};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::doc::Doc;
use crate::error::{JsFailure, JsResult};
use crate::shared::DocHandle;

impl From<SyncError> for JsFailure {
    fn from(error: SyncError) -> JsFailure {
        match error {
            SyncError::Update(load) => load.into(),
            SyncError::UnsupportedProtocol { .. } => {
                JsFailure::new("UNSUPPORTED_VERSION", error.to_string())
            }
            SyncError::WrongDocument => JsFailure::new("WRONG_DOCUMENT", error.to_string()),
            SyncError::BufferFull => JsFailure::new("SYNC_BUFFER_FULL", error.to_string()),
            _ => JsFailure::new("BAD_ENCODING", error.to_string()),
        }
    }
}

/// Syncs a document with one peer: send `hello()` when connected, pass every message from the
/// peer to `receive` and send what it returns, and after local edits send what `poll()`
/// returns. After a disconnect, `reset()` and say hello again: each side then sends exactly
/// what the other lacks.
#[wasm_bindgen]
pub struct SyncSession {
    doc: DocHandle,
    session: RefCell<crdt_core::SyncSession>,
}

fn encoded(message: &Message) -> Uint8Array {
    Uint8Array::from(message.encode().as_slice())
}

impl SyncSession {
    fn session(&self) -> JsResult<std::cell::RefMut<'_, crdt_core::SyncSession>> {
        self.session
            .try_borrow_mut()
            .map_err(|_| JsFailure::new("REENTRANT", "the session is busy with another call"))
    }
}

#[wasm_bindgen]
impl SyncSession {
    /// A session for `doc`, known to the peer as `name` (both sides use the same name).
    #[wasm_bindgen(constructor)]
    pub fn new(doc: &Doc, name: &str) -> SyncSession {
        SyncSession {
            doc: doc.handle(),
            session: RefCell::new(crdt_core::SyncSession::new(name)),
        }
    }

    /// The message that starts (or restarts) the exchange: this document's version.
    pub fn hello(&self) -> Result<Uint8Array, JsFailure> {
        let mut session = self.session()?;
        self.doc.read(|doc| Ok(encoded(&session.hello(doc))))
    }

    /// Handles a message from the peer; returns the messages to send back (maybe none).
    /// Changes it brings are applied to the document (listeners hear of them as remote).
    /// Throws `BAD_ENCODING` for bytes that are not a message, `WRONG_DOCUMENT` for another
    /// document's, `SYNC_BUFFER_FULL` when too many early updates waited (then `reset()` and
    /// say hello again); the document is unchanged by a message that throws.
    pub fn receive(&self, message: &[u8]) -> Result<Array, JsFailure> {
        let message = Message::decode(message)?;
        let mut session = self.session()?;
        let replies = self.doc.change(|doc| Ok(session.receive(doc, message)?))?;
        Ok(replies.iter().map(|m| JsValue::from(encoded(m))).collect())
    }

    /// The changes made since the peer was last brought up to date (call after local edits),
    /// or `undefined` if it has everything or has not said hello yet.
    pub fn poll(&self) -> Result<Option<Uint8Array>, JsFailure> {
        let mut session = self.session()?;
        self.doc
            .read(|doc| Ok(session.poll(doc).map(|m| encoded(&m))))
    }

    /// Forgets the peer after a disconnect; say `hello()` again to resume.
    pub fn reset(&self) -> Result<(), JsFailure> {
        self.session()?.reset();
        Ok(())
    }

    /// How many received updates wait for changes that have not arrived.
    #[wasm_bindgen(getter)]
    pub fn waiting(&self) -> Result<usize, JsFailure> {
        Ok(self.session()?.waiting())
    }
}

/// Presence (awareness): who else is on a document and their ephemeral state (a cursor, a
/// name, a colour), never stored. Messages travel beside the sync messages: give every
/// message from a peer to both `SyncSession.receive` and `Presence.receive`.
#[wasm_bindgen]
pub struct Presence {
    name: String,
    replica: crdt_core::ReplicaId,
    local: RefCell<crdt_core::sync::LocalPresence>,
    peers: RefCell<crdt_core::PresenceSet>,
}

/// Milliseconds now, as the presence clock (`Date.now()`; a clock set backwards only makes
/// entries last longer).
fn now() -> u64 {
    crate::shared::now_ms().max(0) as u64
}

impl Presence {
    fn peers(&self) -> JsResult<std::cell::RefMut<'_, crdt_core::PresenceSet>> {
        self.peers
            .try_borrow_mut()
            .map_err(|_| JsFailure::new("REENTRANT", "presence is busy with another call"))
    }

    fn local(&self) -> JsResult<std::cell::RefMut<'_, crdt_core::sync::LocalPresence>> {
        self.local
            .try_borrow_mut()
            .map_err(|_| JsFailure::new("REENTRANT", "presence is busy with another call"))
    }
}

#[wasm_bindgen]
impl Presence {
    /// Presence on `doc` (known to peers as `name`) as its replica; `ttlMs` (default 30,000)
    /// is how long an announcement lasts: announce again before it runs out.
    #[wasm_bindgen(constructor)]
    pub fn new(doc: &Doc, name: &str, ttl_ms: Option<f64>) -> Result<Presence, JsFailure> {
        let ttl = match ttl_ms {
            None => 30_000.0,
            Some(ms) if ms.is_finite() && ms > 0.0 => ms,
            Some(_) => {
                return Err(JsFailure::invalid_argument(
                    "ttlMs must be a positive number of milliseconds",
                ));
            }
        };
        let replica = doc.handle().read(|doc| Ok(doc.replica()))?;
        Ok(Presence {
            name: name.to_owned(),
            replica,
            local: RefCell::new(crdt_core::sync::LocalPresence::new(replica, ttl as u64)),
            peers: RefCell::new(crdt_core::PresenceSet::default()),
        })
    }

    /// Announces this replica's state: returns the message to send to peers.
    #[wasm_bindgen(js_name = setLocal)]
    pub fn set_local(&self, state: Vec<u8>) -> Result<Uint8Array, JsFailure> {
        if state.is_empty() {
            return Err(JsFailure::invalid_argument(
                "presence state cannot be empty (empty means gone: use leave())",
            ));
        }
        let message = self.local()?.update(&self.name, state);
        Ok(encoded(&message))
    }

    /// Says this replica left: returns the message to send.
    pub fn leave(&self) -> Result<Uint8Array, JsFailure> {
        let message = self.local()?.leave(&self.name);
        Ok(encoded(&message))
    }

    /// Takes in a message from a peer; true if it changed what is known of the others
    /// (sync messages, other documents' presence and this replica's own announcements
    /// relayed back are ignored: false).
    pub fn receive(&self, message: &[u8]) -> Result<bool, JsFailure> {
        let message = Message::decode(message)?;
        if message.doc() != self.name {
            return Ok(false);
        }
        if let Message::Presence { replica, .. } = &message
            && *replica == self.replica
        {
            return Ok(false); // our own announcement, relayed back
        }
        Ok(self.peers()?.receive(&message, now()))
    }

    /// Forgets the peers whose announcement ran out; returns their replica ids.
    pub fn expire(&self) -> Result<Array, JsFailure> {
        let gone = self.peers()?.expire(now());
        Ok(gone
            .into_iter()
            .map(|replica| JsValue::from_str(&replica.to_string()))
            .collect())
    }

    /// The other replicas present, as `{ replica, state }` objects.
    #[wasm_bindgen(js_name = peers)]
    pub fn peers_list(&self) -> Result<Array, JsFailure> {
        let peers = self.peers()?;
        Ok(peers
            .iter()
            .map(|(replica, entry)| {
                let peer = js_sys::Object::new();
                let _ = js_sys::Reflect::set(
                    &peer,
                    &JsValue::from_str("replica"),
                    &JsValue::from_str(&replica.to_string()),
                );
                let _ = js_sys::Reflect::set(
                    &peer,
                    &JsValue::from_str("state"),
                    &Uint8Array::from(entry.state.as_slice()),
                );
                JsValue::from(peer)
            })
            .collect())
    }
}
