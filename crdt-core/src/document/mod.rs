//! The JSON-like document: a root map holding nested maps, lists, texts, counters and
//! registers, edited in transactions and synced as changes.
//!
//! One causal graph numbers every event of the document (one event per inserted or deleted
//! element and per map, register or counter operation); a transaction is a run of events of one
//! replica, a *change*, the unit of sync and storage. Lists and texts are the sequence CRDT of
//! [`crate::sequence`] sharing that graph; maps and registers keep concurrent writes as
//! conflicts ([`state`]).
//!
//! - [`Document`]: reading, subscribing, versions, encoding;
//! - `transaction`: local edits ([`Transaction`]);
//! - `change`: changes as they travel, and applying remote ones;
//! - `encoding`: the binary forms of updates and snapshots;
//! - `history`: earlier versions, changes between versions, forks at a version, reverts;
//! - `open`: a transaction kept open across calls, for bindings ([`OpenTransaction`]);
//! - `undo`: undo/redo of the local replica's changes ([`UndoManager`]);
//! - `compaction`: dropping history every replica has acknowledged (shallow form in place).

mod change;
mod compaction;
mod cursors;
mod encoding;
mod events;
mod history;
mod inspect;
#[cfg(feature = "json")]
mod json;
mod named;
mod open;
mod paths;
mod state;
mod transaction;
mod undo;
mod value;
mod view;

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

pub use events::{Listener, Origin, Patch, PatchAction, Path, PathSegment, SubscriptionId};
pub use history::{ChangeInfo, HistoryError};
pub use inspect::{UpdateInfo, UpdateKind};
#[cfg(feature = "json")]
pub use json::JsonStrings;
pub use open::OpenTransaction;
pub use transaction::{ChangeOptions, Transaction};
pub use undo::UndoManager;
pub use value::{
    ContainerId, ContainerKind, CounterId, ListId, MapId, NamedId, RegisterId, TextId, Value,
};
pub use view::DocumentView;

use crate::causal_graph::{CausalGraph, Frontier, Lv};
use crate::rope::Unit;
use crate::sequence::LoadError;
use crate::{Dot, ReplicaId, VersionVector};
use state::{Container, Entries, ScalarOp};

/// Why a document operation was refused. Nothing changed when this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocError {
    /// No container has this id (yet): it was never created, or its creation has not arrived.
    NoSuchContainer(ContainerId),
    /// The container is of another kind than the operation needs.
    WrongKind {
        /// The container.
        container: ContainerId,
        /// The kind the operation works on.
        expected: ContainerKind,
        /// The container's kind.
        found: ContainerKind,
    },
    /// An index past the end of a list or text.
    OutOfRange {
        /// The index given.
        index: usize,
        /// The length in the same unit.
        len: usize,
    },
    /// A UTF-16 or UTF-8 index inside a character.
    NotCharBoundary {
        /// The index given.
        index: usize,
    },
    /// Containers are created with the `*_at` and `*_new` operations, not stored as values: a
    /// container has exactly one place in the document.
    ContainerAsValue,
    /// A `*_at` operation asked for a container of one kind at a key that shows something
    /// else; nothing was written. Usually two versions of an app disagreeing about the
    /// document's shape (one replica made a text where another expects a list).
    KeyHolds {
        /// The map.
        map: ContainerId,
        /// The key.
        key: String,
        /// The kind asked for.
        expected: ContainerKind,
        /// The kind of container the key shows, or `None` for a scalar value.
        found: Option<ContainerKind>,
    },
    /// The stored operations of this container do not replay to an earlier version (a bug or
    /// a corrupt store: they were accepted before). Only time-travel reads return it; the live
    /// state is unaffected.
    HistoryUnreadable(ContainerId),
    /// The new container would be nested deeper than the document's limit
    /// ([`Document::max_depth`]).
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// [`Document::set_max_depth`] was given a limit of 0 or above the ceiling.
    DepthLimitOutOfRange {
        /// The limit asked for.
        requested: usize,
        /// The greatest limit accepted ([`Document::MAX_DEPTH_CEILING`]).
        ceiling: usize,
    },
}

impl fmt::Display for DocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocError::NoSuchContainer(id) => write!(f, "no container {id:?} in this document"),
            DocError::WrongKind {
                container,
                expected,
                found,
            } => write!(
                f,
                "container {container:?} is a {found:?}, not a {expected:?}"
            ),
            DocError::OutOfRange { index, len } => {
                write!(f, "index {index} is out of range for length {len}")
            }
            DocError::NotCharBoundary { index } => {
                write!(f, "index {index} falls inside a character")
            }
            DocError::ContainerAsValue => f.write_str(
                "a container cannot be stored as a value; create it with a *_at or *_new operation",
            ),
            DocError::KeyHolds {
                key,
                expected,
                found,
                ..
            } => match found {
                Some(found) => write!(f, "key {key:?} holds a {found:?}, not a {expected:?}"),
                None => write!(f, "key {key:?} holds a value, not a {expected:?}"),
            },
            DocError::HistoryUnreadable(id) => write!(
                f,
                "the stored history of container {id:?} does not replay to that version"
            ),
            DocError::TooDeep { limit } => write!(
                f,
                "containers may be nested at most {limit} deep in this document"
            ),
            DocError::DepthLimitOutOfRange { requested, ceiling } => write!(
                f,
                "a nesting limit must be between 1 and {ceiling}, not {requested}"
            ),
        }
    }
}

impl std::error::Error for DocError {}

