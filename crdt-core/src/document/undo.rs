//! Undo and redo of the local replica's own changes, correct while others keep editing.
//!
//! While an [`UndoManager`] is attached, every local transaction records what its operations
//! did (in memory only: records name local versions of this replica). When a step is taken in
//! (lazily, at the next call), its list and text operations are turned into what happened to
//! which *elements*, by identity: the Eg-walker tracker replays the container's history (from
//! the start, or from the base of a shallow snapshot, whose elements are named by their index
//! there) and names each element by the local version of the event that inserted it. A step
//! keeps, per list or text, the elements it inserted (each with its left neighbour at the
//! time) and the elements it deleted (with their content and their left and right neighbours
//! right after the deletion). An element a step both inserted and deleted is in neither set,
//! so a step that typed text and then erased part of it is undone exactly.
//!
//! Undoing a step is one new local change, planned on the document as it is now:
//! - the elements the step inserted are deleted if still there (elements others inserted
//!   between them are left alone);
//! - the elements it deleted come back, latest deletion first, each just after its left
//!   neighbour (or, if that neighbour is gone for good, just before its right one, else just
//!   after the nearest element before it in document order that is still there). An element
//!   brought back is a new element; the manager remembers which old element it *stands for*
//!   and resolves every later anchor through that map, so redoing and undoing again find it.
//!   An element another replica deleted too stays deleted;
//! - a map key or register written by the step gets its previous value back, unless someone
//!   else wrote it since (their write stands);
//! - a counter increment is taken back by the opposite increment.
//!
//! Redo is the same: the undo's own change was recorded, and redo undoes it.
//!
//! # Guarantees (tested with quickcheck in `tests/it/history.rs`)
//!
//! For random local transactions of several operations each on texts, lists, maps, counters
//! and registers, grouped into steps by the capture timeout, interleaved with remote changes
//! merged in (the remote replica merging ours before each of its transactions):
//! 1. undoing `k` steps and then redoing `k` (with no other change in between) gives back
//!    exactly the visible state before the undos, and the replicas converge on it, even when
//!    the remote changes edited the same elements, keys, registers and counters;
//! 2. when the remote changes touch other elements (in the test: other lists, texts and
//!    registers, other keys of a shared map, and a shared counter), undoing every local step
//!    gives exactly the state the remote transactions alone give, and redoing them all gives
//!    back the state before;
//! 3. on a lone replica, any sequence of undos and redos walks the stack of states exactly
//!    (the state after an undo is the one before the step), and undoing every step gives the
//!    state at attachment.
//!
//! # Limits
//!
//! - When others edited the same places, the result is well defined but is not "what would
//!   have happened without the step": an element brought back goes right after its old left
//!   neighbour, so text another replica inserted at that gap since ends up after it; an
//!   undo never brings back what another replica deleted.
//! - A container value that comes back (a deleted list element or an overwritten map key
//!   holding a container) comes back as a new container holding a copy of the old one's
//!   current content, since a container has one place forever. Later steps' map, register and
//!   counter records on the old container apply to the copy, but their list and text records
//!   do not (the copy's elements are not the old elements). The properties make no new
//!   containers for that reason.
//! - Cost: taking in steps and each undo or redo replay the whole history of every list or
//!   text they touch (linear in that history), and planning scans the container once per
//!   restored element. The map of stand-ins grows with the elements undo and redo bring back.
//! - Cursors: the app saves its selection as stable cursors before each change
//!   ([`UndoManager::save_cursors`]); undo and redo give back those saved before the change
//!   they take back, resolved by identity through the elements that stand for restored ones.
//!   Cursors the app keeps itself (not saved with a step) resolve through
//!   [`Document::resolve_cursor`], which knows nothing of stand-ins: one anchored to an
//!   element that undo deleted and redo brought back resolves to where the old element was.

use std::collections::{HashMap, HashSet};

use super::history::copy_container;
use super::state::Container;
use super::transaction::KeyWrite;
use super::{
    ContainerId, CounterId, DocError, Document, ListId, MapId, RegisterId, TextId, Transaction,
    Value,
};
use crate::causal_graph::{Frontier, Lv};
use crate::sequence::merge::{move_prepare_version, tracker_from};
use crate::sequence::tracker::Tracker;
use crate::sequence::{Bias, Cursor};

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

/// One element of a list or text, as a step removed it.
#[derive(Clone, Debug)]
enum Element {
    Char(char),
    Value(Value),
}

/// An element a step inserted (`item`: the local version of its insert event), with the
/// element just before it when it was inserted.
#[derive(Clone, Debug)]
struct Addition {
    item: Lv,
    left: Option<Lv>,
}

