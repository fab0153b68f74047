//! Changes as they travel between replicas, and applying them.
//!
//! A [`Change`] is a chain of events of one replica with its operations, named by dots; the
//! first chain of a transaction also carries the transaction's message and timestamp.
//! [`Document::changes_between`] extracts them, [`Document::apply_changes`] adds the ones a
//! replica lacks, all or nothing: every container touched is restored if any operation turns
//! out to be impossible.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use smallvec::SmallVec;

use super::encoding::StateContent;
use super::events::{Patch, PatchAction, Path, PathSegment};
use super::paths::PathResolver;
use super::state::{Container, Entries, Entry, ScalarOp, write};
use super::transaction::{Undo, roll_back};
use super::value::{ContainerId, ContainerKind, NamedId, Value};
use super::{ChangeMeta, Document, Placement};
use crate::causal_graph::{Frontier, Lv};
use crate::sequence::LoadError;
use crate::sequence::content::{Content, ListContent, TextContent};
use crate::sequence::merge::{Edit, merge_new_events, roll_back as roll_back_sequence};
use crate::sequence::oplog::{OpKind, OpRun};
use crate::sequence::update::ApplyError;
use crate::{Dot, ReplicaId, VersionVector};

/// What an operation does.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum OpBody {
    /// Inserts text (as many chars as the operation's events) at `pos`.
    TextInsert { pos: usize, text: String },
    /// Inserts values at `pos`; a `Value::Container` must name the event inserting it.
    ListInsert { pos: usize, values: Vec<Value> },
    /// Deletes from a list or text, as described for sequence operation runs.
    SeqDelete { pos: usize, forward: bool },
    /// Writes (`Some`) or deletes (`None`) a map key, overwriting the writes `pred`.
    MapSet {
        key: String,
        value: Option<Value>,
        pred: Vec<Dot>,
    },
    /// Writes or clears a register, overwriting the writes `pred`.
    RegisterSet {
        value: Option<Value>,
        pred: Vec<Dot>,
    },
    /// Adds to a counter.
    Increment { by: i64 },
}

/// An operation of a [`Change`], covering its events `offset..offset + len`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChangeOp {
    pub(crate) offset: usize,
    pub(crate) len: usize,
    pub(crate) container: ContainerId,
    pub(crate) body: OpBody,
}

/// A chain of events of one replica with their operations.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Change {
    pub(crate) replica: ReplicaId,
    pub(crate) seq_start: u64,
    pub(crate) len: usize,
    pub(crate) parents: Vec<Dot>,
    /// Set when the chain starts a transaction.
    pub(crate) meta: Option<(Option<String>, Option<i64>)>,
    /// Sorted by offset, not overlapping, inside `0..len`, covering every event.
    pub(crate) ops: Vec<ChangeOp>,
}

fn invalid(why: &'static str) -> LoadError {
    LoadError::Malformed(why)
}

impl Document {
    /// The changes covered by `until` (all if `None`) and not by `since`.
    pub(crate) fn wire_changes(
        &self,
        since: &VersionVector,
        until: Option<&VersionVector>,
    ) -> Vec<Change> {
        self.graph
            .chains_between(since, until)
            .into_iter()
            .map(|chain| {
                let meta = self
                    .changes
                    .binary_search_by_key(&chain.span.start, |c| c.start)
                    .ok()
                    .map(|i| (self.changes[i].message.clone(), self.changes[i].timestamp));
                Change {
                    replica: chain.replica,
                    seq_start: chain.seq_start,
                    len: chain.span.len(),
                    parents: chain.parents,
                    meta,
                    ops: self.ops_in(chain.span),
                }
            })
            .collect()
    }