/// Where a container was created: in which container, and under which key for maps.
#[derive(Clone, Debug)]
struct Placement {
    parent: ContainerId,
    key: Option<String>,
    /// How many containers lie on the way from the root, this one included (a child of the
    /// root has depth 1). Fixed at creation, since a container never moves.
    depth: usize,
}

/// Metadata of a change (a committed transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
struct ChangeMeta {
    start: Lv,
    message: Option<String>,
    timestamp: Option<i64>,
}

/// A JSON-like collaborative document.
///
/// Edit it with single operations (each its own change) or in a [`transact`](Self::transact)
/// closure (one change, all or nothing); read it through typed handles; sync it with
/// [`update_since`](Self::update_since) and [`apply_update`](Self::apply_update).
///
/// ```
/// use crdt_core::{Document, MapId, ReplicaId};
///
/// let mut doc = Document::new(ReplicaId::from_u128(1));
/// let title = doc.text_at(MapId::ROOT, "title").unwrap(); // shared by every replica
/// doc.text_insert(title, 0, "Shopping").unwrap();
/// let items = doc.list_at(MapId::ROOT, "items").unwrap();
/// doc.transact(|tx| {
///     tx.list_insert(items, 0, "milk")?;
///     tx.list_insert(items, 1, "eggs")?;
///     Ok(())
/// })
/// .unwrap();
///
/// let mut other = Document::new(ReplicaId::from_u128(2));
/// other.apply_update(&doc.update_since(&other.version())).unwrap();
/// assert_eq!(other.text(title).unwrap(), "Shopping");
/// assert_eq!(other.list_len(items).unwrap(), 2);
/// ```
pub struct Document {
    replica: ReplicaId,
    agent: Option<u32>,
    graph: CausalGraph,
    containers: HashMap<ContainerId, Container>,
    placements: HashMap<ContainerId, Placement>,
    /// Map, register and counter operations, by event, ascending.
    scalar_ops: Vec<(Lv, ScalarOp)>,
    /// Which sequence container holds the operation of each event that has one, ascending.
    sequence_ops: Vec<(Range<Lv>, ContainerId)>,
    changes: Vec<ChangeMeta>,
    listeners: Vec<(SubscriptionId, Listener)>,
    next_subscription: u64,
    /// Whether local commits are recorded for an [`UndoManager`].
    recording: bool,
    /// Local commits an undo manager has not taken yet.
    recorded: Vec<undo::RecordedCommit>,
    /// The deepest a container may be nested (see [`Document::max_depth`]).
    max_depth: usize,
}

impl PartialEq for Document {
    /// State equality: the same events (version) and the same state, conflicts included.
    /// The replica id, subscribers, limits and how much history is kept (a compacted or
    /// shallow document equals a full one with the same version and state) are not compared.
    /// Costs a walk over every container.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut a = Document::new(ReplicaId::from_u128(1));
    /// a.set(MapId::ROOT, "k", 1).unwrap();
    /// let mut b = Document::new(ReplicaId::from_u128(2));
    /// assert!(a != b);
    /// b.merge(&a).unwrap();
    /// assert!(a == b);
    /// ```
    fn eq(&self, other: &Document) -> bool {
        self.version() == other.version()
            && encoding::state_of(&self.containers, |lv| self.graph.lv_to_dot(lv))
                == encoding::state_of(&other.containers, |lv| other.graph.lv_to_dot(lv))
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("replica", &self.replica)
            .field("version", &self.version())
            .field("containers", &self.containers.len())
            .finish()
    }
}

impl Document {
    /// An empty document (an empty root map) whose edits will be made as `replica`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// assert_eq!(doc.to_json(), serde_json::json!({}));
    /// ```
    pub fn new(replica: ReplicaId) -> Document {
        let mut containers = HashMap::new();
        containers.insert(ContainerId::Root, Container::new(ContainerKind::Map));
        Document {
            replica,
            agent: None,
            graph: CausalGraph::default(),
            containers,
            placements: HashMap::new(),
            scalar_ops: Vec::new(),
            sequence_ops: Vec::new(),
            changes: Vec::new(),
            listeners: Vec::new(),
            next_subscription: 0,
            recording: false,
            recorded: Vec::new(),
            max_depth: Document::DEFAULT_MAX_DEPTH,
        }
    }

    /// The nesting limit documents start with: a container may sit at most this many
    /// containers deep (a child of the root is at depth 1). Real documents stay far below it;
    /// it exists so that a peer cannot make every replica's costs grow with a chain of
    /// thousands of nested containers.
    pub const DEFAULT_MAX_DEPTH: usize = 512;

    /// The greatest nesting limit [`set_max_depth`](Self::set_max_depth) accepts.
    ///
    /// Everything in this crate walks containers without recursion, but an app that turns a
    /// document into nested values (`serde_json::Value` from [`to_json`](Self::to_json), whose
    /// drop and serialization recurse) needs stack in proportion to the depth: this ceiling
    /// keeps that under 1 MiB (tested on a thread of that size).
    pub const MAX_DEPTH_CEILING: usize = 4096;

