//! Earlier versions and stable positions: `viewAt`, `forkAt`, `revertTo`, `encodeShallow`
//! on `Doc`, the read-only `DocView`, and cursors on texts and lists.

use crdt_core::codec::Encode;
use crdt_core::{
    Bias, ContainerId, ContainerKind, CursorError, DocumentView, HistoryError, ListId, MapId,
    TextId, Value, VersionVector,
};
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::containers::{DocList, DocText};
use crate::convert::{i64_to_js, scalar_to_js};
use crate::doc::{Doc, parse_version};
use crate::error::{JsFailure, JsResult};
use crate::shared::{DocHandle, IndexUnit};

impl From<HistoryError> for JsFailure {
    fn from(error: HistoryError) -> JsFailure {
        match error {
            HistoryError::Replay(load) => load.into(),
            HistoryError::Edit(doc) => doc.into(),
            HistoryError::HistoryTrimmed { .. } => {
                JsFailure::new("HISTORY_TRIMMED", error.to_string())
            }
            HistoryError::ReplicaReused(_) => JsFailure::new("INVALID_REPLICA", error.to_string()),
            HistoryError::ConcurrentWithVersion { .. } => {
                JsFailure::new("CONCURRENT_VERSION", error.to_string())
            }
            HistoryError::UndoRecording => JsFailure::new("UNDO_RECORDING", error.to_string()),
            HistoryError::NotIncluded => JsFailure::invalid_argument(error.to_string()),
            _ => JsFailure::new("UNKNOWN_VERSION", error.to_string()),
        }
    }
}

impl From<CursorError> for JsFailure {
    fn from(error: CursorError) -> JsFailure {
        let code = match error {
            CursorError::UnknownEvent(_) => "UNKNOWN_VERSION",
            CursorError::HistoryTrimmed => "HISTORY_TRIMMED",
            CursorError::NotASequence => "WRONG_KIND",
            _ => "BAD_ENCODING",
        };
        JsFailure::new(code, error.to_string())
    }
}

/// The document as it was at a version: read-only, computed from the history when read.
#[wasm_bindgen]
pub struct DocView {
    doc: DocHandle,
    version: VersionVector,
}

impl DocView {
    fn read<R>(&self, read: impl FnOnce(&DocumentView<'_>) -> JsResult<R>) -> JsResult<R> {
        self.doc.read(|doc| read(&doc.view_at(&self.version)?))
    }
}

fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

/// A value of a view as plain JS data (containers as their content).
fn view_value_to_json(view: &DocumentView<'_>, value: &Value) -> JsValue {
    scalar_to_js(value, |kind, id| view_container_to_json(view, kind, id))
}

fn view_container_to_json(
    view: &DocumentView<'_>,
    kind: ContainerKind,
    id: ContainerId,
) -> JsValue {
    match kind {
        ContainerKind::Map => {
            let object = Object::new();
            let map = MapId(id);
            for key in view.keys(map).unwrap_or_default() {
                if let Ok(Some(value)) = view.get(map, &key) {
                    set(&object, &key, &view_value_to_json(view, &value));
                }
            }
            object.into()
        }
        ContainerKind::List => view
            .list(ListId(id))
            .unwrap_or_default()
            .iter()
            .map(|v| view_value_to_json(view, v))
            .collect::<Array>()
            .into(),
        ContainerKind::Text => view
            .text(TextId(id))
            .map(|s| JsValue::from_str(&s))
            .unwrap_or(JsValue::NULL),
        ContainerKind::Counter => view
            .counter(crdt_core::CounterId(id))
            .map(i64_to_js)
            .unwrap_or(JsValue::NULL),
        ContainerKind::Register => match view.register(crdt_core::RegisterId(id)) {
            Ok(Some(value)) => view_value_to_json(view, &value),
            _ => JsValue::NULL,
        },
    }
}

#[wasm_bindgen]
impl DocView {
    /// The whole document at this version as plain data.
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> Result<JsValue, JsFailure> {
        self.read(|view| {
            Ok(view_value_to_json(
                view,
                &Value::Container(ContainerKind::Map, MapId::ROOT.0),
            ))
        })
    }

    /// The version this view shows, encoded.
    pub fn version(&self) -> Uint8Array {
        Uint8Array::from(self.version.encode().as_slice())
    }
}

#[wasm_bindgen]
impl Doc {
    /// The document as it was at `version` (from `version()`), read-only. Throws
    /// `UNKNOWN_VERSION` for a version this document has not seen.
    #[wasm_bindgen(js_name = viewAt)]
    pub fn view_at(&self, version: &[u8]) -> Result<DocView, JsFailure> {
        let version = parse_version(version)?;
        let handle = self.handle();
        handle.read(|doc| Ok(doc.check_version(&version)?))?;
        Ok(DocView {
            doc: handle,
            version,
        })
    }

