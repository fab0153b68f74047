//! History: reading the document as of an earlier version, the changes between two versions,
//! forks at a version, and reverts.
//!
//! A version is a [`VersionVector`] (or a set of heads, turned into one with
//! [`Document::version_of_heads`]). It must be a version the document has been through: every
//! event it names is known here, and it holds everything those events depend on (it is
//! *causally closed*). Anything else is refused with a [`HistoryError`].
//!
//! Reading an earlier version ([`Document::view_at`]) borrows the document and works out each
//! container from the stored operations when it is read (the `view` module): Eg-walker needs
//! nothing else, since operations are stored as their authors made them. Forks and diffs
//! ([`Document::fork_at`], [`Document::diff`]) need a replica of their own: they replay the
//! changes up to the version into a fresh one (sequential stretches fast-forward as plain rope
//! edits; concurrent ones replay their conflict zone), which costs roughly what
//! [`Document::load`] of an update with those changes costs.
//!
//! A revert ([`Document::revert_to`]) is an ordinary local change computed from the difference
//! between now and the earlier version. Lists and texts are compared element by element by
//! identity (the Eg-walker tracker is replayed from the earlier version to now), so the change
//! deletes exactly the elements inserted since and re-inserts exactly the ones deleted since,
//! at the current positions of their neighbours, and merges with concurrent edits like any
//! edit would.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use super::state::Container;
use super::transaction::KeyWrite;
use super::view::DocumentView;
use super::{
    ChangeOptions, ContainerId, ContainerKind, CounterId, DocError, Document, ListId, MapId, Patch,
    RegisterId, TextId, Transaction, Value,
};
use crate::causal_graph::{Frontier, Lv, VersionError};
use crate::sequence::LoadError;
use crate::sequence::merge::compare_with_version;
use crate::sequence::tracker::VersionDiff;
use crate::{Dot, ReplicaId, VersionVector};

/// Why a history operation was refused. Nothing changed when this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryError {
    /// The version names an event this document has not seen (yet).
    UnknownEvent(Dot),
    /// The version holds `event` but not `missing`, which `event` depends on: no replica was
    /// ever at that version.
    NotCausallyClosed {
        /// An event of the version.
        event: Dot,
        /// One of its dependencies outside the version.
        missing: Dot,
    },
    /// A diff goes forwards only: the earlier version must be included in the later one.
    NotIncluded,
    /// A fork at this version editing as this replica would issue again ids the replica has
    /// already used after that version: fork as another replica.
    ReplicaReused(ReplicaId),
    /// The stored history could not be replayed (a bug: the history was accepted before).
    Replay(LoadError),
    /// The revert's transaction failed (a bug: it only edits what it has just read).
    Edit(DocError),
    /// The document was loaded from a shallow snapshot trimmed at `base`: the operation needs
    /// history it does not have (a version not including `base`, or a replay of the history).
    HistoryTrimmed {
        /// The version the history was trimmed at.
        base: VersionVector,
    },
    /// A shallow snapshot at the version would lose history the document still needs:
    /// `event` is not in it and does not descend from all of it (it was made concurrently with
    /// part of the version).
    ConcurrentWithVersion {
        /// An event outside the version that does not descend from all of it.
        event: Dot,
    },
    /// [`Document::compact`] was refused: an [`UndoManager`](super::UndoManager) records this
    /// document, and its steps name elements by local versions that compaction renumbers.
    UndoRecording,
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::UnknownEvent(dot) => {
                write!(
                    f,
                    "the version names event {dot:?}, unknown to this document"
                )
            }
            HistoryError::NotCausallyClosed { event, missing } => write!(
                f,
                "the version holds {event:?} but not {missing:?}, which it depends on"
            ),
            HistoryError::NotIncluded => {
                f.write_str("the earlier version is not included in the later one")
            }
            HistoryError::ReplicaReused(replica) => write!(
                f,
                "replica {replica} already made changes after this version: fork as another replica"
            ),
            HistoryError::Replay(error) => write!(f, "replaying the history failed: {error}"),
            HistoryError::Edit(error) => write!(f, "the revert failed: {error}"),
            HistoryError::HistoryTrimmed { base } => write!(
                f,
                "the document was loaded from a shallow snapshot trimmed at {base:?}: \
                 the history this needs is not here"
            ),
            HistoryError::ConcurrentWithVersion { event } => write!(
                f,
                "event {event:?} was made concurrently with part of the version: a shallow \
                 snapshot there would lose history it needs"
            ),
            HistoryError::UndoRecording => f.write_str(
                "an undo manager records this document: compacting would invalidate its steps",
            ),
        }
    }
}