    /// How deep containers may be nested in this document: creating a container deeper fails
    /// with [`DocError::TooDeep`], and a remote update or snapshot that does is refused whole
    /// with [`LoadError::TooDeep`].
    ///
    /// ```
    /// use crdt_core::{DocError, Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set_max_depth(2).unwrap();
    /// let outer = doc.replace_with_new_map(MapId::ROOT, "outer").unwrap(); // depth 1
    /// let inner = doc.replace_with_new_map(outer, "inner").unwrap(); // depth 2
    /// assert_eq!(doc.replace_with_new_map(inner, "deeper"), Err(DocError::TooDeep { limit: 2 }));
    /// assert_eq!(doc.max_depth(), 2);
    /// ```
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Sets the nesting limit (see [`max_depth`](Self::max_depth)); between 1 and
    /// [`MAX_DEPTH_CEILING`](Self::MAX_DEPTH_CEILING). Containers already deeper stay; new
    /// ones are checked. To load stored data nested deeper than the default, set the limit on
    /// an empty document first, then [`apply_update`](Self::apply_update) (which is what
    /// [`load`](Self::load) does with the default).
    ///
    /// ```
    /// use crdt_core::{Document, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// assert!(doc.set_max_depth(0).is_err());
    /// assert!(doc.set_max_depth(Document::MAX_DEPTH_CEILING + 1).is_err());
    /// doc.set_max_depth(64).unwrap();
    /// ```
    pub fn set_max_depth(&mut self, depth: usize) -> Result<(), DocError> {
        if !(1..=Document::MAX_DEPTH_CEILING).contains(&depth) {
            return Err(DocError::DepthLimitOutOfRange {
                requested: depth,
                ceiling: Document::MAX_DEPTH_CEILING,
            });
        }
        self.max_depth = depth;
        Ok(())
    }

    /// How deep container `id` is (the root: 0).
    fn depth_of(&self, id: ContainerId) -> usize {
        self.placements.get(&id).map_or(0, |p| p.depth)
    }

    /// An empty document editing as `replica`, with this one's limits.
    fn empty_like(&self, replica: ReplicaId) -> Document {
        let mut empty = Document::new(replica);
        empty.max_depth = self.max_depth;
        empty
    }

    /// A copy with the whole history whose edits will be made as `replica` (without the
    /// subscribers). This is how to get a second writer: give it a replica id no other copy
    /// edits as (a fresh `ReplicaId::random()` is always right), edit both, and merge either
    /// way.
    ///
    /// `Document` is deliberately not `Clone`: a clone would edit as the same replica, so two
    /// writers would give different events the same ids and their edits would collide. For a
    /// copy that keeps this replica's identity (a backup that will never edit while the
    /// original does), see [`duplicate_same_replica`](Document::duplicate_same_replica).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// let mut branch = doc.fork(ReplicaId::from_u128(2));
    /// assert_ne!(branch.replica(), doc.replica());
    /// branch.set(MapId::ROOT, "k", 2).unwrap();
    /// doc.merge(&branch).unwrap();
    /// assert_eq!(doc.get(MapId::ROOT, "k").unwrap(), Some(&Value::from(2)));
    /// ```
    ///
    /// A document cannot be cloned:
    ///
    /// ```compile_fail,E0599
    /// use crdt_core::{Document, ReplicaId};
    /// let doc = Document::new(ReplicaId::from_u128(1));
    /// let copy = doc.clone(); // error: `Document` is not `Clone`; use `fork`
    /// ```
    pub fn fork(&self, replica: ReplicaId) -> Document {
        let mut fork = self.copy_as(replica);
        fork.agent = None;
        fork
    }

    /// A copy with the same history and state that still edits as **this** replica (without
    /// the subscribers or undo recording).
    ///
    /// Right only when the copy and the original will never both edit: a backup, a snapshot of this
    /// replica's state to read, merge into or encode elsewhere, or a checkpoint to roll back to
    /// (drop the original and carry on with the copy, provided nothing the original made since the
    /// copy was sent or saved anywhere: its dots would be issued twice; if it was, fork the
    /// checkpoint instead). Two live copies that both edit would give different edits the same
    /// dots: other replicas keep one and drop the other as already known (or refuse it), so the
    /// copies never converge. For a second writer use [`fork`](Document::fork).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// let checkpoint = doc.duplicate_same_replica();
    /// doc.set(MapId::ROOT, "k", 2).unwrap();
    /// // Roll back: the original is dropped, only the checkpoint edits from now on.
    /// let mut doc = checkpoint;
    /// assert_eq!(doc.get(MapId::ROOT, "k").unwrap(), Some(&Value::from(1)));
    /// assert_eq!(doc.replica(), ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 3).unwrap();
    /// ```
    pub fn duplicate_same_replica(&self) -> Document {
        self.copy_as(self.replica)
    }

    /// A copy with the same history and state, without subscribers or undo recording, editing
    /// as `replica` (the caller resets the agent when `replica` is another one).
    fn copy_as(&self, replica: ReplicaId) -> Document {
        Document {
            replica,
            agent: self.agent,
            graph: self.graph.clone(),
            containers: self.containers.clone(),
            placements: self.placements.clone(),
            scalar_ops: self.scalar_ops.clone(),
            sequence_ops: self.sequence_ops.clone(),
            changes: self.changes.clone(),
            listeners: Vec::new(),
            next_subscription: 0,
            recording: false,
            recorded: Vec::new(),
            max_depth: self.max_depth,
        }
    }

    /// The replica local edits are made as.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// assert_eq!(doc.replica(), ReplicaId::from_u128(1));
    /// ```
    pub fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// The version: how many events of each replica the document includes.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// assert_eq!(doc.version().get(ReplicaId::from_u128(1)), 1);
    /// ```
    pub fn version(&self) -> VersionVector {
        self.graph.version_vector()
    }

    /// The heads of the history: the latest events, which every other event precedes.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// assert_eq!(doc.heads().len(), 1);
    /// ```
    pub fn heads(&self) -> Vec<Dot> {
        self.graph.frontier_to_dots(self.graph.frontier())
    }

