//! `Doc`: the document as JavaScript sees it.

use crdt_core::codec::Encode;
use crdt_core::{ChangeOptions, ContainerKind, Document, MapId, ReplicaId, VersionVector};
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::containers::{DocCounter, DocList, DocMap, DocRegister, DocText};
use crate::convert::container_to_json;
use crate::error::{JsFailure, JsResult};
use crate::shared::{DocHandle, IndexUnit};

/// The options of `new Doc(options)`, `Doc.load` and `fork`, read from a JS object.
struct DocOptions {
    replica: Option<ReplicaId>,
    unit: Option<IndexUnit>,
}

impl DocOptions {
    fn read(options: &JsValue) -> JsResult<DocOptions> {
        if options.is_undefined() || options.is_null() {
            return Ok(DocOptions {
                replica: None,
                unit: None,
            });
        }
        if !options.is_object() {
            return Err(JsFailure::invalid_argument(
                "options must be an object such as { replica, indexUnit }",
            ));
        }
        let field = |name: &str| Reflect::get(options, &JsValue::from_str(name)).ok();
        let replica = match field("replica") {
            Some(v) if !v.is_undefined() => Some(parse_replica(&v)?),
            _ => None,
        };
        let unit = match field("indexUnit") {
            Some(v) if !v.is_undefined() => Some(match v.as_string().as_deref() {
                Some("utf16") => IndexUnit::Utf16,
                Some("codePoint") => IndexUnit::CodePoint,
                _ => {
                    return Err(JsFailure::invalid_argument(
                        "indexUnit is \"utf16\" (the default) or \"codePoint\"",
                    ));
                }
            }),
            _ => None,
        };
        Ok(DocOptions { replica, unit })
    }
}

fn parse_replica(value: &JsValue) -> JsResult<ReplicaId> {
    let text = value.as_string().ok_or_else(|| {
        JsFailure::new(
            "INVALID_REPLICA",
            "a replica id is a string of 32 hex digits",
        )
    })?;
    text.parse().map_err(|_| {
        JsFailure::new(
            "INVALID_REPLICA",
            format!("{text:?} is not a replica id (32 hex digits)"),
        )
    })
}

fn new_replica() -> ReplicaId {
    ReplicaId::random()
}

fn bytes(data: &[u8]) -> Uint8Array {
    Uint8Array::from(data)
}

/// A collaborative JSON-like document: named maps, lists, texts, counters and registers that
/// every replica shares, edited locally and merged with updates from peers.
#[wasm_bindgen]
pub struct Doc {
    doc: DocHandle,
}

impl Doc {
    /// The shared state, for the classes that work on a document (undo, sync).
    pub(crate) fn handle(&self) -> DocHandle {
        self.doc.clone()
    }

    /// A `Doc` around a document.
    pub(crate) fn from_parts(doc: Document, unit: IndexUnit) -> Doc {
        Doc {
            doc: DocHandle::new(doc, unit),
        }
    }
}

/// A version from JS (the bytes of `version()`).
pub(crate) fn parse_version(bytes: &[u8]) -> JsResult<VersionVector> {
    VersionVector::decode(bytes)
        .map_err(|e| JsFailure::new("BAD_ENCODING", format!("not a version: {e}")))
}

/// The replica and index unit of a fork of `doc`, from `fork`'s options.
pub(crate) fn fork_options(doc: &Doc, options: &JsValue) -> JsResult<(ReplicaId, IndexUnit)> {
    let options = DocOptions::read(options)?;
    let replica = options.replica.unwrap_or_else(new_replica);
    let unit = match options.unit {
        Some(unit) => unit,
        None => doc.doc.unit()?,
    };
    Ok((replica, unit))
}