    /// The operations of the events `span`, with offsets from `span.start`.
    pub(super) fn ops_in(&self, span: Range<Lv>) -> Vec<ChangeOp> {
        let mut ops = Vec::new();
        let first = self.scalar_ops.partition_point(|(lv, _)| *lv < span.start);
        for (lv, op) in self.scalar_ops[first..]
            .iter()
            .take_while(|(lv, _)| *lv < span.end)
        {
            let dots = |pred: &[Lv]| pred.iter().map(|&p| self.graph.lv_to_dot(p)).collect();
            let (container, body) = match op {
                ScalarOp::MapSet {
                    map,
                    key,
                    value,
                    pred,
                } => (
                    *map,
                    OpBody::MapSet {
                        key: key.clone(),
                        value: value.clone(),
                        pred: dots(pred),
                    },
                ),
                ScalarOp::RegisterSet {
                    register,
                    value,
                    pred,
                } => (
                    *register,
                    OpBody::RegisterSet {
                        value: value.clone(),
                        pred: dots(pred),
                    },
                ),
                ScalarOp::Increment { counter, by } => (*counter, OpBody::Increment { by: *by }),
            };
            ops.push(ChangeOp {
                offset: lv - span.start,
                len: 1,
                container,
                body,
            });
        }
        let first = self
            .sequence_ops
            .partition_point(|(range, _)| range.end <= span.start);
        for (range, container) in self.sequence_ops[first..]
            .iter()
            .take_while(|(range, _)| range.start < span.end)
        {
            let overlap = range.start.max(span.start)..range.end.min(span.end);
            let mut push = |run: OpRun, body: OpBody| {
                ops.push(ChangeOp {
                    offset: run.span.start - span.start,
                    len: run.span.len(),
                    container: *container,
                    body,
                });
            };
            match self.containers.get(container) {
                Some(Container::Text(seq)) => {
                    for run in seq.log.runs_in(overlap) {
                        let body = match run.kind {
                            OpKind::Insert => OpBody::TextInsert {
                                pos: run.pos,
                                text: seq.log.content_of(&run),
                            },
                            OpKind::Delete => OpBody::SeqDelete {
                                pos: run.pos,
                                forward: run.forward,
                            },
                        };
                        push(run, body);
                    }
                }
                Some(Container::List(seq)) => {
                    for run in seq.log.runs_in(overlap) {
                        let body = match run.kind {
                            OpKind::Insert => OpBody::ListInsert {
                                pos: run.pos,
                                values: seq.log.content_of(&run),
                            },
                            OpKind::Delete => OpBody::SeqDelete {
                                pos: run.pos,
                                forward: run.forward,
                            },
                        };
                        push(run, body);
                    }
                }
                _ => {}
            }
        }
        ops.sort_by_key(|op| op.offset);
        ops
    }

    /// Adds the changes' new events and applies them; returns the patches (when
    /// `with_patches`: working out paths and expansions costs time in proportion to what the
    /// batch reveals, wasted when nobody listens), or refuses the whole batch (leaving the
    /// document as it was).
    pub(crate) fn apply_changes(
        &mut self,
        changes: &[Change],
        with_patches: bool,
    ) -> Result<Vec<Patch>, LoadError> {
        let start = self.graph.len();
        let frontier = self.graph.frontier().clone();
        let mut undo = Vec::new();
        let mut touched: BTreeMap<ContainerId, ()> = BTreeMap::new();
        let added = self.add_changes(changes, true, &mut undo, &mut touched);
        let merged = added.and_then(|()| self.merge_sequences(&touched, &frontier, start));
        match merged {
            Ok(_) if !with_patches => Ok(Vec::new()),
            Ok(sequence_patches) => {
                let mut patches = self.scalar_patches(&undo);
                patches.extend(sequence_patches);
                Ok(self.finish_remote_patches(patches))
            }
            Err(error) => {
                roll_back(self, undo, start, frontier);
                Err(error)
            }
        }
    }

