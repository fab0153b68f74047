//! Container handles: `DocMap`, `DocList`, `DocText`, `DocCounter`, `DocRegister`.
//!
//! A handle is a document reference plus a container id: cheap, and valid for the life of the
//! document (a container never moves; one deleted from its parent still answers reads).
//! Every edit is one change of its own, or part of the open `transact`.

use std::ops::Range;

use crdt_core::{ContainerKind, CounterId, ListId, MapId, RegisterId, TextId};
use js_sys::Array;
use wasm_bindgen::prelude::*;

use crate::convert::{container_to_json, handle, js_to_value, kind_from_name, value_to_js};
use crate::error::{JsFailure, JsResult};
use crate::shared::{DocHandle, IndexUnit};

/// `start .. start + len`, refusing a range whose end does not fit.
fn range(start: usize, len: usize) -> JsResult<Range<usize>> {
    let end = start
        .checked_add(len)
        .ok_or_else(|| JsFailure::new("OUT_OF_RANGE", "index + length is too large"))?;
    Ok(start..end)
}

/// A JS number or bigint as an i64 amount.
fn js_to_i64(value: &JsValue) -> JsResult<i64> {
    match crate::convert::js_to_value(value)? {
        crdt_core::Value::Int(n) => Ok(n),
        _ => Err(JsFailure::invalid_argument(
            "expected an integer (a safe-integer number or a bigint)",
        )),
    }
}

/// A map: string keys to values or nested containers.
#[wasm_bindgen]
pub struct DocMap {
    doc: DocHandle,
    id: MapId,
}

impl DocMap {
    pub(crate) fn new(doc: DocHandle, id: MapId) -> DocMap {
        DocMap { doc, id }
    }
}

/// Opens the named container of one kind at `key` of `map`.
macro_rules! named_getter {
    ($( $js:literal, $fn:ident, $core:ident, $handle:ident; )*) => {
        #[wasm_bindgen]
        impl DocMap {
            $(
                #[doc = concat!("The ", stringify!($core), " container at `key`, shared by every replica that asks for it.")]
                #[wasm_bindgen(js_name = $js)]
                pub fn $fn(&self, key: &str) -> Result<$handle, JsFailure> {
                    let map = self.id;
                    let id = self.doc.edit(|tx| tx.$core(map, key))?;
                    Ok($handle::new(self.doc.clone(), id))
                }
            )*
        }
    };
}

named_getter! {
    "getMap", get_map, map_at, DocMap;
    "getList", get_list, list_at, DocList;
    "getText", get_text, text_at, DocText;
    "getCounter", get_counter, counter_at, DocCounter;
    "getRegister", get_register, register_at, DocRegister;
}

#[wasm_bindgen]
impl DocMap {
    /// The value at `key` (a container as its handle), or `undefined`.
    pub fn get(&self, key: &str) -> Result<JsValue, JsFailure> {
        let value = self.doc.read(|doc| Ok(doc.get(self.id, key)?.cloned()))?;
        Ok(value.map_or(JsValue::UNDEFINED, |v| value_to_js(&self.doc, &v)))
    }

    /// Every value concurrently written at `key` and not overwritten since (the winner
    /// first); empty if the key is unset.
    #[wasm_bindgen(js_name = getConflicts)]
    pub fn get_conflicts(&self, key: &str) -> Result<Array, JsFailure> {
        let values = self.doc.read(|doc| {
            Ok(doc
                .get_conflicts(self.id, key)?
                .into_iter()
                .cloned()
                .collect::<Vec<_>>())
        })?;
        Ok(values.iter().map(|v| value_to_js(&self.doc, v)).collect())
    }

    /// Sets `key` to a value (null, boolean, number, bigint, string or Uint8Array).
    pub fn set(&self, key: &str, value: JsValue) -> Result<(), JsFailure> {
        let value = js_to_value(&value)?;
        self.doc.edit(|tx| tx.set(self.id, key, value))
    }

    /// Deletes `key` (as far as this replica has seen it written).
    pub fn delete(&self, key: &str) -> Result<(), JsFailure> {
        self.doc.edit(|tx| tx.delete(self.id, key))
    }

    /// True if `key` holds something.
    pub fn has(&self, key: &str) -> Result<bool, JsFailure> {
        self.doc.read(|doc| Ok(doc.get(self.id, key)?.is_some()))
    }

    /// The keys that hold something, in order.
    pub fn keys(&self) -> Result<Array, JsFailure> {
        self.doc.read(|doc| {
            Ok(doc
                .keys(self.id)?
                .into_iter()
                .map(JsValue::from_str)
                .collect())
        })
    }