    /// How many events the history holds.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "abc").unwrap();
    /// assert_eq!(doc.history_len(), 4); // one event per char, plus the creation
    /// ```
    pub fn history_len(&self) -> usize {
        self.graph.len()
    }

    // ---- reading --------------------------------------------------------------------------

    fn container(&self, id: ContainerId) -> Result<&Container, DocError> {
        self.containers
            .get(&id)
            .ok_or(DocError::NoSuchContainer(id))
    }

    fn wrong_kind(id: ContainerId, expected: ContainerKind, found: &Container) -> DocError {
        DocError::WrongKind {
            container: id,
            expected,
            found: found.kind(),
        }
    }

    fn map_entries(
        &self,
        map: MapId,
    ) -> Result<&std::collections::BTreeMap<String, Entries>, DocError> {
        match self.container(map.0)? {
            Container::Map(entries) => Ok(entries),
            other => Err(Self::wrong_kind(map.0, ContainerKind::Map, other)),
        }
    }

    /// The value of `key` in `map`: the winner if writes were concurrent.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "n", 1).unwrap();
    /// assert_eq!(doc.get(MapId::ROOT, "n").unwrap(), Some(&Value::from(1)));
    /// assert_eq!(doc.get(MapId::ROOT, "missing").unwrap(), None);
    /// ```
    pub fn get(&self, map: MapId, key: &str) -> Result<Option<&Value>, DocError> {
        Ok(self
            .map_entries(map)?
            .get(key)
            .and_then(|entries| entries.last())
            .map(|e| &e.value))
    }

    /// Every value of `key` written concurrently, the winner first (one value if there is no
    /// conflict, none if the key is absent).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, Value};
    ///
    /// let mut a = Document::new(ReplicaId::from_u128(1));
    /// let mut b = Document::new(ReplicaId::from_u128(2));
    /// a.set(MapId::ROOT, "colour", "red").unwrap();
    /// b.set(MapId::ROOT, "colour", "blue").unwrap(); // concurrently
    /// a.merge(&b).unwrap();
    /// let both = a.get_conflicts(MapId::ROOT, "colour").unwrap();
    /// assert_eq!(both.len(), 2);
    /// assert_eq!(Some(both[0]), a.get(MapId::ROOT, "colour").unwrap()); // the winner first
    /// ```
    pub fn get_conflicts(&self, map: MapId, key: &str) -> Result<Vec<&Value>, DocError> {
        Ok(self
            .map_entries(map)?
            .get(key)
            .map(|entries| distinct_containers(entries.iter().rev().map(|e| &e.value)))
            .unwrap_or_default())
    }

    /// The keys of `map`, in order.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "b", 1).unwrap();
    /// doc.set(MapId::ROOT, "a", 2).unwrap();
    /// assert_eq!(doc.keys(MapId::ROOT).unwrap(), ["a", "b"]);
    /// ```
    pub fn keys(&self, map: MapId) -> Result<Vec<&str>, DocError> {
        Ok(self.map_entries(map)?.keys().map(String::as_str).collect())
    }

    /// The number of keys of `map`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "a", 1).unwrap();
    /// assert_eq!(doc.map_len(MapId::ROOT).unwrap(), 1);
    /// ```
    pub fn map_len(&self, map: MapId) -> Result<usize, DocError> {
        Ok(self.map_entries(map)?.len())
    }

    fn list_values(&self, list: ListId) -> Result<&Vec<Value>, DocError> {
        match self.container(list.0)? {
            Container::List(seq) => Ok(&seq.doc),
            other => Err(Self::wrong_kind(list.0, ContainerKind::List, other)),
        }
    }

    /// The number of elements of `list`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// doc.list_insert(list, 0, true).unwrap();
    /// assert_eq!(doc.list_len(list).unwrap(), 1);
    /// ```
    pub fn list_len(&self, list: ListId) -> Result<usize, DocError> {
        Ok(self.list_values(list)?.len())
    }

    /// The element at `index` of `list`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// doc.list_insert(list, 0, "x").unwrap();
    /// assert_eq!(doc.list_get(list, 0).unwrap(), Some(&Value::from("x")));
    /// ```
    pub fn list_get(&self, list: ListId, index: usize) -> Result<Option<&Value>, DocError> {
        Ok(self.list_values(list)?.get(index))
    }

    /// The elements of `list`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// doc.list_insert(list, 0, 1).unwrap();
    /// assert_eq!(doc.list(list).unwrap(), [Value::from(1)]);
    /// ```
    pub fn list(&self, list: ListId) -> Result<&[Value], DocError> {
        Ok(self.list_values(list)?)
    }

    fn rope(&self, text: TextId) -> Result<&crate::rope::Rope, DocError> {
        match self.container(text.0)? {
            Container::Text(seq) => Ok(&seq.doc),
            other => Err(Self::wrong_kind(text.0, ContainerKind::Text, other)),
        }
    }

    /// The content of `text`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "hey").unwrap();
    /// assert_eq!(doc.text(text).unwrap(), "hey");
    /// ```
    pub fn text(&self, text: TextId) -> Result<String, DocError> {
        Ok(self.rope(text)?.to_string())
    }

    /// The length of `text` in chars.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "né").unwrap();
    /// assert_eq!(doc.text_len(text).unwrap(), 2);
    /// ```
    pub fn text_len(&self, text: TextId) -> Result<usize, DocError> {
        Ok(self.rope(text)?.len_chars())
    }

    /// The length of `text` in UTF-16 code units (JavaScript's `string.length`).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "😀").unwrap();
    /// assert_eq!(doc.text_len_utf16(text).unwrap(), 2);
    /// ```
    pub fn text_len_utf16(&self, text: TextId) -> Result<usize, DocError> {
        Ok(self.rope(text)?.metrics().utf16)
    }

