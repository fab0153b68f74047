//! Undo and redo of the local replica's own changes, correct while others keep editing.
//!
//! While an [`UndoManager`] is attached, every local transaction records what its operations
//! did, anchored to the version right after each operation (a local version of this replica,
//! so records live in memory only). Undoing applies the inverse operations as a new local
//! change, at the *current* positions of what they refer to:
//! - inserted elements (text or list) are found again by identity (the Eg-walker tracker
//!   follows them from the version after the insert to now) and deleted if still there;
//!   elements others inserted between them are left alone;
//! - deleted text or values are inserted again (as new elements) just after the element that
//!   preceded them, or if that one is gone, just before the one that followed them;
//! - a map key or register written by the step gets its previous value back, unless someone
//!   overwrote it since (their write wins: undo never clobbers a later edit of another
//!   replica);
//! - a counter increment is taken back by the opposite increment.
//!
//! Limits: a container value that comes back (a deleted list element or an overwritten map
//! key holding a container) comes back as a new container holding a copy of the old one's
//! current content, since a container has one place forever (copying clones the document
//! once). Later undo steps on the old container apply to the copy for map keys, registers and
//! counters, but list and text operations inside it are not undone (the copy's elements are
//! new elements). Restored elements are new elements, so an anchor to an element that an
//! undo deleted and a redo brought back is lost: undoing several steps and redoing them, or
//! undoing a step with several list or text operations on one container, can put restored
//! content at another place than before; and undoing a step that inserted elements and then
//! deleted some of them brings those back (their re-insertion is a new element the step's
//! insert does not name). Steps of one list or text operation each, undone and redone one at
//! a time, are exact (tested). Cursors are not restored.

use std::collections::{HashMap, HashSet};

use super::history::copy_container;
use super::state::Container;
use super::{
    ContainerId, ContainerKind, CounterId, DocError, Document, ListId, MapId, RegisterId, TextId,
    Transaction, Value,
};
use crate::causal_graph::{Frontier, Lv};
use crate::sequence::merge::{gap_position_now, positions_now};

/// What one local operation did, as an undo manager needs it.
#[derive(Clone, Debug)]
pub(super) enum Recorded {
    /// `len` elements inserted at `index` of the version right after event `last`.
    Inserted {
        container: ContainerId,
        last: Lv,
        index: usize,
        len: usize,
    },
    /// `text` deleted at `index`; the version right after the deletion ends with `last`.
    TextRemoved {
        container: ContainerId,
        last: Lv,
        index: usize,
        text: String,
    },
    /// `values` deleted at `index`, likewise.
    ListRemoved {
        container: ContainerId,
        last: Lv,
        index: usize,
        values: Vec<Value>,
    },
    /// `key` of `map` showed `before` and was set to `after` (`None`: deleted).
    MapWritten {
        map: ContainerId,
        key: String,
        before: Option<Value>,
        after: Option<Value>,
    },
    /// `register` showed `before` and was set to `after` (`None`: cleared).
    RegisterWritten {
        register: ContainerId,
        before: Option<Value>,
        after: Option<Value>,
    },
    /// `counter` was incremented by `by`.
    Incremented { counter: ContainerId, by: i64 },
}

impl Recorded {
    /// True if undoing this brings a container value back (as a copy).
    fn restores_container(&self) -> bool {
        match self {
            Recorded::MapWritten { before, .. } => {
                matches!(before, Some(Value::Container(..)))
            }
            Recorded::ListRemoved { values, .. } => {
                values.iter().any(|v| v.as_container().is_some())
            }
            _ => false,
        }
    }

    fn container(&self) -> ContainerId {
        match self {
            Recorded::Inserted { container, .. }
            | Recorded::TextRemoved { container, .. }
            | Recorded::ListRemoved { container, .. } => *container,
            Recorded::MapWritten { map, .. } => *map,
            Recorded::RegisterWritten { register, .. } => *register,
            Recorded::Incremented { counter, .. } => *counter,
        }
    }
}