impl std::error::Error for HistoryError {}

impl From<VersionError> for HistoryError {
    fn from(error: VersionError) -> Self {
        match error {
            VersionError::UnknownEvent(dot) => HistoryError::UnknownEvent(dot),
            VersionError::NotCausallyClosed { event, missing } => {
                HistoryError::NotCausallyClosed { event, missing }
            }
        }
    }
}

/// One change (a committed transaction) as history views show it.
///
/// ```
/// use crdt_core::{ChangeOptions, Document, MapId, ReplicaId, VersionVector};
///
/// let mut doc = Document::new(ReplicaId::from_u128(1));
/// let options = ChangeOptions { message: Some("title".into()), timestamp: Some(42) };
/// doc.transact_with(options, |tx| tx.set(MapId::ROOT, "title", "Notes")).unwrap();
/// let changes = doc.changes_between(&VersionVector::new(), &doc.version()).unwrap();
/// assert_eq!(changes[0].message.as_deref(), Some("title"));
/// assert_eq!(changes[0].timestamp, Some(42));
/// assert_eq!((changes[0].events, changes[0].ops), (1, 1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeInfo {
    /// The id of the change's first event (its replica and sequence number).
    pub id: Dot,
    /// The message given when it was committed.
    pub message: Option<String>,
    /// The timestamp given when it was committed.
    pub timestamp: Option<i64>,
    /// How many events it holds (one per inserted or deleted element, one per map, register
    /// or counter operation).
    pub events: usize,
    /// How many operations, as the author made them (typing "abc" is one operation of three
    /// events).
    pub ops: usize,
}

impl Document {
    /// Checks that `version` is a version of this document: every event it names is known
    /// here, and it holds everything they depend on.
    ///
    /// ```
    /// use crdt_core::{Dot, Document, HistoryError, MapId, ReplicaId, VersionVector};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// assert!(doc.check_version(&doc.version()).is_ok());
    /// let future: VersionVector = [(ReplicaId::from_u128(1), 2)].into_iter().collect();
    /// assert_eq!(
    ///     doc.check_version(&future),
    ///     Err(HistoryError::UnknownEvent(Dot::new(ReplicaId::from_u128(1), 2)))
    /// );
    /// ```
    pub fn check_version(&self, version: &VersionVector) -> Result<(), HistoryError> {
        if let Some(base) = self.graph.shallow_base()
            && !version.includes(&base.version)
        {
            return Err(HistoryError::HistoryTrimmed {
                base: base.version.clone(),
            });
        }
        self.graph
            .check_version(version)
            .map_err(HistoryError::from)
    }

    /// The version whose heads are `heads` (the events no other event of it descends from,
    /// as [`heads`](Self::heads) returns them): them and everything before them.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// let heads = doc.heads();
    /// let version = doc.version();
    /// doc.set(MapId::ROOT, "k", 2).unwrap();
    /// assert_eq!(doc.version_of_heads(&heads).unwrap(), version);
    /// ```
    pub fn version_of_heads(&self, heads: &[Dot]) -> Result<VersionVector, HistoryError> {
        let heads = self
            .graph
            .frontier_of_dots(heads)
            .map_err(HistoryError::UnknownEvent)?;
        let (_, past) = self.graph.diff(&Frontier::root(), &heads);
        let mut version = VersionVector::new();
        for span in past {
            for run in self.graph.assignment_in(span) {
                let last = run.seq_start + run.span.len() as u64 - 1;
                version.advance(self.graph.replica_of_agent(run.agent), last);
            }
        }
        Ok(version)
    }

