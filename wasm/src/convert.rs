//! Values between JavaScript and the document.
//!
//! | JS | document |
//! | --- | --- |
//! | `null` | `Null` |
//! | boolean | `Bool` |
//! | number, an integer within ±(2⁵³−1) | `Int` |
//! | any other number | `Float` |
//! | bigint within the i64 range | `Int` |
//! | string | `String` |
//! | `Uint8Array` | `Bytes` |
//!
//! Integers read back as numbers when they are safe integers and as bigints otherwise, so no
//! value silently loses precision. Containers read back as handles (`DocText`, ...).

use crdt_core::{ContainerId, ContainerKind, Document, MapId, Value};
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::containers::{DocCounter, DocList, DocMap, DocRegister, DocText};
use crate::error::{JsFailure, JsResult};
use crate::shared::DocHandle;

/// 2⁵³ − 1: the largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A JS argument as a document value.
pub(crate) fn js_to_value(value: &JsValue) -> JsResult<Value> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    if value.is_undefined() {
        return Err(JsFailure::new(
            "INVALID_VALUE",
            "undefined cannot be stored: use null, or delete the key",
        ));
    }
    if let Some(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Some(n) = value.as_f64() {
        return Ok(if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
            Value::Int(n as i64)
        } else {
            Value::Float(n)
        });
    }
    if let Some(s) = value.as_string() {
        return Ok(Value::String(s));
    }
    if value.is_bigint() {
        return i64::try_from(value.clone())
            .map(Value::Int)
            .map_err(|_| JsFailure::new("INVALID_VALUE", "a bigint value must fit in 64 bits"));
    }
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Ok(Value::Bytes(bytes.to_vec()));
    }
    Err(JsFailure::new(
        "INVALID_VALUE",
        "values are null, booleans, numbers, bigints, strings or Uint8Arrays; for nested \
         objects, arrays or text use a container (getMap, getList, getText, insertContainer)",
    ))
}

/// A document integer as a JS number, or a bigint when a number would round it.
pub(crate) fn i64_to_js(n: i64) -> JsValue {
    if (n as f64).abs() <= MAX_SAFE_INTEGER {
        JsValue::from_f64(n as f64)
    } else {
        JsValue::from(n)
    }
}

/// A scalar value as JS (integers as above, bytes as a `Uint8Array`); `container` says what a
/// container becomes, which differs by caller (a handle, or its JSON now or at a version).
pub(crate) fn scalar_to_js(
    value: &Value,
    container: impl FnOnce(ContainerKind, ContainerId) -> JsValue,
) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => JsValue::from_bool(*b),
        Value::Int(n) => i64_to_js(*n),
        Value::Float(x) => JsValue::from_f64(*x),
        Value::String(s) => JsValue::from_str(s),
        Value::Bytes(bytes) => Uint8Array::from(bytes.as_slice()).into(),
        Value::Container(kind, id) => container(*kind, *id),
    }
}

/// A document value as JS: scalars as above, containers as handles.
pub(crate) fn value_to_js(doc: &DocHandle, value: &Value) -> JsValue {
    scalar_to_js(value, |kind, id| handle(doc, kind, id))
}

/// A handle object of the right class for a container.
pub(crate) fn handle(doc: &DocHandle, kind: ContainerKind, id: ContainerId) -> JsValue {
    let doc = doc.clone();
    match kind {
        ContainerKind::Map => DocMap::new(doc, crdt_core::MapId(id)).into(),
        ContainerKind::List => DocList::new(doc, crdt_core::ListId(id)).into(),
        ContainerKind::Text => DocText::new(doc, crdt_core::TextId(id)).into(),
        ContainerKind::Counter => DocCounter::new(doc, crdt_core::CounterId(id)).into(),
        ContainerKind::Register => DocRegister::new(doc, crdt_core::RegisterId(id)).into(),
    }
}

/// The JS name of a container kind (as in `index.d.ts`'s `ContainerKind`).
pub(crate) fn kind_name(kind: ContainerKind) -> &'static str {
    match kind {
        ContainerKind::Map => "map",
        ContainerKind::List => "list",
        ContainerKind::Text => "text",
        ContainerKind::Counter => "counter",
        ContainerKind::Register => "register",
    }
}

/// A JS container kind name.
pub(crate) fn kind_from_name(name: &str) -> JsResult<ContainerKind> {
    Ok(match name {
        "map" => ContainerKind::Map,
        "list" => ContainerKind::List,
        "text" => ContainerKind::Text,
        "counter" => ContainerKind::Counter,
        "register" => ContainerKind::Register,
        other => {
            return Err(JsFailure::invalid_argument(format!(
                "unknown container kind {other:?}: use \"map\", \"list\", \"text\", \"counter\" or \"register\""
            )));
        }
    })
}

/// The plain JS form of a container and everything in it: maps as objects, lists as arrays,
/// texts as strings, counters as numbers, registers as their value (or null).
///
/// Recursive, one level per nested container; the document's nesting limit (at most
/// [`Document::MAX_DEPTH_CEILING`], enforced on every edit and load) bounds the depth.
pub(crate) fn container_to_json(doc: &Document, kind: ContainerKind, id: ContainerId) -> JsValue {
    match kind {
        ContainerKind::Map => {
            let object = Object::new();
            let map = MapId(id);
            for key in doc.keys(map).unwrap_or_default() {
                if let Ok(Some(value)) = doc.get(map, key) {
                    let _ =
                        Reflect::set(&object, &JsValue::from_str(key), &value_to_json(doc, value));
                }
            }
            object.into()
        }
        ContainerKind::List => doc
            .list(crdt_core::ListId(id))
            .unwrap_or_default()
            .iter()
            .map(|value| value_to_json(doc, value))
            .collect::<Array>()
            .into(),
        ContainerKind::Text => doc
            .text(crdt_core::TextId(id))
            .map(|s| JsValue::from_str(&s))
            .unwrap_or(JsValue::NULL),
        ContainerKind::Counter => doc
            .counter(crdt_core::CounterId(id))
            .map(i64_to_js)
            .unwrap_or(JsValue::NULL),
        ContainerKind::Register => match doc.register(crdt_core::RegisterId(id)) {
            Ok(Some(value)) => value_to_json(doc, value),
            _ => JsValue::NULL,
        },
    }
}

fn value_to_json(doc: &Document, value: &Value) -> JsValue {
    scalar_to_js(value, |kind, id| container_to_json(doc, kind, id))
}
