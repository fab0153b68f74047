//! The state of each container, and the operations that change maps, registers and counters.
//!
//! Lists and texts are sequences (the Eg-walker CRDT of [`crate::sequence`]) whose operation
//! logs live here too, keyed by the document's shared event numbering. Maps and registers keep,
//! per key, every write that no other write has overwritten (a multi-value register per key):
//! a write names the writes it overwrites (`pred`, the ones its author saw), so concurrent writes
//! survive side by side as conflicts and the greatest by (Lamport timestamp, replica) is shown.

use std::collections::BTreeMap;

use smallvec::SmallVec;

use super::value::{ContainerId, ContainerKind, Value};
use crate::ReplicaId;
use crate::causal_graph::Lv;
use crate::sequence::content::{Content, ListContent, TextContent};
use crate::sequence::oplog::OpLog;

/// One surviving write of a map key or register.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    /// The event that wrote it.
    pub(crate) lv: Lv,
    /// Its rank among concurrent writes: (Lamport timestamp, replica); the greatest wins.
    pub(crate) rank: (u64, ReplicaId),
    pub(crate) value: Value,
}

/// Surviving writes, sorted by rank (the winner last). Never empty when stored.
pub(crate) type Entries = SmallVec<[Entry; 1]>;

/// Applies a write (or, with `value == None`, a delete) that overwrites the writes `pred`.
/// Returns the entries as they were, for undo.
pub(crate) fn write(entries: &mut Entries, pred: &[Lv], new: Option<Entry>) -> Entries {
    let before = entries.clone();
    entries.retain(|e| !pred.contains(&e.lv));
    if let Some(new) = new {
        let at = entries.partition_point(|e| e.rank < new.rank);
        entries.insert(at, new);
    }
    before
}

/// A sequence container: its operations (keyed by document events) and its current content.
pub(crate) struct Seq<C: Content> {
    pub(crate) log: OpLog<C>,
    pub(crate) doc: C::Doc,
}

impl<C: Content> Clone for Seq<C> {
    fn clone(&self) -> Self {
        Seq {
            log: self.log.clone(),
            doc: self.doc.clone(),
        }
    }
}

impl<C: Content> Default for Seq<C> {
    fn default() -> Self {
        Seq {
            log: OpLog::default(),
            doc: C::Doc::default(),
        }
    }
}

/// The content of a list container.
pub(crate) type ListContentOf = ListContent<Value>;

/// The state of one container.
#[derive(Clone)]
pub(crate) enum Container {
    Map(BTreeMap<String, Entries>),
    List(Seq<ListContentOf>),
    Text(Seq<TextContent>),
    Counter(i64),
    Register(Entries),
}

impl Container {
    pub(crate) fn new(kind: ContainerKind) -> Container {
        match kind {
            ContainerKind::Map => Container::Map(BTreeMap::new()),
            ContainerKind::List => Container::List(Seq::default()),
            ContainerKind::Text => Container::Text(Seq::default()),
            ContainerKind::Counter => Container::Counter(0),
            ContainerKind::Register => Container::Register(Entries::new()),
        }
    }

    pub(crate) fn kind(&self) -> ContainerKind {
        match self {
            Container::Map(_) => ContainerKind::Map,
            Container::List(_) => ContainerKind::List,
            Container::Text(_) => ContainerKind::Text,
            Container::Counter(_) => ContainerKind::Counter,
            Container::Register(_) => ContainerKind::Register,
        }
    }
}

/// An operation on a map, register or counter (sequence operations live in the containers'
/// logs). Kept per event for history and for sending to other replicas.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ScalarOp {
    /// Writes (or deletes, `None`) `key` of a map, overwriting the writes `pred`.
    MapSet {
        map: ContainerId,
        key: String,
        value: Option<Value>,
        pred: SmallVec<[Lv; 1]>,
    },
    /// Writes (or clears, `None`) a register, overwriting the writes `pred`.
    RegisterSet {
        register: ContainerId,
        value: Option<Value>,
        pred: SmallVec<[Lv; 1]>,
    },
    /// Adds `by` to a counter.
    Increment { counter: ContainerId, by: i64 },
}

impl ScalarOp {
    /// The container the operation writes.
    pub(crate) fn container(&self) -> ContainerId {
        match self {
            ScalarOp::MapSet { map, .. } => *map,
            ScalarOp::RegisterSet { register, .. } => *register,
            ScalarOp::Increment { counter, .. } => *counter,
        }
    }
}
