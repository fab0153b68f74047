//! JSON export and import (feature `json`).

use serde_json::{Map as JsonMap, Number, Value as Json};

use super::state::Container;
use std::collections::{HashMap, HashSet};

use super::value::{ContainerId, ContainerKind, ListId, MapId, TextId, Value};
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
}

impl ContainerSource for Document {
    fn read_container<R>(&self, id: ContainerId, read: impl FnOnce(Option<&Container>) -> R) -> R {
        read(self.containers.get(&id))
    }
}

/// The containers a container shows (the winners of its keys, its elements, its register's
/// value), in order.
fn shown_children(container: Option<&Container>) -> Vec<ContainerId> {
    let values: Vec<&Value> = match container {
        Some(Container::Map(entries)) => entries
            .values()
            .filter_map(|e| e.last().map(|e| &e.value))
            .collect(),
        Some(Container::List(seq)) => seq.doc.iter().collect(),
        Some(Container::Register(entries)) => {
            entries.last().map(|e| &e.value).into_iter().collect()
        }
        _ => Vec::new(),
    };
    values
        .into_iter()
        .filter_map(|v| v.as_container().map(|(_, id)| id))
        .collect()
}

/// The JSON of container `id` of `source`, built without recursion (the depth is the
/// document's): the containers it shows are listed parents first, then built children first,
/// each taking its children's finished JSON.
pub(super) fn container_json(source: &impl ContainerSource, id: ContainerId) -> Json {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![id];
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            order.push(id);
            stack.extend(source.read_container(id, shown_children));
        }
    }
    let mut built: HashMap<ContainerId, Json> = HashMap::new();
    for &id in order.iter().rev() {
        let json = source.read_container(id, |container| {
            let mut value_json = |value: &Value| match value {
                // A container shown twice (a corrupt document) is shown once.
                Value::Container(_, child) => built.remove(child).unwrap_or(Json::Null),
                scalar => scalar_json(scalar),
            };
            match container {
                Some(Container::Map(entries)) => Json::Object(
                    entries
                        .iter()
                        .filter_map(|(k, e)| e.last().map(|e| (k.clone(), value_json(&e.value))))
                        .collect::<JsonMap<String, Json>>(),
                ),
                Some(Container::List(seq)) => Json::Array(seq.doc.iter().map(value_json).collect()),
                Some(Container::Text(seq)) => Json::String(seq.doc.to_string()),
                Some(Container::Counter(value)) => Json::Number((*value).into()),
                Some(Container::Register(entries)) => {
                    entries.last().map_or(Json::Null, |e| value_json(&e.value))
                }
                None => Json::Null,
            }
        });
        built.insert(id, json);
    }
    built.remove(&id).unwrap_or(Json::Null)
}

/// The JSON of a value that is not a container.
fn scalar_json(value: &Value) -> Json {
    match value {
        Value::Null | Value::Container(..) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::Number((*i).into()),
        Value::Float(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::Array(b.iter().map(|&x| Json::Number(x.into())).collect()),
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
        container_json(self, ContainerId::Root)
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
            // A work list rather than recursion: the JSON may nest as deep as the document's
            // limit allows (creating deeper containers fails with `DocError::TooDeep`).
            let mut work: Vec<(Place, &Json)> = fields
                .iter()
                .rev()
                .map(|(key, value)| (Place::Key(map, key), value))
                .collect();
            while let Some((place, json)) = work.pop() {
                write_json(tx, place, json, strings, &mut work)?;
            }
            Ok(())
        })
    }
}

/// Where an imported JSON value goes.
#[derive(Clone, Copy)]
enum Place<'j> {
    /// Under a key of a map.
    Key(MapId, &'j str),
    /// At an index of a list.
    Index(ListId, usize),
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

/// Writes `json` at `place`: a scalar at once; an object or array as a new, empty container
/// whose fields or items are pushed on `work` (in reverse, so they are written in order).
fn write_json<'j>(
    tx: &mut Transaction<'_>,
    place: Place<'j>,
    json: &'j Json,
    strings: JsonStrings,
    work: &mut Vec<(Place<'j>, &'j Json)>,
) -> Result<(), DocError> {
    let new_container = |tx: &mut Transaction<'_>, kind| match place {
        Place::Key(map, key) => tx.replace_with_new(map, key, kind),
        Place::Index(list, index) => tx.list_insert_new(list, index, kind),
    };
    match json {
        Json::Object(fields) => {
            let map = MapId(new_container(tx, ContainerKind::Map)?);
            work.extend(fields.iter().rev().map(|(k, v)| (Place::Key(map, k), v)));
        }
        Json::Array(items) => {
            let list = ListId(new_container(tx, ContainerKind::List)?);
            work.extend(
                items
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, item)| (Place::Index(list, i), item)),
            );
        }
        Json::String(s) if strings == JsonStrings::Text => {
            let text = TextId(new_container(tx, ContainerKind::Text)?);
            tx.text_insert(text, 0, s)?;
        }
        other => {
            let value = match other {
                Json::String(s) => Value::from(s.as_str()),
                other => scalar(other).unwrap_or(Value::Null),
            };
            match place {
                Place::Key(map, key) => tx.set(map, key, value)?,
                Place::Index(list, index) => tx.list_insert(list, index, value)?,
            }
        }
    }
    Ok(())
}