    /// A new document as the document was at `version`, editing as another replica
    /// (`options.replica`, random by default).
    #[wasm_bindgen(js_name = forkAt)]
    pub fn fork_at(&self, version: &[u8], options: JsValue) -> Result<Doc, JsFailure> {
        let version = parse_version(version)?;
        let (replica, unit) = crate::doc::fork_options(self, &options)?;
        let fork = self
            .handle()
            .read(|doc| Ok(doc.fork_at(&version, replica)?))?;
        Ok(Doc::from_parts(fork, unit))
    }

    /// Makes the document show what it showed at `version` again, as one new local change
    /// (so peers merge it like any edit; changes they make concurrently stay).
    #[wasm_bindgen(js_name = revertTo)]
    pub fn revert_to(&self, version: &[u8]) -> Result<(), JsFailure> {
        let version = parse_version(version)?;
        self.handle().change(|doc| Ok(doc.revert_to(&version)?))
    }

    /// A shallow snapshot: the state now plus the history after `version`, the history before
    /// it trimmed to a few bytes per replica. Smaller to store and load; peers that need the
    /// trimmed history get `HISTORY_TRIMMED`.
    #[wasm_bindgen(js_name = encodeShallow)]
    pub fn encode_shallow(&self, version: &[u8]) -> Result<Uint8Array, JsFailure> {
        let version = parse_version(version)?;
        self.handle()
            .read(|doc| Ok(Uint8Array::from(doc.encode_shallow(&version)?.as_slice())))
    }
}

/// The first byte of an encoded cursor: its format.
const CURSOR_FORMAT: u8 = 1;

fn encode_cursor(cursor: &crdt_core::Cursor) -> JsResult<Uint8Array> {
    let mut bytes = vec![CURSOR_FORMAT];
    let body = postcard::to_allocvec(cursor)
        .map_err(|e| JsFailure::new("DOCUMENT_ERROR", format!("cursor: {e}")))?;
    bytes.extend_from_slice(&body);
    Ok(Uint8Array::from(bytes.as_slice()))
}

fn decode_cursor(bytes: &[u8]) -> JsResult<crdt_core::Cursor> {
    match bytes.split_first() {
        Some((&CURSOR_FORMAT, body)) => postcard::from_bytes(body)
            .map_err(|_| JsFailure::new("BAD_ENCODING", "not a cursor made by cursor()")),
        Some((&format, _)) => Err(JsFailure::new(
            "UNSUPPORTED_VERSION",
            format!("cursor format {format} is not known to this version"),
        )),
        None => Err(JsFailure::new("BAD_ENCODING", "an empty cursor")),
    }
}

fn bias(value: Option<String>) -> JsResult<Bias> {
    match value.as_deref() {
        None | Some("after") => Ok(Bias::After),
        Some("before") => Ok(Bias::Before),
        Some(other) => Err(JsFailure::invalid_argument(format!(
            "bias is \"after\" (default) or \"before\", not {other:?}"
        ))),
    }
}

#[wasm_bindgen]
impl DocText {
    /// A stable position at `index` (in the document's index unit): it follows the
    /// character after it (`bias` "after", the default) or before it ("before") through every
    /// later edit, local or remote. Encoded, to store or send; resolve with `resolveCursor`.
    pub fn cursor(&self, index: usize, bias_name: Option<String>) -> Result<Uint8Array, JsFailure> {
        let bias = bias(bias_name)?;
        let (doc, id) = self.parts();
        let unit = doc.unit()?;
        let cursor = doc.read(|doc| {
            let index = match unit {
                IndexUnit::Utf16 => doc.text_utf16_to_char(id, index)?,
                IndexUnit::CodePoint => index,
            };
            Ok(doc.cursor(id.0, index, bias)?)
        })?;
        encode_cursor(&cursor)
    }

    /// Where a cursor from `cursor()` is now, in the document's index unit.
    #[wasm_bindgen(js_name = resolveCursor)]
    pub fn resolve_cursor(&self, cursor: &[u8]) -> Result<usize, JsFailure> {
        let cursor = decode_cursor(cursor)?;
        let (doc, id) = self.parts();
        let unit = doc.unit()?;
        doc.read(|doc| {
            let index = doc.resolve_cursor(id.0, &cursor)?;
            Ok(match unit {
                IndexUnit::Utf16 => doc.text_char_to_utf16(id, index)?,
                IndexUnit::CodePoint => index,
            })
        })
    }
}

#[wasm_bindgen]
impl DocList {
    /// A stable position at `index` that follows its element through later edits (see
    /// `DocText.cursor`).
    pub fn cursor(&self, index: usize, bias_name: Option<String>) -> Result<Uint8Array, JsFailure> {
        let bias = bias(bias_name)?;
        let (doc, id) = self.parts();
        let cursor = doc.read(|doc| Ok(doc.cursor(id.0, index, bias)?))?;
        encode_cursor(&cursor)
    }

    /// Where a cursor from `cursor()` is now.
    #[wasm_bindgen(js_name = resolveCursor)]
    pub fn resolve_cursor(&self, cursor: &[u8]) -> Result<usize, JsFailure> {
        let cursor = decode_cursor(cursor)?;
        let (doc, id) = self.parts();
        doc.read(|doc| Ok(doc.resolve_cursor(id.0, &cursor)?))
    }
}