/// A committed local transaction's records.
#[derive(Clone, Debug)]
pub(super) struct RecordedCommit {
    pub(super) ops: Vec<Recorded>,
    pub(super) timestamp: Option<i64>,
}

/// One undo (or redo) step: the records of one or more local transactions, in order.
#[derive(Clone, Debug, Default)]
struct Step {
    ops: Vec<Recorded>,
    timestamp: Option<i64>,
}

impl Step {
    /// Adds records after the step's own. A key or register written again keeps one record:
    /// the value before the first write and after the last.
    fn extend(&mut self, ops: Vec<Recorded>) {
        for op in ops {
            let merged = match &op {
                Recorded::MapWritten {
                    map, key, after, ..
                } => self.ops.iter_mut().any(|earlier| match earlier {
                    Recorded::MapWritten {
                        map: m,
                        key: k,
                        after: a,
                        ..
                    } if m == map && k == key => {
                        a.clone_from(after);
                        true
                    }
                    _ => false,
                }),
                Recorded::RegisterWritten {
                    register, after, ..
                } => self.ops.iter_mut().any(|earlier| match earlier {
                    Recorded::RegisterWritten {
                        register: r,
                        after: a,
                        ..
                    } if r == register => {
                        a.clone_from(after);
                        true
                    }
                    _ => false,
                }),
                _ => false,
            };
            if !merged {
                self.ops.push(op);
            }
        }
    }
}

/// Undo and redo for the local replica's changes to a [`Document`].
///
/// Attach it with [`UndoManager::new`]; from then on every local transaction is recorded (and
/// only local ones: changes received from other replicas are never undone). Each transaction
/// is one undo step, or, with a [capture timeout](Self::with_capture_timeout), consecutive
/// transactions whose [`ChangeOptions::timestamp`](super::ChangeOptions)s are closer than the
/// timeout join one step (the core has no clock: the time comes from the caller). An undo or
/// redo is itself an ordinary local change that other replicas receive.
///
/// See the module documentation of `document::undo` for what undoing does when others edited
/// the same places since.
///
/// ```
/// use crdt_core::{Document, MapId, ReplicaId, UndoManager};
///
/// let mut doc = Document::new(ReplicaId::from_u128(1));
/// let text = doc.set_new_text(MapId::ROOT, "t").unwrap();
/// let mut undo = UndoManager::new(&mut doc);
/// doc.text_insert(text, 0, "hello").unwrap();
///
/// // Someone else edits concurrently; we receive it.
/// let mut other = doc.fork(ReplicaId::from_u128(2));
/// other.text_insert(text, 5, " world").unwrap();
/// doc.merge(&other).unwrap();
///
/// assert!(undo.undo(&mut doc).unwrap()); // removes our "hello" only
/// assert_eq!(doc.text(text).unwrap(), " world");
/// assert!(undo.redo(&mut doc).unwrap());
/// assert_eq!(doc.text(text).unwrap(), "hello world");
/// ```
#[derive(Debug)]
pub struct UndoManager {
    undo: Vec<Step>,
    redo: Vec<Step>,
    capture_timeout: Option<i64>,
    scope: Option<HashSet<ContainerId>>,
    /// Whether the next recorded transaction may join the last undo step.
    may_join: bool,
    max_steps: usize,
    /// Containers that came back as copies: the old id, the copy's id.
    replaced: HashMap<ContainerId, ContainerId>,
}

impl UndoManager {
    /// Starts recording the local transactions of `doc` (the ones made from now on).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, UndoManager};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let mut undo = UndoManager::new(&mut doc);
    /// assert!(!undo.can_undo(&doc));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// assert!(undo.can_undo(&doc));
    /// ```
    pub fn new(doc: &mut Document) -> UndoManager {
        doc.recording = true;
        doc.recorded.clear();
        UndoManager {
            undo: Vec::new(),
            redo: Vec::new(),
            capture_timeout: None,
            scope: None,
            may_join: false,
            max_steps: 1000,
            replaced: HashMap::new(),
        }
    }