    /// Adds the changes' new events and operations. With `apply_scalars`, map, register and
    /// counter operations also change those containers (not when a snapshot's state is about
    /// to be installed instead).
    fn add_changes(
        &mut self,
        changes: &[Change],
        apply_scalars: bool,
        undo: &mut Vec<Undo>,
        touched: &mut BTreeMap<ContainerId, ()>,
    ) -> Result<(), LoadError> {
        for change in changes {
            let mut next_free = 0;
            for op in &change.ops {
                if op.len == 0 || op.offset < next_free || op.offset + op.len > change.len {
                    return Err(invalid("operations overlap or leave their change"));
                }
                next_free = op.offset + op.len;
            }
            if next_free != change.len
                || change.ops.iter().map(|op| op.len).sum::<usize>() != change.len
            {
                return Err(invalid("a change has events without operations"));
            }
            let new = self
                .graph
                .add_remote(
                    change.replica,
                    change.seq_start,
                    change.len,
                    &change.parents,
                )
                .map_err(|e| LoadError::from(ApplyError::from(e)))?;
            if new.is_empty() {
                continue;
            }
            let skip = change.len - new.len();
            if skip == 0
                && let Some((message, timestamp)) = &change.meta
            {
                self.changes.push(ChangeMeta {
                    start: new.start,
                    message: message.clone(),
                    timestamp: *timestamp,
                });
            }
            for op in &change.ops {
                if op.offset + op.len <= skip {
                    continue;
                }
                let cut = skip.saturating_sub(op.offset);
                let first = new.start + op.offset + cut - skip;
                self.add_op(
                    op,
                    cut,
                    first..first + op.len - cut,
                    apply_scalars,
                    undo,
                    touched,
                )?;
            }
        }
        Ok(())
    }

    fn kind_check(&self, id: ContainerId, kind: ContainerKind) -> Result<(), LoadError> {
        match self.containers.get(&id) {
            Some(container) if container.kind() == kind => Ok(()),
            Some(_) => Err(invalid("an operation targets a container of another kind")),
            None => Err(invalid(
                "an operation targets a container that was never created",
            )),
        }
    }

    /// Checks that a written value is a scalar, a new container named by its own event `lv`,
    /// or the named container of its map key (see [`NamedId`]); creates the container in
    /// `parent` unless it is a named one that exists already.
    fn accept_value(
        &mut self,
        value: &Value,
        lv: Lv,
        parent: ContainerId,
        key: Option<&str>,
        undo: &mut Vec<Undo>,
    ) -> Result<(), LoadError> {
        if let Value::Container(kind, id) = value {
            if let ContainerId::Named(named) = id {
                let Some(key) = key else {
                    return Err(invalid(
                        "a named container can only be written to a map key",
                    ));
                };
                if *named != NamedId::derive(parent, key, *kind) {
                    return Err(invalid(
                        "a named container is written outside the key it is named by",
                    ));
                }
                match self.containers.get(id) {
                    Some(existing) if existing.kind() == *kind => return Ok(()),
                    Some(_) => {
                        return Err(invalid("a named container changed its kind"));
                    }
                    None => {}
                }
            } else if *id != ContainerId::Created(self.graph.lv_to_dot(lv))
                || self.containers.contains_key(id)
            {
                return Err(invalid(
                    "a new container must be named by the event creating it",
                ));
            }
            let depth = self.depth_of(parent) + 1;
            if depth > self.max_depth {
                return Err(LoadError::TooDeep {
                    limit: self.max_depth,
                });
            }
            self.containers.insert(*id, Container::new(*kind));
            self.placements.insert(
                *id,
                Placement {
                    parent,
                    key: key.map(str::to_owned),
                    depth,
                },
            );
            undo.push(Undo::Created(*id));
        }
        Ok(())
    }

    fn pred_lvs(&self, pred: &[Dot]) -> Result<SmallVec<[Lv; 1]>, LoadError> {
        pred.iter()
            .map(|&dot| {
                self.graph
                    .dot_to_lv(dot)
                    .ok_or(invalid("a write overwrites an unknown event"))
            })
            .collect()
    }

