//! Updates: a batch of events with their operations, named by dots rather than local versions.
//!
//! This is what moves between replicas. `Sequence::update_since` extracts one from a replica's
//! log; `apply` adds one to another replica's log, skipping what it
//! already has, and returns the local versions of the new events for the merge. The binary form
//! is in [`super::encoding`].

use std::ops::Range;

use crate::causal_graph::{CausalGraph, GraphError, Lv};
use crate::sequence::content::Content;
use crate::sequence::oplog::{OpKind, OpLog};
use crate::{Dot, ReplicaId, VersionVector};

/// One operation of an [`EventRun`], covering events `offset..offset + len` of it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct UpdateOp<C: Content> {
    pub(crate) offset: usize,
    pub(crate) len: usize,
    pub(crate) kind: OpKind,
    pub(crate) pos: usize,
    pub(crate) forward: bool,
    /// For inserts, the inserted content: exactly `len` units.
    pub(crate) units: C::Units,
}

/// A chain of events of one replica: sequence numbers `seq_start..seq_start + len`, the first
/// with `parents`, each later one the child of the one before.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EventRun<C: Content> {
    pub(crate) replica: ReplicaId,
    pub(crate) seq_start: u64,
    pub(crate) len: usize,
    pub(crate) parents: Vec<Dot>,
    /// Sorted by offset, not overlapping, inside `0..len`.
    pub(crate) ops: Vec<UpdateOp<C>>,
}

/// A batch of event runs in causal order (parents before children).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Update<C: Content> {
    pub(crate) runs: Vec<EventRun<C>>,
}

impl<C: Content> Default for Update<C> {
    fn default() -> Self {
        Update { runs: Vec::new() }
    }
}

/// Why an update could not be applied. Nothing is applied when this is returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ApplyError {
    /// The update builds on events this replica does not have.
    Missing(Dot),
    /// The update describes impossible events or operations.
    Invalid(&'static str),
    /// The update was made concurrently with history trimmed here (shallow base given).
    Trimmed(crate::VersionVector),
}

impl From<GraphError> for ApplyError {
    fn from(error: GraphError) -> Self {
        match error {
            GraphError::MissingParent(dot) => ApplyError::Missing(dot),
            GraphError::MissingPredecessor { expected } => ApplyError::Missing(expected),
            GraphError::InvalidSequence => ApplyError::Invalid("event sequence numbers overflow"),
            GraphError::HistoryTrimmed(base) => ApplyError::Trimmed(base),
        }
    }
}

impl<C: Content> Update<C> {
    /// Every event of `graph` not covered by `version`, with its operations from `log`.
    pub(crate) fn since(graph: &CausalGraph, log: &OpLog<C>, version: &VersionVector) -> Self {
        Update::between(graph, log, version, None)
    }

    /// Every event of `graph` covered by `until` (all if `None`) and not by `since`.
    pub(crate) fn between(
        graph: &CausalGraph,
        log: &OpLog<C>,
        since: &VersionVector,
        until: Option<&VersionVector>,
    ) -> Self {
        let runs = Update::event_runs_with_spans(graph, since, until)
            .into_iter()
            .map(|(span, mut run)| {
                run.ops = log
                    .runs_in(span.clone())
                    .map(|op| UpdateOp {
                        offset: op.span.start - span.start,
                        len: op.span.len(),
                        kind: op.kind,
                        pos: op.pos,
                        forward: op.forward,
                        units: if op.kind == OpKind::Insert {
                            log.content_of(&op)
                        } else {
                            C::Units::default()
                        },
                    })
                    .collect();
                run
            })
            .collect();
        Update { runs }
    }

    /// The event runs (without operations) of the events covered by `until` and not by
    /// `since`: chains of one replica, in local version order.
    pub(crate) fn event_runs(
        graph: &CausalGraph,
        since: &VersionVector,
        until: Option<&VersionVector>,
    ) -> Vec<EventRun<C>> {
        Update::event_runs_with_spans(graph, since, until)
            .into_iter()
            .map(|(_, run)| run)
            .collect()
    }

    fn event_runs_with_spans(
        graph: &CausalGraph,
        since: &VersionVector,
        until: Option<&VersionVector>,
    ) -> Vec<(Range<Lv>, EventRun<C>)> {
        graph
            .chains_between(since, until)
            .into_iter()
            .map(|chain| {
                let run = EventRun {
                    replica: chain.replica,
                    seq_start: chain.seq_start,
                    len: chain.span.len(),
                    parents: chain.parents,
                    ops: Vec::new(),
                };
                (chain.span, run)
            })
            .collect()
    }

    /// Checks what can be checked without the receiving replica: operations inside their runs,
    /// in order, with content of the right length.
    pub(crate) fn validate(&self) -> Result<(), ApplyError> {
        for run in &self.runs {
            if run.len == 0 {
                return Err(ApplyError::Invalid("empty event run"));
            }
            let mut next_free = 0;
            for op in &run.ops {
                if op.len == 0 || op.offset < next_free || op.offset + op.len > run.len {
                    return Err(ApplyError::Invalid("operations overlap or leave their run"));
                }
                next_free = op.offset + op.len;
                match op.kind {
                    OpKind::Insert => {
                        if C::count(&op.units) != op.len || !op.forward {
                            return Err(ApplyError::Invalid(
                                "inserted content does not match its length",
                            ));
                        }
                    }
                    OpKind::Delete => {
                        if C::storage_len(&op.units) != 0 || (!op.forward && op.pos + 1 < op.len) {
                            return Err(ApplyError::Invalid("delete run reaches before the start"));
                        }
                    }
                }
                op.pos
                    .checked_add(op.len)
                    .ok_or(ApplyError::Invalid("position overflows"))?;
            }
        }
        Ok(())
    }

    /// Adds the update's events and operations; returns the local versions of the new events
    /// (everything from the returned start on is new). On error the graph and log may hold part
    /// of the update: the caller truncates them back.
    pub(crate) fn add_to(
        &self,
        graph: &mut CausalGraph,
        log: &mut OpLog<C>,
    ) -> Result<Range<Lv>, ApplyError> {
        let start = graph.len();
        for run in &self.runs {
            let new = graph.add_remote(run.replica, run.seq_start, run.len, &run.parents)?;
            // The first `skip` events of the run were known already.
            let skip = run.len - new.len();
            for op in &run.ops {
                if op.offset + op.len <= skip {
                    continue;
                }
                let cut = skip.saturating_sub(op.offset);
                let first = new.start + op.offset + cut - skip;
                let span = first..first + op.len - cut;
                match op.kind {
                    OpKind::Insert => {
                        let from = C::offset_after(&op.units, 0, cut);
                        let units = C::sub(&op.units, from..C::storage_len(&op.units));
                        log.push_insert(span, op.pos + cut, units);
                    }
                    OpKind::Delete => {
                        let pos = if op.forward { op.pos } else { op.pos - cut };
                        log.push_delete(span, pos, op.forward);
                    }
                }
            }
        }
        Ok(start..graph.len())
    }
}