#[wasm_bindgen]
impl Doc {
    /// A new, empty document. `options.replica` (32 hex digits) names this replica (random by
    /// default: never share one between two live documents); `options.indexUnit` is
    /// `"utf16"` (default) or `"codePoint"`.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Doc, JsFailure> {
        let options = DocOptions::read(&options)?;
        let replica = options.replica.unwrap_or_else(new_replica);
        Ok(Doc {
            doc: DocHandle::new(
                Document::new(replica),
                options.unit.unwrap_or(IndexUnit::Utf16),
            ),
        })
    }

    /// Loads a document from `encode()`'s bytes (checked: corrupt or forged bytes throw
    /// `BAD_ENCODING`).
    pub fn load(data: &[u8], options: JsValue) -> Result<Doc, JsFailure> {
        let options = DocOptions::read(&options)?;
        let replica = options.replica.unwrap_or_else(new_replica);
        let doc = Document::load(data, replica)?;
        Ok(Doc {
            doc: DocHandle::new(doc, options.unit.unwrap_or(IndexUnit::Utf16)),
        })
    }

    /// This replica's id (32 hex digits).
    #[wasm_bindgen(getter)]
    pub fn replica(&self) -> Result<String, JsFailure> {
        self.doc.read(|doc| Ok(doc.replica().to_string()))
    }

    /// The root map.
    #[wasm_bindgen(getter)]
    pub fn root(&self) -> DocMap {
        DocMap::new(self.doc.clone(), MapId::ROOT)
    }

    /// The map named `name` at the root, shared by every replica that asks for it.
    #[wasm_bindgen(js_name = getMap)]
    pub fn get_map(&self, name: &str) -> Result<DocMap, JsFailure> {
        self.root().get_map(name)
    }

    /// The list named `name` at the root.
    #[wasm_bindgen(js_name = getList)]
    pub fn get_list(&self, name: &str) -> Result<DocList, JsFailure> {
        self.root().get_list(name)
    }

    /// The text named `name` at the root.
    #[wasm_bindgen(js_name = getText)]
    pub fn get_text(&self, name: &str) -> Result<DocText, JsFailure> {
        self.root().get_text(name)
    }

    /// The counter named `name` at the root.
    #[wasm_bindgen(js_name = getCounter)]
    pub fn get_counter(&self, name: &str) -> Result<DocCounter, JsFailure> {
        self.root().get_counter(name)
    }

    /// The register named `name` at the root.
    #[wasm_bindgen(js_name = getRegister)]
    pub fn get_register(&self, name: &str) -> Result<DocRegister, JsFailure> {
        self.root().get_register(name)
    }

    /// Runs `body()` as one transaction: its edits become one change, committed when it
    /// returns and entirely undone when it throws (the exception is rethrown). Returns what
    /// `body` returns. Listeners hear of the change once, after it. Nested calls join the
    /// outer transaction.
    pub fn transact(
        &self,
        body: &js_sys::Function,
        message: Option<String>,
    ) -> Result<JsValue, JsValue> {
        let options = ChangeOptions {
            message,
            timestamp: Some(crate::shared::now_ms()),
        };
        self.doc
            .transact(options, || body.call0(&JsValue::UNDEFINED))
    }

    /// Calls `listener(event)` after every change (local or remote); returns an id for
    /// `unsubscribe`. See `DocEvent` in the types.
    pub fn subscribe(&self, listener: js_sys::Function) -> Result<u32, JsFailure> {
        self.doc.subscribe(listener)
    }

    /// Stops calling a listener; false if it was not subscribed.
    pub fn unsubscribe(&self, id: u32) -> Result<bool, JsFailure> {
        self.doc.unsubscribe(id)
    }

    /// The whole document as plain JS values.
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> Result<JsValue, JsFailure> {
        self.doc
            .read(|doc| Ok(container_to_json(doc, ContainerKind::Map, MapId::ROOT.0)))
    }

    /// The version: every replica's number of events seen, encoded (give it to a peer's
    /// `updateSince`).
    pub fn version(&self) -> Result<Uint8Array, JsFailure> {
        self.doc.read(|doc| Ok(bytes(&doc.version().encode())))
    }

    /// The latest events, as `{ replica, counter }` objects.
    pub fn heads(&self) -> Result<Array, JsFailure> {
        self.doc.read(|doc| {
            Ok(doc
                .heads()
                .into_iter()
                .map(|dot| {
                    let head = Object::new();
                    let _ = Reflect::set(
                        &head,
                        &JsValue::from_str("replica"),
                        &JsValue::from_str(&dot.replica.to_string()),
                    );
                    let _ = Reflect::set(
                        &head,
                        &JsValue::from_str("counter"),
                        &JsValue::from_f64(dot.counter as f64),
                    );
                    JsValue::from(head)
                })
                .collect())
        })
    }

    /// How many events (operations) the history holds.
    #[wasm_bindgen(getter, js_name = historyLength)]
    pub fn history_length(&self) -> Result<usize, JsFailure> {
        self.doc.read(|doc| Ok(doc.history_len()))
    }

    /// The whole document (state and history), compact, for storage.
    pub fn encode(&self) -> Result<Uint8Array, JsFailure> {
        self.doc.read(|doc| Ok(bytes(&doc.encode())))
    }

    /// The changes a peer at `version` (from its `version()`; omitted: an empty peer) lacks.
    #[wasm_bindgen(js_name = updateSince)]
    pub fn update_since(&self, version: Option<Vec<u8>>) -> Result<Uint8Array, JsFailure> {
        let since = match version {
            Some(encoded) => VersionVector::decode(&encoded)
                .map_err(|e| JsFailure::new("BAD_ENCODING", format!("not a version: {e}")))?,
            None => VersionVector::default(),
        };
        self.doc.read(|doc| Ok(bytes(&doc.update_since(&since))))
    }

    /// Applies a peer's update (or a snapshot); returns how many new events (operations) it
    /// brought.
    /// Corrupt bytes, or an update that depends on changes this document lacks, throw and
    /// leave the document as it was.
    #[wasm_bindgen(js_name = applyUpdate)]
    pub fn apply_update(&self, update: &[u8]) -> Result<usize, JsFailure> {
        self.doc.change(|doc| Ok(doc.apply_update(update)?))
    }

    /// Merges everything `other` has that this document lacks; returns how many new events.
    pub fn merge(&self, other: &Doc) -> Result<usize, JsFailure> {
        if self.doc.same(&other.doc) {
            return Ok(0);
        }
        let update = other.doc.read(|theirs| {
            self.doc
                .read(|ours| Ok(theirs.update_since(&ours.version())))
        })?;
        self.apply_update(&update)
    }

    /// A copy of the document as another replica (`options.replica`, random by default).
    pub fn fork(&self, options: JsValue) -> Result<Doc, JsFailure> {
        let (replica, unit) = fork_options(self, &options)?;
        let fork = self.doc.read(|doc| Ok(doc.fork(replica)))?;
        Ok(Doc::from_parts(fork, unit))
    }
}