    /// Joins consecutive transactions into one step when their timestamps (given in
    /// [`ChangeOptions`](super::ChangeOptions)) differ by less than `timeout`, in the unit of
    /// those timestamps. Transactions without a timestamp always start a step.
    ///
    /// ```
    /// use crdt_core::{ChangeOptions, Document, MapId, ReplicaId, UndoManager};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.set_new_text(MapId::ROOT, "t").unwrap();
    /// let mut undo = UndoManager::new(&mut doc).with_capture_timeout(500);
    /// let at = |ms| ChangeOptions { message: None, timestamp: Some(ms) };
    /// doc.transact_with(at(1_000), |tx| tx.text_insert(text, 0, "a")).unwrap();
    /// doc.transact_with(at(1_200), |tx| tx.text_insert(text, 1, "b")).unwrap();
    /// doc.transact_with(at(9_000), |tx| tx.text_insert(text, 2, "c")).unwrap();
    /// undo.undo(&mut doc).unwrap();
    /// assert_eq!(doc.text(text).unwrap(), "ab");
    /// undo.undo(&mut doc).unwrap(); // "a" and "b" were typed within 500 ms: one step
    /// assert_eq!(doc.text(text).unwrap(), "");
    /// ```
    pub fn with_capture_timeout(mut self, timeout: i64) -> UndoManager {
        self.capture_timeout = Some(timeout);
        self
    }

    /// Records only operations on these containers and the containers nested in them.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, UndoManager};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let body = doc.set_new_text(MapId::ROOT, "body").unwrap();
    /// let mut undo = UndoManager::new(&mut doc).with_scope([body.id()]);
    /// doc.text_insert(body, 0, "text").unwrap();
    /// doc.set(MapId::ROOT, "title", "T").unwrap(); // out of scope: not undoable
    /// undo.undo(&mut doc).unwrap();
    /// assert_eq!(doc.text(body).unwrap(), "");
    /// assert!(!undo.can_undo(&doc));
    /// assert!(doc.get(MapId::ROOT, "title").unwrap().is_some());
    /// ```
    pub fn with_scope(mut self, containers: impl IntoIterator<Item = ContainerId>) -> UndoManager {
        self.scope = Some(containers.into_iter().collect());
        self
    }

    /// Keeps at most `steps` undo steps (1000 by default), forgetting the oldest.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, UndoManager};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let mut undo = UndoManager::new(&mut doc).with_max_steps(1);
    /// doc.set(MapId::ROOT, "a", 1).unwrap();
    /// doc.set(MapId::ROOT, "b", 2).unwrap();
    /// assert!(undo.undo(&mut doc).unwrap());
    /// assert!(!undo.undo(&mut doc).unwrap()); // the first step was forgotten
    /// ```
    pub fn with_max_steps(mut self, steps: usize) -> UndoManager {
        self.max_steps = steps.max(1);
        self
    }

    /// Ends the current step: the next transaction starts a new one even within the capture
    /// timeout.
    ///
    /// ```
    /// use crdt_core::{ChangeOptions, Document, MapId, ReplicaId, UndoManager};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let mut undo = UndoManager::new(&mut doc).with_capture_timeout(1_000);
    /// let at = |ms| ChangeOptions { message: None, timestamp: Some(ms) };
    /// doc.transact_with(at(0), |tx| tx.set(MapId::ROOT, "a", 1)).unwrap();
    /// undo.stop_capturing(&mut doc);
    /// doc.transact_with(at(1), |tx| tx.set(MapId::ROOT, "b", 2)).unwrap();
    /// undo.undo(&mut doc).unwrap();
    /// assert_eq!(doc.to_json(), serde_json::json!({ "a": 1 }));
    /// ```
    pub fn stop_capturing(&mut self, doc: &mut Document) {
        self.capture(doc);
        self.may_join = false;
    }