/// An element a step deleted, with its neighbours right after the deletion (`None`: the
/// start, or the end).
#[derive(Clone, Debug)]
struct Removal {
    item: Lv,
    element: Element,
    left: Option<Lv>,
    right: Option<Lv>,
}

/// What a step did to one list or text, element by element, in the order it happened.
#[derive(Clone, Debug, Default)]
struct SequenceEffect {
    added: Vec<Addition>,
    removed: Vec<Removal>,
}

/// One undo (or redo) step: the records of one or more local transactions, in order.
#[derive(Clone, Debug, Default)]
struct Step {
    /// Map, register and counter records.
    ops: Vec<Recorded>,
    /// List and text effects, by container.
    sequences: Vec<(ContainerId, SequenceEffect)>,
    timestamp: Option<i64>,
    /// The cursors saved right before the step began ([`UndoManager::save_cursors`]), to
    /// restore when it is taken back.
    cursors: Vec<(ContainerId, Cursor)>,
}

impl Step {
    /// Adds what a later transaction did.
    fn extend(&mut self, (ops, sequences): Resolved) {
        self.extend_ops(ops);
        for (container, effect) in sequences {
            match self.sequences.iter_mut().find(|(c, _)| *c == container) {
                Some((_, mine)) => {
                    mine.added.extend(effect.added);
                    mine.removed.extend(effect.removed);
                }
                None => self.sequences.push((container, effect)),
            }
        }
    }