    /// A fresh replica (editing as `replica`) holding exactly the changes within `version`.
    fn replay_until(
        &self,
        version: &VersionVector,
        replica: ReplicaId,
    ) -> Result<Document, HistoryError> {
        self.check_version(version)?;
        if let Some(base) = self.graph.shallow_base() {
            // The changes up to the base are trimmed: nothing to replay them from.
            return Err(HistoryError::HistoryTrimmed {
                base: base.version.clone(),
            });
        }
        let mut doc = self.empty_like(replica);
        let changes = self.wire_changes(&VersionVector::new(), Some(version));
        doc.apply_changes(&changes, false)
            .map_err(HistoryError::Replay)?;
        Ok(doc)
    }

    /// The document as it was at `version`, for reading (time travel), without copying it:
    /// the view borrows this document and works out each container from the history when it
    /// is first read (see [`DocumentView`]).
    ///
    /// A document loaded from a shallow snapshot or compacted can be viewed at its current
    /// version only ([`HistoryError::HistoryTrimmed`] otherwise).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "body").unwrap();
    /// doc.text_insert(text, 0, "Hello").unwrap();
    /// let v1 = doc.version();
    /// doc.text_insert(text, 5, ", world").unwrap();
    ///
    /// assert_eq!(doc.view_at(&v1).unwrap().text(text).unwrap(), "Hello");
    /// assert_eq!(doc.text(text).unwrap(), "Hello, world");
    /// ```
    pub fn view_at(&self, version: &VersionVector) -> Result<DocumentView<'_>, HistoryError> {
        self.check_version(version)?;
        DocumentView::new(self, version)
    }

    /// The document as it was when its heads were `heads` (as [`heads`](Self::heads) returned
    /// them then): [`view_at`](Self::view_at) of [`version_of_heads`](Self::version_of_heads).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, Value};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", "then").unwrap();
    /// let heads = doc.heads();
    /// doc.set(MapId::ROOT, "k", "now").unwrap();
    /// let then = doc.view_at_heads(&heads).unwrap();
    /// assert_eq!(then.get(MapId::ROOT, "k").unwrap(), Some(Value::from("then")));
    /// ```
    pub fn view_at_heads(&self, heads: &[Dot]) -> Result<DocumentView<'_>, HistoryError> {
        self.view_at(&self.version_of_heads(heads)?)
    }

    /// A new document holding the history up to `version`, editing as `replica`: a branch
    /// from an earlier point. Merge it back (either way) with [`merge`](Self::merge) or
    /// updates, as any other replica.
    ///
    /// `replica` must not have made changes after `version` that this document knows of
    /// (it would issue their ids again): use a fresh replica id.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, Value};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "a", 1).unwrap();
    /// let v1 = doc.version();
    /// doc.set(MapId::ROOT, "b", 2).unwrap();
    ///
    /// let mut branch = doc.fork_at(&v1, ReplicaId::from_u128(2)).unwrap();
    /// assert_eq!(branch.get(MapId::ROOT, "b").unwrap(), None);
    /// branch.set(MapId::ROOT, "c", 3).unwrap();
    /// doc.merge(&branch).unwrap();
    /// assert_eq!(doc.to_json(), serde_json::json!({ "a": 1, "b": 2, "c": 3 }));
    /// ```
    pub fn fork_at(
        &self,
        version: &VersionVector,
        replica: ReplicaId,
    ) -> Result<Document, HistoryError> {
        if self.graph.known_of(replica) > version.get(replica) {
            return Err(HistoryError::ReplicaReused(replica));
        }
        self.replay_until(version, replica)
    }

    /// The changes that `until` holds and `since` lacks, oldest first (in the order this
    /// replica received them, which respects causality).
    ///
    /// A change is listed if its first event is in `until` and not in `since`; `events` and
    /// `ops` count the whole change.
    ///
    /// ```
    /// use crdt_core::{ChangeOptions, Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "a", 1).unwrap();
    /// let v1 = doc.version();
    /// let options = ChangeOptions { message: Some("two keys".into()), timestamp: None };
    /// doc.transact_with(options, |tx| {
    ///     tx.set(MapId::ROOT, "b", 2)?;
    ///     tx.set(MapId::ROOT, "c", 3)
    /// })
    /// .unwrap();
    /// let changes = doc.changes_between(&v1, &doc.version()).unwrap();
    /// assert_eq!(changes.len(), 1);
    /// assert_eq!(changes[0].message.as_deref(), Some("two keys"));
    /// assert_eq!(changes[0].events, 2);
    /// ```
    pub fn changes_between(
        &self,
        since: &VersionVector,
        until: &VersionVector,
    ) -> Result<Vec<ChangeInfo>, HistoryError> {
        self.check_version(since)?;
        self.check_version(until)?;
        let spans = self.graph.spans_between(since, Some(until));
        let mut out = Vec::new();
        for (i, change) in self.changes.iter().enumerate() {
            let start = change.start;
            let in_spans = spans
                .binary_search_by(|span| {
                    if span.end <= start {
                        std::cmp::Ordering::Less
                    } else if span.start > start {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                })
                .is_ok();
            if !in_spans {
                continue;
            }
            let next = self
                .changes
                .get(i + 1)
                .map_or(self.graph.len(), |c| c.start);
            let end = self.change_end(start, next);
            out.push(ChangeInfo {
                id: self.graph.lv_to_dot(start),
                message: change.message.clone(),
                timestamp: change.timestamp,
                events: end - start,
                ops: self.ops_in(start..end).len(),
            });
        }
        Ok(out)
    }

    /// Where the change starting at `start` ends: at the next change's start `next` at the
    /// latest, and where its replica's run of events stops.
    fn change_end(&self, start: Lv, next: Lv) -> Lv {
        let mut end = start;
        let mut replica = None;
        let mut expected_seq = 0;
        for run in self.graph.assignment_in(start..next) {
            if run.span.start != end
                || replica.is_some_and(|r| r != run.agent)
                || (replica.is_some() && run.seq_start != expected_seq)
            {
                break;
            }
            replica = Some(run.agent);
            expected_seq = run.seq_start + run.span.len() as u64;
            end = run.span.end;
        }
        end
    }

    /// What changed from version `from` to version `to` (which must include it), as the
    /// [`Patch`]es a subscriber would have received applying those changes to the document at
    /// `from`: applied in order to the JSON at `from`, they give the JSON at `to`.
    ///
    /// Costs a replay up to `from` into a fresh replica and the merge of the
    /// changes in between.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, PatchAction, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// let v1 = doc.version();
    /// doc.text_insert(text, 0, "hi").unwrap();
    /// let patches = doc.diff(&v1, &doc.version()).unwrap();
    /// assert_eq!(
    ///     patches[0].action,
    ///     PatchAction::TextInsert { index: 0, text: "hi".into() }
    /// );
    /// ```
    pub fn diff(
        &self,
        from: &VersionVector,
        to: &VersionVector,
    ) -> Result<Vec<Patch>, HistoryError> {
        self.check_version(to)?;
        if !to.includes(from) {
            return Err(HistoryError::NotIncluded);
        }
        let mut before = self.replay_until(from, self.replica)?;
        let changes = self.wire_changes(from, Some(to));
        before
            .apply_changes(&changes, true)
            .map_err(HistoryError::Replay)
    }

    /// Makes the visible state equal to the state at `version` again, as one new local change
    /// (other replicas receive it as any change). See [`revert_to_with`](Self::revert_to_with).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "good").unwrap();
    /// let good = doc.version();
    /// doc.text_delete(text, 0..4).unwrap();
    /// doc.set(MapId::ROOT, "oops", true).unwrap();
    ///
    /// doc.revert_to(&good).unwrap();
    /// assert_eq!(doc.to_json(), serde_json::json!({ "t": "good" }));
    /// ```
    pub fn revert_to(&mut self, version: &VersionVector) -> Result<(), HistoryError> {
        self.revert_to_with(version, ChangeOptions::default())
    }

    /// Like [`revert_to`](Self::revert_to), with a message and timestamp for the change.
    ///
    /// Lists and texts: the elements inserted since `version` are deleted and the ones deleted
    /// since are inserted again at the current place of their neighbours (as new elements).
    /// Maps and registers: keys and values are written back where the winner differs.
    /// Counters: one increment by the difference. A container that was overwritten or deleted
    /// since `version` cannot come back (a container has one place, forever): a new container
    /// of the same kind is made in its place and filled with the old one's content at
    /// `version`.
    ///
    /// ```
    /// use crdt_core::{ChangeOptions, Document, MapId, ReplicaId, VersionVector};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// let options = ChangeOptions { message: Some("start over".into()), timestamp: None };
    /// doc.revert_to_with(&VersionVector::new(), options).unwrap();
    /// assert_eq!(doc.map_len(MapId::ROOT).unwrap(), 0);
    /// let last = doc.changes_between(&VersionVector::new(), &doc.version()).unwrap();
    /// assert_eq!(last[1].message.as_deref(), Some("start over"));
    /// ```
    pub fn revert_to_with(
        &mut self,
        version: &VersionVector,
        options: ChangeOptions,
    ) -> Result<(), HistoryError> {
        let target = self.replay_until(version, self.replica)?;
        // The version's heads, in this replica's numbering.
        let frontier = self.graph.frontier_of(version);
        // Compare every list and text visible at `version` with its current self, by identity.
        let mut plans: HashMap<ContainerId, Vec<VersionDiff>> = HashMap::new();
        let mut reachable = BTreeSet::new();
        reachable_from(&target, ContainerId::Root, &mut reachable);
        for &id in &reachable {
            let plan = match (self.containers.get(&id), target.containers.get(&id)) {
                (Some(Container::Text(now)), Some(Container::Text(then))) => compare_with_version(
                    &self.graph,
                    &now.log,
                    &frontier,
                    then.doc.len_chars(),
                    now.doc.len_chars(),
                ),
                (Some(Container::List(now)), Some(Container::List(then))) => compare_with_version(
                    &self.graph,
                    &now.log,
                    &frontier,
                    then.doc.len(),
                    now.doc.len(),
                ),
                _ => continue,
            };
            let plan = plan.map_err(|_| {
                HistoryError::Replay(LoadError::Malformed(
                    "the history of a sequence does not replay",
                ))
            })?;
            plans.insert(id, plan);
        }
        self.transact_with(options, |tx| revert_all(tx, &target, &plans))
            .map_err(HistoryError::Edit)
    }
}