    /// Takes the local transactions recorded since the last call into undo steps (every
    /// other method does this first).
    fn capture(&mut self, doc: &mut Document) {
        for commit in std::mem::take(&mut doc.recorded) {
            let ops: Vec<Recorded> = commit
                .ops
                .into_iter()
                .filter(|op| self.in_scope(doc, op.container()))
                .collect();
            if ops.is_empty() {
                continue;
            }
            self.redo.clear();
            let join = self.may_join
                && match (self.capture_timeout, self.undo.last(), commit.timestamp) {
                    (Some(timeout), Some(last), Some(now)) => last
                        .timestamp
                        .is_some_and(|then| (0..timeout).contains(&now.saturating_sub(then))),
                    _ => false,
                };
            match self.undo.last_mut() {
                Some(last) if join => {
                    last.extend(ops);
                    last.timestamp = commit.timestamp;
                }
                _ => {
                    let mut step = Step {
                        ops: Vec::new(),
                        timestamp: commit.timestamp,
                    };
                    step.extend(ops);
                    self.undo.push(step);
                    if self.undo.len() > self.max_steps {
                        self.undo.remove(0);
                    }
                }
            }
            self.may_join = true;
        }
    }

    fn in_scope(&self, doc: &Document, id: ContainerId) -> bool {
        let Some(scope) = &self.scope else {
            return true;
        };
        let mut current = id;
        // Containers form a tree; the bound only guards against a corrupt placement table.
        for _ in 0..=doc.placements.len() {
            if scope.contains(&current) {
                return true;
            }
            match doc.placements.get(&current) {
                Some(placement) => current = placement.parent,
                None => return false,
            }
        }
        false
    }

    /// True if there is a step to undo.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, UndoManager};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let undo = UndoManager::new(&mut doc);
    /// assert!(!undo.can_undo(&doc));
    /// ```
    pub fn can_undo(&self, doc: &Document) -> bool {
        !self.undo.is_empty() || doc.recorded.iter().any(|c| !c.ops.is_empty())
    }

    /// True if there is an undone step to redo (any new local change clears them).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, UndoManager};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let mut undo = UndoManager::new(&mut doc);
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// undo.undo(&mut doc).unwrap();
    /// assert!(undo.can_redo());
    /// ```
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Undoes the latest step as a new local change; false if there was none.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, UndoManager, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let mut undo = UndoManager::new(&mut doc);
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// doc.set(MapId::ROOT, "k", 2).unwrap();
    /// assert!(undo.undo(&mut doc).unwrap());
    /// assert_eq!(doc.get(MapId::ROOT, "k").unwrap(), Some(&Value::from(1)));
    /// ```
    pub fn undo(&mut self, doc: &mut Document) -> Result<bool, DocError> {
        self.capture(doc);
        let Some(step) = self.undo.pop() else {
            return Ok(false);
        };
        match Self::apply_inverse(doc, &step, &mut self.replaced) {
            Ok(inverse) => self.redo.push(inverse),
            Err(error) => {
                self.undo.push(step);
                return Err(error);
            }
        }
        self.may_join = false;
        Ok(true)
    }

    /// Redoes the latest undone step as a new local change; false if there was none.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, UndoManager, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.set_new_list(MapId::ROOT, "l").unwrap();
    /// let mut undo = UndoManager::new(&mut doc);
    /// doc.list_insert(list, 0, "x").unwrap();
    /// undo.undo(&mut doc).unwrap();
    /// assert!(undo.redo(&mut doc).unwrap());
    /// assert_eq!(doc.list(list).unwrap(), [Value::from("x")]);
    /// ```
    pub fn redo(&mut self, doc: &mut Document) -> Result<bool, DocError> {
        self.capture(doc);
        let Some(step) = self.redo.pop() else {
            return Ok(false);
        };
        match Self::apply_inverse(doc, &step, &mut self.replaced) {
            Ok(inverse) => self.undo.push(inverse),
            Err(error) => {
                self.redo.push(step);
                return Err(error);
            }
        }
        self.may_join = false;
        Ok(true)
    }