    /// Converts a UTF-16 index of `text` to a char index.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "😀a").unwrap();
    /// assert_eq!(doc.text_utf16_to_char(text, 2).unwrap(), 1);
    /// assert!(doc.text_utf16_to_char(text, 1).is_err()); // inside the emoji
    /// ```
    pub fn text_utf16_to_char(&self, text: TextId, index: usize) -> Result<usize, DocError> {
        let rope = self.rope(text)?;
        if index > rope.metrics().utf16 {
            return Err(DocError::OutOfRange {
                index,
                len: rope.metrics().utf16,
            });
        }
        rope.to_chars(index, Unit::Utf16)
            .ok_or(DocError::NotCharBoundary { index })
    }

    /// Converts a char index of `text` to a UTF-16 index.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "😀a").unwrap();
    /// assert_eq!(doc.text_char_to_utf16(text, 1).unwrap(), 2);
    /// ```
    pub fn text_char_to_utf16(&self, text: TextId, index: usize) -> Result<usize, DocError> {
        let rope = self.rope(text)?;
        if index > rope.len_chars() {
            return Err(DocError::OutOfRange {
                index,
                len: rope.len_chars(),
            });
        }
        Ok(rope.convert(index, Unit::Chars, Unit::Utf16))
    }

    /// The value of `counter`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let counter = doc.replace_with_new_counter(MapId::ROOT, "c").unwrap();
    /// doc.counter_add(counter, 4).unwrap();
    /// assert_eq!(doc.counter(counter).unwrap(), 4);
    /// ```
    pub fn counter(&self, counter: CounterId) -> Result<i64, DocError> {
        match self.container(counter.0)? {
            Container::Counter(value) => Ok(*value),
            other => Err(Self::wrong_kind(counter.0, ContainerKind::Counter, other)),
        }
    }

    fn register_entries(&self, register: RegisterId) -> Result<&Entries, DocError> {
        match self.container(register.0)? {
            Container::Register(entries) => Ok(entries),
            other => Err(Self::wrong_kind(register.0, ContainerKind::Register, other)),
        }
    }

    /// The value of `register`: the winner if writes were concurrent.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let reg = doc.replace_with_new_register(MapId::ROOT, "r").unwrap();
    /// assert_eq!(doc.register(reg).unwrap(), None);
    /// doc.register_set(reg, "on").unwrap();
    /// assert_eq!(doc.register(reg).unwrap(), Some(&Value::from("on")));
    /// ```
    pub fn register(&self, register: RegisterId) -> Result<Option<&Value>, DocError> {
        Ok(self.register_entries(register)?.last().map(|e| &e.value))
    }

    /// Every value of `register` written concurrently, the winner first.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let reg = doc.replace_with_new_register(MapId::ROOT, "r").unwrap();
    /// let mut other = doc.fork(ReplicaId::from_u128(2));
    /// doc.register_set(reg, 1).unwrap();
    /// other.register_set(reg, 2).unwrap();
    /// doc.merge(&other).unwrap();
    /// assert_eq!(doc.register_conflicts(reg).unwrap().len(), 2);
    /// ```
    pub fn register_conflicts(&self, register: RegisterId) -> Result<Vec<&Value>, DocError> {
        Ok(self
            .register_entries(register)?
            .iter()
            .rev()
            .map(|e| &e.value)
            .collect())
    }

    /// The kind of container `id`, if the document has it.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// assert_eq!(doc.kind_of(list.id()), Some(ContainerKind::List));
    /// ```
    pub fn kind_of(&self, id: ContainerId) -> Option<ContainerKind> {
        self.containers.get(&id).map(Container::kind)
    }

    /// Where named container `id` is: its map, its key and its kind (`None` for other ids
    /// and for named containers this replica has not seen).
    pub(crate) fn named_place(
        &self,
        id: ContainerId,
    ) -> Option<(ContainerId, String, ContainerKind)> {
        if !matches!(id, ContainerId::Named(_)) {
            return None;
        }
        let placement = self.placements.get(&id)?;
        let kind = self.containers.get(&id)?.kind();
        Some((placement.parent, placement.key.clone()?, kind))
    }

    /// Where container `id` is, from the root; `None` if it is not reachable (its key was
    /// overwritten or its list element deleted) or unknown.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, PathSegment, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let todo = doc.replace_with_new_list(MapId::ROOT, "todo").unwrap();
    /// assert_eq!(doc.path_of(todo.id()), Some(vec![PathSegment::Key("todo".into())]));
    /// doc.delete(MapId::ROOT, "todo").unwrap();
    /// assert_eq!(doc.path_of(todo.id()), None);
    /// ```
    pub fn path_of(&self, id: ContainerId) -> Option<Vec<PathSegment>> {
        paths::PathResolver::default()
            .path(self, id)
            .map(|path| path.to_vec())
    }

    // ---- sync ---------------------------------------------------------------------------

    /// Everything this replica has that a replica at `version` lacks, encoded: a batch of
    /// changes for [`apply_update`](Self::apply_update).
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// let mut other = Document::new(ReplicaId::from_u128(2));
    /// other.apply_update(&doc.update_since(&other.version())).unwrap();
    /// assert_eq!(other.to_json(), doc.to_json());
    /// ```
    pub fn update_since(&self, version: &VersionVector) -> Vec<u8> {
        if let Some(base) = self.shallow_base()
            && !version.includes(base)
        {
            // Loaded from a shallow snapshot, and the replica lacks part of its base: the
            // snapshot again, which an empty replica loads and any other refuses with
            // `LoadError::HistoryTrimmed` (see `try_update_since`).
            return self.encode();
        }
        encoding::encode(self, &self.wire_changes(version, None), None)
    }

