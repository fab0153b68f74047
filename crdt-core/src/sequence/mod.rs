//! The sequence CRDT behind [`Text`](crate::Text) and [`List`](crate::List), in the style of
//! Eg-walker.
//!
//! A sequence keeps three things:
//! - the **causal graph** of every event (who, and after what), in [`crate::causal_graph`];
//! - the **operation log**: each event's operation as its author made it, by index (`oplog`);
//! - the **current document** (a rope of text, or a vector of elements: `content`).
//!
//! Local edits touch only the document and append to the logs. Remote events that follow the
//! current version also apply directly. Only events made concurrently with the current version
//! need CRDT machinery: the merge replays the concurrent section in a temporary tracker
//! (`tracker`, `merge`), transforms the new operations into edits of the current document, and
//! drops the tracker. So a document in steady state holds no per-element metadata at all,
//! which is what makes it small in memory and fast to load (Gentle and Kleppmann, "Collaborative
//! Text Editing with Eg-walker: Better, Faster, Smaller", EuroSys 2025).
//!
//! Concurrent insertions at the same place are ordered by the FugueMax rule, which never
//! interleaves elements of runs inserted concurrently.

pub(crate) mod content;
mod cursor;
mod encoding;
pub(crate) mod lanes;
pub(crate) mod merge;
pub(crate) mod oplog;
mod snapshot;
pub(crate) mod tracker;
pub(crate) mod update;

use std::ops::Range;

pub use cursor::{Bias, Cursor, CursorError};
pub use encoding::LoadError;

use crate::causal_graph::CausalGraph;
use crate::{Dot, ReplicaId, VersionVector};
use content::Content;
use oplog::OpLog;
use update::{ApplyError, Update};

/// A replica of a sequence: history, operations and current document. The public types wrap
/// it with the API of their content.
pub(crate) struct Sequence<C: Content> {
    replica: ReplicaId,
    /// This replica's number in the graph, taken at its first edit.
    agent: Option<u32>,
    graph: CausalGraph,
    log: OpLog<C>,
    pub(crate) doc: C::Doc,
}

impl<C: Content> Clone for Sequence<C> {
    fn clone(&self) -> Self {
        Sequence {
            replica: self.replica,
            agent: self.agent,
            graph: self.graph.clone(),
            log: self.log.clone(),
            doc: self.doc.clone(),
        }
    }
}

/// A local edit at an index past the end of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexOutOfRange;

impl<C: Content> Sequence<C> {
    pub(crate) fn new(replica: ReplicaId) -> Self {
        Sequence {
            replica,
            agent: None,
            graph: CausalGraph::default(),
            log: OpLog::default(),
            doc: C::Doc::default(),
        }
    }

    pub(crate) fn fork(&self, replica: ReplicaId) -> Self {
        let mut fork = self.clone();
        fork.replica = replica;
        fork.agent = None;
        fork
    }

    pub(crate) fn replica(&self) -> ReplicaId {
        self.replica
    }

    pub(crate) fn len(&self) -> usize {
        C::doc_len(&self.doc)
    }

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

    /// Inserts `units` (holding `count` units) at `at`.
    pub(crate) fn insert(
        &mut self,
        at: usize,
        units: &C::Slice,
        count: usize,
    ) -> Result<(), IndexOutOfRange> {
        if at > self.len() {
            return Err(IndexOutOfRange);
        }
        if count == 0 {
            return Ok(());
        }
        let agent = self.local_agent();
        let parents = self.graph.frontier().clone();
        let span = self.graph.add_local(agent, count, &parents);
        self.log.clear_merge_cache();
        self.log.push_insert(span, at, units);
        C::doc_insert(&mut self.doc, at, units);
        Ok(())
    }

    /// Deletes the units `range`.
    pub(crate) fn delete(&mut self, range: Range<usize>) -> Result<(), IndexOutOfRange> {
        if range.start > range.end || range.end > self.len() {
            return Err(IndexOutOfRange);
        }
        if range.is_empty() {
            return Ok(());
        }
        let agent = self.local_agent();
        let parents = self.graph.frontier().clone();
        let span = self.graph.add_local(agent, range.len(), &parents);
        self.log.clear_merge_cache();
        self.log.push_delete(span, range.start, true);
        C::doc_remove(&mut self.doc, range.start, range.len());
        Ok(())
    }

    pub(crate) fn version(&self) -> VersionVector {
        self.graph.version_vector()
    }

    pub(crate) fn heads(&self) -> Vec<Dot> {
        self.graph.frontier_to_dots(self.graph.frontier())
    }