    /// Applies the inverse of `step` as one local change; returns the step that takes it back
    /// (empty if nothing was left to change, so that undo and redo stay paired).
    fn apply_inverse(
        doc: &mut Document,
        step: &Step,
        replaced: &mut HashMap<ContainerId, ContainerId>,
    ) -> Result<Step, DocError> {
        debug_assert!(doc.recorded.is_empty());
        let mut now_replaced = replaced.clone();
        // Containers that come back are copies of the old ones' content: restore that content
        // first (in place, by identity), copy last.
        let (copies, in_place): (Vec<&Recorded>, Vec<&Recorded>) = step
            .ops
            .iter()
            .rev()
            .partition(|op| op.restores_container());
        doc.transact(|tx| {
            for op in in_place.into_iter().chain(copies) {
                invert(tx, op, &mut now_replaced)?;
            }
            Ok(())
        })?;
        *replaced = now_replaced;
        let mut inverse = Step::default();
        for commit in std::mem::take(&mut doc.recorded) {
            inverse.extend(commit.ops);
        }
        Ok(inverse)
    }
}

/// True if `now` is `written`, a container standing for the one written counting as it.
fn same_value(
    replaced: &HashMap<ContainerId, ContainerId>,
    now: Option<&Value>,
    written: Option<&Value>,
) -> bool {
    match (now, written) {
        (Some(Value::Container(_, a)), Some(Value::Container(_, b))) => {
            current_id(replaced, *a) == current_id(replaced, *b)
        }
        (now, written) => now == written,
    }
}

/// Writes `value` back into `key` of `map`: a container comes back as a copy.
fn write_back(
    tx: &mut Transaction<'_>,
    map: MapId,
    key: &str,
    value: &Option<Value>,
    replaced: &mut HashMap<ContainerId, ContainerId>,
) -> Result<(), DocError> {
    match value {
        None => tx.delete(map, key),
        Some(Value::Container(kind, old)) => {
            let old = current_id(replaced, *old);
            let source = tx.doc().clone();
            let new = match kind {
                ContainerKind::Map => tx.set_new_map(map, key)?.0,
                ContainerKind::List => tx.set_new_list(map, key)?.0,
                ContainerKind::Text => tx.set_new_text(map, key)?.0,
                ContainerKind::Counter => tx.set_new_counter(map, key)?.0,
                ContainerKind::Register => tx.set_new_register(map, key)?.0,
            };
            replaced.insert(old, new);
            copy_container(tx, &source, old, new)
        }
        Some(scalar) => tx.set(map, key, scalar.clone()),
    }
}

/// Where elements deleted at `index` of the version after event `last` go back now: next to
/// their old neighbours (see `gap_position_now`).
fn reinsert_position(
    doc: &Document,
    container: ContainerId,
    last: Lv,
    index: usize,
) -> Result<usize, DocError> {
    let from = Frontier::single(last);
    let at = match doc.containers.get(&container) {
        Some(Container::Text(seq)) => gap_position_now(&doc.graph, &seq.log, &from, index),
        Some(Container::List(seq)) => gap_position_now(&doc.graph, &seq.log, &from, index),
        _ => return Err(DocError::NoSuchContainer(container)),
    };
    at.map_err(|_| DocError::OutOfRange { index, len: 0 })
}

/// The container that stands for `id` now: itself, or the copy that replaced it.
fn current_id(replaced: &HashMap<ContainerId, ContainerId>, mut id: ContainerId) -> ContainerId {
    // Each copy is newer than what it replaced, so the chain ends; the bound is a guard.
    for _ in 0..=replaced.len() {
        match replaced.get(&id) {
            Some(&next) => id = next,
            None => break,
        }
    }
    id
}