    /// Adds records after the step's own. A key or register written again keeps one record:
    /// the value before the first write and after the last.
    fn extend_ops(&mut self, ops: Vec<Recorded>) {
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

/// The two stacks of steps of an [`UndoManager`].
#[derive(Clone, Copy)]
enum Stack {
    Undo,
    Redo,
}

impl Stack {
    fn other(self) -> Stack {
        match self {
            Stack::Undo => Stack::Redo,
            Stack::Redo => Stack::Undo,
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
/// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
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
    /// Per list or text, the elements that undo or redo inserted again, each with the element
    /// it stands for (the first one, never itself a restored one).
    aliases: HashMap<ContainerId, HashMap<Lv, Lv>>,
    /// Cursors saved for the next step ([`UndoManager::save_cursors`]).
    pending_cursors: Vec<(ContainerId, Cursor)>,
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
            aliases: HashMap::new(),
            pending_cursors: Vec::new(),
        }
    }

    /// Stops recording `doc` and drops every step: the document is as if no manager had ever
    /// been attached (so it can be [compacted](Document::compact) again).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, UndoManager};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let undo = UndoManager::new(&mut doc);
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// assert!(doc.compact(&doc.version()).is_err()); // steps name local versions
    /// undo.detach(&mut doc);
    /// assert!(doc.compact(&doc.version()).is_ok());
    /// ```
    pub fn detach(self, doc: &mut Document) {
        doc.recording = false;
        doc.recorded.clear();
    }

    /// Joins consecutive transactions into one step when their timestamps (given in
    /// [`ChangeOptions`](super::ChangeOptions)) differ by less than `timeout`, in the unit of
    /// those timestamps. Transactions without a timestamp always start a step.
    ///
    /// ```
    /// use crdt_core::{ChangeOptions, Document, MapId, ReplicaId, UndoManager};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
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
    /// let body = doc.replace_with_new_text(MapId::ROOT, "body").unwrap();
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
        let commits: Vec<(Vec<Recorded>, Option<i64>)> = std::mem::take(&mut doc.recorded)
            .into_iter()
            .map(|commit| {
                let ops: Vec<Recorded> = commit
                    .ops
                    .into_iter()
                    .filter(|op| self.in_scope(doc, op.container()))
                    .collect();
                (ops, commit.timestamp)
            })
            .filter(|(ops, _)| !ops.is_empty())
            .collect();
        let (ops, timestamps): (Vec<_>, Vec<_>) = commits.into_iter().unzip();
        for (resolved, timestamp) in resolve(doc, ops).into_iter().zip(timestamps) {
            self.redo.clear();
            let join = self.may_join
                && match (self.capture_timeout, self.undo.last(), timestamp) {
                    (Some(timeout), Some(last), Some(now)) => last
                        .timestamp
                        .is_some_and(|then| (0..timeout).contains(&now.saturating_sub(then))),
                    _ => false,
                };
            match self.undo.last_mut() {
                Some(last) if join => {
                    last.extend(resolved);
                    last.timestamp = timestamp;
                    // The step keeps the cursors from before its start.
                    self.pending_cursors.clear();
                }
                _ => {
                    let mut step = Step {
                        timestamp,
                        cursors: std::mem::take(&mut self.pending_cursors),
                        ..Step::default()
                    };
                    step.extend(resolved);
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
        Ok(self.undo_with_cursors(doc)?.is_some())
    }

    /// Redoes the latest undone step as a new local change; false if there was none.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, UndoManager, Value};
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// let mut undo = UndoManager::new(&mut doc);
    /// doc.list_insert(list, 0, "x").unwrap();
    /// undo.undo(&mut doc).unwrap();
    /// assert!(undo.redo(&mut doc).unwrap());
    /// assert_eq!(doc.list(list).unwrap(), [Value::from("x")]);
    /// ```
    pub fn redo(&mut self, doc: &mut Document) -> Result<bool, DocError> {
        Ok(self.redo_with_cursors(doc)?.is_some())
    }

    /// Saves the app's cursors (carets, selection ends) as they are right now, to give back
    /// when the next step is taken back: call it before each local change the manager records
    /// (edits, and undos and redos too) with the current selection. A transaction that joins
    /// the open step (capture timeout) keeps the cursors saved before the step began.
    ///
    /// [`undo_with_cursors`](Self::undo_with_cursors) and
    /// [`redo_with_cursors`](Self::redo_with_cursors) return them, resolved in the document as
    /// it is after the undo or redo.
    ///
    /// ```
    /// use crdt_core::{Bias, Document, MapId, ReplicaId, UndoManager};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "hello").unwrap();
    /// let mut undo = UndoManager::new(&mut doc);
    ///
    /// // The caret is at 5; the user types " world".
    /// let caret = doc.cursor(text.id(), 5, Bias::Before).unwrap();
    /// undo.save_cursors(&mut doc, [(text.id(), caret)]);
    /// doc.text_insert(text, 5, " world").unwrap();
    ///
    /// let restored = undo.undo_with_cursors(&mut doc).unwrap().unwrap();
    /// assert_eq!(restored, [(text.id(), 5)]); // the caret goes back where it was
    /// ```
    pub fn save_cursors(
        &mut self,
        doc: &mut Document,
        cursors: impl IntoIterator<Item = (ContainerId, Cursor)>,
    ) {
        // Changes made before this belong to earlier steps.
        self.capture(doc);
        self.pending_cursors = cursors.into_iter().collect();
    }

    /// Like [`undo`](Self::undo), and gives back the cursors saved (with
    /// [`save_cursors`](Self::save_cursors)) right before the undone step, resolved in the
    /// document as it is now: each follows the element it sticks to through every edit since,
    /// local or remote, and through the element that stands for it if undo brought it back
    /// (text the step deleted and the undo restored: a selection over it selects it again).
    /// A cursor whose element was deleted for good goes where that element was; one that
    /// cannot be resolved (made for a container that is no list or text, or that came back
    /// as a copy, or at a version this replica lacks) is left out. `None` if there was nothing to undo.
    ///
    /// The cursors saved since the last change go with the undo itself: a redo gives them back.
    ///
    /// ```
    /// use crdt_core::{Bias, Document, MapId, ReplicaId, UndoManager};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "keep this, cut that").unwrap();
    /// let mut undo = UndoManager::new(&mut doc);
    ///
    /// // "cut that" is selected and deleted.
    /// let selection = [
    ///     (text.id(), doc.cursor(text.id(), 11, Bias::After).unwrap()),
    ///     (text.id(), doc.cursor(text.id(), 19, Bias::Before).unwrap()),
    /// ];
    /// undo.save_cursors(&mut doc, selection);
    /// doc.text_delete(text, 11..19).unwrap();
    ///
    /// // Someone prepends text meanwhile.
    /// let mut other = doc.fork(ReplicaId::from_u128(2));
    /// other.text_insert(text, 0, ">> ").unwrap();
    /// doc.merge(&other).unwrap();
    ///
    /// let restored = undo.undo_with_cursors(&mut doc).unwrap().unwrap();
    /// assert_eq!(restored, [(text.id(), 14), (text.id(), 22)]);
    /// assert_eq!(&doc.text(text).unwrap()[14..22], "cut that"); // selected again
    /// ```
    pub fn undo_with_cursors(
        &mut self,
        doc: &mut Document,
    ) -> Result<Option<Vec<(ContainerId, usize)>>, DocError> {
        self.take_back(doc, Stack::Undo)
    }

    /// Like [`redo`](Self::redo), and gives back the cursors saved right before the undo it
    /// takes back, as [`undo_with_cursors`](Self::undo_with_cursors) does.
    ///
    /// ```
    /// use crdt_core::{Bias, Document, MapId, ReplicaId, UndoManager};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// let mut undo = UndoManager::new(&mut doc);
    /// doc.text_insert(text, 0, "typed").unwrap();
    ///
    /// // The caret is after "typed" when the user presses undo, then redo.
    /// let caret = doc.cursor(text.id(), 5, Bias::Before).unwrap();
    /// undo.save_cursors(&mut doc, [(text.id(), caret)]);
    /// undo.undo(&mut doc).unwrap();
    /// let restored = undo.redo_with_cursors(&mut doc).unwrap().unwrap();
    /// assert_eq!(restored, [(text.id(), 5)]);
    /// ```
    pub fn redo_with_cursors(
        &mut self,
        doc: &mut Document,
    ) -> Result<Option<Vec<(ContainerId, usize)>>, DocError> {
        self.take_back(doc, Stack::Redo)
    }

    fn stack(&mut self, which: Stack) -> &mut Vec<Step> {
        match which {
            Stack::Undo => &mut self.undo,
            Stack::Redo => &mut self.redo,
        }
    }

    /// Takes back the latest step of `from` as a new local change and pushes its inverse on
    /// the other stack; gives back the cursors saved before the step. `None` if `from` is
    /// empty; on error the step stays where it was.
    fn take_back(
        &mut self,
        doc: &mut Document,
        from: Stack,
    ) -> Result<Option<Vec<(ContainerId, usize)>>, DocError> {
        self.capture(doc);
        let Some(step) = self.stack(from).pop() else {
            return Ok(None);
        };
        match self.apply_inverse(doc, &step) {
            Ok(inverse) => self.stack(from.other()).push(inverse),
            Err(error) => {
                self.stack(from).push(step);
                return Err(error);
            }
        }
        self.may_join = false;
        Ok(Some(self.restore_cursors(doc, &step.cursors)))
    }

    /// Resolves saved cursors in `doc` as it is now, following elements through what stands
    /// for them; leaves out those that cannot be resolved.
    fn restore_cursors(
        &self,
        doc: &Document,
        cursors: &[(ContainerId, Cursor)],
    ) -> Vec<(ContainerId, usize)> {
        let mut out = Vec::with_capacity(cursors.len());
        // Per container: its replay and its items in document order (`None`: not a sequence).
        let mut follows: HashMap<ContainerId, Option<Replayed<'_>>> = HashMap::new();
        for (container, cursor) in cursors {
            let current = current_id(&self.replaced, *container);
            if current != *container {
                // The container came back as a copy: its elements are not the cursor's.
                continue;
            }
            let entry = follows.entry(current).or_insert_with(|| {
                let follow = Follow::new(doc, current).ok()?;
                let order = follow.tracker.items_in_order(follow.len());
                Some((follow, order))
            });
            let Some((follow, order)) = entry else {
                continue;
            };
            let aliases = self.aliases.get(&current);
            if let Some(at) = restore_cursor(doc, follow, order, aliases, cursor) {
                out.push((*container, at));
            }
        }
        out
    }

    /// Applies the inverse of `step` as one local change; returns the step that takes it back
    /// (empty if nothing was left to change, so that undo and redo stay paired).
    fn apply_inverse(&mut self, doc: &mut Document, step: &Step) -> Result<Step, DocError> {
        debug_assert!(doc.recorded.is_empty());
        let mut now_replaced = self.replaced.clone();
        // Lists and texts are planned first, by identity, on the document as it is now.
        let mut plans = Vec::new();
        for (container, effect) in &step.sequences {
            // A container that came back as a copy: its elements are not the copy's.
            if current_id(&self.replaced, *container) != *container {
                continue;
            }
            let aliases = self.aliases.get(container);
            plans.push(plan_sequence(doc, *container, effect, aliases)?);
        }
        // Containers that come back are copies of the old ones' content: restore that content
        // first (in place), copy last.
        let (copies, in_place): (Vec<&Recorded>, Vec<&Recorded>) = step
            .ops
            .iter()
            .rev()
            .partition(|op| op.restores_container());
        let mut new_aliases: Vec<(ContainerId, Lv, Lv)> = Vec::new();
        doc.transact(|tx| {
            for op in in_place {
                invert(tx, op, &mut now_replaced)?;
            }
            for plan in &plans {
                apply_plan(tx, plan, &mut now_replaced, &mut new_aliases)?;
            }
            for op in copies {
                invert(tx, op, &mut now_replaced)?;
            }
            Ok(())
        })?;
        self.replaced = now_replaced;
        for (container, new, stands_for) in new_aliases {
            self.aliases
                .entry(container)
                .or_default()
                .insert(new, stands_for);
        }
        let mut inverse = Step {
            // Saved since the last change: the selection at the time of this undo or redo.
            cursors: std::mem::take(&mut self.pending_cursors),
            ..Step::default()
        };
        let commits = std::mem::take(&mut doc.recorded)
            .into_iter()
            .map(|commit| commit.ops)
            .collect();
        for resolved in resolve(doc, commits) {
            inverse.extend(resolved);
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
        // A named container is its key's: the same one comes back, with its content.
        Some(Value::Container(kind, ContainerId::Named(_))) => {
            tx.write_key(map, key, KeyWrite::Named(*kind)).map(|_| ())
        }
        Some(Value::Container(kind, old)) => {
            let old = current_id(replaced, *old);
            // A read-only copy of the state before the edit: it is read from, never edited.
            let source = tx.doc().duplicate_same_replica();
            let new = tx.replace_with_new(map, key, *kind)?;
            replaced.insert(old, new);
            copy_container(tx, &source, old, new)
        }
        Some(scalar) => tx.set(map, key, scalar.clone()),
    }
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

/// Applies the inverse of one map, register or counter record (list and text records are
/// planned by identity, see [`plan_sequence`]). A container replaced by a copy is written in
/// the copy.
fn invert(
    tx: &mut Transaction<'_>,
    op: &Recorded,
    replaced: &mut HashMap<ContainerId, ContainerId>,
) -> Result<(), DocError> {
    let target = current_id(replaced, op.container());
    match op {
        Recorded::Inserted { .. } | Recorded::TextRemoved { .. } | Recorded::ListRemoved { .. } => {
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
            tx.counter_add(CounterId(target), by.wrapping_neg())?;
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

/// Map, register and counter records, and list and text effects by container.
type Resolved = (Vec<Recorded>, Vec<(ContainerId, SequenceEffect)>);

/// The error for a history that does not replay (a bug, or history this replica lacks).
fn unreplayable(container: ContainerId) -> DocError {
    DocError::NoSuchContainer(container)
}

/// The tracker of one list or text over its whole history (every element with its own id):
/// effect version = now, prepare version movable.
struct Follow<'a> {
    doc: &'a Document,
    container: ContainerId,
    tracker: Tracker,
    prepare: Frontier,
}

impl<'a> Follow<'a> {
    fn new(doc: &'a Document, container: ContainerId) -> Result<Follow<'a>, DocError> {
        let root = Frontier::root();
        let tracker = match doc.containers.get(&container) {
            Some(Container::Text(seq)) => tracker_from(&doc.graph, &seq.log, &root),
            Some(Container::List(seq)) => tracker_from(&doc.graph, &seq.log, &root),
            _ => return Err(DocError::NoSuchContainer(container)),
        }
        .map_err(|_| unreplayable(container))?;
        Ok(Follow {
            doc,
            container,
            tracker,
            prepare: root,
        })
    }

    /// Moves the prepare version to the version right after event `last`.
    fn move_to(&mut self, last: Lv) {
        self.move_to_version(&Frontier::single(last));
    }

    /// The number of elements of the container now.
    fn len(&self) -> usize {
        match self.doc.containers.get(&self.container) {
            Some(Container::Text(seq)) => seq.doc.len_chars(),
            Some(Container::List(seq)) => seq.doc.len(),
            _ => 0,
        }
    }

    /// Moves the prepare version to `target`.
    fn move_to_version(&mut self, target: &Frontier) {
        let graph = &self.doc.graph;
        match self.doc.containers.get(&self.container) {
            Some(Container::Text(seq)) => move_prepare_version(
                graph,
                &seq.log,
                &mut self.tracker,
                &mut self.prepare,
                target,
            ),
            Some(Container::List(seq)) => move_prepare_version(
                graph,
                &seq.log,
                &mut self.tracker,
                &mut self.prepare,
                target,
            ),
            _ => {}
        }
    }

    /// The element at `index` of the prepare version.
    fn at(&self, index: usize) -> Result<Lv, DocError> {
        self.tracker
            .prepare_item(index)
            .ok_or_else(|| unreplayable(self.container))
    }

    /// The element just before `index` of the prepare version (`None`: the start).
    fn before(&self, index: usize) -> Result<Option<Lv>, DocError> {
        match index {
            0 => Ok(None),
            _ => self.at(index - 1).map(Some),
        }
    }
}

/// A list or text replayed for cursors: the tracker, and every item in document order with
/// whether it is there now.
type Replayed<'a> = (Follow<'a>, Vec<(Lv, bool)>);

/// Where `cursor` is now in the container `follow` replays (whose items in document order,
/// with whether each is there now, are `order`): at the element it sticks to, or at whatever
/// stands for that element now (`aliases`), or where the element was if it is gone. `None` if
/// the cursor cannot be resolved here.
fn restore_cursor(
    doc: &Document,
    follow: &mut Follow<'_>,
    order: &[(Lv, bool)],
    aliases: Option<&HashMap<Lv, Lv>>,
    cursor: &Cursor,
) -> Option<usize> {
    follow.move_to_version(&doc.graph.frontier_of_dots(&cursor.heads).ok()?);
    // The element the cursor sticks to, in the version it was made at (`None`: the start or
    // the end).
    let anchor = match cursor.bias {
        Bias::Before => match cursor.index {
            0 => return Some(0),
            index => follow.tracker.prepare_item(index - 1)?,
        },
        Bias::After => match follow.tracker.prepare_item(cursor.index) {
            Some(item) => item,
            None => return Some(follow.len()),
        },
    };
    let canon = |lv: Lv| aliases.and_then(|a| a.get(&lv).copied()).unwrap_or(lv);
    let wanted = canon(anchor);
    let mut visible = 0;
    let mut where_it_was = None;
    for &(item, there) in order {
        if there && canon(item) == wanted {
            return Some(match cursor.bias {
                Bias::Before => visible + 1,
                Bias::After => visible,
            });
        }
        if item == anchor {
            where_it_was = Some(visible);
        }
        if there {
            visible += 1;
        }
    }
    // Gone for good: where it was. Not in the order at all: past the end of the text the
    // replay knows (the tail of a shallow snapshot's placeholder), so the end.
    Some(where_it_was.unwrap_or(visible))
}

/// Turns the records of local transactions (each its own list) into map, register and
/// counter records and, for lists and texts, what happened to which elements (by identity).
/// One replay per list or text for all of them. A list or text whose history cannot be
/// replayed (history this replica does not hold) is left out.
fn resolve(doc: &Document, commits: Vec<Vec<Recorded>>) -> Vec<Resolved> {
    let mut out: Vec<Resolved> = Vec::with_capacity(commits.len());
    let mut by_container: Vec<(ContainerId, Vec<(usize, Recorded)>)> = Vec::new();
    for (commit, ops) in commits.into_iter().enumerate() {
        let mut others = Vec::new();
        for op in ops {
            match op {
                Recorded::Inserted { container, .. }
                | Recorded::TextRemoved { container, .. }
                | Recorded::ListRemoved { container, .. } => {
                    match by_container.iter_mut().find(|(c, _)| *c == container) {
                        Some((_, records)) => records.push((commit, op)),
                        None => by_container.push((container, vec![(commit, op)])),
                    }
                }
                other => others.push(other),
            }
        }
        out.push((others, Vec::new()));
    }
    for (container, records) in by_container {
        if let Ok(effects) = resolve_sequence(doc, container, &records) {
            for (commit, effect) in effects {
                out[commit].1.push((container, effect));
            }
        }
    }
    out
}

fn resolve_sequence(
    doc: &Document,
    container: ContainerId,
    records: &[(usize, Recorded)],
) -> Result<Vec<(usize, SequenceEffect)>, DocError> {
    let mut follow = Follow::new(doc, container)?;
    let deleted_by: HashMap<Lv, Lv> = follow.tracker.delete_pairs().into_iter().collect();
    let mut effects: Vec<(usize, SequenceEffect)> = Vec::new();
    for (commit, record) in records {
        if effects.last().is_none_or(|(c, _)| c != commit) {
            effects.push((*commit, SequenceEffect::default()));
        }
        let Some((_, effect)) = effects.last_mut() else {
            continue;
        };
        let (last, index, elements) = match record {
            Recorded::Inserted {
                last, index, len, ..
            } => {
                follow.move_to(*last);
                for i in *index..index + len {
                    effect.added.push(Addition {
                        item: follow.at(i)?,
                        left: follow.before(i)?,
                    });
                }
                continue;
            }
            Recorded::TextRemoved {
                last, index, text, ..
            } => (*last, *index, text.chars().map(Element::Char).collect()),
            Recorded::ListRemoved {
                last,
                index,
                values,
                ..
            } => (
                *last,
                *index,
                values
                    .iter()
                    .cloned()
                    .map(Element::Value)
                    .collect::<Vec<_>>(),
            ),
            _ => continue,
        };
        follow.move_to(last);
        let n = elements.len();
        // Local deletes run forward: event `first + i` deleted the `i`-th element.
        let first = (last + 1)
            .checked_sub(n)
            .ok_or_else(|| unreplayable(container))?;
        let items = (first..=last)
            .map(|event| deleted_by.get(&event).copied())
            .collect::<Option<Vec<Lv>>>()
            .ok_or_else(|| unreplayable(container))?;
        let left = follow.before(index)?;
        let right = follow.tracker.prepare_item(index);
        for (i, element) in elements.into_iter().enumerate() {
            effect.removed.push(Removal {
                item: items[i],
                element,
                left: if i == 0 { left } else { Some(items[i - 1]) },
                right: items.get(i + 1).copied().or(right),
            });
        }
    }
    Ok(effects)
}

/// What undoing a step does to one list or text, in order, at indices of the document as
/// each operation finds it.
struct Plan {
    container: ContainerId,
    is_text: bool,
    /// Runs of elements to delete, last first.
    deletes: Vec<std::ops::Range<usize>>,
    /// Elements to insert again: index, element, the element it stands for.
    inserts: Vec<(usize, Element, Lv)>,
}

/// Plans the inverse of `effect` on container `container` as it is now.
///
/// The elements the step inserted (or any element standing for them) are deleted if still
/// there. The elements it deleted come back unless one standing for them is there or another
/// replica deleted them too, each just after its left neighbour at the time of the deletion
/// (found through what stands for it; an element the same step inserted is skipped for its
/// own left neighbour, one the same step deleted comes back first), else just before its
/// right neighbour, else after the nearest element before it in document order that is there.
fn plan_sequence(
    doc: &Document,
    container: ContainerId,
    effect: &SequenceEffect,
    aliases: Option<&HashMap<Lv, Lv>>,
) -> Result<Plan, DocError> {
    let canon = |lv: Lv| aliases.and_then(|a| a.get(&lv).copied()).unwrap_or(lv);
    let follow = Follow::new(doc, container)?;
    let is_text = matches!(doc.containers.get(&container), Some(Container::Text(_)));
    // `Follow::new` refused anything but a list or text.
    let len = follow.len();
    let order = follow.tracker.items_in_order(len);
    let mut model: Vec<Lv> = order
        .iter()
        .filter(|(_, visible)| *visible)
        .map(|(lv, _)| canon(*lv))
        .collect();
    if model.len() != len {
        return Err(unreplayable(container));
    }
    let remote_deleted: HashSet<Lv> = follow
        .tracker
        .delete_pairs()
        .into_iter()
        .filter(|(event, _)| doc.graph.lv_to_dot(*event).replica != doc.replica)
        .map(|(_, target)| canon(target))
        .collect();
    let removed_items: HashSet<Lv> = effect.removed.iter().map(|r| r.item).collect();
    let added: HashMap<Lv, Option<Lv>> = effect.added.iter().map(|a| (a.item, a.left)).collect();

    // Deletions first.
    let gone: HashSet<Lv> = effect
        .added
        .iter()
        .filter(|a| !removed_items.contains(&a.item))
        .map(|a| canon(a.item))
        .collect();
    let mut deletes: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, lv) in model.iter().enumerate() {
        if gone.contains(lv) {
            match deletes.last_mut() {
                Some(run) if run.end == i => run.end += 1,
                _ => deletes.push(i..i + 1),
            }
        }
    }
    deletes.reverse();
    model.retain(|lv| !gone.contains(lv));

    let rank: HashMap<Lv, usize> = order
        .iter()
        .enumerate()
        .map(|(i, (lv, _))| (*lv, i))
        .collect();
    let mut planner = Planner {
        effect,
        canon: &canon,
        added: &added,
        remote_deleted: &remote_deleted,
        by_canon: effect
            .removed
            .iter()
            .enumerate()
            .filter(|(_, r)| !added.contains_key(&r.item))
            .map(|(i, r)| (canon(r.item), i))
            .collect(),
        done: HashSet::new(),
        model,
        order: &order,
        rank: &rank,
        inserts: Vec::new(),
    };
    // Latest deletion first: each element's neighbours were there when it was deleted.
    for i in (0..effect.removed.len()).rev() {
        if !added.contains_key(&effect.removed[i].item) {
            planner.restore(i);
        }
    }
    Ok(Plan {
        container,
        is_text,
        deletes,
        inserts: planner.inserts,
    })
}

struct Planner<'a> {
    effect: &'a SequenceEffect,
    canon: &'a dyn Fn(Lv) -> Lv,
    added: &'a HashMap<Lv, Option<Lv>>,
    remote_deleted: &'a HashSet<Lv>,
    /// The step's removals to restore, by the element they stand for.
    by_canon: HashMap<Lv, usize>,
    done: HashSet<usize>,
    /// The elements there, by what they stand for, as the plan goes.
    model: Vec<Lv>,
    order: &'a [(Lv, bool)],
    rank: &'a HashMap<Lv, usize>,
    inserts: Vec<(usize, Element, Lv)>,
}

impl Planner<'_> {
    fn index_of(&self, canon: Lv) -> Option<usize> {
        self.model.iter().position(|&lv| lv == canon)
    }

    /// Restores removal `i` (if it comes back); returns where its element is.
    fn restore(&mut self, i: usize) -> Option<usize> {
        let removal = &self.effect.removed[i];
        let canon = (self.canon)(removal.item);
        if !self.done.insert(i) {
            return self.index_of(canon);
        }
        if let Some(at) = self.index_of(canon) {
            return Some(at);
        }
        if self.remote_deleted.contains(&canon) {
            return None;
        }
        let at = match self.after(removal.left) {
            Some(at) => at,
            None => match self.before(removal.right) {
                Some(at) => at,
                None => self.after_nearest_before(removal.item),
            },
        };
        self.model.insert(at, canon);
        self.inserts.push((at, removal.element.clone(), canon));
        Some(at)
    }

    /// The index just after element `left` (`None`: the start), through what stands for it.
    fn after(&mut self, mut left: Option<Lv>) -> Option<usize> {
        // Each step goes to an element inserted earlier; the bound is a guard.
        for _ in 0..=self.added.len() {
            let Some(lv) = left else {
                return Some(0);
            };
            let canon = (self.canon)(lv);
            if let Some(at) = self.index_of(canon) {
                return Some(at + 1);
            }
            if let Some(&i) = self.by_canon.get(&canon) {
                return self.restore(i).map(|at| at + 1);
            }
            left = *self.added.get(&lv)?;
        }
        None
    }

    /// The index of element `right` (`None`: the end), through what stands for it.
    fn before(&mut self, right: Option<Lv>) -> Option<usize> {
        let Some(lv) = right else {
            return Some(self.model.len());
        };
        let canon = (self.canon)(lv);
        if let Some(at) = self.index_of(canon) {
            return Some(at);
        }
        let &i = self.by_canon.get(&canon)?;
        self.restore(i)
    }

    /// Just after the nearest element before `item` in document order that is there.
    fn after_nearest_before(&self, item: Lv) -> usize {
        let Some(&rank) = self.rank.get(&item) else {
            return 0;
        };
        self.order[..rank]
            .iter()
            .rev()
            .find_map(|(lv, _)| self.index_of((self.canon)(*lv)))
            .map_or(0, |at| at + 1)
    }
}

/// Applies a plan in a transaction; records which new element stands for which old one.
fn apply_plan(
    tx: &mut Transaction<'_>,
    plan: &Plan,
    replaced: &mut HashMap<ContainerId, ContainerId>,
    aliases: &mut Vec<(ContainerId, Lv, Lv)>,
) -> Result<(), DocError> {
    let container = plan.container;
    for run in &plan.deletes {
        if plan.is_text {
            tx.text_delete(TextId(container), run.clone())?;
        } else {
            tx.list_delete(ListId(container), run.clone())?;
        }
    }
    let mut i = 0;
    while i < plan.inserts.len() {
        let (at, element, canon) = &plan.inserts[i];
        let lv = tx.doc().graph.len();
        match element {
            Element::Char(c) => {
                // Consecutive chars go in as one insert (consecutive events).
                let mut text = String::from(*c);
                aliases.push((container, lv, *canon));
                while let Some((next, Element::Char(c), canon)) = plan.inserts.get(i + 1)
                    && *next == at + text.chars().count()
                {
                    aliases.push((container, lv + text.chars().count(), *canon));
                    text.push(*c);
                    i += 1;
                }
                tx.text_insert(TextId(container), *at, &text)?;
            }
            Element::Value(Value::Container(kind, old)) => {
                let old = current_id(replaced, *old);
                // A read-only copy of the state before the edit: it is read from, never edited.
                let source = tx.doc().duplicate_same_replica();
                let new = tx.list_insert_new(ListId(container), *at, *kind)?;
                aliases.push((container, lv, *canon));
                replaced.insert(old, new);
                copy_container(tx, &source, old, new)?;
            }
            Element::Value(scalar) => {
                tx.list_insert(ListId(container), *at, scalar.clone())?;
                aliases.push((container, lv, *canon));
            }
        }
        i += 1;
    }
    Ok(())
}
