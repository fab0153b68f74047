//! `WireClient`: the sync server's wire protocol for JavaScript, as `sync-protocol`'s
//! I/O-free `ClientSession` around the package's `Doc`s. The TypeScript `SyncClient`
//! (`npm/client.ts`) owns the WebSocket, the timers and the storage; every frame is encoded,
//! decoded, fragmented and interpreted here, so there is one implementation of the protocol.

use std::cell::RefCell;

use js_sys::{Array, Object, Reflect, Uint8Array};
use sync_protocol::client::{ClientSession, DocUpdate, Received};
use sync_protocol::{Access, AckStatus, ErrorCode};
use wasm_bindgen::prelude::*;

use crate::doc::Doc;
use crate::error::{JsFailure, JsResult};
use crate::shared::{DocHandle, now_ms};

/// The client side of one connection to a sync server, for any number of documents, without
/// I/O: give it what the socket receives, send what it returns. Used by `SyncClient`; use it
/// directly only to drive another transport.
#[wasm_bindgen]
pub struct WireClient {
    session: RefCell<ClientSession>,
    /// The open documents by id: a few per connection, so a vector (a `BTreeMap` here cost
    /// kilobytes of wasm).
    docs: RefCell<Vec<(String, DocHandle)>>,
}

fn set(object: &Object, key: &str, value: &JsValue) {
    // Setting a fresh plain object's own data property cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

fn messages(frames: Vec<Vec<u8>>) -> Array {
    frames
        .iter()
        .map(|bytes| JsValue::from(Uint8Array::from(bytes.as_slice())))
        .collect()
}

fn now() -> u64 {
    now_ms().max(0) as u64
}

/// A stable name for programs (`"permissionDenied"`), as `index.d.ts` lists them.
fn ack_status_name(status: AckStatus) -> &'static str {
    match status {
        AckStatus::Ok => "ok",
        AckStatus::PermissionDenied => "permissionDenied",
        AckStatus::TooLarge => "tooLarge",
        AckStatus::RateLimited => "rateLimited",
        AckStatus::Invalid => "invalid",
        AckStatus::Overloaded => "overloaded",
        AckStatus::MissingDependencies => "missingDependencies",
    }
}

fn error_code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::UnsupportedVersion => "unsupportedVersion",
        ErrorCode::Unauthorized => "unauthorized",
        ErrorCode::PermissionDenied => "permissionDenied",
        ErrorCode::TooLarge => "tooLarge",
        ErrorCode::RateLimited => "rateLimited",
        ErrorCode::Invalid => "invalid",
        ErrorCode::Overloaded => "overloaded",
        ErrorCode::TooManyDocuments => "tooManyDocuments",
        ErrorCode::NotSubscribed => "notSubscribed",
        ErrorCode::Internal => "internal",
        ErrorCode::ShuttingDown => "shuttingDown",
    }
}

fn event(kind: &str, doc: Option<&str>) -> Object {
    let object = Object::new();
    set(&object, "type", &JsValue::from_str(kind));
    if let Some(doc) = doc {
        set(&object, "doc", &JsValue::from_str(doc));
    }
    object
}

fn update_to_js(doc: &str, update: DocUpdate) -> Object {
    match update {
        DocUpdate::Subscribed(access) => {
            let object = event("subscribed", Some(doc));
            let access = if access.can_write() { "write" } else { "read" };
            set(&object, "access", &JsValue::from_str(access));
            object
        }
        DocUpdate::Changed => event("changed", Some(doc)),
        DocUpdate::Acknowledged { batch, .. } => {
            let object = event("acknowledged", Some(doc));
            set(&object, "batch", &JsValue::from_f64(batch as f64));
            object
        }
        DocUpdate::Refused { batch, status } => {
            let object = event("refused", Some(doc));
            set(&object, "batch", &JsValue::from_f64(batch as f64));
            set(
                &object,
                "status",
                &JsValue::from_str(ack_status_name(status)),
            );
            set(
                &object,
                "retryable",
                &JsValue::from_bool(status.is_retryable()),
            );
            object
        }
        DocUpdate::Error { code, message } => {
            let object = event("error", Some(doc));
            set(&object, "code", &JsValue::from_str(error_code_name(code)));
            set(&object, "message", &JsValue::from_str(&message));
            object
        }
        DocUpdate::BadUpdate(error) => {
            let object = event("badUpdate", Some(doc));
            set(&object, "message", &JsValue::from_str(&error.to_string()));
            object
        }
        DocUpdate::Presence => event("presence", Some(doc)),
    }
}

