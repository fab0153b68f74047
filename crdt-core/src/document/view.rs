//! Reading the document as it was at an earlier version, without copying it (time travel).
//!
//! A [`DocumentView`] borrows the document and names a version. Nothing is computed up front:
//! each container is worked out from the document's own history the first time it is read,
//! and kept in the view for later reads.
//! - Maps and registers: the writes within the version, applied in order with the live rule
//!   (a write drops the writes it names; concurrent ones stay side by side as conflicts).
//! - Counters: the sum of the increments within the version.
//! - Lists and texts: Eg-walker's merge of the container's own operations within the version
//!   into an empty sequence ([`crate::sequence::merge::checkout`]): sequential stretches are
//!   plain edits, concurrent ones replay their conflict zone in a temporary tracker.
//!
//! So reading one text of a large document costs that text's operations (plus a walk over the
//! version's runs of events), and the view's memory is the containers it has read. At the
//! current version the view reads the live state directly.
//!
//! A document loaded from a shallow snapshot (or compacted) has no operations before its base:
//! it can be viewed at its current version only.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::ops::{Deref, Range};
use std::sync::Arc;

use super::state::{Container, Entries, Entry, ScalarOp, Seq, write};
use super::{
    ContainerId, ContainerKind, CounterId, DocError, Document, HistoryError, ListId, MapId,
    RegisterId, TextId, Value,
};
use crate::causal_graph::{Frontier, Lv};
use crate::sequence::merge::checkout;
use crate::sequence::oplog::OpLog;
use crate::{Dot, VersionVector};

/// The document as it was at an earlier version, read-only, borrowed from the document
/// (built by [`Document::view_at`]).
///
/// Reading methods mirror [`Document`]'s and return owned values. Each container is computed
/// from the history the first time it is read (see the module documentation for the cost) and
/// kept for later reads of the same view. To edit from that version, use
/// [`Document::fork_at`].
///
/// ```
/// use crdt_core::{Document, MapId, ReplicaId, Value};
///
/// let mut doc = Document::new(ReplicaId::from_u128(1));
/// doc.set(MapId::ROOT, "status", "draft").unwrap();
/// let draft = doc.version();
/// doc.set(MapId::ROOT, "status", "final").unwrap();
///
/// let then = doc.view_at(&draft).unwrap();
/// assert_eq!(then.get(MapId::ROOT, "status").unwrap(), Some(Value::from("draft")));
/// assert_eq!(then.version(), &draft);
/// ```
pub struct DocumentView<'a> {
    doc: &'a Document,
    version: VersionVector,
    /// The events within the version, ascending; `None` at the current version (read live).
    events: Option<Vec<Range<Lv>>>,
    /// The version's heads.
    frontier: Frontier,
    /// The containers computed so far.
    computed: RefCell<HashMap<ContainerId, Arc<Container>>>,
    /// The map, register and counter operations within the version, by container: grouped in
    /// one pass on the first read of such a container, so that reading all of them costs the
    /// operations once, not once per container.
    scalar_ops: OnceCell<HashMap<ContainerId, Vec<(Lv, &'a ScalarOp)>>>,
}

impl std::fmt::Debug for DocumentView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentView")
            .field("version", &self.version)
            .field("computed", &self.computed.borrow().len())
            .finish()
    }
}

/// A container as a view holds it: the live one, or one computed at the view's version.
enum Held<'a> {
    Live(&'a Container),
    Computed(Arc<Container>),
}

impl Deref for Held<'_> {
    type Target = Container;

    fn deref(&self) -> &Container {
        match self {
            Held::Live(container) => container,
            Held::Computed(container) => container,
        }
    }
}