/// Collects the containers reachable from `id` in `doc` (with an explicit stack: the depth is
/// the document's).
fn reachable_from(doc: &Document, id: ContainerId, out: &mut BTreeSet<ContainerId>) {
    let mut stack = vec![id];
    while let Some(id) = stack.pop() {
        if !out.insert(id) {
            continue;
        }
        match doc.containers.get(&id) {
            Some(Container::Map(entries)) => stack.extend(
                entries
                    .values()
                    .filter_map(|e| e.last()?.value.as_container().map(|(_, c)| c)),
            ),
            Some(Container::List(seq)) => stack.extend(
                seq.doc
                    .iter()
                    .filter_map(|v| v.as_container().map(|(_, c)| c)),
            ),
            Some(Container::Register(entries)) => stack.extend(
                entries
                    .last()
                    .and_then(|e| e.value.as_container().map(|(_, c)| c)),
            ),
            _ => {}
        }
    }
}

/// Writes the state of the containers reachable from the root at the target version back over
/// their current state. Each container is handled on its own, from a work list rather than by
/// recursion (the depth is the document's): first every container still in place, then the
/// copies of those that came back.
fn revert_all(
    tx: &mut Transaction<'_>,
    target: &Document,
    plans: &HashMap<ContainerId, Vec<VersionDiff>>,
) -> Result<(), DocError> {
    let mut to_revert = vec![ContainerId::Root];
    let mut to_copy = Vec::new();
    while let Some(id) = to_revert.pop() {
        revert_container(tx, target, id, plans, &mut to_revert, &mut to_copy)?;
    }
    copy_all(tx, target, to_copy)
}