    /// The changes that version `until` has and `since` lacks, encoded. `until` must be a
    /// version of this document (causally closed, as every [`version`](Self::version) is).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, VersionVector};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "a", 1).unwrap();
    /// let v1 = doc.version();
    /// doc.set(MapId::ROOT, "b", 2).unwrap();
    /// let mut old = Document::new(ReplicaId::from_u128(2));
    /// old.apply_update(&doc.update_between(&VersionVector::new(), &v1)).unwrap();
    /// assert_eq!(old.to_json(), serde_json::json!({ "a": 1 }));
    /// ```
    pub fn update_between(&self, since: &VersionVector, until: &VersionVector) -> Vec<u8> {
        let since = &self.sendable_since(since);
        encoding::encode(self, &self.wire_changes(since, Some(until)), None)
    }

    /// Takes over the history and state of `fresh`, a document a snapshot was installed into
    /// (this one was empty), keeping this one's replica id and subscribers, and tells the
    /// subscribers what appeared. Returns how many events came.
    fn adopt_installed(&mut self, fresh: Document) -> usize {
        let events = fresh.graph.len();
        let patches = if self.listeners.is_empty() {
            Vec::new()
        } else {
            fresh.expansion_of_root()
        };
        self.graph = fresh.graph;
        self.containers = fresh.containers;
        self.placements = fresh.placements;
        self.scalar_ops = fresh.scalar_ops;
        self.sequence_ops = fresh.sequence_ops;
        self.changes = fresh.changes;
        self.notify(Origin::Remote, &patches);
        events
    }

    /// Applies an update or snapshot from any replica: the changes this document lacks are
    /// added and merged, all or nothing, and subscribers receive the patches. Returns how many
    /// events were new.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// let update = doc.update_since(&crdt_core::VersionVector::new());
    /// let mut other = Document::new(ReplicaId::from_u128(2));
    /// assert_eq!(other.apply_update(&update), Ok(1));
    /// assert_eq!(other.apply_update(&update), Ok(0)); // already there: nothing new
    /// ```
    pub fn apply_update(&mut self, bytes: &[u8]) -> Result<usize, LoadError> {
        let decoded = encoding::decode(bytes)?;
        if decoded.shallow.is_some() {
            return self.apply_shallow(decoded);
        }
        if self.graph.len() == 0
            && let Some(state) = &decoded.state
        {
            // A snapshot into an empty replica: install its state, no replay.
            let mut fresh = self.empty_like(self.replica);
            fresh.install_snapshot(&decoded.changes, state)?;
            return Ok(self.adopt_installed(fresh));
        }
        self.apply_decoded(&decoded.changes)
    }

    /// Patches that show a freshly loaded document from nothing.
    fn expansion_of_root(&self) -> Vec<Patch> {
        let mut out = Vec::new();
        let mut expanded = std::collections::HashSet::new();
        self.expand(Path::root(), ContainerId::Root, &mut out, &mut expanded);
        out
    }

    fn apply_decoded(&mut self, changes: &[change::Change]) -> Result<usize, LoadError> {
        let before = self.graph.len();
        let patches = self.apply_changes(changes, !self.listeners.is_empty())?;
        self.notify(Origin::Remote, &patches);
        Ok(self.graph.len() - before)
    }

    /// Brings in everything `other` has that this document lacks.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let mut other = Document::new(ReplicaId::from_u128(2));
    /// other.set(MapId::ROOT, "from", "other").unwrap();
    /// doc.merge(&other).unwrap();
    /// assert_eq!(doc.get(MapId::ROOT, "from").unwrap(), Some(&Value::from("other")));
    /// ```
    pub fn merge(&mut self, other: &Document) -> Result<usize, LoadError> {
        if let Some(base) = other.shallow_base()
            && !self.version().includes(base)
        {
            // Loads `other`'s shallow snapshot if this document is empty, else refuses it.
            return self.apply_update(&other.encode());
        }
        let changes = other.wire_changes(&other.sendable_since(&self.version()), None);
        self.apply_decoded(&changes)
    }