/// Applies the inverse of one recorded operation at the current positions.
///
/// Operations on a container that was replaced by a copy: map keys, registers and counters
/// are written in the copy; list and text operations are skipped (their elements' identities
/// are not those of the copy).
fn invert(
    tx: &mut Transaction<'_>,
    op: &Recorded,
    replaced: &mut HashMap<ContainerId, ContainerId>,
) -> Result<(), DocError> {
    let target = current_id(replaced, op.container());
    let moved = target != op.container();
    match op {
        Recorded::Inserted { .. } | Recorded::TextRemoved { .. } | Recorded::ListRemoved { .. }
            if moved =>
        {
            return Ok(());
        }
        _ => {}
    }
    match op {
        Recorded::Inserted {
            container,
            last,
            index,
            len,
        } => {
            let doc = tx.doc();
            let from = Frontier::single(*last);
            let range = *index..index + len;
            let positions = match doc.containers.get(container) {
                Some(Container::Text(seq)) => positions_now(&doc.graph, &seq.log, &from, range),
                Some(Container::List(seq)) => positions_now(&doc.graph, &seq.log, &from, range),
                _ => return Err(DocError::NoSuchContainer(*container)),
            }
            .map_err(|_| DocError::OutOfRange {
                index: *index,
                len: *len,
            })?;
            // Runs of elements still there, deleted from the end so positions stay valid.
            let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
            for at in positions.into_iter().flatten() {
                match runs.last_mut() {
                    Some(run) if run.end == at => run.end += 1,
                    _ => runs.push(at..at + 1),
                }
            }
            let is_text = matches!(doc.kind_of(*container), Some(ContainerKind::Text));
            for run in runs.into_iter().rev() {
                if is_text {
                    tx.text_delete(TextId(*container), run)?;
                } else {
                    tx.list_delete(ListId(*container), run)?;
                }
            }
        }
        Recorded::TextRemoved {
            container,
            last,
            index,
            text,
        } => {
            let at = reinsert_position(tx.doc(), *container, *last, *index)?;
            tx.text_insert(TextId(*container), at, text)?;
        }
        Recorded::ListRemoved {
            container,
            last,
            index,
            values,
        } => {
            let at = reinsert_position(tx.doc(), *container, *last, *index)?;
            let list = ListId(*container);
            for (i, value) in values.iter().enumerate() {
                match value {
                    Value::Container(kind, old) => {
                        let old = current_id(replaced, *old);
                        let source = tx.doc().clone();
                        let new = tx.list_insert_new(list, at + i, *kind)?;
                        replaced.insert(old, new);
                        copy_container(tx, &source, old, new)?;
                    }
                    scalar => tx.list_insert(list, at + i, scalar.clone())?,
                }
            }
        }
        Recorded::MapWritten {
            key, before, after, ..
        } => {
            // Someone wrote the key since: their write stands.
            let now = tx.doc().get(MapId(target), key)?.cloned();
            if same_value(replaced, now.as_ref(), after.as_ref()) {
                write_back(tx, MapId(target), key, before, replaced)?;
            }
        }
        Recorded::RegisterWritten { before, after, .. } => {
            let now = tx.doc().register(RegisterId(target))?.cloned();
            if same_value(replaced, now.as_ref(), after.as_ref()) {
                restore_register(tx, RegisterId(target), before)?;
            }
        }
        Recorded::Incremented { by, .. } => {
            tx.increment(CounterId(target), by.wrapping_neg())?;
        }
    }
    Ok(())
}

fn restore_register(
    tx: &mut Transaction<'_>,
    register: RegisterId,
    before: &Option<Value>,
) -> Result<(), DocError> {
    match before {
        None => tx.register_clear(register),
        // Registers hold scalars only through the local API.
        Some(Value::Container(..)) => Ok(()),
        Some(scalar) => tx.register_set(register, scalar.clone()),
    }
}