    pub(crate) fn history_len(&self) -> usize {
        self.graph.len()
    }

    pub(crate) fn update_since(&self, version: &VersionVector) -> Vec<u8> {
        encoding::encode_update(&Update::since(&self.graph, &self.log, version))
    }

    pub(crate) fn update_between(&self, since: &VersionVector, until: &VersionVector) -> Vec<u8> {
        encoding::encode_update(&Update::between(&self.graph, &self.log, since, Some(until)))
    }

    pub(crate) fn apply_update(&mut self, bytes: &[u8]) -> Result<usize, LoadError> {
        let decoded = encoding::decode::<C>(bytes)?;
        if self.graph.len() == 0 && decoded.document.is_some() {
            // A snapshot into an empty replica: adopt its document and history, no replay.
            let (graph, log, doc) = snapshot::adopt(decoded)?;
            let events = graph.len();
            (self.graph, self.log, self.doc) = (graph, log, doc);
            return Ok(events);
        }
        let update = decoded.into_update()?;
        self.apply(&update)
    }

    pub(crate) fn merge(&mut self, other: &Self) -> Result<usize, LoadError> {
        let update = Update::since(&other.graph, &other.log, &self.version());
        self.apply(&update)
    }

    /// Adds an update's new events and merges them into the document; all or nothing.
    pub(crate) fn apply(&mut self, update: &Update<C>) -> Result<usize, LoadError> {
        update.validate().map_err(LoadError::from)?;
        let before = self.graph.len();
        let frontier = self.graph.frontier().clone();
        let result = update
            .add_to(&mut self.graph, &mut self.log)
            .map_err(LoadError::from)
            .and_then(|new| {
                merge::merge_new_events(&self.graph, &self.log, &mut self.doc, &frontier, new.start)
                    .map_err(|_| {
                        LoadError::from(ApplyError::Invalid(
                            "an operation refers to content that is not there",
                        ))
                    })
                    .map(|_| new.len())
            });
        if result.is_err() {
            self.graph.truncate(before, frontier);
            self.log.truncate(before);
        }
        result
    }

    pub(crate) fn cursor(&self, index: usize, bias: Bias) -> Result<Cursor, IndexOutOfRange> {
        if index > self.len() {
            return Err(IndexOutOfRange);
        }
        Ok(Cursor {
            heads: self.heads(),
            index,
            bias,
        })
    }

    pub(crate) fn resolve_cursor(&self, cursor: &Cursor) -> Result<usize, CursorError> {
        resolve_cursor_in(&self.graph, &self.log, self.len(), cursor)
    }

    /// The document as it was at `version` (time travel): the merge of the events within it
    /// into an empty document ([`merge::checkout`]); this replica is not changed.
    pub(crate) fn doc_at(&self, version: &VersionVector) -> Result<C::Doc, crate::HistoryError> {
        self.graph.check_version(version)?;
        if *version == self.version() {
            return Ok(self.doc.clone());
        }
        let events = self
            .graph
            .spans_between(&VersionVector::new(), Some(version));
        let frontier = self.graph.frontier_of(version);
        merge::checkout(&self.graph, &self.log, &events, &frontier).map_err(|_| {
            crate::HistoryError::Replay(LoadError::Malformed("the history does not replay"))
        })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        encoding::encode_snapshot(&self.graph, &self.log, &self.doc)
    }
}

/// Where `cursor` is now in the sequence whose operations are `log` (numbered by `graph`)
/// and whose current length is `len`: its index transformed through every edit since its
/// version. Shared by [`Text`](crate::Text), [`List`](crate::List) and document containers.
pub(crate) fn resolve_cursor_in<C: Content>(
    graph: &CausalGraph,
    log: &OpLog<C>,
    len: usize,
    cursor: &Cursor,
) -> Result<usize, CursorError> {
    let from = graph
        .frontier_of_dots(&cursor.heads)
        .map_err(CursorError::UnknownEvent)?;
    if &from == graph.frontier() {
        return if cursor.index <= len {
            Ok(cursor.index)
        } else {
            Err(CursorError::OutOfRange)
        };
    }
    let position =
        merge::transform_position(graph, log, &from, cursor.index, cursor.bias == Bias::Before)
            .map_err(|_| CursorError::OutOfRange)?;
    // An index past the end of its version lands in the placeholder's endless tail.
    if position > len {
        return Err(CursorError::OutOfRange);
    }
    Ok(position)
}

#[cfg(test)]
mod tests;