/// Writes the state of container `id` at the target version back over its current state; its
/// children still in place go to `to_revert`, containers that come back as copies to `to_copy`
/// (old, new).
fn revert_container(
    tx: &mut Transaction<'_>,
    target: &Document,
    id: ContainerId,
    plans: &HashMap<ContainerId, Vec<VersionDiff>>,
    to_revert: &mut Vec<ContainerId>,
    to_copy: &mut Vec<(ContainerId, ContainerId)>,
) -> Result<(), DocError> {
    match target.kind_of(id) {
        Some(ContainerKind::Map) => {
            let map = MapId(id);
            let mut keys: BTreeSet<String> =
                target.keys(map)?.into_iter().map(str::to_owned).collect();
            keys.extend(tx.doc().keys(map)?.into_iter().map(str::to_owned));
            for key in keys {
                let then = target.get(map, &key)?.cloned();
                let now = tx.doc().get(map, &key)?.cloned();
                match then {
                    _ if then == now => {
                        if let Some((_, child)) = then.as_ref().and_then(Value::as_container) {
                            to_revert.push(child);
                        }
                    }
                    None => tx.delete(map, &key)?,
                    // A named container is its key's: the same one comes back, and its content
                    // is reverted like any container's still in place.
                    Some(Value::Container(kind, old @ ContainerId::Named(_))) => {
                        tx.write_key(map, &key, KeyWrite::Named(kind))?;
                        to_revert.push(old);
                    }
                    Some(Value::Container(kind, old)) => {
                        let new = tx.replace_with_new(map, &key, kind)?;
                        to_copy.push((old, new));
                    }
                    Some(scalar) => tx.set(map, &key, scalar)?,
                }
            }
        }
        Some(ContainerKind::Counter) => {
            let by = target
                .counter(CounterId(id))?
                .wrapping_sub(tx.doc().counter(CounterId(id))?);
            if by != 0 {
                tx.counter_add(CounterId(id), by)?;
            }
        }
        Some(ContainerKind::Register) => {
            let register = RegisterId(id);
            let then = target.register(register)?.cloned();
            if then != tx.doc().register(register)?.cloned() {
                match then {
                    None => tx.register_clear(register)?,
                    // Registers hold scalars only through the local API.
                    Some(Value::Container(..)) => {}
                    Some(scalar) => tx.register_set(register, scalar)?,
                }
            }
        }
        Some(ContainerKind::Text) => {
            let Some(plan) = plans.get(&id) else {
                return Ok(());
            };
            let text = TextId(id);
            let then: Vec<char> = target.text(text)?.chars().collect();
            let mut at = 0;
            for step in plan {
                match *step {
                    VersionDiff::Both(n) => at += n,
                    VersionDiff::OnlyEffect(n) => tx.text_delete(text, at..at + n)?,
                    VersionDiff::OnlyPrepare { index, len } => {
                        let back: String = then
                            .get(index..index + len)
                            .ok_or(DocError::OutOfRange {
                                index: index + len,
                                len: then.len(),
                            })?
                            .iter()
                            .collect();
                        tx.text_insert(text, at, &back)?;
                        at += len;
                    }
                }
            }
        }
        Some(ContainerKind::List) => {
            let Some(plan) = plans.get(&id) else {
                return Ok(());
            };
            let list = ListId(id);
            let then = target.list(list)?;
            let mut at = 0;
            let mut kept = Vec::new();
            for step in plan {
                match *step {
                    VersionDiff::Both(n) => {
                        let now = tx.doc().list(list)?;
                        kept.extend(
                            now.get(at..at + n)
                                .unwrap_or_default()
                                .iter()
                                .filter_map(|v| v.as_container().map(|(_, c)| c)),
                        );
                        at += n;
                    }
                    VersionDiff::OnlyEffect(n) => tx.list_delete(list, at..at + n)?,
                    VersionDiff::OnlyPrepare { index, len } => {
                        let back = then.get(index..index + len).ok_or(DocError::OutOfRange {
                            index: index + len,
                            len: then.len(),
                        })?;
                        for value in back {
                            insert_copy(tx, list, at, value, to_copy)?;
                            at += 1;
                        }
                    }
                }
            }
            to_revert.extend(kept);
        }
        None => {}
    }
    Ok(())
}