    /// Adds one operation covering the new events `span`; `cut` events of it were known.
    fn add_op(
        &mut self,
        op: &ChangeOp,
        cut: usize,
        span: Range<Lv>,
        apply_scalars: bool,
        undo: &mut Vec<Undo>,
        touched: &mut BTreeMap<ContainerId, ()>,
    ) -> Result<(), LoadError> {
        let id = op.container;
        match &op.body {
            OpBody::TextInsert { pos, text } => {
                self.kind_check(id, ContainerKind::Text)?;
                if text.chars().count() != op.len {
                    return Err(invalid("inserted text does not match its length"));
                }
                let from = TextContent::offset_after(text, 0, cut);
                if let Some(Container::Text(seq)) = self.containers.get_mut(&id) {
                    seq.log.push_insert(span.clone(), pos + cut, &text[from..]);
                }
                self.record_sequence_ops(span, id);
                touched.insert(id, ());
            }
            OpBody::ListInsert { pos, values } => {
                self.kind_check(id, ContainerKind::List)?;
                if values.len() != op.len {
                    return Err(invalid("inserted values do not match their length"));
                }
                for (i, value) in values.iter().enumerate().skip(cut) {
                    self.accept_value(value, span.start + i - cut, id, None, undo)?;
                }
                if let Some(Container::List(seq)) = self.containers.get_mut(&id) {
                    seq.log.push_insert(span.clone(), pos + cut, &values[cut..]);
                }
                self.record_sequence_ops(span, id);
                touched.insert(id, ());
            }
            OpBody::SeqDelete { pos, forward } => {
                if !forward && pos + 1 < op.len {
                    return Err(invalid("delete run reaches before the start"));
                }
                let pos = if *forward { *pos } else { pos - cut };
                match self.containers.get_mut(&id) {
                    Some(Container::Text(seq)) => seq.log.push_delete(span.clone(), pos, *forward),
                    Some(Container::List(seq)) => seq.log.push_delete(span.clone(), pos, *forward),
                    _ => {
                        return Err(invalid(
                            "a delete targets a container that is not a sequence",
                        ));
                    }
                }
                self.record_sequence_ops(span, id);
                touched.insert(id, ());
            }
            OpBody::MapSet { key, value, pred } => {
                self.kind_check(id, ContainerKind::Map)?;
                let lv = span.start;
                let pred = self.pred_lvs(pred)?;
                if let Some(value) = value {
                    self.accept_value(value, lv, id, Some(key), undo)?;
                }
                let rank = (self.graph.lamport_of(lv), self.graph.lv_to_dot(lv).replica);
                let new = value.clone().map(|value| Entry { lv, rank, value });
                let map = match self.containers.get_mut(&id) {
                    Some(container) if apply_scalars => Some(container),
                    _ => None,
                };
                if let Some(Container::Map(entries)) = map {
                    let current = entries.entry(key.clone()).or_default();
                    let before = write(current, &pred, new);
                    if current.is_empty() {
                        entries.remove(key);
                    }
                    undo.push(Undo::Map {
                        map: id,
                        key: key.clone(),
                        before,
                    });
                }
                self.scalar_ops.push((
                    lv,
                    ScalarOp::MapSet {
                        map: id,
                        key: key.clone(),
                        value: value.clone(),
                        pred,
                    },
                ));
            }
            OpBody::RegisterSet { value, pred } => {
                self.kind_check(id, ContainerKind::Register)?;
                let lv = span.start;
                let pred = self.pred_lvs(pred)?;
                if let Some(value) = value {
                    self.accept_value(value, lv, id, None, undo)?;
                }
                let rank = (self.graph.lamport_of(lv), self.graph.lv_to_dot(lv).replica);
                let new = value.clone().map(|value| Entry { lv, rank, value });
                let register = match self.containers.get_mut(&id) {
                    Some(container) if apply_scalars => Some(container),
                    _ => None,
                };
                if let Some(Container::Register(entries)) = register {
                    let before = write(entries, &pred, new);
                    undo.push(Undo::Register {
                        register: id,
                        before,
                    });
                }
                self.scalar_ops.push((
                    lv,
                    ScalarOp::RegisterSet {
                        register: id,
                        value: value.clone(),
                        pred,
                    },
                ));
            }
            OpBody::Increment { by } => {
                self.kind_check(id, ContainerKind::Counter)?;
                if let Some(Container::Counter(value)) = self.containers.get_mut(&id)
                    && apply_scalars
                {
                    *value = value.wrapping_add(*by);
                    undo.push(Undo::Counter {
                        counter: id,
                        by: *by,
                    });
                }
                self.scalar_ops.push((
                    span.start,
                    ScalarOp::Increment {
                        counter: id,
                        by: *by,
                    },
                ));
            }
        }
        Ok(())
    }