    /// How many keys hold something.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> Result<usize, JsFailure> {
        self.doc.read(|doc| Ok(doc.map_len(self.id)?))
    }

    /// Replaces `key` with a new, empty container of `kind` of its own (unlike `getText` and
    /// the others, concurrent calls make distinct containers, one of which wins).
    #[wasm_bindgen(js_name = setContainer)]
    pub fn set_container(&self, key: &str, kind: &str) -> Result<JsValue, JsFailure> {
        let kind = kind_from_name(kind)?;
        let map = self.id;
        let id = self.doc.edit(|tx| match kind {
            ContainerKind::Map => tx.replace_with_new_map(map, key).map(|c| c.0),
            ContainerKind::List => tx.replace_with_new_list(map, key).map(|c| c.0),
            ContainerKind::Text => tx.replace_with_new_text(map, key).map(|c| c.0),
            ContainerKind::Counter => tx.replace_with_new_counter(map, key).map(|c| c.0),
            _ => tx.replace_with_new_register(map, key).map(|c| c.0),
        })?;
        Ok(handle(&self.doc, kind, id))
    }

    /// The map and everything in it as plain JS objects.
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> Result<JsValue, JsFailure> {
        self.doc
            .read(|doc| Ok(container_to_json(doc, ContainerKind::Map, self.id.0)))
    }
}

/// A list of values and nested containers.
#[wasm_bindgen]
pub struct DocList {
    doc: DocHandle,
    id: ListId,
}

impl DocList {
    pub(crate) fn new(doc: DocHandle, id: ListId) -> DocList {
        DocList { doc, id }
    }

    /// The document and the list's id.
    pub(crate) fn parts(&self) -> (&DocHandle, ListId) {
        (&self.doc, self.id)
    }
}

#[wasm_bindgen]
impl DocList {
    /// How many elements.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> Result<usize, JsFailure> {
        self.doc.read(|doc| Ok(doc.list_len(self.id)?))
    }

    /// The element at `index` (a container as its handle), or `undefined` past the end.
    pub fn get(&self, index: usize) -> Result<JsValue, JsFailure> {
        let value = self
            .doc
            .read(|doc| Ok(doc.list_get(self.id, index)?.cloned()))?;
        Ok(value.map_or(JsValue::UNDEFINED, |v| value_to_js(&self.doc, &v)))
    }

    /// Inserts a value at `index` (0 ..= length).
    pub fn insert(&self, index: usize, value: JsValue) -> Result<(), JsFailure> {
        let value = js_to_value(&value)?;
        self.doc.edit(|tx| tx.list_insert(self.id, index, value))
    }

    /// Appends a value.
    pub fn push(&self, value: JsValue) -> Result<(), JsFailure> {
        let value = js_to_value(&value)?;
        let list = self.id;
        self.doc.edit(|tx| {
            let end = tx.doc().list_len(list)?;
            tx.list_insert(list, end, value)
        })
    }

    /// Inserts a new, empty container of `kind` at `index`; returns its handle.
    #[wasm_bindgen(js_name = insertContainer)]
    pub fn insert_container(&self, index: usize, kind: &str) -> Result<JsValue, JsFailure> {
        let kind = kind_from_name(kind)?;
        let id = self
            .doc
            .edit(|tx| tx.list_insert_new(self.id, index, kind))?;
        Ok(handle(&self.doc, kind, id))
    }

    /// Deletes `length` elements (default 1) from `index`.
    pub fn delete(&self, index: usize, length: Option<usize>) -> Result<(), JsFailure> {
        let range = range(index, length.unwrap_or(1))?;
        self.doc.edit(|tx| tx.list_delete(self.id, range))
    }

    /// The elements as an array (containers as handles).
    #[wasm_bindgen(js_name = toArray)]
    pub fn to_array(&self) -> Result<Array, JsFailure> {
        let values = self.doc.read(|doc| Ok(doc.list(self.id)?.to_vec()))?;
        Ok(values.iter().map(|v| value_to_js(&self.doc, v)).collect())
    }

    /// The list and everything in it as plain JS values.
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> Result<JsValue, JsFailure> {
        self.doc
            .read(|doc| Ok(container_to_json(doc, ContainerKind::List, self.id.0)))
    }
}

/// Collaborative plain text. Positions count UTF-16 code units (as JS strings do) unless the
/// document was made with `indexUnit: "codePoint"`.
#[wasm_bindgen]
pub struct DocText {
    doc: DocHandle,
    id: TextId,
}

impl DocText {
    pub(crate) fn new(doc: DocHandle, id: TextId) -> DocText {
        DocText { doc, id }
    }

    /// The document and the text's id.
    pub(crate) fn parts(&self) -> (&DocHandle, TextId) {
        (&self.doc, self.id)
    }
}