/// Inserts `value` at `at` of `list`: a scalar as it is, a container as a new, empty one, to
/// be filled with the content of the old one (pushed on `to_copy` as (old, new)).
fn insert_copy(
    tx: &mut Transaction<'_>,
    list: ListId,
    at: usize,
    value: &Value,
    to_copy: &mut Vec<(ContainerId, ContainerId)>,
) -> Result<(), DocError> {
    match value {
        Value::Container(kind, old) => {
            let new = tx.list_insert_new(list, at, *kind)?;
            to_copy.push((*old, new));
            Ok(())
        }
        scalar => tx.list_insert(list, at, scalar.clone()),
    }
}

/// Fills the new, empty container `to` with the content of `from` in `source`, and so on down
/// (from a work list: the depth is the document's).
pub(super) fn copy_container(
    tx: &mut Transaction<'_>,
    source: &Document,
    from: ContainerId,
    to: ContainerId,
) -> Result<(), DocError> {
    copy_all(tx, source, vec![(from, to)])
}

/// Fills each new container of `to_copy` (old, new) with the content of the old one in
/// `source`, and the containers in them likewise.
fn copy_all(
    tx: &mut Transaction<'_>,
    source: &Document,
    mut to_copy: Vec<(ContainerId, ContainerId)>,
) -> Result<(), DocError> {
    while let Some((from, to)) = to_copy.pop() {
        match source.kind_of(from) {
            Some(ContainerKind::Map) => {
                for key in source.keys(MapId(from))? {
                    let Some(value) = source.get(MapId(from), key)? else {
                        continue;
                    };
                    match value {
                        Value::Container(kind, child) => {
                            // A copy keeps named containers named (at the copy's key).
                            let new = match child {
                                ContainerId::Named(_) => tx
                                    .write_key(MapId(to), key, KeyWrite::Named(*kind))?
                                    .ok_or(DocError::NoSuchContainer(to))?,
                                _ => tx.replace_with_new(MapId(to), key, *kind)?,
                            };
                            to_copy.push((*child, new));
                        }
                        scalar => tx.set(MapId(to), key, scalar.clone())?,
                    }
                }
            }
            Some(ContainerKind::List) => {
                for (i, value) in source.list(ListId(from))?.iter().enumerate() {
                    insert_copy(tx, ListId(to), i, value, &mut to_copy)?;
                }
            }
            Some(ContainerKind::Text) => {
                tx.text_insert(TextId(to), 0, &source.text(TextId(from))?)?
            }
            Some(ContainerKind::Counter) => {
                let value = source.counter(CounterId(from))?;
                if value != 0 {
                    tx.counter_add(CounterId(to), value)?;
                }
            }
            Some(ContainerKind::Register) => {
                if let Some(value) = source.register(RegisterId(from))?
                    && value.as_container().is_none()
                {
                    tx.register_set(RegisterId(to), value.clone())?;
                }
            }
            None => {}
        }
    }
    Ok(())
}