    /// Merges the new events into every sequence container they touched; on failure, takes
    /// back the merges already made.
    fn merge_sequences(
        &mut self,
        touched: &BTreeMap<ContainerId, ()>,
        frontier: &Frontier,
        from: Lv,
    ) -> Result<Vec<Patch>, LoadError> {
        enum Done {
            Text(ContainerId, Vec<Edit<TextContent>>),
            List(ContainerId, Vec<Edit<ListContent<Value>>>),
        }
        let failure = || invalid("an operation refers to content that is not there");
        let mut done = Vec::new();
        let mut result = Ok(());
        for &id in touched.keys() {
            let outcome = match self.containers.get_mut(&id) {
                Some(Container::Text(seq)) => {
                    merge_new_events(&self.graph, &seq.log, &mut seq.doc, frontier, from)
                        .map(|edits| done.push(Done::Text(id, edits)))
                }
                Some(Container::List(seq)) => {
                    merge_new_events(&self.graph, &seq.log, &mut seq.doc, frontier, from)
                        .map(|edits| done.push(Done::List(id, edits)))
                }
                _ => Ok(()),
            };
            if outcome.is_err() {
                result = Err(failure());
                break;
            }
        }
        if let Err(error) = result {
            for merged in done.into_iter().rev() {
                match merged {
                    Done::Text(id, edits) => {
                        if let Some(Container::Text(seq)) = self.containers.get_mut(&id) {
                            roll_back_sequence(&mut seq.doc, edits);
                        }
                    }
                    Done::List(id, edits) => {
                        if let Some(Container::List(seq)) = self.containers.get_mut(&id) {
                            roll_back_sequence(&mut seq.doc, edits);
                        }
                    }
                }
            }
            return Err(error);
        }
        let mut patches = Vec::new();
        for merged in done {
            match merged {
                Done::Text(id, edits) => {
                    let path = None;
                    let Some(Container::Text(seq)) = self.containers.get(&id) else {
                        continue;
                    };
                    for edit in edits {
                        let action = match edit {
                            Edit::Inserted { at, content, .. } => PatchAction::TextInsert {
                                index: at,
                                text: seq.log.content.copy(content),
                            },
                            Edit::Removed { at, units } => PatchAction::TextDelete {
                                index: at,
                                len: units.chars().count(),
                                text: units,
                            },
                        };
                        patches.push(Patch {
                            container: id,
                            path: path.clone(),
                            action,
                        });
                    }
                }
                Done::List(id, edits) => {
                    let path = None;
                    let Some(Container::List(seq)) = self.containers.get(&id) else {
                        continue;
                    };
                    for edit in edits {
                        let action = match edit {
                            Edit::Inserted { at, content, .. } => PatchAction::ListInsert {
                                index: at,
                                values: seq.log.content.copy(content),
                            },
                            Edit::Removed { at, units } => PatchAction::ListDelete {
                                index: at,
                                len: units.len(),
                            },
                        };
                        patches.push(Patch {
                            container: id,
                            path: path.clone(),
                            action,
                        });
                    }
                }
            }
        }
        Ok(patches)
    }

    /// The visible changes to maps, registers and counters made by a batch: each key's and
    /// register's winner before (from the first undo entry that touched it) against after, and
    /// each counter's total change.
    fn scalar_patches(&self, undo: &[Undo]) -> Vec<Patch> {
        let mut seen_keys: HashSet<(ContainerId, &str)> = HashSet::new();
        let mut seen_registers: HashSet<ContainerId> = HashSet::new();
        let mut increments: Vec<(ContainerId, i64)> = Vec::new();
        let mut patches = Vec::new();
        for entry in undo {
            match entry {
                Undo::Map { map, key, before } => {
                    if !seen_keys.insert((*map, key.as_str())) {
                        continue;
                    }
                    let after = match self.containers.get(map) {
                        Some(Container::Map(entries)) => entries.get(key).and_then(|e| e.last()),
                        _ => None,
                    };
                    let action = match (before.last(), after) {
                        // Concurrent writes of one named container: still the same value.
                        (Some(b), Some(a))
                            if b.value == a.value && a.value.as_container().is_some() =>
                        {
                            continue;
                        }
                        (b, Some(a)) if b.map(|b| b.lv) != Some(a.lv) => PatchAction::MapSet {
                            key: key.clone(),
                            value: a.value.clone(),
                        },
                        (Some(_), None) => PatchAction::MapDelete { key: key.clone() },
                        _ => continue,
                    };
                    patches.push(Patch {
                        container: *map,
                        path: None,
                        action,
                    });
                }
                Undo::Register { register, before } => {
                    if !seen_registers.insert(*register) {
                        continue;
                    }
                    let after = match self.containers.get(register) {
                        Some(Container::Register(entries)) => entries.last(),
                        _ => None,
                    };
                    if before.last().map(|b| b.lv) == after.map(|a| a.lv) {
                        continue;
                    }
                    patches.push(Patch {
                        container: *register,
                        path: None,
                        action: PatchAction::RegisterSet {
                            value: after.map(|a| a.value.clone()),
                        },
                    });
                }
                Undo::Counter { counter, by } => {
                    match increments.iter_mut().find(|(c, _)| c == counter) {
                        Some((_, total)) => *total = total.wrapping_add(*by),
                        None => increments.push((*counter, *by)),
                    }
                }
                _ => {}
            }
        }
        for (counter, by) in increments {
            if by != 0 {
                patches.push(Patch {
                    container: counter,
                    path: None,
                    action: PatchAction::Increment { by },
                });
            }
        }
        patches
    }