impl WireClient {
    fn session(&self) -> JsResult<std::cell::RefMut<'_, ClientSession>> {
        self.session
            .try_borrow_mut()
            .map_err(|_| JsFailure::new("REENTRANT", "the client is busy with another call"))
    }

    fn handle(&self, doc: &str) -> JsResult<DocHandle> {
        self.docs
            .try_borrow()
            .map_err(|_| JsFailure::new("REENTRANT", "the client is busy with another call"))?
            .iter()
            .find(|(id, _)| id == doc)
            .map(|(_, handle)| handle.clone())
            .ok_or_else(|| JsFailure::invalid_argument(format!("document {doc:?} is not open")))
    }
}

#[wasm_bindgen]
impl WireClient {
    /// A client introducing itself as `agent`, authenticating with `token` (if the server
    /// needs one).
    #[wasm_bindgen(constructor)]
    pub fn new(agent: &str, token: Option<String>) -> WireClient {
        WireClient {
            session: RefCell::new(ClientSession::new(agent, token)),
            docs: RefCell::new(Vec::new()),
        }
    }

    /// Starts syncing `doc` under the id `id` (it subscribes once connected).
    /// Throws `INVALID_ARGUMENT` if `id` is open with another document.
    pub fn open(&self, id: &str, doc: &Doc) -> Result<(), JsFailure> {
        let handle = doc.handle();
        let replica = handle.read(|document| Ok(document.replica()))?;
        let mut docs = self
            .docs
            .try_borrow_mut()
            .map_err(|_| JsFailure::new("REENTRANT", "the client is busy with another call"))?;
        if let Some((_, open)) = docs.iter().find(|(open, _)| open == id) {
            return if open.same(&handle) {
                Ok(())
            } else {
                Err(JsFailure::invalid_argument(format!(
                    "document {id:?} is open with another Doc"
                )))
            };
        }
        self.session()?.open(id, replica);
        docs.push((id.to_owned(), handle));
        Ok(())
    }

    /// Stops syncing `id`; returns the messages to send.
    pub fn close(&self, id: &str) -> Result<Array, JsFailure> {
        let frames = self.session()?.close(id);
        if let Ok(mut docs) = self.docs.try_borrow_mut() {
            docs.retain(|(open, _)| open != id);
        }
        Ok(messages(frames))
    }

    /// The socket opened: the messages to send first.
    pub fn connected(&self) -> Result<Array, JsFailure> {
        Ok(messages(self.session()?.connected()))
    }

    /// The socket closed (documents and their unacknowledged changes stay).
    pub fn disconnected(&self) -> Result<(), JsFailure> {
        self.session()?.disconnected();
        Ok(())
    }

    /// True once the server welcomed this client on the current socket.
    #[wasm_bindgen(getter)]
    pub fn ready(&self) -> Result<bool, JsFailure> {
        Ok(self.session()?.is_ready())
    }

    /// Replaces the token (sent by the next `poll` on a live connection, and on reconnects).
    #[wasm_bindgen(js_name = setToken)]
    pub fn set_token(&self, token: Option<String>) -> Result<(), JsFailure> {
        self.session()?.set_token(token);
        Ok(())
    }

    /// Handles one message from the server: document changes are applied (the documents'
    /// listeners hear of them as remote changes). Returns `WireEvent`s. Throws `BAD_FRAME`
    /// for bytes that are not a frame (close the socket and reconnect).
    pub fn receive(&self, message: &[u8]) -> Result<Array, JsFailure> {
        let now = now();
        let received = self
            .session()?
            .receive(message, now)
            .map_err(|e| JsFailure::new("BAD_FRAME", e.to_string()))?;
        let events = Array::new();
        match received {
            Received::Nothing => {}
            Received::Welcome { server } => {
                let object = event("welcome", None);
                set(&object, "server", &JsValue::from_str(&server));
                events.push(&object);
            }
            Received::Authorized { expires_at } => {
                let object = event("authorized", None);
                let expires = expires_at.map_or(JsValue::NULL, |s| JsValue::from_f64(s as f64));
                set(&object, "expiresAt", &expires);
                events.push(&object);
            }
            Received::ConnectionError { code, message } => {
                let object = event("connectionError", None);
                set(&object, "code", &JsValue::from_str(error_code_name(code)));
                set(&object, "message", &JsValue::from_str(&message));
                events.push(&object);
            }
            Received::Document { doc, frame } => {
                let handle = self.handle(&doc)?;
                // The session is borrowed only inside the change, which ends before the
                // document's listeners run: they may call this client again.
                let updates = handle
                    .change(|document| Ok(self.session()?.apply(&doc, frame, document, now)))?;
                for update in updates {
                    events.push(&update_to_js(&doc, update));
                }
            }
        }
        Ok(events)
    }

