//! JSON export and import (feature `json`).

use serde_json::{Map as JsonMap, Number, Value as Json};

use super::state::Container;
use super::value::{ContainerId, ContainerKind, ListId, MapId, Value};
use super::{DocError, Document, Transaction};

/// How imported JSON strings become document values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum JsonStrings {
    /// As scalar strings (replaced whole when written).
    #[default]
    Scalar,
    /// As text containers (edited character by character, merged without conflicts).
    Text,
}

/// Where the JSON export reads containers from: the live document, or a view of it at an
/// earlier version ([`super::DocumentView`]).
pub(super) trait ContainerSource {
    /// Calls `read` with container `id` (`None` if there is no such container).
    fn read_container<R>(&self, id: ContainerId, read: impl FnOnce(Option<&Container>) -> R) -> R;

    /// An upper bound on the nesting depth (the number of containers).
    fn container_count(&self) -> usize;
}

impl ContainerSource for Document {
    fn read_container<R>(&self, id: ContainerId, read: impl FnOnce(Option<&Container>) -> R) -> R {
        read(self.containers.get(&id))
    }

    fn container_count(&self) -> usize {
        self.containers.len()
    }
}

/// The JSON of container `id` of `source`, `depth` levels below the root.
pub(super) fn container_json(source: &impl ContainerSource, id: ContainerId, depth: usize) -> Json {
    // Containers form a tree; the bound only guards against a corrupt document.
    if depth > source.container_count() {
        return Json::Null;
    }
    source.read_container(id, |container| match container {
        Some(Container::Map(entries)) => Json::Object(
            entries
                .iter()
                .filter_map(|(k, e)| {
                    e.last()
                        .map(|e| (k.clone(), value_json(source, &e.value, depth)))
                })
                .collect::<JsonMap<String, Json>>(),
        ),
        Some(Container::List(seq)) => Json::Array(
            seq.doc
                .iter()
                .map(|v| value_json(source, v, depth))
                .collect(),
        ),
        Some(Container::Text(seq)) => Json::String(seq.doc.to_string()),
        Some(Container::Counter(value)) => Json::Number((*value).into()),
        Some(Container::Register(entries)) => entries
            .last()
            .map_or(Json::Null, |e| value_json(source, &e.value, depth)),
        None => Json::Null,
    })
}

fn value_json(source: &impl ContainerSource, value: &Value, depth: usize) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::Number((*i).into()),
        Value::Float(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::Array(b.iter().map(|&x| Json::Number(x.into())).collect()),
        Value::Container(_, id) => container_json(source, *id, depth + 1),
    }
}

impl Document {
    /// The document as JSON: maps are objects, lists arrays, texts strings, counters numbers,
    /// registers their value (null when empty), bytes arrays of numbers; non-finite floats are
    /// null.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "n", 1).unwrap();
    /// assert_eq!(doc.to_json(), serde_json::json!({ "n": 1 }));
    /// ```
    pub fn to_json(&self) -> Json {
        container_json(self, ContainerId::Root, 0)
    }

    /// Writes every field of the JSON object `json` into `map`, in one transaction (nested
    /// objects and arrays become maps and lists).
    ///
    /// ```
    /// use crdt_core::{Document, JsonStrings, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let json = serde_json::json!({ "todo": [{ "title": "milk", "done": false }] });
    /// doc.import_json(MapId::ROOT, &json, JsonStrings::Scalar).unwrap();
    /// assert_eq!(doc.to_json(), json);
    /// ```
    pub fn import_json(
        &mut self,
        map: MapId,
        json: &Json,
        strings: JsonStrings,
    ) -> Result<(), DocError> {
        let Json::Object(fields) = json else {
            return Err(DocError::WrongKind {
                container: map.0,
                expected: ContainerKind::Map,
                found: ContainerKind::Register,
            });
        };
        self.transact(|tx| {
            for (key, value) in fields {
                write_field(tx, map, key, value, strings)?;
            }
            Ok(())
        })
    }
}

fn scalar(json: &Json) -> Option<Value> {
    Some(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        _ => return None,
    })
}

fn write_field(
    tx: &mut Transaction<'_>,
    map: MapId,
    key: &str,
    json: &Json,
    strings: JsonStrings,
) -> Result<(), DocError> {
    match json {
        Json::Object(fields) => {
            let child = tx.set_new_map(map, key)?;
            for (k, v) in fields {
                write_field(tx, child, k, v, strings)?;
            }
        }
        Json::Array(items) => {
            let list = tx.set_new_list(map, key)?;
            for (i, item) in items.iter().enumerate() {
                write_element(tx, list, i, item, strings)?;
            }
        }
        Json::String(s) if strings == JsonStrings::Text => {
            let text = tx.set_new_text(map, key)?;
            tx.text_insert(text, 0, s)?;
        }
        Json::String(s) => tx.set(map, key, s.as_str())?,
        other => tx.set(map, key, scalar(other).unwrap_or(Value::Null))?,
    }
    Ok(())
}

fn write_element(
    tx: &mut Transaction<'_>,
    list: ListId,
    index: usize,
    json: &Json,
    strings: JsonStrings,
) -> Result<(), DocError> {
    match json {
        Json::Object(fields) => {
            let id = tx.list_insert_new(list, index, ContainerKind::Map)?;
            for (k, v) in fields {
                write_field(tx, MapId(id), k, v, strings)?;
            }
        }
        Json::Array(items) => {
            let id = tx.list_insert_new(list, index, ContainerKind::List)?;
            for (i, item) in items.iter().enumerate() {
                write_element(tx, ListId(id), i, item, strings)?;
            }
        }
        Json::String(s) if strings == JsonStrings::Text => {
            let id = tx.list_insert_new(list, index, ContainerKind::Text)?;
            tx.text_insert(super::value::TextId(id), 0, s)?;
        }
        Json::String(s) => tx.list_insert(list, index, s.as_str())?,
        other => tx.list_insert(list, index, scalar(other).unwrap_or(Value::Null))?,
    }
    Ok(())
}