    /// Orders a remote batch's patches so that, applied in order to the JSON as it was, they
    /// give the JSON as it is: parents before children (by depth, keeping each container's
    /// order), paths as they are after the batch, and a container that becomes visible
    /// expanded in full right after the patch revealing it (its own patches then dropped).
    fn finish_remote_patches(&self, raw: Vec<Patch>) -> Vec<Patch> {
        let mut resolver = PathResolver::default();
        let mut ordered: Vec<(usize, usize, Patch)> = Vec::new();
        for (order, patch) in raw.into_iter().enumerate() {
            if let Some(path) = resolver.path(self, patch.container) {
                ordered.push((
                    path.len(),
                    order,
                    Patch {
                        path: Some(path),
                        ..patch
                    },
                ));
            }
        }
        ordered.sort_by_key(|(depth, order, _)| (*depth, *order));
        let mut expanded: HashSet<ContainerId> = HashSet::new();
        let mut out = Vec::with_capacity(ordered.len());
        let mut revealed: Vec<ContainerId> = Vec::new();
        let mut current_depth = 0;
        let mut expand_revealed =
            |revealed: &mut Vec<ContainerId>, out: &mut Vec<Patch>, expanded: &mut HashSet<_>| {
                for id in revealed.drain(..) {
                    if let Some(path) = resolver.path(self, id) {
                        self.expand(path, id, out, expanded);
                    }
                }
            };
        for (depth, _, patch) in ordered {
            if depth != current_depth {
                // Every patch of the shallower level is out: the containers it revealed are at
                // their final places now, and can be shown in full.
                expand_revealed(&mut revealed, &mut out, &mut expanded);
                current_depth = depth;
            }
            if expanded.contains(&patch.container) {
                continue;
            }
            match &patch.action {
                PatchAction::MapSet { value, .. }
                | PatchAction::RegisterSet { value: Some(value) } => {
                    revealed.extend(value.as_container().map(|(_, id)| id));
                }
                PatchAction::ListInsert { values, .. } => {
                    revealed.extend(
                        values
                            .iter()
                            .filter_map(|v| v.as_container().map(|(_, id)| id)),
                    );
                }
                _ => {}
            }
            out.push(patch);
        }
        expand_revealed(&mut revealed, &mut out, &mut expanded);
        out
    }