    /// The messages due now: a new token, subscriptions, local changes the server lacks
    /// (numbered batches), presence. Call after local edits, after `receive`, and at
    /// `nextWakeup()`.
    pub fn poll(&self) -> Result<Array, JsFailure> {
        let now = now();
        let ids: Vec<String> = self.session()?.documents().map(str::to_owned).collect();
        let mut frames = self.session()?.poll_auth();
        for id in ids {
            let handle = self.handle(&id)?;
            let due = handle.read(|document| Ok(self.session()?.poll(&id, document, now)))?;
            frames.extend(due);
        }
        Ok(messages(frames))
    }

    /// When (`Date.now()` milliseconds) a poll is due without any event (a subscription
    /// retried after a pause), if ever.
    #[wasm_bindgen(js_name = nextWakeup)]
    pub fn next_wakeup(&self) -> Result<Option<f64>, JsFailure> {
        let session = self.session()?;
        let ids: Vec<&str> = session.documents().collect();
        Ok(ids
            .into_iter()
            .filter_map(|id| session.next_wakeup(id))
            .min()
            .map(|ms| ms as f64))
    }

    /// True when the server has durably stored everything document `id` holds.
    #[wasm_bindgen(js_name = isSaved)]
    pub fn is_saved(&self, id: &str) -> Result<bool, JsFailure> {
        let handle = self.handle(id)?;
        handle.read(|document| Ok(self.session()?.is_saved(id, document)))
    }

    /// What the server has confirmed durable for `id`, as an encoded version.
    #[wasm_bindgen(js_name = durableVersion)]
    pub fn durable_version(&self, id: &str) -> Result<Option<Uint8Array>, JsFailure> {
        use crdt_core::codec::Encode;
        Ok(self
            .session()?
            .durable_version(id)
            .map(|version| Uint8Array::from(version.encode().as_slice())))
    }

    /// The refusal that stops `id`'s changes from being sent (`"permissionDenied"`,
    /// `"tooLarge"`, `"invalid"`), if any.
    pub fn refusal(&self, id: &str) -> Result<Option<String>, JsFailure> {
        Ok(self
            .session()?
            .refusal(id)
            .map(|s| ack_status_name(s).to_owned()))
    }

    /// `"write"` or `"read"` once subscribed, else `undefined`.
    pub fn access(&self, id: &str) -> Result<Option<String>, JsFailure> {
        Ok(self.session()?.access(id).map(|access| {
            match access {
                Access::ReadWrite => "write",
                Access::ReadOnly => "read",
            }
            .to_owned()
        }))
    }

    /// Sets (or with `null` withdraws) this client's presence on `id`; sent by the next poll.
    #[wasm_bindgen(js_name = setPresence)]
    pub fn set_presence(&self, id: &str, state: Option<Vec<u8>>) -> Result<(), JsFailure> {
        self.session()?.set_presence(id, state);
        Ok(())
    }

    /// Marks live presence to be sent again (call every 10 s so it never expires elsewhere).
    #[wasm_bindgen(js_name = refreshPresence)]
    pub fn refresh_presence(&self) -> Result<(), JsFailure> {
        self.session()?.refresh_presence();
        Ok(())
    }

    /// The other clients present on `id`: `{ replica, state }`.
    pub fn peers(&self, id: &str) -> Result<Array, JsFailure> {
        let peers = self.session()?.peers(id, now());
        Ok(peers
            .into_iter()
            .map(|(replica, state)| {
                let object = Object::new();
                set(&object, "replica", &JsValue::from_str(&replica.to_string()));
                set(&object, "state", &Uint8Array::from(state.as_slice()));
                JsValue::from(object)
            })
            .collect())
    }
}
