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
