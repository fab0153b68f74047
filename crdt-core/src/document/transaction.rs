//! Local edits: a transaction groups operations into one change, all or nothing.

use std::ops::Range;

use smallvec::SmallVec;

use super::events::{Patch, PatchAction};
use super::paths::PathResolver;
use super::state::{Container, Entry, ScalarOp, write};
use super::undo::{Recorded, RecordedCommit};
use super::value::{
    ContainerId, ContainerKind, CounterId, ListId, MapId, NamedId, RegisterId, TextId,
};
use super::{ChangeMeta, DocError, Document, Placement, Value};
use crate::causal_graph::{Frontier, Lv};
use crate::sequence::content::Content;

/// A change's message and timestamp, both optional. The core keeps no clock: pass the time
/// (for example Unix milliseconds) if you want it recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeOptions {
    /// What the change did, for history views.
    pub message: Option<String>,
    /// When, in a unit of the application's choice.
    pub timestamp: Option<i64>,
}

/// What must be undone if a transaction (or a remote update) fails part way.
pub(super) enum Undo {
    /// A map key's entries as they were.
    Map {
        map: ContainerId,
        key: String,
        before: super::state::Entries,
    },
    /// A register's entries as they were.
    Register {
        register: ContainerId,
        before: super::state::Entries,
    },
    /// A counter was incremented by this much.
    Counter { counter: ContainerId, by: i64 },
    /// `len` values or chars were inserted at `at`.
    Inserted {
        container: ContainerId,
        at: usize,
        len: usize,
    },
    /// These values were removed at `at`.
    ListRemoved {
        container: ContainerId,
        at: usize,
        values: Vec<Value>,
    },
    /// This text was removed at `at`.
    TextRemoved {
        container: ContainerId,
        at: usize,
        text: String,
    },
    /// A container was created.
    Created(ContainerId),
}

/// What [`Transaction::write_key`] writes into a map key.
pub(super) enum KeyWrite {
    /// Deletes the key (the writes of it seen so far).
    Delete,
    /// A scalar value.
    Scalar(Value),
    /// A new, empty container of this kind, named by the writing event (distinct from every
    /// other container).
    New(ContainerKind),
    /// The named container of this kind at this key (see [`NamedId`]): created if this
    /// replica has never seen it, brought back with its content if it was deleted.
    Named(ContainerKind),
}

/// Undoes `undo` (newest first) and forgets every event from `start` on.
pub(super) fn roll_back(doc: &mut Document, undo: Vec<Undo>, start: Lv, frontier: Frontier) {
    for entry in undo.into_iter().rev() {
        match entry {
            Undo::Map { map, key, before } => {
                if let Some(Container::Map(entries)) = doc.containers.get_mut(&map) {
                    if before.is_empty() {
                        entries.remove(&key);
                    } else {
                        entries.insert(key, before);
                    }
                }
            }
            Undo::Register { register, before } => {
                if let Some(Container::Register(entries)) = doc.containers.get_mut(&register) {
                    *entries = before;
                }
            }
            Undo::Counter { counter, by } => {
                if let Some(Container::Counter(value)) = doc.containers.get_mut(&counter) {
                    *value = value.wrapping_sub(by);
                }
            }
            Undo::Inserted { container, at, len } => match doc.containers.get_mut(&container) {
                Some(Container::List(seq)) => {
                    seq.doc.drain(at..at + len);
                }
                Some(Container::Text(seq)) => seq.doc.remove(at, at + len),
                _ => {}
            },
            Undo::ListRemoved {
                container,
                at,
                values,
            } => {
                if let Some(Container::List(seq)) = doc.containers.get_mut(&container) {
                    seq.doc.splice(at..at, values);
                }
            }
            Undo::TextRemoved {
                container,
                at,
                text,
            } => {
                if let Some(Container::Text(seq)) = doc.containers.get_mut(&container) {
                    seq.doc.insert(at, &text);
                }
            }
            Undo::Created(id) => {
                doc.containers.remove(&id);
                doc.placements.remove(&id);
            }
        }
    }
    doc.forget_events_from(start, frontier);
}