    /// The whole document with its history, encoded. [`Document::load`] reads it back; it is
    /// also a valid update for [`apply_update`](Self::apply_update). A document loaded from a
    /// shallow snapshot encodes shallow again, at the same base
    /// ([`encode_shallow`](Self::encode_shallow)).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "saved", true).unwrap();
    /// let restored = Document::load(&doc.encode(), ReplicaId::from_u128(1)).unwrap();
    /// assert_eq!(restored.to_json(), doc.to_json());
    /// assert_eq!(restored.version(), doc.version());
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        if let Some(base) = self.shallow_base()
            && let Ok(bytes) = self.encode_shallow(base)
        {
            // Loaded from a shallow snapshot: shallow again, at the same base.
            return bytes;
        }
        let state = encoding::state_of(&self.containers, |lv| self.graph.lv_to_dot(lv));
        encoding::encode(
            self,
            &self.wire_changes(&VersionVector::new(), None),
            Some(&state),
        )
    }

    /// Loads an encoded document (a snapshot loads without replaying its history; an update
    /// is applied); edits will be made as `replica`.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// let copy = Document::load(&doc.encode(), ReplicaId::from_u128(2)).unwrap();
    /// assert_eq!(copy.to_json(), doc.to_json());
    /// ```
    pub fn load(bytes: &[u8], replica: ReplicaId) -> Result<Document, LoadError> {
        let mut doc = Document::new(replica);
        doc.apply_update(bytes)?;
        Ok(doc)
    }

    // ---- bookkeeping ----------------------------------------------------------------------

    /// Records that the events `span` are operations of sequence container `container`.
    fn record_sequence_ops(&mut self, span: Range<Lv>, container: ContainerId) {
        match self.sequence_ops.last_mut() {
            Some((last, owner)) if last.end == span.start && *owner == container => {
                last.end = span.end;
            }
            _ => self.sequence_ops.push((span, container)),
        }
    }

    /// Forgets every event from `start` on (undoing a failed transaction or update; the
    /// containers' states were restored by the caller).
    fn forget_events_from(&mut self, start: Lv, frontier: Frontier) {
        self.graph.truncate(start, frontier);
        let keep = self.scalar_ops.partition_point(|(lv, _)| *lv < start);
        self.scalar_ops.truncate(keep);
        let first = self
            .sequence_ops
            .partition_point(|(span, _)| span.end <= start);
        for (_, container) in &self.sequence_ops[first..] {
            match self.containers.get_mut(container) {
                Some(Container::List(seq)) => seq.log.truncate(start),
                Some(Container::Text(seq)) => seq.log.truncate(start),
                _ => {}
            }
        }
        // A run that straddles `start` keeps its part before it: a failed transaction or
        // update may have extended the run of the change before it.
        let keep = self
            .sequence_ops
            .partition_point(|(span, _)| span.start < start);
        self.sequence_ops.truncate(keep);
        if let Some((span, _)) = self.sequence_ops.last_mut() {
            span.end = span.end.min(start);
        }
        self.sequence_ops.retain(|(span, _)| !span.is_empty());
        self.changes.retain(|change| change.start < start);
    }

    // ---- subscriptions --------------------------------------------------------------------

    /// Calls `listener` with the patches of every later commit and applied update.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use crdt_core::{Document, MapId, Origin, PatchAction, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = Arc::clone(&seen);
    /// doc.subscribe(Box::new(move |origin, patches| {
    ///     sink.lock().unwrap().extend(patches.iter().map(|p| (origin, p.action.clone())));
    /// }));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// let seen = seen.lock().unwrap();
    /// assert!(matches!(&seen[0], (Origin::Local, PatchAction::MapSet { key, .. }) if key == "k"));
    /// ```
    pub fn subscribe(&mut self, listener: Listener) -> SubscriptionId {
        let id = SubscriptionId(self.next_subscription);
        self.next_subscription += 1;
        self.listeners.push((id, listener));
        id
    }

    /// Stops calling a subscriber; returns false if it was not subscribed.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let id = doc.subscribe(Box::new(|_, _| {}));
    /// assert!(doc.unsubscribe(id));
    /// assert!(!doc.unsubscribe(id));
    /// ```
    pub fn unsubscribe(&mut self, id: SubscriptionId) -> bool {
        let before = self.listeners.len();
        self.listeners.retain(|(sub, _)| *sub != id);
        self.listeners.len() != before
    }

    fn notify(&mut self, origin: Origin, patches: &[Patch]) {
        if patches.is_empty() {
            return;
        }
        for (_, listener) in &mut self.listeners {
            listener(origin, patches);
        }
    }

    // ---- editing --------------------------------------------------------------------------

    fn local_agent(&mut self) -> u32 {
        match self.agent {
            Some(agent) => agent,
            None => {
                let agent = self.graph.agent(self.replica);
                self.agent = Some(agent);
                agent
            }
        }
    }

    /// Runs `edit` as one transaction: every operation in it becomes one change, committed
    /// when `edit` returns `Ok`, or entirely undone when it returns `Err`.
    ///
    /// ```
    /// use crdt_core::{DocError, Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// let failed: Result<(), DocError> = doc.transact(|tx| {
    ///     tx.list_insert(list, 0, 1)?;
    ///     tx.list_insert(list, 9, 2) // out of range: the insert before is undone too
    /// });
    /// assert!(failed.is_err());
    /// assert_eq!(doc.list_len(list).unwrap(), 0);
    /// ```
    pub fn transact<R>(
        &mut self,
        edit: impl FnOnce(&mut Transaction<'_>) -> Result<R, DocError>,
    ) -> Result<R, DocError> {
        self.transact_with(ChangeOptions::default(), edit)
    }

    /// Like [`transact`](Self::transact), and also returns the update holding exactly this
    /// change, to send to peers as it is made (op-based delivery: the receivers apply updates
    /// in any order, buffering none; one that arrives before a change it depends on is
    /// refused with [`LoadError::MissingEvent`] and is sent again later, or covered by a
    /// catch-up from [`update_since`](Self::update_since)). An edit that changed nothing
    /// gives an update without changes.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let mut peer = Document::new(ReplicaId::from_u128(2));
    /// let (title, update) = doc
    ///     .transact_update(|tx| {
    ///         let title = tx.text_at(MapId::ROOT, "title")?;
    ///         tx.text_insert(title, 0, "Hello")?;
    ///         Ok(title)
    ///     })
    ///     .unwrap();
    /// peer.apply_update(&update).unwrap(); // sent over the network
    /// assert_eq!(peer.text(title).unwrap(), "Hello");
    /// ```
    pub fn transact_update<R>(
        &mut self,
        edit: impl FnOnce(&mut Transaction<'_>) -> Result<R, DocError>,
    ) -> Result<(R, Vec<u8>), DocError> {
        let before = self.version();
        let result = self.transact(edit)?;
        Ok((result, self.update_since(&before)))
    }

    /// Like [`transact`](Self::transact), with a message and timestamp for the change.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// use crdt_core::ChangeOptions;
    /// let options = ChangeOptions { message: Some("rename".into()), timestamp: Some(1_700_000_000_000) };
    /// doc.transact_with(options, |tx| tx.set(MapId::ROOT, "name", "Ada")).unwrap();
    /// assert_eq!(doc.get(MapId::ROOT, "name").unwrap(), Some(&Value::from("Ada")));
    /// ```
    pub fn transact_with<R>(
        &mut self,
        options: ChangeOptions,
        edit: impl FnOnce(&mut Transaction<'_>) -> Result<R, DocError>,
    ) -> Result<R, DocError> {
        let mut tx = Transaction::begin(self, options);
        match edit(&mut tx) {
            Ok(result) => {
                let patches = tx.commit();
                self.notify(Origin::Local, &patches);
                Ok(result)
            }
            Err(error) => {
                tx.roll_back();
                Err(error)
            }
        }
    }
}

/// `values` with each container once: replicas that concurrently open one named container
/// each write it, which is one value, not a conflict.
pub(crate) fn distinct_containers<'v, V: std::borrow::Borrow<Value> + 'v>(
    values: impl Iterator<Item = V>,
) -> Vec<V> {
    let mut out: Vec<V> = Vec::new();
    for value in values {
        let duplicate = value.borrow().as_container().is_some()
            && out.iter().any(|seen| seen.borrow() == value.borrow());
        if !duplicate {
            out.push(value);
        }
    }
    out
}

/// Single operations: each is a transaction of its own (one change).
macro_rules! single_operations {
    ($( $(#[$doc:meta])* fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Document {
            $(
                $(#[$doc])*
                pub fn $name(&mut self $(, $arg: $ty)*) -> Result<$ret, DocError> {
                    self.transact(|tx| tx.$name($($arg),*))
                }
            )*
        }
    };
}

single_operations! {
    /// Sets `key` of `map` to a scalar value.
    fn set(&mut self, map: MapId, key: &str, value: impl Into<Value>) -> ();
    /// Deletes `key` of `map` (as far as this replica has seen it written).
    fn delete(&mut self, map: MapId, key: &str) -> ();
    /// The map at `key` of `map`, shared by every replica that asks for it (see
    /// [`Transaction::map_at`]).
    fn map_at(&mut self, map: MapId, key: &str) -> MapId;
    /// The list at `key` of `map`, shared by every replica that asks for it (see
    /// [`Transaction::list_at`]).
    fn list_at(&mut self, map: MapId, key: &str) -> ListId;
    /// The text at `key` of `map`, shared by every replica that asks for it (see
    /// [`Transaction::text_at`]).
    fn text_at(&mut self, map: MapId, key: &str) -> TextId;
    /// The counter at `key` of `map`, shared by every replica that asks for it (see
    /// [`Transaction::counter_at`]).
    fn counter_at(&mut self, map: MapId, key: &str) -> CounterId;
    /// The register at `key` of `map`, shared by every replica that asks for it (see
    /// [`Transaction::register_at`]).
    fn register_at(&mut self, map: MapId, key: &str) -> RegisterId;
    /// Replaces `key` of `map` with a new, empty map of its own (see
    /// [`Transaction::replace_with_new_map`]).
    fn replace_with_new_map(&mut self, map: MapId, key: &str) -> MapId;
    /// Replaces `key` of `map` with a new, empty list of its own.
    fn replace_with_new_list(&mut self, map: MapId, key: &str) -> ListId;
    /// Replaces `key` of `map` with a new, empty text of its own.
    fn replace_with_new_text(&mut self, map: MapId, key: &str) -> TextId;
    /// Replaces `key` of `map` with a new counter of its own, at 0.
    fn replace_with_new_counter(&mut self, map: MapId, key: &str) -> CounterId;
    /// Replaces `key` of `map` with a new, empty register of its own.
    fn replace_with_new_register(&mut self, map: MapId, key: &str) -> RegisterId;
    /// Inserts a scalar value at `index` of `list`.
    fn list_insert(&mut self, list: ListId, index: usize, value: impl Into<Value>) -> ();
    /// Inserts a new, empty container of `kind` at `index` of `list`.
    fn list_insert_new(&mut self, list: ListId, index: usize, kind: ContainerKind) -> ContainerId;
    /// Deletes the elements `range` of `list`.
    fn list_delete(&mut self, list: ListId, range: Range<usize>) -> ();
    /// Inserts `content` at char `index` of `text`.
    fn text_insert(&mut self, text: TextId, index: usize, content: &str) -> ();
    /// Deletes the chars `range` of `text`.
    fn text_delete(&mut self, text: TextId, range: Range<usize>) -> ();
    /// Inserts `content` at a UTF-16 index of `text` (JavaScript).
    fn text_insert_utf16(&mut self, text: TextId, index: usize, content: &str) -> ();
    /// Deletes a range of UTF-16 indices of `text` (JavaScript).
    fn text_delete_utf16(&mut self, text: TextId, range: Range<usize>) -> ();
    /// Adds `by` to `counter`.
    fn counter_add(&mut self, counter: CounterId, by: i64) -> ();
    /// Sets `register` to a scalar value.
    fn register_set(&mut self, register: RegisterId, value: impl Into<Value>) -> ();
    /// Clears `register` (as far as this replica has seen it written).
    fn register_clear(&mut self, register: RegisterId) -> ();
}