    /// Patches that fill container `id` (at `path`, shown empty) with its current content,
    /// and the containers in it after it, depth first (with an explicit stack: the depth is
    /// the document's, bounded by [`Document::max_depth`] but not by the thread's stack).
    pub(super) fn expand(
        &self,
        path: Path,
        id: ContainerId,
        out: &mut Vec<Patch>,
        expanded: &mut HashSet<ContainerId>,
    ) {
        let mut stack = vec![(id, path)];
        while let Some((id, path)) = stack.pop() {
            if !expanded.insert(id) {
                continue;
            }
            let mut push = |action| {
                out.push(Patch {
                    container: id,
                    path: Some(path.clone()),
                    action,
                })
            };
            // Children in document order; pushed reversed so the first is expanded first.
            let mut children: Vec<(ContainerId, Path)> = Vec::new();
            match self.containers.get(&id) {
                Some(Container::Map(entries)) => {
                    for (key, entries) in entries {
                        if let Some(winner) = entries.last() {
                            if let Some((_, child)) = winner.value.as_container() {
                                children.push((child, path.child(PathSegment::Key(key.clone()))));
                            }
                            push(PatchAction::MapSet {
                                key: key.clone(),
                                value: winner.value.clone(),
                            });
                        }
                    }
                }
                Some(Container::List(seq)) if !seq.doc.is_empty() => {
                    children.extend(seq.doc.iter().enumerate().filter_map(|(i, v)| {
                        v.as_container()
                            .map(|(_, c)| (c, path.child(PathSegment::Index(i))))
                    }));
                    push(PatchAction::ListInsert {
                        index: 0,
                        values: seq.doc.clone(),
                    });
                }
                Some(Container::Text(seq)) if seq.doc.len_chars() > 0 => {
                    push(PatchAction::TextInsert {
                        index: 0,
                        text: seq.doc.to_string(),
                    })
                }
                Some(Container::Counter(value)) if *value != 0 => {
                    push(PatchAction::Increment { by: *value })
                }
                Some(Container::Register(entries)) => {
                    if let Some(winner) = entries.last() {
                        if let Some((_, child)) = winner.value.as_container() {
                            children.push((child, path.clone()));
                        }
                        push(PatchAction::RegisterSet {
                            value: Some(winner.value.clone()),
                        });
                    }
                }
                _ => {}
            }
            stack.extend(children.into_iter().rev());
        }
    }

    /// Builds this (empty) document from a snapshot: records the changes' events and
    /// operations without applying them, then installs every container's stored content.
    pub(super) fn install_snapshot(
        &mut self,
        changes: &[Change],
        state: &[(ContainerId, StateContent)],
    ) -> Result<(), LoadError> {
        let mut undo = Vec::new();
        let mut touched = BTreeMap::new();
        self.add_changes(changes, false, &mut undo, &mut touched)?;
        let entries_of = |doc: &Document, entries: &[(Dot, Value)]| -> Result<Entries, LoadError> {
            let mut out: Entries = entries
                .iter()
                .map(|(dot, value)| {
                    let lv = doc
                        .graph
                        .dot_to_lv(*dot)
                        .ok_or(invalid("a snapshot's state names an unknown event"))?;
                    if let Some((kind, id)) = value.as_container()
                        && doc.containers.get(&id).map(Container::kind) != Some(kind)
                    {
                        return Err(invalid("a snapshot's state names an unknown container"));
                    }
                    Ok(Entry {
                        lv,
                        rank: (doc.graph.lamport_of(lv), dot.replica),
                        value: value.clone(),
                    })
                })
                .collect::<Result<_, _>>()?;
            out.sort_by_key(|e| e.rank);
            Ok(out)
        };
        for (id, content) in state {
            let installed = match content {
                StateContent::Map(keys) => {
                    let mut map = BTreeMap::new();
                    for (key, entries) in keys {
                        let entries = entries_of(self, entries)?;
                        if !entries.is_empty() {
                            map.insert(key.clone(), entries);
                        }
                    }
                    Container::Map(map)
                }
                StateContent::Register(entries) => Container::Register(entries_of(self, entries)?),
                StateContent::Counter(value) => Container::Counter(*value),
                StateContent::List(values) => {
                    for value in values {
                        if let Some((kind, child)) = value.as_container()
                            && self.containers.get(&child).map(Container::kind) != Some(kind)
                        {
                            return Err(invalid("a snapshot's state names an unknown container"));
                        }
                    }
                    match self.containers.get_mut(id) {
                        Some(Container::List(seq)) => seq.doc = values.clone(),
                        _ => {
                            return Err(invalid(
                                "a snapshot's state does not match its containers",
                            ));
                        }
                    }
                    continue;
                }
                StateContent::Text(text) => {
                    match self.containers.get_mut(id) {
                        Some(Container::Text(seq)) => seq.doc = crate::rope::Rope::from_text(text),
                        _ => {
                            return Err(invalid(
                                "a snapshot's state does not match its containers",
                            ));
                        }
                    }
                    continue;
                }
            };
            match self.containers.get(id) {
                Some(existing) if existing.kind() == installed.kind() => {
                    self.containers.insert(*id, installed);
                }
                _ => return Err(invalid("a snapshot's state does not match its containers")),
            }
        }
        Ok(())
    }
}