#[wasm_bindgen]
impl DocText {
    /// The length in the document's index unit.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> Result<usize, JsFailure> {
        let unit = self.doc.unit()?;
        self.doc.read(|doc| {
            Ok(match unit {
                IndexUnit::Utf16 => doc.text_len_utf16(self.id)?,
                IndexUnit::CodePoint => doc.text_len(self.id)?,
            })
        })
    }

    /// Inserts `content` at `index`. A UTF-16 index inside a surrogate pair throws
    /// `NOT_CHAR_BOUNDARY`.
    pub fn insert(&self, index: usize, content: &str) -> Result<(), JsFailure> {
        let unit = self.doc.unit()?;
        self.doc.edit(|tx| match unit {
            IndexUnit::Utf16 => tx.text_insert_utf16(self.id, index, content),
            IndexUnit::CodePoint => tx.text_insert(self.id, index, content),
        })
    }

    /// Deletes `length` units from `index`.
    pub fn delete(&self, index: usize, length: usize) -> Result<(), JsFailure> {
        let unit = self.doc.unit()?;
        let range = range(index, length)?;
        self.doc.edit(|tx| match unit {
            IndexUnit::Utf16 => tx.text_delete_utf16(self.id, range),
            IndexUnit::CodePoint => tx.text_delete(self.id, range),
        })
    }

    /// The text.
    #[wasm_bindgen(js_name = toString)]
    pub fn to_string_js(&self) -> Result<String, JsFailure> {
        self.doc.read(|doc| Ok(doc.text(self.id)?))
    }

    /// The text (for `JSON.stringify`).
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> Result<String, JsFailure> {
        self.to_string_js()
    }
}

/// A counter that replicas add to and subtract from.
#[wasm_bindgen]
pub struct DocCounter {
    doc: DocHandle,
    id: CounterId,
}

impl DocCounter {
    pub(crate) fn new(doc: DocHandle, id: CounterId) -> DocCounter {
        DocCounter { doc, id }
    }
}

#[wasm_bindgen]
impl DocCounter {
    /// The sum of every replica's additions (a bigint beyond the safe-integer range).
    #[wasm_bindgen(getter)]
    pub fn value(&self) -> Result<JsValue, JsFailure> {
        let value = self.doc.read(|doc| Ok(doc.counter(self.id)?))?;
        Ok(crate::convert::i64_to_js(value))
    }

    /// Adds `by` (an integer number or bigint; negative to subtract).
    pub fn add(&self, by: JsValue) -> Result<(), JsFailure> {
        let by = js_to_i64(&by)?;
        self.doc.edit(|tx| tx.counter_add(self.id, by))
    }

    /// The value (for `JSON.stringify`).
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> Result<JsValue, JsFailure> {
        self.value()
    }
}

/// A register: one value, concurrent writes kept as conflicts.
#[wasm_bindgen]
pub struct DocRegister {
    doc: DocHandle,
    id: RegisterId,
}

impl DocRegister {
    pub(crate) fn new(doc: DocHandle, id: RegisterId) -> DocRegister {
        DocRegister { doc, id }
    }
}

#[wasm_bindgen]
impl DocRegister {
    /// The value (the winner among concurrent writes), or `undefined` if cleared or unset.
    pub fn get(&self) -> Result<JsValue, JsFailure> {
        let value = self.doc.read(|doc| Ok(doc.register(self.id)?.cloned()))?;
        Ok(value.map_or(JsValue::UNDEFINED, |v| value_to_js(&self.doc, &v)))
    }

    /// Every concurrently written value not overwritten since, the winner first.
    #[wasm_bindgen(js_name = getConflicts)]
    pub fn get_conflicts(&self) -> Result<Array, JsFailure> {
        let values = self.doc.read(|doc| {
            Ok(doc
                .register_conflicts(self.id)?
                .into_iter()
                .cloned()
                .collect::<Vec<_>>())
        })?;
        Ok(values.iter().map(|v| value_to_js(&self.doc, v)).collect())
    }

    /// Sets the value.
    pub fn set(&self, value: JsValue) -> Result<(), JsFailure> {
        let value = js_to_value(&value)?;
        self.doc.edit(|tx| tx.register_set(self.id, value))
    }

    /// Clears the value (as far as this replica has seen it written).
    pub fn clear(&self) -> Result<(), JsFailure> {
        self.doc.edit(|tx| tx.register_clear(self.id))
    }

    /// The value, or null (for `JSON.stringify`).
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> Result<JsValue, JsFailure> {
        self.doc
            .read(|doc| Ok(container_to_json(doc, ContainerKind::Register, self.id.0)))
    }
}
