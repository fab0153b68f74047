//! Reading what an update or snapshot holds without applying it: which events, what they build
//! on, how large. For servers and tools that route, log or refuse updates before paying for a
//! merge, and for apps that want to know what a peer sent.

use super::Document;
use super::change::Change;
use super::encoding;
use crate::sequence::LoadError;
use crate::{Dot, DotRange, VersionVector};

/// What encoded bytes are (see [`Document::inspect_update`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    /// Changes only ([`Document::update_since`], [`Document::update_between`]).
    Changes,
    /// The whole document with its history and state ([`Document::encode`]).
    Snapshot,
    /// The state with the history after `base` only ([`Document::encode_shallow`]).
    ShallowSnapshot {
        /// The version the history was trimmed at.
        base: VersionVector,
    },
}

/// What an encoded update or snapshot holds, read without applying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateInfo {
    /// What the bytes are.
    pub kind: UpdateKind,
    /// The events it carries, as runs per replica (sorted; adjacent runs joined). A shallow
    /// snapshot carries its base's events only as a summary: they are not listed.
    pub events: Vec<DotRange>,
    /// The events it builds on without carrying them: a replica must hold these before it can
    /// apply the bytes (a shallow snapshot's base is not listed: an empty replica loads it).
    pub dependencies: Vec<Dot>,
    /// How many operations it holds (runs of events on one container).
    pub operations: usize,
    /// Its size in bytes.
    pub bytes: usize,
}

impl UpdateInfo {
    /// How many events it carries.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, VersionVector};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "a", 1).unwrap();
    /// let info = Document::inspect_update(&doc.update_since(&VersionVector::new())).unwrap();
    /// assert_eq!(info.event_count(), 1);
    /// ```
    pub fn event_count(&self) -> u64 {
        self.events.iter().map(DotRange::len).sum()
    }
}

impl Document {
    /// Decodes `bytes` (an update or a snapshot of any document) and says what they hold,
    /// without applying them: the same checks as [`apply_update`](Self::apply_update) on the
    /// format, none against a document (a malformed encoding is refused; whether a replica
    /// can apply it depends on what it holds: see [`UpdateInfo::dependencies`]).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, UpdateKind, VersionVector};
    ///
    /// let alice = ReplicaId::from_u128(1);
    /// let mut doc = Document::new(alice);
    /// doc.set(MapId::ROOT, "a", 1).unwrap();
    /// let v1 = doc.version();
    /// doc.transact(|tx| {
    ///     tx.set(MapId::ROOT, "b", 2)?;
    ///     tx.set(MapId::ROOT, "c", 3)
    /// }).unwrap();
    ///
    /// let info = Document::inspect_update(&doc.update_since(&v1)).unwrap();
    /// assert_eq!(info.kind, UpdateKind::Changes);
    /// assert_eq!(info.event_count(), 2);
    /// assert_eq!(info.dependencies, doc.view_at(&v1).unwrap().heads());
    /// assert!(Document::inspect_update(b"not an update").is_err());
    /// ```
    pub fn inspect_update(bytes: &[u8]) -> Result<UpdateInfo, LoadError> {
        let decoded = encoding::decode(bytes)?;
        let kind = match (&decoded.shallow, &decoded.state) {
            (Some(shallow), _) => UpdateKind::ShallowSnapshot {
                base: shallow.version.clone(),
            },
            (None, Some(_)) => UpdateKind::Snapshot,
            (None, None) => UpdateKind::Changes,
        };
        let events = event_runs(&decoded.changes);
        let carried = |dot: &Dot| {
            events
                .iter()
                .any(|run| run.replica == dot.replica && run.counters.contains(&dot.counter))
        };
        let base = decoded.shallow.as_ref().map(|shallow| &shallow.version);
        let mut dependencies: Vec<Dot> = decoded
            .changes
            .iter()
            .flat_map(|change| change.parents.iter().copied())
            .filter(|dot| !carried(dot) && !base.is_some_and(|base| base.contains(*dot)))
            .collect();
        dependencies.sort();
        dependencies.dedup();
        Ok(UpdateInfo {
            kind,
            events,
            dependencies,
            operations: decoded.changes.iter().map(|change| change.ops.len()).sum(),
            bytes: bytes.len(),
        })
    }
}

/// The events of `changes` as sorted runs per replica, adjacent runs joined.
fn event_runs(changes: &[Change]) -> Vec<DotRange> {
    let mut runs: Vec<DotRange> = changes
        .iter()
        .filter(|change| change.len > 0)
        .map(|change| DotRange {
            replica: change.replica,
            counters: change.seq_start..change.seq_start.saturating_add(change.len as u64),
        })
        .collect();
    runs.sort_by_key(|run| (run.replica, run.counters.start));
    let mut joined: Vec<DotRange> = Vec::with_capacity(runs.len());
    for run in runs {
        match joined.last_mut() {
            Some(last)
                if last.replica == run.replica && last.counters.end >= run.counters.start =>
            {
                last.counters.end = last.counters.end.max(run.counters.end);
            }
            _ => joined.push(run),
        }
    }
    joined
}