impl<'a> DocumentView<'a> {
    /// A view of `doc` at `version`, which [`Document::check_version`] accepted.
    pub(super) fn new(
        doc: &'a Document,
        version: &VersionVector,
    ) -> Result<DocumentView<'a>, HistoryError> {
        let (events, frontier) = if *version == doc.version() {
            (None, doc.graph.frontier().clone())
        } else if let Some(base) = doc.graph.shallow_base() {
            // The operations before the base are gone: only the current state is known.
            return Err(HistoryError::HistoryTrimmed {
                base: base.version.clone(),
            });
        } else {
            let events = doc
                .graph
                .spans_between(&VersionVector::new(), Some(version));
            (Some(events), doc.graph.frontier_of(version))
        };
        Ok(DocumentView {
            doc,
            version: version.clone(),
            events,
            frontier,
            computed: RefCell::new(HashMap::new()),
            scalar_ops: OnceCell::new(),
        })
    }

    /// The version this view shows.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, VersionVector};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// assert_eq!(doc.view_at(&VersionVector::new()).unwrap().version(), &VersionVector::new());
    /// ```
    pub fn version(&self) -> &VersionVector {
        &self.version
    }

    /// The heads of the version: its latest events, which every other event of it precedes.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// let (version, heads) = (doc.version(), doc.heads());
    /// doc.set(MapId::ROOT, "k", 2).unwrap();
    /// assert_eq!(doc.view_at(&version).unwrap().heads(), heads);
    /// ```
    pub fn heads(&self) -> Vec<Dot> {
        self.doc.graph.frontier_to_dots(&self.frontier)
    }

    /// The kind of container `id`, if it existed at this version.
    ///
    /// ```
    /// use crdt_core::{ContainerKind, Document, MapId, ReplicaId, VersionVector};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// let view = doc.view_at(&VersionVector::new()).unwrap();
    /// assert_eq!(view.kind_of(list.id()), None); // created later
    /// ```
    pub fn kind_of(&self, id: ContainerId) -> Option<ContainerKind> {
        let kind = self.doc.kind_of(id)?;
        self.existed(id).then_some(kind)
    }

    fn existed(&self, mut id: ContainerId) -> bool {
        loop {
            return match id {
                ContainerId::Root => true,
                ContainerId::Created(dot) => self.events.is_none() || self.version.contains(dot),
                // A named container is where its name puts it, empty until written: it
                // exists wherever its map does (a loop, not recursion: chains are deep).
                ContainerId::Named(_) => match self.doc.placements.get(&id) {
                    Some(placement) => {
                        id = placement.parent;
                        continue;
                    }
                    None => false,
                },
            };
        }
    }

    /// Container `id` at this version: computed on its first read, then kept.
    fn container(&self, id: ContainerId) -> Result<Held<'a>, DocError> {
        let live = self
            .doc
            .containers
            .get(&id)
            .ok_or(DocError::NoSuchContainer(id))?;
        let Some(events) = &self.events else {
            return Ok(Held::Live(live));
        };
        if !self.existed(id) {
            return Err(DocError::NoSuchContainer(id));
        }
        if let Some(computed) = self.computed.borrow().get(&id) {
            return Ok(Held::Computed(Arc::clone(computed)));
        }
        let computed = Arc::new(self.compute(id, live, events)?);
        self.computed.borrow_mut().insert(id, Arc::clone(&computed));
        Ok(Held::Computed(computed))
    }

    /// Works out container `id` (whose current state is `live`) from the operations within
    /// `events`.
    fn compute(
        &self,
        id: ContainerId,
        live: &Container,
        events: &[Range<Lv>],
    ) -> Result<Container, DocError> {
        let graph = &self.doc.graph;
        let entry = |lv: Lv, value: &Option<Value>| {
            value.clone().map(|value| Entry {
                lv,
                rank: (graph.lamport_of(lv), graph.lv_to_dot(lv).replica),
                value,
            })
        };
        let unreadable = |_| DocError::HistoryUnreadable(id);
        let by_container = self.scalar_ops.get_or_init(|| {
            let mut by_container: HashMap<ContainerId, Vec<(Lv, &ScalarOp)>> = HashMap::new();
            for (lv, op) in scalar_ops_within(&self.doc.scalar_ops, events) {
                by_container
                    .entry(op.container())
                    .or_default()
                    .push((lv, op));
            }
            by_container
        });
        let ops_of_this = by_container.get(&id).map_or(&[][..], Vec::as_slice);
        Ok(match live {
            Container::Map(_) => {
                let mut keys: BTreeMap<String, Entries> = BTreeMap::new();
                for &(lv, op) in ops_of_this {
                    if let ScalarOp::MapSet {
                        key, value, pred, ..
                    } = op
                    {
                        let current = keys.entry(key.clone()).or_default();
                        write(current, pred, entry(lv, value));
                        if current.is_empty() {
                            keys.remove(key);
                        }
                    }
                }
                Container::Map(keys)
            }
            Container::Register(_) => {
                let mut entries = Entries::new();
                for &(lv, op) in ops_of_this {
                    if let ScalarOp::RegisterSet { value, pred, .. } = op {
                        write(&mut entries, pred, entry(lv, value));
                    }
                }
                Container::Register(entries)
            }
            Container::Counter(_) => {
                let mut total = 0i64;
                for &(_, op) in ops_of_this {
                    if let ScalarOp::Increment { by, .. } = op {
                        total = total.wrapping_add(*by);
                    }
                }
                Container::Counter(total)
            }
            Container::Text(seq) => Container::Text(Seq {
                log: OpLog::default(),
                doc: checkout(graph, &seq.log, events, &self.frontier).map_err(unreadable)?,
            }),
            Container::List(seq) => Container::List(Seq {
                log: OpLog::default(),
                doc: checkout(graph, &seq.log, events, &self.frontier).map_err(unreadable)?,
            }),
        })
    }

    /// Reads the keys of `map` at this version.
    fn read_map<R>(
        &self,
        map: MapId,
        read: impl FnOnce(&BTreeMap<String, Entries>) -> R,
    ) -> Result<R, DocError> {
        let held = self.container(map.0)?;
        match &*held {
            Container::Map(keys) => Ok(read(keys)),
            other => Err(Document::wrong_kind(map.0, ContainerKind::Map, other)),
        }
    }

    /// Reads the surviving writes of `key` in `map` (sorted by rank, the winner last).
    fn read_key<R>(
        &self,
        map: MapId,
        key: &str,
        read: impl FnOnce(&[Entry]) -> R,
    ) -> Result<R, DocError> {
        self.read_map(map, |keys| {
            read(keys.get(key).map_or(&[][..], |entries| &entries[..]))
        })
    }

    /// The value of `key` in `map` at this version: the winner if writes were concurrent.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "n", 1).unwrap();
    /// let v1 = doc.version();
    /// doc.delete(MapId::ROOT, "n").unwrap();
    /// assert_eq!(doc.view_at(&v1).unwrap().get(MapId::ROOT, "n").unwrap(), Some(Value::from(1)));
    /// ```
    pub fn get(&self, map: MapId, key: &str) -> Result<Option<Value>, DocError> {
        self.read_key(map, key, |entries| entries.last().map(|e| e.value.clone()))
    }

    /// Every value of `key` written concurrently at this version, the winner first.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    /// let mut a = Document::new(ReplicaId::from_u128(1));
    /// let mut b = Document::new(ReplicaId::from_u128(2));
    /// a.set(MapId::ROOT, "colour", "red").unwrap();
    /// b.set(MapId::ROOT, "colour", "blue").unwrap();
    /// a.merge(&b).unwrap();
    /// let both = a.version();
    /// a.set(MapId::ROOT, "colour", "green").unwrap(); // resolves the conflict
    /// assert_eq!(a.view_at(&both).unwrap().get_conflicts(MapId::ROOT, "colour").unwrap().len(), 2);
    /// ```
    pub fn get_conflicts(&self, map: MapId, key: &str) -> Result<Vec<Value>, DocError> {
        self.read_key(map, key, |entries| {
            super::distinct_containers(entries.iter().rev().map(|e| e.value.clone()))
        })
    }

    /// The keys of `map` at this version, in order.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "a", 1).unwrap();
    /// let v1 = doc.version();
    /// doc.set(MapId::ROOT, "b", 2).unwrap();
    /// assert_eq!(doc.view_at(&v1).unwrap().keys(MapId::ROOT).unwrap(), ["a"]);
    /// ```
    pub fn keys(&self, map: MapId) -> Result<Vec<String>, DocError> {
        self.read_map(map, |keys| keys.keys().cloned().collect())
    }

    /// The number of keys of `map` at this version.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, VersionVector};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "a", 1).unwrap();
    /// assert_eq!(doc.view_at(&VersionVector::new()).unwrap().map_len(MapId::ROOT).unwrap(), 0);
    /// ```
    pub fn map_len(&self, map: MapId) -> Result<usize, DocError> {
        self.read_map(map, BTreeMap::len)
    }

    /// Reads the elements of `list` at this version.
    fn read_list<R>(&self, list: ListId, read: impl FnOnce(&[Value]) -> R) -> Result<R, DocError> {
        let held = self.container(list.0)?;
        match &*held {
            Container::List(seq) => Ok(read(&seq.doc)),
            other => Err(Document::wrong_kind(list.0, ContainerKind::List, other)),
        }
    }

    /// The elements of `list` at this version.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// doc.list_insert(list, 0, 1).unwrap();
    /// let v1 = doc.version();
    /// doc.list_delete(list, 0..1).unwrap();
    /// assert_eq!(doc.view_at(&v1).unwrap().list(list).unwrap(), [Value::from(1)]);
    /// ```
    pub fn list(&self, list: ListId) -> Result<Vec<Value>, DocError> {
        self.read_list(list, <[Value]>::to_vec)
    }

    /// The number of elements of `list` at this version.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// let empty = doc.version();
    /// doc.list_insert(list, 0, true).unwrap();
    /// assert_eq!(doc.view_at(&empty).unwrap().list_len(list).unwrap(), 0);
    /// ```
    pub fn list_len(&self, list: ListId) -> Result<usize, DocError> {
        self.read_list(list, <[Value]>::len)
    }

    /// The element at `index` of `list` at this version.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// doc.list_insert(list, 0, "x").unwrap();
    /// let v1 = doc.version();
    /// doc.list_insert(list, 0, "y").unwrap();
    /// assert_eq!(doc.view_at(&v1).unwrap().list_get(list, 0).unwrap(), Some(Value::from("x")));
    /// ```
    pub fn list_get(&self, list: ListId, index: usize) -> Result<Option<Value>, DocError> {
        self.read_list(list, |values| values.get(index).cloned())
    }

    /// Reads the rope of `text` at this version.
    fn read_text<R>(
        &self,
        text: TextId,
        read: impl FnOnce(&crate::rope::Rope) -> R,
    ) -> Result<R, DocError> {
        let held = self.container(text.0)?;
        match &*held {
            Container::Text(seq) => Ok(read(&seq.doc)),
            other => Err(Document::wrong_kind(text.0, ContainerKind::Text, other)),
        }
    }

    /// The content of `text` at this version.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "Hello").unwrap();
    /// let v1 = doc.version();
    /// doc.text_insert(text, 5, ", world").unwrap();
    /// assert_eq!(doc.view_at(&v1).unwrap().text(text).unwrap(), "Hello");
    /// ```
    pub fn text(&self, text: TextId) -> Result<String, DocError> {
        self.read_text(text, ToString::to_string)
    }

    /// The length of `text` in chars at this version.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "né").unwrap();
    /// let v1 = doc.version();
    /// doc.text_insert(text, 2, "e").unwrap();
    /// assert_eq!(doc.view_at(&v1).unwrap().text_len(text).unwrap(), 2);
    /// ```
    pub fn text_len(&self, text: TextId) -> Result<usize, DocError> {
        self.read_text(text, crate::rope::Rope::len_chars)
    }

    /// The length of `text` in UTF-16 code units at this version.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "😀").unwrap();
    /// let v1 = doc.version();
    /// doc.text_insert(text, 0, "a").unwrap();
    /// assert_eq!(doc.view_at(&v1).unwrap().text_len_utf16(text).unwrap(), 2);
    /// ```
    pub fn text_len_utf16(&self, text: TextId) -> Result<usize, DocError> {
        self.read_text(text, |rope| rope.metrics().utf16)
    }

    /// The value of `counter` at this version.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let counter = doc.replace_with_new_counter(MapId::ROOT, "c").unwrap();
    /// doc.counter_add(counter, 4).unwrap();
    /// let v1 = doc.version();
    /// doc.counter_add(counter, 1).unwrap();
    /// assert_eq!(doc.view_at(&v1).unwrap().counter(counter).unwrap(), 4);
    /// ```
    pub fn counter(&self, counter: CounterId) -> Result<i64, DocError> {
        let held = self.container(counter.0)?;
        match &*held {
            Container::Counter(value) => Ok(*value),
            other => Err(Document::wrong_kind(
                counter.0,
                ContainerKind::Counter,
                other,
            )),
        }
    }

    /// Reads the surviving writes of `register` (sorted by rank, the winner last).
    fn read_register<R>(
        &self,
        register: RegisterId,
        read: impl FnOnce(&[Entry]) -> R,
    ) -> Result<R, DocError> {
        let held = self.container(register.0)?;
        match &*held {
            Container::Register(entries) => Ok(read(entries)),
            other => Err(Document::wrong_kind(
                register.0,
                ContainerKind::Register,
                other,
            )),
        }
    }

    /// The value of `register` at this version: the winner if writes were concurrent.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let reg = doc.replace_with_new_register(MapId::ROOT, "r").unwrap();
    /// doc.register_set(reg, "on").unwrap();
    /// let v1 = doc.version();
    /// doc.register_set(reg, "off").unwrap();
    /// assert_eq!(doc.view_at(&v1).unwrap().register(reg).unwrap(), Some(Value::from("on")));
    /// ```
    pub fn register(&self, register: RegisterId) -> Result<Option<Value>, DocError> {
        self.read_register(register, |entries| entries.last().map(|e| e.value.clone()))
    }

    /// Every value of `register` written concurrently at this version, the winner first.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let reg = doc.replace_with_new_register(MapId::ROOT, "r").unwrap();
    /// let mut other = doc.fork(ReplicaId::from_u128(2));
    /// doc.register_set(reg, 1).unwrap();
    /// other.register_set(reg, 2).unwrap();
    /// doc.merge(&other).unwrap();
    /// let both = doc.version();
    /// doc.register_set(reg, 3).unwrap();
    /// assert_eq!(doc.view_at(&both).unwrap().register_conflicts(reg).unwrap().len(), 2);
    /// ```
    pub fn register_conflicts(&self, register: RegisterId) -> Result<Vec<Value>, DocError> {
        self.read_register(register, |entries| {
            entries.iter().rev().map(|e| e.value.clone()).collect()
        })
    }

    /// The document at this version as JSON (see [`Document::to_json`]).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "a", 1).unwrap();
    /// let v1 = doc.version();
    /// doc.set(MapId::ROOT, "b", 2).unwrap();
    /// assert_eq!(doc.view_at(&v1).unwrap().to_json(), serde_json::json!({ "a": 1 }));
    /// ```
    #[cfg(feature = "json")]
    pub fn to_json(&self) -> serde_json::Value {
        super::json::container_json(self, ContainerId::Root)
    }
}

#[cfg(feature = "json")]
impl super::json::ContainerSource for DocumentView<'_> {
    fn read_container<R>(&self, id: ContainerId, read: impl FnOnce(Option<&Container>) -> R) -> R {
        // A container that cannot be read at this version shows as absent (null), as an
        // unknown container does in the live export.
        match self.container(id) {
            Ok(held) => read(Some(&held)),
            Err(_) => read(None),
        }
    }
}

/// The operations of `ops` (ascending by event) whose event is within `events` (ascending
/// spans).
fn scalar_ops_within<'o, 'e>(
    ops: &'o [(Lv, ScalarOp)],
    events: &'e [Range<Lv>],
) -> impl Iterator<Item = (Lv, &'o ScalarOp)> + use<'o, 'e> {
    let end = events.last().map_or(0, |span| span.end);
    let mut spans = events.iter().peekable();
    ops.iter()
        .take_while(move |(lv, _)| *lv < end)
        .filter_map(move |(lv, op)| {
            while spans.next_if(|span| span.end <= *lv).is_some() {}
            spans
                .peek()
                .filter(|span| span.start <= *lv)
                .map(|_| (*lv, op))
        })
}