/// A [`Transaction`] without its document: what [`super::OpenTransaction`] keeps between
/// calls.
pub(super) struct Detached {
    options: ChangeOptions,
    start: Lv,
    frontier: Frontier,
    undo: Vec<Undo>,
    patches: Vec<Patch>,
    recorded: Vec<Recorded>,
    paths: PathResolver,
}

/// An open transaction. Its operations take effect at once (reads inside the transaction see
/// them) and become one change when [`Document::transact`] commits.
pub struct Transaction<'a> {
    doc: &'a mut Document,
    options: ChangeOptions,
    start: Lv,
    frontier: Frontier,
    undo: Vec<Undo>,
    patches: Vec<Patch>,
    /// What an undo manager needs to take the operations back (only while one records).
    recorded: Vec<Recorded>,
    /// The paths of the containers patched so far, kept until an edit moves a container (so a
    /// transaction nesting many containers walks each path once, not from the root each time).
    /// Empty and left alone when the document has no subscribers (none can join mid-transaction).
    paths: PathResolver,
}

impl<'a> Transaction<'a> {
    pub(super) fn begin(doc: &'a mut Document, options: ChangeOptions) -> Transaction<'a> {
        let start = doc.graph.len();
        let frontier = doc.graph.frontier().clone();
        Transaction {
            doc,
            options,
            start,
            frontier,
            undo: Vec::new(),
            patches: Vec::new(),
            recorded: Vec::new(),
            paths: PathResolver::default(),
        }
    }

    pub(super) fn commit(self) -> Vec<Patch> {
        if self.doc.graph.len() > self.start {
            self.doc.changes.push(ChangeMeta {
                start: self.start,
                message: self.options.message,
                timestamp: self.options.timestamp,
            });
            if self.doc.recording && !self.recorded.is_empty() {
                self.doc.recorded.push(RecordedCommit {
                    ops: self.recorded,
                    timestamp: self.options.timestamp,
                });
            }
        }
        self.patches
    }

    pub(super) fn roll_back(self) {
        roll_back(self.doc, self.undo, self.start, self.frontier);
    }

    /// The transaction's own state, without the document, to keep between calls
    /// ([`super::OpenTransaction`]).
    pub(super) fn detach(self) -> Detached {
        Detached {
            options: self.options,
            start: self.start,
            frontier: self.frontier,
            undo: self.undo,
            patches: self.patches,
            recorded: self.recorded,
            paths: self.paths,
        }
    }

    /// Resumes a detached transaction on the document it was detached from, unchanged since.
    pub(super) fn attach(doc: &'a mut Document, state: Detached) -> Transaction<'a> {
        Transaction {
            doc,
            options: state.options,
            start: state.start,
            frontier: state.frontier,
            undo: state.undo,
            patches: state.patches,
            recorded: state.recorded,
            paths: state.paths,
        }
    }

    /// The document as it is inside the transaction, for reading.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.transact(|tx| {
    ///     tx.set(MapId::ROOT, "a", 1)?;
    ///     // Reads inside the transaction see its own edits.
    ///     assert_eq!(tx.doc().get(MapId::ROOT, "a")?, Some(&Value::from(1)));
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn doc(&self) -> &Document {
        self.doc
    }

    /// Takes `n` new events of the local replica, after everything so far.
    fn events(&mut self, n: usize) -> Range<Lv> {
        let agent = self.doc.local_agent();
        let parents = self.doc.graph.frontier().clone();
        self.doc.graph.add_local(agent, n, &parents)
    }

    fn record(&mut self, op: impl FnOnce() -> Recorded) {
        if self.doc.recording {
            self.recorded.push(op());
        }
    }

    fn patch(&mut self, container: ContainerId, action: PatchAction) {
        if self.doc.listeners.is_empty() {
            return; // nobody to tell: skip the path walk
        }
        let path = self.paths.path(self.doc, container);
        self.patches.push(Patch {
            container,
            path,
            action,
        });
    }

    fn check_kind(&self, id: ContainerId, kind: ContainerKind) -> Result<(), DocError> {
        let container = self.doc.container(id)?;
        if container.kind() == kind {
            Ok(())
        } else {
            Err(Document::wrong_kind(id, kind, container))
        }
    }

    /// The depth a new container in `parent` would have, if the document's limit allows it.
    fn child_depth(&self, parent: ContainerId) -> Result<usize, DocError> {
        let depth = self.doc.depth_of(parent) + 1;
        if depth > self.doc.max_depth {
            return Err(DocError::TooDeep {
                limit: self.doc.max_depth,
            });
        }
        Ok(depth)
    }

    /// A new container of `kind` named `id`, placed in `parent` at `depth` (checked by
    /// [`child_depth`](Self::child_depth)).
    fn create(
        &mut self,
        id: ContainerId,
        kind: ContainerKind,
        parent: ContainerId,
        key: Option<&str>,
        depth: usize,
    ) -> Value {
        self.doc.containers.insert(id, Container::new(kind));
        self.doc.placements.insert(
            id,
            Placement {
                parent,
                key: key.map(str::to_owned),
                depth,
            },
        );
        self.undo.push(Undo::Created(id));
        Value::Container(kind, id)
    }

    fn scalar(value: impl Into<Value>) -> Result<Value, DocError> {
        let value = value.into();
        if value.as_container().is_some() {
            return Err(DocError::ContainerAsValue);
        }
        Ok(value)
    }

    // ---- maps -----------------------------------------------------------------------------

    /// Writes `key` of `map` (see [`KeyWrite`]); returns the container written, if any.
    pub(super) fn write_key(
        &mut self,
        map: MapId,
        key: &str,
        what: KeyWrite,
    ) -> Result<Option<ContainerId>, DocError> {
        self.check_kind(map.0, ContainerKind::Map)?;
        let pred: SmallVec<[Lv; 1]> = match self.doc.containers.get(&map.0) {
            Some(Container::Map(entries)) => entries
                .get(key)
                .map(|e| e.iter().map(|e| e.lv).collect())
                .unwrap_or_default(),
            _ => SmallVec::new(),
        };
        if matches!(what, KeyWrite::Delete) && pred.is_empty() {
            return Ok(None); // deleting an absent key changes nothing
        }
        let named = match what {
            KeyWrite::Named(kind) => Some(ContainerId::Named(NamedId::derive(map.0, key, kind))),
            _ => None,
        };
        // A named container that exists already comes back (with its content): no new one.
        let revived = named.filter(|id| self.doc.containers.contains_key(id));
        let depth = match what {
            KeyWrite::New(_) | KeyWrite::Named(_) if revived.is_none() => {
                self.child_depth(map.0)?
            }
            _ => 0,
        };
        let lv = self.events(1).start;
        let (value, created) = match what {
            KeyWrite::Delete => (None, None),
            KeyWrite::Scalar(scalar) => (Some(scalar), None),
            KeyWrite::New(kind) | KeyWrite::Named(kind) => {
                let id = named.unwrap_or(ContainerId::Created(self.doc.graph.lv_to_dot(lv)));
                let value = match revived {
                    Some(id) => Value::Container(kind, id),
                    None => self.create(id, kind, map.0, Some(key), depth),
                };
                (Some(value), Some(id))
            }
        };
        let rank = (self.doc.graph.lamport_of(lv), self.doc.replica);
        let new = value.clone().map(|value| Entry { lv, rank, value });
        if let Some(Container::Map(entries)) = self.doc.containers.get_mut(&map.0) {
            let current = entries.entry(key.to_owned()).or_default();
            let before = write(current, &pred, new);
            if current.is_empty() {
                entries.remove(key);
            }
            let winner = before.last().map(|e| e.value.clone());
            if winner.as_ref().is_some_and(|w| w.as_container().is_some()) {
                self.paths.clear(); // that container is no longer reachable here
            }
            let after = value.clone();
            self.record(|| Recorded::MapWritten {
                map: map.0,
                key: key.to_owned(),
                before: winner,
                after,
            });
            self.undo.push(Undo::Map {
                map: map.0,
                key: key.to_owned(),
                before,
            });
        }
        self.doc.scalar_ops.push((
            lv,
            ScalarOp::MapSet {
                map: map.0,
                key: key.to_owned(),
                value: value.clone(),
                pred,
            },
        ));
        let action = match value {
            Some(value) => PatchAction::MapSet {
                key: key.to_owned(),
                value,
            },
            None => PatchAction::MapDelete {
                key: key.to_owned(),
            },
        };
        self.patch(map.0, action);
        if let Some(id) = revived {
            self.reveal(id);
        }
        Ok(created)
    }

    /// Tells subscribers the content of container `id`, which has just come back into view
    /// (it was shown empty by the patch that placed it).
    fn reveal(&mut self, id: ContainerId) {
        if self.doc.listeners.is_empty() {
            return;
        }
        if let Some(path) = self.paths.path(self.doc, id) {
            let mut expanded = std::collections::HashSet::new();
            self.doc.expand(path, id, &mut self.patches, &mut expanded);
        }
    }

    /// Sets `key` of `map` to a scalar value.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.transact(|tx| tx.set(MapId::ROOT, "title", "Notes")).unwrap();
    /// assert_eq!(doc.get(MapId::ROOT, "title").unwrap(), Some(&Value::from("Notes")));
    /// ```
    ///
    /// A container has one place, so a handle is not a value (create containers with the
    /// `*_new` operations):
    ///
    /// ```compile_fail,E0277
    /// use crdt_core::{Document, MapId, ReplicaId};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "a").unwrap();
    /// doc.transact(|tx| tx.set(MapId::ROOT, "b", list)).unwrap();
    /// ```
    pub fn set(&mut self, map: MapId, key: &str, value: impl Into<Value>) -> Result<(), DocError> {
        let value = Self::scalar(value)?;
        self.write_key(map, key, KeyWrite::Scalar(value))
            .map(|_| ())
    }

    /// Deletes `key` of `map` (the writes of it this replica has seen; a concurrent write
    /// survives).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// doc.transact(|tx| tx.delete(MapId::ROOT, "k")).unwrap();
    /// assert_eq!(doc.get(MapId::ROOT, "k").unwrap(), None);
    /// ```
    pub fn delete(&mut self, map: MapId, key: &str) -> Result<(), DocError> {
        self.write_key(map, key, KeyWrite::Delete).map(|_| ())
    }

    /// Replaces `key` of `map` with a new, empty container of `kind` (the typed
    /// `replace_with_new_*` below, for code that has the kind as a value).
    pub(crate) fn replace_with_new(
        &mut self,
        map: MapId,
        key: &str,
        kind: ContainerKind,
    ) -> Result<ContainerId, DocError> {
        self.write_key(map, key, KeyWrite::New(kind))?
            .ok_or(DocError::NoSuchContainer(map.0))
    }

    /// Replaces `key` of `map` with a new, empty map of its own: a container no other
    /// replica's write names, which wins over the key's current value like any write (the
    /// old container stays in the document, unreachable here). For "a fresh, empty one";
    /// to open the map at a key, which concurrent openers must share, use
    /// [`map_at`](Self::map_at): two replicas that each replace a key concurrently make two
    /// maps, and the key shows one of them.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let settings = doc.transact(|tx| tx.replace_with_new_map(MapId::ROOT, "settings")).unwrap();
    /// doc.set(settings, "dark", true).unwrap();
    /// assert_eq!(doc.to_json(), serde_json::json!({ "settings": { "dark": true } }));
    /// ```
    pub fn replace_with_new_map(&mut self, map: MapId, key: &str) -> Result<MapId, DocError> {
        self.replace_with_new(map, key, ContainerKind::Map)
            .map(MapId)
    }

    /// Replaces `key` of `map` with a new, empty list of its own (see
    /// [`replace_with_new_map`](Self::replace_with_new_map); to open the list at a key, use
    /// [`list_at`](Self::list_at)).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.transact(|tx| tx.replace_with_new_list(MapId::ROOT, "l")).unwrap();
    /// assert_eq!(doc.list_len(list).unwrap(), 0);
    /// ```
    pub fn replace_with_new_list(&mut self, map: MapId, key: &str) -> Result<ListId, DocError> {
        self.replace_with_new(map, key, ContainerKind::List)
            .map(ListId)
    }

    /// Replaces `key` of `map` with a new, empty text of its own (see
    /// [`replace_with_new_map`](Self::replace_with_new_map); to open the text at a key, use
    /// [`text_at`](Self::text_at)).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.transact(|tx| tx.replace_with_new_text(MapId::ROOT, "body")).unwrap();
    /// doc.text_insert(text, 0, "hi").unwrap();
    /// assert_eq!(doc.text(text).unwrap(), "hi");
    /// ```
    pub fn replace_with_new_text(&mut self, map: MapId, key: &str) -> Result<TextId, DocError> {
        self.replace_with_new(map, key, ContainerKind::Text)
            .map(TextId)
    }

    /// Replaces `key` of `map` with a new counter at 0 of its own (see
    /// [`replace_with_new_map`](Self::replace_with_new_map); to open the counter at a key, use
    /// [`counter_at`](Self::counter_at)).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let likes = doc.transact(|tx| tx.replace_with_new_counter(MapId::ROOT, "likes")).unwrap();
    /// doc.counter_add(likes, 2).unwrap();
    /// assert_eq!(doc.counter(likes).unwrap(), 2);
    /// ```
    pub fn replace_with_new_counter(
        &mut self,
        map: MapId,
        key: &str,
    ) -> Result<CounterId, DocError> {
        self.replace_with_new(map, key, ContainerKind::Counter)
            .map(CounterId)
    }

    /// Replaces `key` of `map` with a new, empty register of its own (see
    /// [`replace_with_new_map`](Self::replace_with_new_map); to open the register at a key, use
    /// [`register_at`](Self::register_at)).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let status = doc.transact(|tx| tx.replace_with_new_register(MapId::ROOT, "status")).unwrap();
    /// doc.register_set(status, "away").unwrap();
    /// assert_eq!(doc.register(status).unwrap(), Some(&Value::from("away")));
    /// ```
    pub fn replace_with_new_register(
        &mut self,
        map: MapId,
        key: &str,
    ) -> Result<RegisterId, DocError> {
        self.replace_with_new(map, key, ContainerKind::Register)
            .map(RegisterId)
    }

    // ---- lists ----------------------------------------------------------------------------

    fn list_len_checked(&self, list: ListId) -> Result<usize, DocError> {
        self.check_kind(list.0, ContainerKind::List)?;
        self.doc.list_len(list)
    }

    fn insert_values(
        &mut self,
        list: ListId,
        index: usize,
        values: Vec<Value>,
    ) -> Result<(), DocError> {
        let span = self.events(values.len());
        let tracking_paths = !self.doc.listeners.is_empty();
        if let Some(Container::List(seq)) = self.doc.containers.get_mut(&list.0) {
            if tracking_paths && holds_container(&seq.doc[index.min(seq.doc.len())..]) {
                self.paths.clear(); // container elements after `index` move
            }
            seq.log.push_insert(span.clone(), index, &values);
            seq.doc.splice(index..index, values.iter().cloned());
        }
        for (offset, value) in values.iter().enumerate() {
            if let Some((_, id)) = value.as_container() {
                self.paths.added_list_element(list.0, index + offset, id);
            }
        }
        self.doc.record_sequence_ops(span.clone(), list.0);
        self.record(|| Recorded::Inserted {
            container: list.0,
            last: span.end - 1,
            index,
            len: span.len(),
        });
        self.undo.push(Undo::Inserted {
            container: list.0,
            at: index,
            len: span.len(),
        });
        self.patch(list.0, PatchAction::ListInsert { index, values });
        Ok(())
    }

    /// Inserts a scalar value at `index` of `list`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// doc.transact(|tx| {
    ///     tx.list_insert(list, 0, "b")?;
    ///     tx.list_insert(list, 0, "a")
    /// }).unwrap();
    /// assert_eq!(doc.list(list).unwrap(), [Value::from("a"), Value::from("b")]);
    /// ```
    pub fn list_insert(
        &mut self,
        list: ListId,
        index: usize,
        value: impl Into<Value>,
    ) -> Result<(), DocError> {
        let value = Self::scalar(value)?;
        let len = self.list_len_checked(list)?;
        if index > len {
            return Err(DocError::OutOfRange { index, len });
        }
        self.insert_values(list, index, vec![value])
    }

    /// Inserts a new, empty container of `kind` at `index` of `list`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "items").unwrap();
    /// let item = doc.transact(|tx| tx.list_insert_new(list, 0, ContainerKind::Map)).unwrap();
    /// doc.set(MapId(item), "done", false).unwrap();
    /// assert_eq!(doc.to_json(), serde_json::json!({ "items": [{ "done": false }] }));
    /// ```
    pub fn list_insert_new(
        &mut self,
        list: ListId,
        index: usize,
        kind: ContainerKind,
    ) -> Result<ContainerId, DocError> {
        let len = self.list_len_checked(list)?;
        if index > len {
            return Err(DocError::OutOfRange { index, len });
        }
        let depth = self.child_depth(list.0)?;
        // The container's id is the id of the event that inserts it: the replica's next one.
        let seq = self.doc.graph.known_of(self.doc.replica) + 1;
        let id = ContainerId::Created(crate::Dot::new(self.doc.replica, seq));
        self.insert_values(list, index, vec![Value::Container(kind, id)])?;
        self.create(id, kind, list.0, None, depth);
        Ok(id)
    }

    /// Deletes the elements `range` of `list`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// doc.list_insert(list, 0, 1).unwrap();
    /// doc.list_insert(list, 1, 2).unwrap();
    /// doc.transact(|tx| tx.list_delete(list, 0..1)).unwrap();
    /// assert_eq!(doc.list(list).unwrap(), [Value::from(2)]);
    /// ```
    pub fn list_delete(&mut self, list: ListId, range: Range<usize>) -> Result<(), DocError> {
        check_range(&range, self.list_len_checked(list)?)?;
        if range.is_empty() {
            return Ok(());
        }
        let span = self.events(range.len());
        let mut removed = Vec::new();
        let tracking_paths = !self.doc.listeners.is_empty();
        if let Some(Container::List(seq)) = self.doc.containers.get_mut(&list.0) {
            if tracking_paths && holds_container(&seq.doc[range.start..]) {
                self.paths.clear(); // container elements go or move
            }
            seq.log.push_delete(span.clone(), range.start, true);
            removed = seq.doc.drain(range.clone()).collect();
        }
        let last = span.end - 1;
        self.doc.record_sequence_ops(span, list.0);
        self.record(|| Recorded::ListRemoved {
            container: list.0,
            last,
            index: range.start,
            values: removed.clone(),
        });
        self.undo.push(Undo::ListRemoved {
            container: list.0,
            at: range.start,
            values: removed,
        });
        self.patch(
            list.0,
            PatchAction::ListDelete {
                index: range.start,
                len: range.len(),
            },
        );
        Ok(())
    }

    // ---- texts ----------------------------------------------------------------------------

    fn text_len_checked(&self, text: TextId) -> Result<usize, DocError> {
        self.check_kind(text.0, ContainerKind::Text)?;
        self.doc.text_len(text)
    }

    /// Inserts `content` at char `index` of `text`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.transact(|tx| tx.text_insert(text, 0, "héllo")).unwrap();
    /// assert_eq!(doc.text_len(text).unwrap(), 5);
    /// ```
    pub fn text_insert(
        &mut self,
        text: TextId,
        index: usize,
        content: &str,
    ) -> Result<(), DocError> {
        let len = self.text_len_checked(text)?;
        if index > len {
            return Err(DocError::OutOfRange { index, len });
        }
        let chars = content.chars().count();
        if chars == 0 {
            return Ok(());
        }
        let span = self.events(chars);
        if let Some(Container::Text(seq)) = self.doc.containers.get_mut(&text.0) {
            seq.log.push_insert(span.clone(), index, content);
            seq.doc.insert(index, content);
        }
        let last = span.end - 1;
        self.doc.record_sequence_ops(span, text.0);
        self.record(|| Recorded::Inserted {
            container: text.0,
            last,
            index,
            len: chars,
        });
        self.undo.push(Undo::Inserted {
            container: text.0,
            at: index,
            len: chars,
        });
        self.patch(
            text.0,
            PatchAction::TextInsert {
                index,
                text: content.to_owned(),
            },
        );
        Ok(())
    }

    /// Deletes the chars `range` of `text`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "hello").unwrap();
    /// doc.transact(|tx| tx.text_delete(text, 1..4)).unwrap();
    /// assert_eq!(doc.text(text).unwrap(), "ho");
    /// ```
    pub fn text_delete(&mut self, text: TextId, range: Range<usize>) -> Result<(), DocError> {
        check_range(&range, self.text_len_checked(text)?)?;
        if range.is_empty() {
            return Ok(());
        }
        let span = self.events(range.len());
        let mut removed = String::new();
        if let Some(Container::Text(seq)) = self.doc.containers.get_mut(&text.0) {
            seq.log.push_delete(span.clone(), range.start, true);
            removed = crate::sequence::content::TextContent::doc_remove(
                &mut seq.doc,
                range.start,
                range.len(),
            );
        }
        let last = span.end - 1;
        self.doc.record_sequence_ops(span, text.0);
        self.record(|| Recorded::TextRemoved {
            container: text.0,
            last,
            index: range.start,
            text: removed.clone(),
        });
        self.undo.push(Undo::TextRemoved {
            container: text.0,
            at: range.start,
            text: removed.clone(),
        });
        self.patch(
            text.0,
            PatchAction::TextDelete {
                index: range.start,
                len: range.len(),
                text: removed,
            },
        );
        Ok(())
    }

    /// Inserts `content` at a UTF-16 index of `text` (JavaScript).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "😀!").unwrap();
    /// // "😀" is two UTF-16 units: JavaScript's index 2 is char index 1.
    /// doc.transact(|tx| tx.text_insert_utf16(text, 2, "?")).unwrap();
    /// assert_eq!(doc.text(text).unwrap(), "😀?!");
    /// ```
    pub fn text_insert_utf16(
        &mut self,
        text: TextId,
        index: usize,
        content: &str,
    ) -> Result<(), DocError> {
        let index = self.doc.text_utf16_to_char(text, index)?;
        self.text_insert(text, index, content)
    }

    /// Deletes a range of UTF-16 indices of `text` (JavaScript).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "😀ab").unwrap();
    /// doc.transact(|tx| tx.text_delete_utf16(text, 0..2)).unwrap();
    /// assert_eq!(doc.text(text).unwrap(), "ab");
    /// ```
    pub fn text_delete_utf16(&mut self, text: TextId, range: Range<usize>) -> Result<(), DocError> {
        let start = self.doc.text_utf16_to_char(text, range.start)?;
        let end = self.doc.text_utf16_to_char(text, range.end)?;
        self.text_delete(text, start..end)
    }

    // ---- counters and registers -----------------------------------------------------------

    /// Adds `by` to `counter` (wrapping at the ends of `i64`, so additions commute).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let counter = doc.replace_with_new_counter(MapId::ROOT, "c").unwrap();
    /// doc.transact(|tx| {
    ///     tx.counter_add(counter, 5)?;
    ///     tx.counter_add(counter, -2)
    /// }).unwrap();
    /// assert_eq!(doc.counter(counter).unwrap(), 3);
    /// ```
    pub fn counter_add(&mut self, counter: CounterId, by: i64) -> Result<(), DocError> {
        self.check_kind(counter.0, ContainerKind::Counter)?;
        let lv = self.events(1).start;
        if let Some(Container::Counter(value)) = self.doc.containers.get_mut(&counter.0) {
            *value = value.wrapping_add(by);
        }
        self.doc.scalar_ops.push((
            lv,
            ScalarOp::Increment {
                counter: counter.0,
                by,
            },
        ));
        self.record(|| Recorded::Incremented {
            counter: counter.0,
            by,
        });
        self.undo.push(Undo::Counter {
            counter: counter.0,
            by,
        });
        self.patch(counter.0, PatchAction::Increment { by });
        Ok(())
    }

    fn write_register(
        &mut self,
        register: RegisterId,
        value: Option<Value>,
    ) -> Result<(), DocError> {
        self.check_kind(register.0, ContainerKind::Register)?;
        let pred: SmallVec<[Lv; 1]> = match self.doc.containers.get(&register.0) {
            Some(Container::Register(entries)) => entries.iter().map(|e| e.lv).collect(),
            _ => SmallVec::new(),
        };
        if value.is_none() && pred.is_empty() {
            return Ok(());
        }
        let lv = self.events(1).start;
        let rank = (self.doc.graph.lamport_of(lv), self.doc.replica);
        let new = value.clone().map(|value| Entry { lv, rank, value });
        let mut shown = None;
        let mut winner_before = None;
        if let Some(Container::Register(entries)) = self.doc.containers.get_mut(&register.0) {
            let before = write(entries, &pred, new);
            shown = entries.last().map(|e| e.value.clone());
            winner_before = Some(before.last().map(|e| e.value.clone()));
            if before
                .last()
                .is_some_and(|e| e.value.as_container().is_some())
            {
                self.paths.clear(); // that container is no longer reachable here
            }
            self.undo.push(Undo::Register {
                register: register.0,
                before,
            });
        }
        self.doc.scalar_ops.push((
            lv,
            ScalarOp::RegisterSet {
                register: register.0,
                value,
                pred,
            },
        ));
        if let Some(before) = winner_before {
            let after = shown.clone();
            self.record(|| Recorded::RegisterWritten {
                register: register.0,
                before,
                after,
            });
        }
        self.patch(register.0, PatchAction::RegisterSet { value: shown });
        Ok(())
    }

    /// Sets `register` to a scalar value.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let reg = doc.replace_with_new_register(MapId::ROOT, "r").unwrap();
    /// doc.transact(|tx| tx.register_set(reg, 7)).unwrap();
    /// assert_eq!(doc.register(reg).unwrap(), Some(&Value::from(7)));
    /// ```
    pub fn register_set(
        &mut self,
        register: RegisterId,
        value: impl Into<Value>,
    ) -> Result<(), DocError> {
        let value = Self::scalar(value)?;
        self.write_register(register, Some(value))
    }

    /// Clears `register` (the writes this replica has seen).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let reg = doc.replace_with_new_register(MapId::ROOT, "r").unwrap();
    /// doc.register_set(reg, 7).unwrap();
    /// doc.transact(|tx| tx.register_clear(reg)).unwrap();
    /// assert_eq!(doc.register(reg).unwrap(), None);
    /// ```
    pub fn register_clear(&mut self, register: RegisterId) -> Result<(), DocError> {
        self.write_register(register, None)
    }
}

/// Refuses a range that is reversed or reaches past `len`.
fn check_range(range: &Range<usize>, len: usize) -> Result<(), DocError> {
    if range.start > range.end || range.end > len {
        return Err(DocError::OutOfRange {
            index: range.end.max(range.start),
            len,
        });
    }
    Ok(())
}

/// True if any of `values` is a container.
fn holds_container(values: &[Value]) -> bool {
    values.iter().any(|v| v.as_container().is_some())
}
